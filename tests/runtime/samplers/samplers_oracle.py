"""Float64 reference implementations of the sampler contracts (docs/samplers.md, samplers_spec.md),
written from the definitions, one row at a time, with plain numpy and loops: the oracles of the
sampler tests. Not used by the library.

Each ``oracle_<name>(z, stage, strict)`` maps a float64 logit row (``-inf`` = excluded) to the
processed row. With ``strict=True`` an oracle raises :class:`NearBoundary` when the instance lies
within ``TOL`` of one of its decision thresholds, where float32 rounding in the implementation
could legitimately flip the kept set; random tests draw another instance then.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

TOL = 1e-5
NEG = -np.inf


class NearBoundary(Exception):
    """The instance is too close to a threshold for an exact float32-vs-float64 comparison."""


def softmax(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    top = np.max(z)
    e = np.exp(z - top)
    return e / e.sum()


def entropy_nats(p: np.ndarray) -> float:
    return float(-sum(x * math.log(x) for x in p if x > 0))


def keep(z: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return np.where(mask, z, NEG)


def near(a: float, b: float, scale: float = 1.0) -> bool:
    """``a`` within ``TOL * scale`` of ``b`` but not equal (equal values compare exactly in float32 too:
    a threshold that *is* a logit, such as ``max z - 0 * sigma``)."""
    return 0 < abs(a - b) < TOL * max(scale, 1e-300)


def kth_largest(z: np.ndarray, k: int) -> float:
    return float(np.sort(z)[::-1][min(k, len(z)) - 1])


def with_min_keep(z: np.ndarray, mask: np.ndarray, min_keep: int) -> np.ndarray:
    return keep(z, mask | (z >= kth_largest(z, min_keep)))


# --------------------------------------------------------------------------------------- stages
def oracle_temperature(z, s, strict):
    if s.t == 0:
        return oracle_greedy(z, s, strict)
    return z / s.t


def oracle_greedy(z, s, strict):
    best = 0
    for i in range(len(z)):  # strict > keeps the first maximum
        if z[i] > z[best]:
            best = i
    return keep(z, np.arange(len(z)) == best)


def oracle_logit_bias(z, s, strict):
    out = z.copy()
    for token, bias in s.bias:
        out[token] += bias
    return out


def oracle_top_k(z, s, strict):
    if s.k == 0:
        return z
    k = max(s.k, s.min_keep)
    return keep(z, z >= kth_largest(z, k)) if k < len(z) else z


def oracle_top_p(z, s, strict):
    if s.p >= 1:
        return z
    p = softmax(z)
    order = sorted(range(len(z)), key=lambda i: -p[i])
    total, m = 0.0, None
    for j, i in enumerate(order, start=1):
        before = total
        total += p[i]
        if total >= s.p:
            if strict and (near(total, s.p) or near(before, s.p)):
                raise NearBoundary("top_p")
            m = j
            break
    m = len(order) if m is None else m
    m = max(m, s.min_keep)
    cut = p[order[min(m, len(order)) - 1]]
    return keep(z, p >= cut)


def oracle_min_p(z, s, strict):
    p = softmax(z)
    bound = s.p * p.max()
    if strict and any(near(x, bound, bound) for x in p if x > 0):
        raise NearBoundary("min_p")
    return with_min_keep(z, p >= bound, s.min_keep)


def oracle_typical(z, s, strict):
    if s.mass >= 1:
        return z
    p = softmax(z)
    h = entropy_nats(p)
    score = np.array([abs(-math.log(x) - h) if x > 0 else np.inf for x in p])
    order = sorted(range(len(z)), key=lambda i: score[i])
    total, last = 0.0, len(order) - 1
    for j, i in enumerate(order):
        before = total
        total += p[i]
        if total >= s.mass:
            if strict and (near(total, s.mass) or near(before, s.mass)):
                raise NearBoundary("typical mass")
            last = j
            break
    last = max(last, s.min_keep - 1)
    bound = score[order[last]]
    if strict and any(0 < abs(x - bound) < TOL * max(1.0, bound) for x in score):
        raise NearBoundary("typical score gap")
    return keep(z, score <= bound)


def oracle_epsilon(z, s, strict):
    p = softmax(z)
    if strict and any(near(x, s.epsilon, s.epsilon) for x in p):
        raise NearBoundary("epsilon")
    return with_min_keep(z, p >= s.epsilon, s.min_keep)


def oracle_eta(z, s, strict):
    p = softmax(z)
    bound = min(s.epsilon, math.sqrt(s.epsilon) * math.exp(-entropy_nats(p)))
    if strict and any(near(x, bound, bound) for x in p):
        raise NearBoundary("eta")
    return with_min_keep(z, p >= bound, s.min_keep)


def oracle_top_h(z, s, strict):
    """The official loop: add tokens by decreasing probability while the entropy (bits) of the
    renormalised prefix stays within tau / sigma + log2 sigma, tau = alpha * A * (H(top/A) - log2 A)."""
    if s.variant == "hf":
        return _top_h_hf(z, s, strict)
    p = softmax(z)
    top = np.sort(p)[::-1][: min(s.top_n, len(p))]
    mass = top.sum()
    tau = s.alpha * mass * (_entropy_bits(top / mass) - math.log2(mass))
    kept = 1
    for j in range(2, len(top) + 1):
        sigma = top[:j].sum()
        bound = tau / sigma + math.log2(sigma)
        value = _entropy_bits(top[:j] / sigma)
        if strict and near(value, bound, abs(bound) + 1):
            raise NearBoundary("top_h")
        if value > bound:
            break
        kept = j
    return keep(z, p >= top[kept - 1])


def _entropy_bits(q: np.ndarray) -> float:
    return float(-sum(x * math.log2(x) for x in q if x > 0))


def _top_h_hf(z, s, strict):
    n = min(s.top_n, len(z))
    top = np.sort(z)[::-1][:n]
    q = softmax(top)
    terms = np.array([-x * math.log(x) if x > 0 else 0.0 for x in q])
    tau = s.alpha * terms.sum()
    cum = np.cumsum(terms)
    if strict and any(near(c, tau, tau + 1) for c in cum):
        raise NearBoundary("top_h hf")
    kept = max(1, int((cum <= tau).sum()))
    return keep(z, z >= top[kept - 1])


def oracle_top_n_sigma(z, s, strict):
    finite = z[np.isfinite(z)]
    bound = finite.max() - s.n * finite.std()
    if strict and any(near(x, bound, abs(bound) + 1) for x in finite):
        raise NearBoundary("top_n_sigma")
    return keep(z, z >= bound)


def oracle_mirostat(z, s, strict, mu):
    p = softmax(z)
    bound = min(2.0 ** -mu, p.max())
    if strict and any(near(x, bound, bound) for x in p if x != p.max()):
        raise NearBoundary("mirostat")
    return keep(z, p >= bound)


def oracle_xtc_removed(z, s, strict):
    """The branch where the top choices are excluded (the coin came up)."""
    p = softmax(z)
    if strict and any(near(x, s.threshold) for x in p):
        raise NearBoundary("xtc")
    top = p >= s.threshold
    if top.sum() < 2 or s.threshold > 0.5:
        return z
    least = p[top].min()
    removed = top & (p > least)
    if np.isfinite(z).sum() - removed.sum() < s.min_keep:
        return z
    return keep(z, ~removed)


ORACLES = {name.removeprefix("oracle_"): fn for name, fn in globals().items() if name.startswith("oracle_")}


def oracle_chain(z, stages, *, strict: bool = False, mu: float | None = None) -> np.ndarray:
    """The exact target distribution of ``stages`` (stage specs) on one logit row, as float64 probs.
    XTC makes a mixture: each branch runs the rest of the chain."""
    branches = [(1.0, np.asarray(z, dtype=np.float64))]
    for stage in stages:
        if stage.name == "xtc":
            branches = [pair for w, row in branches for pair in
                        ((w * (1 - stage.probability), row),
                         (w * stage.probability, oracle_xtc_removed(row, stage, strict)))]
        elif stage.name == "mirostat":
            branches = [(w, oracle_mirostat(row, stage, strict, mu)) for w, row in branches]
        else:
            branches = [(w, ORACLES[stage.name](row, stage, strict)) for w, row in branches]
    return sum(w * softmax(row) for w, row in branches if w > 0)


# -------------------------------------------------------------------------------------- statistics
def g_test_counts(counts: np.ndarray, probs: np.ndarray, min_expected: float = 5.0) -> float:
    """p-value of a G-test of ``counts`` against ``probs`` (bins with expected count < 5 merged);
    0 when any count falls outside the support."""
    counts = np.asarray(counts, dtype=np.float64)
    probs = np.asarray(probs, dtype=np.float64)
    if (counts[probs <= 0] > 0).any():
        return 0.0
    n = counts.sum()
    expected = n * probs / probs.sum()
    big = expected >= min_expected
    obs = list(counts[big])
    exp = list(expected[big])
    small = (~big) & (probs > 0)
    if small.any():
        obs.append(counts[small].sum())
        exp.append(expected[small].sum())
    obs, exp = np.array(obs), np.array(exp)
    if len(obs) < 2:
        return 1.0
    nz = obs > 0
    g = 2.0 * float(np.sum(obs[nz] * np.log(obs[nz] / exp[nz])))
    return float(stats.chi2.sf(g, len(obs) - 1))


# -------------------------------------------------------------------------------------- rows
def random_row(rng: np.random.Generator, vocab: int, sigma: float, n_masked: int = 0) -> np.ndarray:
    """Float32-representable logits ``N(0, sigma^2)`` with ``n_masked`` entries at ``-inf``."""
    z = rng.normal(0.0, sigma, vocab).astype(np.float32).astype(np.float64)
    if n_masked:
        z[rng.choice(vocab, n_masked, replace=False)] = NEG
    return z


def adversarial_rows(vocab: int = 50) -> dict[str, np.ndarray]:
    """Deterministic hard rows: exact ties, -inf entries, one dominant token, uniform."""
    rng = np.random.default_rng(7)
    ties = np.zeros(vocab)
    ties[:3] = 3.0
    ties[3:6] = 1.0
    ties[6:] = rng.normal(-2, 1, vocab - 6).astype(np.float32)
    with_inf = rng.normal(0, 2, vocab).astype(np.float32).astype(np.float64)
    with_inf[::3] = NEG
    dominant = rng.normal(0, 1, vocab).astype(np.float32).astype(np.float64)
    dominant[17] = 20.0
    pairs = np.repeat(rng.normal(0, 2, vocab // 2).astype(np.float32), 2).astype(np.float64)[:vocab]
    return {"ties": ties, "inf": with_inf, "dominant": dominant, "uniform": np.zeros(vocab),
            "pairs": pairs[rng.permutation(vocab)]}
