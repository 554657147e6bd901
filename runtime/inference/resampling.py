"""Resampling schemes for particle filters, batched over independent particle systems.

Every scheme takes normalized weights ``w`` of shape ``[G, N]`` (``G`` independent systems of
``N`` particles, rows summing to 1) and returns ancestor indices ``[G, N]``. All four are
*unbiased*: the expected number of offspring of particle ``i`` is ``N w_i``. They differ in
variance:

* ``multinomial``: ``N`` independent draws from ``w``;
* ``stratified``: one uniform in each stratum ``[k/N, (k+1)/N)``, inverted through the CDF;
* ``systematic``: one uniform ``U`` shared by the strata, ``(k + U)/N`` (offspring counts are
  ``floor(N w_i)`` or ``ceil(N w_i)``);
* ``residual``: ``floor(N w_i)`` copies of each particle, the rest drawn multinomially from the
  residuals ``N w_i - floor(N w_i)``.

A particle of weight 0 is never chosen.

>>> import torch
>>> w = torch.tensor([[0.5, 0.25, 0.25, 0.0]], dtype=torch.float64)
>>> resample(w, "residual", torch.Generator().manual_seed(0))[0, :3].tolist()
[0, 0, 1]
"""

from __future__ import annotations

import torch

from genweave.dsl.errors import GenArgumentError

SCHEMES = ("multinomial", "stratified", "systematic", "residual")


def resample(weights: torch.Tensor, scheme: str, generator: torch.Generator | None = None) -> torch.Tensor:
    """Ancestor indices ``[G, N]`` (int64) for normalized weights ``[G, N]`` under ``scheme``."""
    if scheme not in SCHEMES:
        raise GenArgumentError(f"unknown resampling scheme {scheme!r}", hint=f"use one of {', '.join(SCHEMES)}")
    w = weights.to(torch.float64)
    if scheme == "multinomial":
        return torch.multinomial(w, w.shape[1], replacement=True, generator=generator)
    if scheme == "residual":
        return _residual(w, generator)
    groups, n = w.shape
    shift = (torch.rand((groups, n if scheme == "stratified" else 1), dtype=torch.float64,
                        device=w.device, generator=generator))
    points = (torch.arange(n, dtype=torch.float64, device=w.device) + shift) / n
    return _invert(w, points)


def _invert(w: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """The particle whose CDF interval ``[c_{i-1}, c_i)`` holds each point of ``[0, 1)``."""
    cdf = w.cumsum(dim=1)
    cdf = cdf / cdf[:, -1:]
    cdf[:, -1] = 1.0  # exact: a point below 1 never falls past the last interval
    # trailing zero-weight particles share c = 1 with the last positive one, so right=True skips them
    return torch.searchsorted(cdf, points, right=True).clamp_(max=w.shape[1] - 1)


def _residual(w: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    groups, n = w.shape
    scaled = w * n
    copies = scaled.floor()
    residual = scaled - copies
    kept = copies.sum(dim=1, keepdim=True)  # [G, 1]
    ends = copies.cumsum(dim=1)
    slots = torch.arange(n, dtype=torch.float64, device=w.device).expand(groups, n)
    fixed = torch.searchsorted(ends, slots.contiguous(), right=True).clamp_(max=n - 1)
    # rows without residual mass draw nothing from it; give them a harmless uniform row
    empty = residual.sum(dim=1, keepdim=True) <= 0
    residual = torch.where(empty, torch.ones_like(residual), residual)
    drawn = torch.multinomial(residual, n, replacement=True, generator=generator)
    return torch.where(slots < kept, fixed, drawn)


def normalized(log_weights: torch.Tensor) -> torch.Tensor:
    """Rows of ``softmax(log_weights)``; a row whose weights are all ``-inf`` stays all zeros."""
    top = log_weights.amax(dim=-1, keepdim=True)
    safe = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
    w = (log_weights - safe).exp()
    total = w.sum(dim=-1, keepdim=True)
    return torch.where(total > 0, w / total.clamp(min=1e-300), torch.zeros_like(w))


def effective_sample_size(log_weights: torch.Tensor) -> torch.Tensor:
    """``1 / sum(w_i^2)`` of the normalized weights, per row (0 when every weight is 0)."""
    w = normalized(log_weights)
    squares = (w * w).sum(dim=-1)
    return torch.where(squares > 0, 1.0 / squares.clamp(min=1e-300), torch.zeros_like(squares))
