"""The draw and the constraint-mask primitives of the per-step path.

* :func:`gumbel_argmax`: one exact sample per row from ``softmax(scores)`` by the Gumbel-max trick,
  ``argmax(scores - log E)`` with ``E = -log U ~ Exp(1)``, ``U ~ U(0, 1)`` (``-log E`` is
  Gumbel(0, 1)). ``-inf`` scores are never drawn while a finite one exists. Sort-free and batched.
* :func:`unpack_mask`: a packed int32 bitmask ``[B, ceil(V / 32)]`` (bit ``j`` of word ``w`` allows
  token ``32 w + j``) as a bool ``[B, V]``, in one vectorised expression.
"""

from __future__ import annotations

import torch

# E = -log U is clamped away from 0 (U = 1 would give -log E = +inf, and -inf + inf = nan for a
# masked entry); U = 0 gives E = inf, a Gumbel of -inf, which is its correct limit
_TINY = torch.finfo(torch.float32).tiny


def gumbel_argmax(scores: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """``[B]`` indices, row ``b`` drawn from ``softmax(scores[b])`` (scores need not be normalised)."""
    uniform = torch.rand(scores.shape, generator=generator, dtype=torch.float32, device=scores.device)
    log_e = uniform.log_().neg_().clamp_(min=_TINY).log_()
    if scores.dtype == torch.float32 and scores.shape == log_e.shape:
        return torch.sub(scores, log_e, out=log_e).argmax(dim=-1)  # in place: no second [B, V] buffer
    return (scores - log_e).argmax(dim=-1)


def unpack_mask(mask: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """A bool ``[B, V]`` allow-mask from a packed int32 ``[B, ceil(V/32)]`` one (bool masks pass
    through). Bit ``j`` of word ``w`` is token ``32 w + j``."""
    if mask.dtype == torch.bool:
        return mask
    shifts = torch.arange(32, dtype=torch.int32, device=mask.device)
    bits = (mask.to(torch.int32).unsqueeze(-1) >> shifts) & 1
    return bits.reshape(*mask.shape[:-1], -1)[..., :vocab_size].bool()


def pack_mask(allowed: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`unpack_mask`: bool ``[B, V]`` -> packed int32 ``[B, ceil(V/32)]``."""
    batch, vocab = allowed.shape
    words = -(-vocab // 32)
    padded = torch.zeros(batch, words * 32, dtype=torch.int64, device=allowed.device)
    padded[:, :vocab] = allowed.long()
    weights = torch.ones(32, dtype=torch.int64, device=allowed.device) << torch.arange(32, device=allowed.device)
    packed = (padded.view(batch, words, 32) * weights).sum(-1)
    return torch.where(packed >= 2**31, packed - 2**32, packed).to(torch.int32)
