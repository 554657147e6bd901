"""Successive inverse-CDF draws give the without-replacement (Plackett-Luce) order law."""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch

from genweave.runtime.inference.awrs import walk_orders
from genweave.runtime.inference.successive import normalize_rows, successive_draws
from genweave.testing import assert_matches


def _plackett_luce(p: np.ndarray, length: int) -> dict[tuple[int, ...], float]:
    """Exact law of the first ``length`` tokens of a without-replacement order from ``p``."""
    support = [int(x) for x in np.flatnonzero(p > 0)]
    law = {}
    for prefix in itertools.permutations(support, length):
        prob, left = 1.0, 1.0
        for x in prefix:
            prob *= p[x] / left
            left -= p[x]
        law[prefix] = prob
    return law


def _draws(p: np.ndarray, rows: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    probs = np.tile(p, (rows, 1))
    u = np.random.default_rng(seed).random((rows, k))
    tokens, counts, rest = successive_draws(probs, u)
    for row, n, r in zip(tokens, counts, rest):
        assert abs(r - (1.0 - p[row[:n]].sum())) < 1e-12
    return tokens, counts


def test_prefix_law_is_plackett_luce():
    # zero-mass tokens in the middle and at both ends, uneven masses; false-alarm rate 1e-4
    p = np.array([0.0, 0.35, 0.05, 0.0, 0.25, 0.2, 0.1, 0.05, 0.0])
    tokens, counts = _draws(p, 40_000, 3, seed=7)
    assert (counts == 3).all()
    assert_matches([tuple(row) for row in tokens.tolist()], _plackett_luce(p, 3), alpha=1e-4)


def test_a_dominant_token_still_lists_the_rest_with_the_right_law():
    p = np.array([1 - 3e-4, 1e-4, 2e-4])
    tokens, counts = _draws(p, 20_000, 3, seed=3)
    assert (counts >= 2).all()  # the second token does not need ~10^4 draws
    second = [row[1] for row in tokens.tolist() if row[0] == 0]
    assert_matches(second, {1: 1 / 3, 2: 2 / 3}, alpha=1e-4)  # p(. | not 0)


def test_never_repeats_and_stops_when_the_mass_is_used_up():
    rng = np.random.default_rng(0)
    for _ in range(200):
        p = rng.dirichlet(np.full(12, 0.3)) * (rng.random(12) < 0.7)
        if p.sum() == 0:
            continue
        p /= p.sum()
        tokens, counts = _draws(p, 4, 16, seed=int(rng.integers(1 << 30)))
        for row, n in zip(tokens.tolist(), counts.tolist()):
            drawn = row[:n]
            assert len(set(drawn)) == n and all(p[x] > 0 for x in drawn)
            assert all(x == -1 for x in row[n:])
            assert n <= int((p > 0).sum())


def test_empty_rows_draw_nothing():
    probs = np.zeros((2, 5))
    tokens, counts, rest = successive_draws(probs, np.full((2, 3), 0.5))
    assert counts.tolist() == [0, 0] and (tokens == -1).all() and rest.tolist() == [0.0, 0.0]


def test_walk_past_the_listed_tokens_continues_exactly():
    # topk=1 lists one token; the rest of the order comes from the exact continuation
    p = torch.tensor([0.4, 0.3, 0.2, 0.1, 0.0], dtype=torch.float64)
    rows = 20_000
    probs = p.repeat(rows, 1)
    orders = walk_orders(probs.log(), probs, torch.Generator().manual_seed(5), topk=1)
    prefixes = [(o.token(0), o.token(1)) for o in orders[:4000]]
    assert all(o.token(4) is None for o in orders[:50])  # zero-mass tokens never come
    assert_matches(prefixes, _plackett_luce(p.numpy(), 2), alpha=1e-4)
    order = orders[0]
    assert abs(order.remaining(0) - 1.0) < 1e-12
    assert abs(order.remaining(1) - (1.0 - order.prob(0))) < 1e-12


def test_normalize_rows_equals_torch_and_handles_dead_and_nan_rows():
    generator = torch.Generator().manual_seed(5)
    logw = torch.randn(6, 300, generator=generator, dtype=torch.float64) * 4
    logw[0, ::3] = -math.inf
    logw[1] = -math.inf  # a dead row
    logw[2, 7] = math.nan
    log_z, probs = normalize_rows(logw.numpy())
    expected = torch.logsumexp(logw, dim=-1)
    for b in (0, 3, 4, 5):
        assert abs(log_z[b] - float(expected[b])) < 1e-12
        torch.testing.assert_close(torch.from_numpy(probs[b]), torch.exp(logw[b] - expected[b]), rtol=1e-12,
                                   atol=1e-15)
    assert log_z[1] == -math.inf and not probs[1].any()
    assert math.isnan(log_z[2])
    assert (probs[0, ::3] == 0).all()
