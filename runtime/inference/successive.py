"""Successive sampling: the first ``k`` tokens of a without-replacement order by inverse CDF.

Drawing ``x_1 ~ p``, then ``x_2 ~ p(. | not x_1)``, ... is the same law as ordering the tokens by
Gumbel keys ``log p(x) + G_x`` (sampling without replacement), but it costs one cumulative sum per
row and ``O(k log V + k^2)`` scalar work per row instead of ``V`` uniforms, two logarithms and a
top-k over the whole vocabulary: on the CPU that is most of an AWRS step.

The cumulative sums and the mass left over are computed in the same compiled pass (float64).

Draw ``i`` takes ``v = u_i * (T - Q)``, the uniform scaled to the mass left once the tokens already
drawn (mass ``Q``) are removed, and maps it to a token by walking the removed tokens in vocabulary
order: each removed token that starts at or below ``v`` in the cumulative sum shifts ``v`` up by its
mass. The scan stops early (fewer than ``k`` tokens) once the mass left falls below
``_RELATIVE_FLOOR * T``, where ``T - Q`` would lose the digits that matter; the caller continues
the order over the tokens not drawn yet by exact float64 Gumbel keys (the continuation of a
without-replacement order given its first tokens is a without-replacement order of the rest).
"""

from __future__ import annotations

import numba
import numpy as np

_RELATIVE_FLOOR = 1e-6


@numba.njit(cache=True, nogil=True)
def _search(cum: np.ndarray, v: float) -> int:
    """The first index ``i`` with ``cum[i] > v`` (``len(cum) - 1`` if none: rounding at the top)."""
    lo, hi = 0, cum.shape[0] - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if cum[mid] > v:
            hi = mid
        else:
            lo = mid + 1
    return lo


@numba.njit(cache=True, nogil=True)
def _row(cum: np.ndarray, probs: np.ndarray, u: np.ndarray, out: np.ndarray) -> int:
    """Fill ``out`` with successive draws for one row; the number drawn."""
    total = cum[cum.shape[0] - 1]
    removed = np.empty(out.shape[0], dtype=np.int64)  # drawn tokens, in vocabulary order
    taken = 0.0
    n = 0
    for i in range(out.shape[0]):
        left = total - taken
        if not left > _RELATIVE_FLOOR * total:
            break
        v = u[i] * left
        for j in range(n):  # shift past the removed tokens that start at or below v
            s = removed[j]
            start = cum[s - 1] if s > 0 else 0.0
            if start <= v:
                v += probs[s]
            else:
                break
        x = _search(cum, v)
        while x > 0 and probs[x] == 0.0:  # rounding at the top edge: the last token with mass
            x -= 1
        if probs[x] == 0.0 or _contains(removed, n, x):
            break  # rounding landed on a drawn token: let the exact continuation take over
        out[n] = x
        taken += probs[x]
        k = n
        while k > 0 and removed[k - 1] > x:  # insertion keeps ``removed`` sorted
            removed[k] = removed[k - 1]
            k -= 1
        removed[k] = x
        n += 1
    return n


@numba.njit(cache=True, nogil=True)
def _contains(values: np.ndarray, n: int, x: int) -> bool:
    for j in range(n):
        if values[j] == x:
            return True
    return False


@numba.njit(cache=True, nogil=True)
def _rest(probs: np.ndarray, drawn: np.ndarray, n: int) -> float:
    """The mass of the tokens not among ``drawn[:n]``: a sum over those tokens."""
    marks = np.sort(drawn[:n])
    total, j = 0.0, 0
    for i in range(probs.shape[0]):
        if j < n and marks[j] == i:
            j += 1
        else:
            total += probs[i]
    return total


@numba.njit(cache=True, nogil=True)
def successive_draws(probs: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row of ``probs`` (float64 ``[B, V]``, nonnegative) and uniforms ``u`` (``[B, k]`` in
    ``[0, 1)``): ``(tokens [B, k], counts [B], rest [B])``, the first ``counts[b]`` entries of row
    ``b`` being its successive without-replacement draws and ``rest[b]`` the mass of the tokens not
    drawn (summed over them, so it keeps its precision when it is tiny)."""
    rows, k = u.shape
    tokens = np.full((rows, k), -1, dtype=np.int64)
    counts = np.zeros(rows, dtype=np.int64)
    rest = np.zeros(rows, dtype=np.float64)
    cum = np.empty(probs.shape[1], dtype=np.float64)
    for b in range(rows):
        acc = 0.0
        for i in range(probs.shape[1]):
            acc += probs[b, i]
            cum[i] = acc
        if acc > 0.0:
            counts[b] = _row(cum, probs[b], u[b], tokens[b])
            rest[b] = _rest(probs[b], tokens[b], counts[b])
    return tokens, counts, rest


@numba.njit(cache=True, nogil=True)
def normalize_rows(logw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(log_z [B], probs [B, V])`` of float64 log-weights: ``log_z[b] = log sum_i exp(logw[b, i])``
    and ``probs[b] = exp(logw[b] - log_z[b])``; ``-inf`` entries get probability 0 without an
    ``exp``, a row without a finite entry gets ``log_z = -inf`` and no mass, a NaN entry makes its
    row's ``log_z`` NaN. Two passes over each row."""
    rows, width = logw.shape
    log_z = np.empty(rows, dtype=np.float64)
    probs = np.zeros((rows, width), dtype=np.float64)
    for b in range(rows):
        top = -np.inf
        nan = False
        for i in range(width):
            x = logw[b, i]
            if x > top:
                top = x
            elif x != x:
                nan = True
        if nan:
            log_z[b] = np.nan
            continue
        if top == -np.inf:
            log_z[b] = -np.inf
            continue
        total = 0.0
        for i in range(width):
            x = logw[b, i]
            if x > -np.inf:
                e = np.exp(x - top)
                probs[b, i] = e
                total += e
        log_z[b] = top + np.log(total)
        scale = 1.0 / total
        for i in range(width):
            probs[b, i] *= scale
    return log_z, probs
