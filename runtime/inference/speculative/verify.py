"""Acceptance rules of speculative decoding: which draft tokens are kept, and the token after them.

Every rule here is *exact*: the emitted tokens follow the target's next-token distributions ``p``
(after the sampler chain and the constraint mask, Rule 0 of the spec), whatever the drafts were.
Positions are batched: row ``b`` of a verification carries ``lengths[b]`` draft tokens and the
target log-probs at ``lengths[b] + 1`` positions (position ``i`` is the distribution before draft
token ``i``, i.e. after ``drafts[b, :i]``; the last one gives the bonus token).

* :func:`verify_chain` with ``logq`` (the drafts were sampled from ``q``): the standard rule of
  Leviathan et al. / Chen et al.: accept ``x_i`` with probability ``min(1, p_i(x_i) / q_i(x_i))``; at
  the first rejection emit ``y ~ norm([p_i - q_i]+)`` (:func:`residual`), after a full acceptance
  ``y ~ p`` (the bonus token).
* :func:`verify_chain` without ``logq`` (point-mass drafts: n-gram copies, greedy drafters): sample
  ``y_i ~ p_i`` at every position, keep drafts while ``y_i == x_i``, emit the first ``y`` that
  differs (or the bonus) -- exactly the standard rule for ``q = delta_x``.
* ``greedy``: keep drafts while they equal the target's argmax (lowest id on ties, like greedy
  decoding), then emit the argmax.
* :func:`verify_kseq` (SpecTr's K-SEQ, one position with ``K`` i.i.d. candidates) and
  :func:`verify_recursive` (recursive rejection sampling over candidates drawn *without*
  replacement, RSD) -- the per-node rules of multi-candidate drafts.

>>> p = torch.tensor([[[0.5, 0.5], [0.9, 0.1]]]).log()
>>> n, y = verify_chain(p, torch.tensor([[1]]), torch.tensor([1]), greedy=True)
>>> n.tolist(), y.tolist()   # the draft 1 is not the argmax 0 (lowest id on the tie)
([0], [0])
"""

from __future__ import annotations

import torch

from genweave.runtime.samplers import gumbel_argmax

# A residual whose total mass is below this is treated as empty (p <= q up to rounding): the
# rejection that led to it had probability ~0, and drawing from p instead is exact up to that error.
_EMPTY_RESIDUAL = 1e-12


def residual(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """``norm([p - q]+)`` along the last axis (probabilities); ``p`` where that mass is ~0."""
    excess = (p - q).clamp(min=0)
    mass = excess.sum(dim=-1, keepdim=True)
    return torch.where(mass > _EMPTY_RESIDUAL, excess / mass.clamp(min=_EMPTY_RESIDUAL), p)


def acceptance(p_x: torch.Tensor, q_x: torch.Tensor) -> torch.Tensor:
    """``min(1, p(x) / q(x))``: the probability of keeping a draft ``x`` drawn from ``q`` (``q(x) > 0``)."""
    return (p_x / q_x.clamp(min=torch.finfo(q_x.dtype).tiny)).clamp(max=1.0)


def leading(accepted: torch.Tensor) -> torch.Tensor:
    """``[B]`` count of leading True values of each row of ``accepted`` ``[B, T]``."""
    return accepted.long().cumprod(dim=-1).sum(dim=-1)


def verify_chain(logp: torch.Tensor, drafts: torch.Tensor, lengths: torch.Tensor, logq: torch.Tensor | None = None,
                 *, greedy: bool = False, generator: torch.Generator | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Verify a chain of drafts per row; returns ``(accepted [B], token [B])``.

    ``logp`` ``[B, T+1, V]``: target log-probs; ``drafts`` ``[B, T]`` (entries past ``lengths[b]``
    are ignored); ``logq`` ``[B, T, V]``: the draft log-probs the drafts were sampled from, or None
    for point-mass drafts. Row ``b`` emits ``drafts[b, :accepted[b]]`` and then ``token[b]``.
    """
    batch, width = drafts.shape
    rows = torch.arange(batch, device=drafts.device)
    valid = torch.arange(width, device=drafts.device)[None, :] < lengths[:, None]
    if greedy:
        best = logp.argmax(dim=-1)  # the first maximum: the lowest id, like greedy decoding
        n = leading((drafts == best[:, :width]) & valid)
        return n, best[rows, n]
    if logq is None:
        drawn = gumbel_argmax(logp.reshape(-1, logp.shape[-1]), generator).view(batch, width + 1)
        n = leading((drafts == drawn[:, :width]) & valid)
        return n, drawn[rows, n]
    p = logp.exp()
    q = logq.exp()
    index = drafts.clamp(min=0)[..., None]
    ratio = acceptance(p[:, :width].gather(-1, index)[..., 0], q.gather(-1, index)[..., 0])
    u = torch.rand(ratio.shape, generator=generator, dtype=ratio.dtype, device=ratio.device)
    n = leading((u < ratio) & valid)  # strict: P(u < r) = r for u ~ U[0, 1), and r = 0 never accepts
    at = p[rows, n]
    fix = residual(at, q[rows, n.clamp(max=max(width - 1, 0))]) if width else at
    law = torch.where((n < lengths)[:, None], fix, at)
    return n, gumbel_argmax(law.log(), generator)


# ------------------------------------------------------------------------- multi-candidate nodes
def kseq_rho(p: torch.Tensor, q: torch.Tensor, k: torch.Tensor | int, steps: int = 60) -> torch.Tensor:
    """SpecTr's ``rho*`` per row: the root in ``[1, K]`` of ``1 - (1 - beta)^K - rho beta`` with
    ``beta(rho) = sum_x min(q, p / rho)``, by bisection (float64); the end with ``f <= 0`` is kept,
    so the residual ``[p - rho q]+`` has non-negative mass. ``K = 1`` gives 1 (the standard rule)."""
    p, q = p.double(), q.double()
    k = torch.as_tensor(k, dtype=torch.float64, device=p.device).expand(p.shape[:-1])
    low, high = torch.ones_like(k), k.clone()

    def f(rho: torch.Tensor) -> torch.Tensor:
        beta = torch.minimum(q, p / rho[..., None]).sum(-1)
        return 1 - (1 - beta) ** k - rho * beta

    for _ in range(steps):
        mid = (low + high) / 2
        positive = f(mid) > 0
        low = torch.where(positive, mid, low)
        high = torch.where(positive, high, mid)
    return torch.where(f(low) <= 0, low, high)


def verify_kseq(p: torch.Tensor, q: torch.Tensor, candidates: torch.Tensor, counts: torch.Tensor,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """K-SEQ at one position per row; returns ``(chosen [B], token [B])``.

    ``candidates`` ``[B, K]`` are i.i.d. draws from ``q`` (the first ``counts[b]`` of a row count);
    candidate ``i`` is accepted with probability ``min(1, p(x_i) / (rho* q(x_i)))``; the first
    accepted one is emitted (``chosen`` is its index), else a draw from ``norm([p - rho* q]+)``
    (``chosen == -1``). The emitted token follows ``p`` exactly.
    """
    batch, width = candidates.shape
    rho = kseq_rho(p, q, counts.clamp(min=1)).to(p.dtype)
    index = candidates.clamp(min=0)
    ratio = acceptance(p.gather(-1, index), rho[:, None] * q.gather(-1, index))
    u = torch.rand(ratio.shape, generator=generator, dtype=ratio.dtype, device=ratio.device)
    valid = torch.arange(width, device=p.device)[None, :] < counts[:, None]
    accepted = (u < ratio) & valid
    any_accepted = accepted.any(dim=-1)
    first = accepted.long().argmax(dim=-1)
    fallback = gumbel_argmax(residual(p, rho[:, None] * q).log(), generator)
    rows = torch.arange(batch, device=p.device)
    token = torch.where(any_accepted, candidates[rows, first], fallback)
    return torch.where(any_accepted, first, torch.full_like(first, -1)), token


def verify_recursive(p: torch.Tensor, q: torch.Tensor, candidates: torch.Tensor, counts: torch.Tensor,
                     generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Recursive rejection sampling at one position per row; returns ``(chosen [B], token [B])``.

    ``candidates`` ``[B, n]`` were drawn from ``q`` *without replacement* (distinct, in draw order;
    the first ``counts[b]`` count). Candidate ``i`` is tried against ``p_i`` with draft law ``q_i``
    (``q`` without the earlier candidates, renormalised): accepted with ``min(1, p_i(x_i)/q_i(x_i))``,
    else ``p_{i+1} = norm([p_i - q_i]+)``. With every candidate rejected, a draw from the last
    residual is emitted (``chosen == -1``). The emitted token follows ``p`` exactly.
    """
    batch, width = candidates.shape
    rows = torch.arange(batch, device=p.device)
    target, removed = p.clone(), torch.zeros_like(p, dtype=torch.bool)
    chosen = torch.full((batch,), -1, dtype=torch.long, device=p.device)
    for i in range(width):
        live = (chosen < 0) & (i < counts)
        x = candidates[:, i].clamp(min=0)
        kept = q.masked_fill(removed, 0.0)
        draft = kept / kept.sum(-1, keepdim=True).clamp(min=_EMPTY_RESIDUAL)
        ratio = acceptance(target[rows, x], draft[rows, x])
        u = torch.rand(ratio.shape, generator=generator, dtype=ratio.dtype, device=ratio.device)
        chosen = torch.where(live & (u < ratio), torch.full_like(chosen, i), chosen)
        rejected = live & (chosen < 0)
        target = torch.where(rejected[:, None], residual(target, draft), target)
        removed = removed | (rejected[:, None] & (torch.arange(p.shape[-1], device=p.device)[None, :] == x[:, None]))
    fallback = gumbel_argmax(target.log(), generator)
    token = torch.where(chosen >= 0, candidates[rows, chosen.clamp(min=0)], fallback)
    return chosen, token
