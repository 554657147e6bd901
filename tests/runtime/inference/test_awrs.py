"""AWRS: the law of the first accepted token, and proper weighting of both weight estimators.

* exact: the recursive estimator's walk enumerated over every visiting order (Plackett-Luce
  probabilities) gives ``E[w 1{X = x}] = Z_pot p(x) c(x)`` to 1e-12;
* statistical (batched draws, fixed seeds): the first accepted token follows ``p(. | A)``
  (G-test, alpha 1e-4) and the geometric estimator's ``w 1{X = x}`` averages to
  ``Z_pot p(x) c(x)`` within 4 standard errors.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from genweave.dsl.errors import NaNLogitsError
from genweave.runtime.inference.awrs import AWRSConfig, ListOrder, awrs, recursive_walk
from genweave.testing import assert_matches


def _cases(count: int, seed: int = 0):
    """Random rows (V <= 6) with zero-probability tokens, empty and full allowed sets."""
    rng = np.random.default_rng(seed)
    for case in range(count):
        size = int(rng.integers(1, 7))
        p = rng.dirichlet(np.full(size, 0.4))
        if case % 4 == 1 and size > 1:
            p[rng.integers(size)] = 0.0
        allowed = rng.random(size) < 0.5
        if case % 7 == 0:
            allowed[:] = case % 14 == 0  # all allowed or none
        yield p / p.sum(), allowed


def _permutation_probability(perm: tuple[int, ...], p: np.ndarray) -> float:
    """Probability that a without-replacement draw from p visits ``perm`` in this order (the
    remaining mass is a sum over the remaining tokens)."""
    prob = 1.0
    for i, t in enumerate(perm):
        prob *= p[t] / sum(p[u] for u in perm[i:])
    return prob


def _exact_weighting(p: np.ndarray, allowed: np.ndarray, listed: int | None = None) -> np.ndarray:
    """``sum over orders of P(order) w(order) 1{x(order) = x}`` for every token x."""
    support = [t for t in range(len(p)) if p[t] > 0]
    out = np.zeros(len(p))
    for perm in itertools.permutations(support):
        tokens, probs = np.array(perm), p[list(perm)]
        if listed is None or listed >= len(perm):
            order = ListOrder(tokens, probs)
        else:  # only the first `listed` materialized: the walk must fall back to the full order
            order = ListOrder(tokens[:listed], probs[:listed], float(probs[listed:].sum()),
                              lambda tokens=tokens, probs=probs: (tokens, probs))
        x, log_ratio = recursive_walk(order, lambda t: bool(allowed[t]))
        if x is not None:
            out[x] += _permutation_probability(perm, p) * math.exp(log_ratio)
    return out


def test_recursive_estimator_is_properly_weighted_exactly():
    worst = 0.0
    for i, (p, allowed) in enumerate(_cases(150)):
        got = _exact_weighting(p, allowed, listed=None if i % 2 else 2)
        worst = max(worst, float(np.abs(got - p * allowed).max()))
    assert worst < 1e-12


def test_remaining_mass_is_a_sum_over_remaining_tokens():
    # 1 - 0.82 - (0.18 - 1e-11) loses 5 digits; the sum over the remaining token does not
    p = torch.tensor([[0.82, 0.18 - 1e-11, 1e-11]], dtype=torch.float64).repeat(64, 1)
    draw = awrs(p.log(), lambda row, token: token == 2, torch.Generator().manual_seed(0))
    assert (draw.tokens == 2).all()
    assert np.abs(np.exp(draw.log_weights) / 1e-11 - 1).max() < 1e-9


def _row(size: int = 8, seed: int = 3) -> tuple[torch.Tensor, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.full(size, 0.7))
    allowed = np.zeros(size, dtype=bool)
    allowed[[1, 4, 6]] = True
    return torch.tensor(p, dtype=torch.float64), allowed


CONFIGS = [AWRSConfig("recursive", topk=2), AWRSConfig("geometric", topk=3),
           AWRSConfig("geometric", max_accepts=3, max_rejects=2, topk=2)]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"{c.estimator}-{c.max_accepts}-{c.max_rejects}")
def test_first_accepted_token_law_and_weights(config):
    p, allowed = _row()
    rows = 10_000
    z_pot = 2.5  # unnormalized rows: the weight carries the row's mass
    logw = (p * z_pot).log().expand(rows, -1)
    draw = awrs(logw, lambda row, token: bool(allowed[token]), torch.Generator().manual_seed(11), config)
    accepted = draw.tokens[draw.tokens >= 0]
    expected = {t: float(p[t]) for t in np.flatnonzero(allowed)}
    if config.max_rejects is None:
        assert len(accepted) == rows
    assert_matches(accepted.tolist(), expected, alpha=1e-4)
    # proper weighting: mean of w 1{X = x} is Z_pot p(x) c(x), within 4 standard errors
    weights = np.exp(draw.log_weights)
    for token in range(len(p)):
        values = np.where(draw.tokens == token, weights, 0.0)
        target = z_pot * float(p[token]) * allowed[token]
        se = values.std(ddof=1) / math.sqrt(rows)
        assert abs(values.mean() - target) <= 4 * se + 1e-12, (token, values.mean(), target, se)


def test_call_counts_and_caps():
    p, allowed = _row()
    logw = p.log().expand(5000, -1)
    condition = lambda row, token: bool(allowed[token])  # noqa: E731
    recursive = awrs(logw, condition, torch.Generator().manual_seed(1), AWRSConfig("recursive"))
    # at most |R| + 2 calls: every rejected token is called once, plus the accept and the peek
    assert recursive.calls.max() <= int((~allowed).sum()) + 2
    assert recursive.calls.min() >= 1
    capped = awrs(logw, condition, torch.Generator().manual_seed(1),
                  AWRSConfig("geometric", max_accepts=4, max_rejects=2))
    # at most 2 real rejections, and one call per distinct accepted token (repeats are memoized)
    assert capped.calls.max() <= 2 + 4
    assert capped.calls.max() < recursive.calls.max() + 4
    assert np.isneginf(capped.log_weights[capped.tokens < 0]).all()


def test_every_token_rejected_gives_weight_zero():
    p, _ = _row()
    p[2] = 0.0
    logw = p.log().expand(8, -1)
    for config in (AWRSConfig("recursive", topk=2), AWRSConfig("geometric", topk=2)):
        draw = awrs(logw, lambda row, token: False, torch.Generator().manual_seed(0), config)
        assert (draw.tokens == -1).all() and np.isneginf(draw.log_weights).all()
        # tokens of zero mass are never checked
        assert (draw.calls == 7).all()


def test_same_seed_same_draws():
    p, allowed = _row()
    logw = p.log().expand(50, -1)
    for config in CONFIGS:
        a = awrs(logw, lambda r, t: bool(allowed[t]), torch.Generator().manual_seed(5), config)
        b = awrs(logw, lambda r, t: bool(allowed[t]), torch.Generator().manual_seed(5), config)
        assert np.array_equal(a.tokens, b.tokens) and np.array_equal(a.log_weights, b.log_weights)


def test_rows_are_walked_with_their_own_condition():
    # row r allows only token r: each row must return exactly its token
    logw = torch.full((6, 6), -math.log(6), dtype=torch.float64)
    draw = awrs(logw, lambda row, token: token == row, torch.Generator().manual_seed(2))
    assert draw.tokens.tolist() == list(range(6))
    # the recursive weight is p(x) or p(V minus R) >= p(x): never below p(x) = 1/6
    assert (np.exp(draw.log_weights) >= 1 / 6 - 1e-15).all()


def test_nan_rows_are_reported():
    logw = torch.tensor([[0.0, float("nan")]], dtype=torch.float64)
    with pytest.raises(NaNLogitsError, match="row 0"):
        awrs(logw, lambda row, token: True)
