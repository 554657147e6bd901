"""Sort-free selection on CPU tensors (numba, one row at a time, no threads): the cumulative-mass
cut of top-p and locally typical sampling, and in-place masking of the working logits.

* :func:`crossing_key`: order each row's entries by a float32 ``key`` (descending or ascending),
  accumulate ``mass`` in that order, and return the key of the first entry at which the running sum
  reaches ``target`` (the last entry's key when it never does). Entries with equal keys form one
  block, so the answer does not depend on how ties are ordered, and the caller's tie-closed set
  ``{key >= answer}`` (or ``<=``) is the set a sort followed by a float64 cumulative sum selects
  (up to the rounding of the float64 sums, see below).
* :func:`mask_below`: ``z[b, i] = -inf`` where ``z[b, i] < thr[b]``, in place.
* :func:`mask_above`: ``z[b, i] = -inf`` where not ``score[b, i] <= bound[b]``, in place, on the
  rows where ``active[b]``.
* :func:`mask_packed`: ``z[b, i] = -inf`` where bit ``i % 32`` of word ``i // 32`` of a packed int32
  constraint mask is clear, in place (no unpacked ``[B, V]`` mask is built).

:func:`crossing_key` is a three-level radix select on the bit patterns of the keys (for float32,
``x < y`` iff the order-preserving integer images of their bits compare the same way): one pass
builds a histogram of mass over the top 12 bits and finds the bucket where the running sum crosses
``target``; a second pass gathers that bucket's entries and refines on the next 12 bits; a last
pass over those refines on the low 8 bits, which leaves a single key value. Masses are summed in
float64, so the crossing is located to within about ``1e-16 * V`` of ``target`` (a head-first
float64 cumulative sum of the sorted masses has the same accuracy). ``-0.0`` and ``+0.0`` get
adjacent ranks, which changes no answer since they compare equal. NaN keys or masses never raise
(rows holding NaN are rejected by the pipeline anyway). Cost: about two passes over each row.
"""

from __future__ import annotations

import numba
import numpy as np
import torch

_HIGH = 4096  # buckets of the first two levels (12 bits each), then 256 (8 bits)
_U32 = 0xFFFFFFFF
_SIGN = 0x80000000


def usable(*tensors: torch.Tensor) -> bool:
    """True when the kernels apply: CPU, float32, contiguous, 2-d tensors."""
    return all(t.device.type == "cpu" and t.dtype == torch.float32 and t.dim() == 2 and t.is_contiguous()
               for t in tensors)


def crossing_key(keys: torch.Tensor, mass: torch.Tensor, target: torch.Tensor, active: torch.Tensor,
                 descending: bool) -> torch.Tensor:
    """``[B, 1]`` float32: per row, the key of the first entry (in ``descending`` or ascending key
    order) at which the cumulative ``mass`` reaches ``target[b]`` (``[B, 1]``, compared in float64);
    the last entry's key when the total stays below it; ``nan`` on rows where ``active`` is False."""
    batch = keys.shape[0]
    out = np.full(batch, np.nan, dtype=np.float32)
    goal = target.detach().to(torch.float64).expand(batch, 1).reshape(-1).numpy()
    rows = active.detach().expand(batch, 1).reshape(-1).numpy()
    _crossing_rows(keys.detach().numpy().view(np.int32), mass.detach().numpy(), np.ascontiguousarray(goal),
                   np.ascontiguousarray(rows), descending, out.view(np.int32))
    return torch.from_numpy(out).reshape(batch, 1)


def mask_below(z: torch.Tensor, thr: torch.Tensor) -> None:
    """``z[b, i] = -inf`` where ``z[b, i] < thr[b]`` (``thr`` is ``[B, 1]`` or ``[1, 1]``), in place."""
    bound = thr.detach().to(torch.float32).expand(z.shape[0], 1).reshape(-1).contiguous().numpy()
    _mask_below(z.detach().numpy(), bound)


def mask_above(z: torch.Tensor, score: torch.Tensor, bound: torch.Tensor, active: torch.Tensor) -> None:
    """``z[b, i] = -inf`` where not ``score[b, i] <= bound[b]``, on rows with ``active[b]``, in place."""
    batch = z.shape[0]
    limit = bound.detach().to(torch.float32).expand(batch, 1).reshape(-1).contiguous().numpy()
    rows = active.detach().expand(batch, 1).reshape(-1).contiguous().numpy()
    _mask_above(z.detach().numpy(), score.detach().numpy(), limit, rows)


def mask_packed(z: torch.Tensor, packed: torch.Tensor) -> None:
    """``z[b, i] = -inf`` where token ``i`` is not allowed by the packed int32 mask ``[B, ceil(V/32)]``
    (or ``[1, ceil(V/32)]``, shared by every row), in place (``z`` float32 or float64, CPU, contiguous)."""
    words = packed.detach().to(torch.int32).contiguous().numpy()
    _mask_packed(z.detach().numpy(), words)


# ------------------------------------------------------------------------------------ kernels
@numba.njit(cache=True, inline="always")
def _rank(bits: np.int32, flip: np.int64) -> np.int64:
    """An integer in ``[0, 2^32)`` that increases with the float32 value of ``bits`` (``flip = 0``) or
    decreases with it (``flip = 2^32 - 1``); branch-free. ``-0.0`` ranks next to ``+0.0``, which
    changes no answer (the two compare equal)."""
    b = np.int64(bits) & _U32
    return b ^ (((b >> 31) * 0x7FFFFFFF) | _SIGN) ^ flip


@numba.njit(cache=True, inline="always")
def _bits_of_rank(rank: np.int64, flip: np.int64) -> np.int32:
    u = rank ^ flip
    b = (u & 0x7FFFFFFF) if u & _SIGN else (~u & _U32)
    return np.int32(b - (1 << 32) if b >= _SIGN else b)


@numba.njit(cache=True)
def _scan(count: np.ndarray, total: np.ndarray, size: int, above: float, target: float) -> tuple[int, float]:
    """From the highest non-empty bucket down: the first bucket whose cumulative mass reaches
    ``target`` and the mass above it; the lowest non-empty bucket when none does."""
    last, last_above = -1, above
    for h in range(size - 1, -1, -1):
        if count[h] == 0:
            continue
        if above + total[h] >= target:
            return h, above
        last, last_above = h, above
        above += total[h]
    return last, last_above


@numba.njit(cache=True)
def _crossing_row(bits: np.ndarray, mass: np.ndarray, target: float, flip: np.int64, count: np.ndarray,
                  total: np.ndarray, buf_rank: np.ndarray, buf_mass: np.ndarray) -> np.int32:
    n = bits.shape[0]
    count[:] = 0
    total[:] = 0.0
    for i in range(n):
        h = _rank(bits[i], flip) >> 20
        count[h] += 1
        total[h] += mass[i]
    top, above = _scan(count, total, _HIGH, 0.0, target)
    count[:] = 0
    total[:] = 0.0
    m = 0
    for i in range(n):
        r = _rank(bits[i], flip)
        if (r >> 20) == top:
            buf_rank[m] = r
            buf_mass[m] = mass[i]
            m += 1
            h = (r >> 8) & 0xFFF
            count[h] += 1
            total[h] += mass[i]
    mid, above = _scan(count, total, _HIGH, above, target)
    count[:256] = 0
    total[:256] = 0.0
    for j in range(m):
        r = buf_rank[j]
        if ((r >> 8) & 0xFFF) == mid:
            count[r & 0xFF] += 1
            total[r & 0xFF] += buf_mass[j]
    low, above = _scan(count, total, 256, above, target)
    return _bits_of_rank((top << 20) | (mid << 8) | low, flip)


@numba.njit(cache=True)
def _crossing_rows(bits: np.ndarray, mass: np.ndarray, target: np.ndarray, active: np.ndarray,
                   descending: bool, out: np.ndarray) -> None:
    batch, n = bits.shape
    count = np.empty(_HIGH, dtype=np.int64)
    total = np.empty(_HIGH, dtype=np.float64)
    buf_rank = np.empty(n, dtype=np.int64)
    buf_mass = np.empty(n, dtype=np.float64)
    flip = np.int64(0) if descending else np.int64(_U32)
    for b in range(batch):
        if active[b]:
            out[b] = _crossing_row(bits[b], mass[b], target[b], flip, count, total, buf_rank, buf_mass)


@numba.njit(cache=True)
def _mask_below(z: np.ndarray, thr: np.ndarray) -> None:
    batch, n = z.shape
    for b in range(batch):
        t = thr[b]
        row = z[b]
        for i in range(n):  # an unconditional select-and-store: vectorises, no mispredicted branch
            v = row[i]
            row[i] = -np.inf if v < t else v


@numba.njit(cache=True)
def _mask_above(z: np.ndarray, score: np.ndarray, bound: np.ndarray, active: np.ndarray) -> None:
    batch, n = z.shape
    for b in range(batch):
        if not active[b]:
            continue
        t = bound[b]
        row, key = z[b], score[b]
        for i in range(n):
            v = row[i]
            row[i] = v if key[i] <= t else -np.inf


@numba.njit(cache=True)
def _mask_packed(z: np.ndarray, words: np.ndarray) -> None:
    batch, n = z.shape
    shared = words.shape[0] == 1
    for b in range(batch):
        row, bits = z[b], words[0 if shared else b]
        for w in range((n + 31) >> 5):
            word = bits[w]
            if word == -1:  # all 32 tokens allowed
                continue
            start = w << 5
            stop = min(start + 32, n)
            for i in range(start, stop):
                v = row[i]
                row[i] = v if (word >> (i - start)) & 1 else -np.inf
