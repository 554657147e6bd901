"""Exact support and probability checks of every stateless sampler against the float64 oracles:
adversarial rows, random rows away from thresholds, permutation invariance, batch independence,
and the corner cases the spec names."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
import torch
from samplers_cases import ALL, IDS, V
from samplers_oracle import NearBoundary, adversarial_rows, oracle_chain, random_row

from genweave.runtime.samplers import (
    compile_batch,
    epsilon,
    greedy,
    min_p,
    temperature,
    top_h,
    top_k,
    top_p,
    typical,
)


def implementation(chain, rows: np.ndarray) -> np.ndarray:
    """The chain's target probabilities in float64 (exp of its float32 log-probs, so that kept
    tokens never underflow to 0)."""
    compiled = compile_batch([chain], rows.shape[1])
    return compiled.logprobs(torch.tensor(rows, dtype=torch.float32)).double().exp().numpy()


def random_instances(stage, n: int, seed: int) -> np.ndarray:
    """``n`` random rows (sigma 0.5, 2, 5; some with -inf entries) away from the stage's thresholds."""
    rng = np.random.default_rng(seed)
    rows = []
    while len(rows) < n:
        z = random_row(rng, V, sigma=[0.5, 2.0, 5.0][len(rows) % 3], n_masked=[0, 0, 10][len(rows) % 3])
        try:
            oracle_chain(z, [stage], strict=True)
        except NearBoundary:
            continue
        rows.append(z)
    return np.stack(rows)


@pytest.mark.parametrize("stage", [s for _, s in ALL], ids=IDS)
def test_support_and_probabilities_on_adversarial_rows(stage):
    rows = adversarial_rows(V)
    got = implementation(stage, np.stack(list(rows.values())))
    for (name, z), probs in zip(rows.items(), got):
        want = oracle_chain(z, [stage])
        assert np.array_equal(probs > 0, want > 0), f"{stage} on the {name} row: kept sets differ"
        np.testing.assert_allclose(probs, want, atol=2e-6, err_msg=f"{stage} on the {name} row")


@pytest.mark.parametrize("stage", [s for _, s in ALL], ids=IDS)
def test_support_and_probabilities_on_random_rows(stage):
    rows = random_instances(stage, 60, seed=zlib.crc32(str(stage).encode()))
    got = implementation(stage, rows)
    for z, probs in zip(rows, got):
        want = oracle_chain(z, [stage])
        assert np.array_equal(probs > 0, want > 0), f"{stage}: kept sets differ on {z.tolist()}"
        np.testing.assert_allclose(probs, want, atol=2e-6)


@pytest.mark.parametrize("stage", [s for _, s in ALL], ids=IDS)
def test_permutation_invariance(stage):
    rows = np.stack(list(adversarial_rows(V).values()) + list(random_instances(stage, 4, seed=3)))
    rng = np.random.default_rng(11)
    perms = np.stack([rng.permutation(V) for _ in rows])
    shuffled = np.take_along_axis(rows, perms, axis=1)
    base, moved = implementation(stage, rows), implementation(stage, shuffled)
    if stage.name in ("greedy", "logit_bias") or (stage.name == "temperature" and stage.t == 0):
        return  # these name token ids: lowest-id tie break and per-id bias are not permutation invariant
    expected = np.take_along_axis(base, perms, axis=1)
    assert np.array_equal(moved > 0, expected > 0)
    np.testing.assert_allclose(moved, expected, atol=2e-6)


def _variant(stage, seed: int):
    """A stage of the same shape with other numeric parameters."""
    rng = np.random.default_rng(seed)
    values = stage.values()
    first = stage.params[0] if stage.params else None
    if first is not None and first.kind == "float":
        low = 0.0 if first.low is None else first.low
        high = 1.0 if first.high is None or first.high > 5 else first.high
        values[first.name] = float(rng.uniform(low + 1e-3, high)) if not first.low_open else float(
            rng.uniform(low + 0.05, high))
    elif first is not None and first.kind == "int":
        values[first.name] = int(rng.integers(0, 30))
    return type(stage)(**values)


@pytest.mark.parametrize("stage", [s for _, s in ALL], ids=IDS)
def test_row_embedded_among_other_parameters_gives_the_same_distribution(stage):
    """Batch independence: row 3 of a heterogeneous batch equals the same row compiled alone."""
    rows = np.stack(list(adversarial_rows(V).values()) + list(random_instances(stage, 3, seed=5)))
    chains = [stage if i == 3 else _variant(stage, i) for i in range(8)]
    together = compile_batch(chains, V).target_probs(torch.tensor(rows, dtype=torch.float32))
    for row in range(8):
        alone = compile_batch([chains[row]], V).target_probs(torch.tensor(rows[row: row + 1], dtype=torch.float32))
        assert torch.equal(together[row], alone[0]), f"row {row} ({chains[row]}) changed inside the batch"


# ------------------------------------------------------------------------------ spec corner cases
def _kept(stage, z) -> list[int]:
    probs = implementation(stage, np.asarray([z], dtype=np.float64))[0]
    return np.flatnonzero(probs > 0).tolist()


def test_top_k_keeps_every_tie_of_the_kth_value():
    assert _kept(top_k(2), [3, 3, 3, 1, 0, 0]) == [0, 1, 2]


def test_top_p_boundary_mass_reached_exactly_in_binary():
    z = np.log([0.5, 0.25, 0.125, 0.0625, 0.0625])
    assert _kept(top_p(0.75), z) == [0, 1]
    assert _kept(top_p(0.7500001), z) == [0, 1, 2]


def test_top_p_keeps_ties_of_the_boundary_probability():
    assert _kept(top_p(0.5), [2.0, 1.0, 1.0, 1.0, 0.0]) == [0, 1, 2, 3]


def test_top_p_zero_keeps_the_top_token_and_its_ties():
    assert _kept(top_p(0.0), [1.0, 2.0, 2.0, 0.0]) == [1, 2]


def test_min_p_one_keeps_the_tied_maxima():
    assert _kept(min_p(1.0), [0.0, 4.0, 1.0, 4.0]) == [1, 3]


def test_typical_excludes_the_mode_when_it_is_not_typical():
    # one token with probability 0.5, the rest flat: the mode's surprise is far below the entropy
    z = np.log(np.array([0.5] + [0.5 / 99] * 99))
    kept = _kept(typical(0.2), z)
    assert 0 not in kept and kept


def test_epsilon_on_a_flat_distribution_keeps_all_tied_tokens():
    assert len(_kept(epsilon(2e-3), np.zeros(1000))) == 1000  # tie-inclusive min_keep (documented)


def test_top_h_grows_with_alpha_and_tends_to_greedy():
    rng = np.random.default_rng(0)
    rows = np.stack([random_row(rng, 200, 2.0) for _ in range(200)])
    sizes = [(implementation(top_h(a, top_n=100), rows) > 0).sum(1) for a in (0.05, 0.2, 0.4, 0.8, 1.0)]
    for small, large in zip(sizes, sizes[1:]):
        assert (small <= large).all()
    tiny = implementation(top_h(1e-9), rows)
    assert ((tiny > 0).sum(1) == 1).all() and (tiny.argmax(1) == rows.argmax(1)).all()


def test_official_and_hf_top_h_differ_on_some_rows():
    rng = np.random.default_rng(1)
    rows = np.stack([random_row(rng, 200, s) for s in np.linspace(0.5, 4, 300)])
    official = implementation(top_h(0.4), rows) > 0
    hf = implementation(top_h(0.4, variant="hf"), rows) > 0
    assert (official != hf).any(axis=1).sum() > 0


def test_temperature_zero_is_greedy_with_lowest_id_on_ties():
    assert _kept(temperature(0.0), [1.0, 5.0, 5.0, 2.0]) == [1]
    assert _kept(greedy(), [1.0, 5.0, 5.0, 2.0]) == [1]


def test_tiny_temperature_matches_greedy_when_the_top_is_clear():
    rng = np.random.default_rng(2)
    rows = np.stack([random_row(rng, V, 3.0) for _ in range(200)])
    top2 = np.sort(rows, axis=1)[:, -2:]
    rows = rows[top2[:, 1] - top2[:, 0] >= 1e-2]
    compiled = temperature(1e-4).compile(V)
    g = torch.Generator().manual_seed(0)
    drawn = compiled.sample(torch.tensor(rows, dtype=torch.float32), g)
    assert drawn.tolist() == rows.argmax(1).tolist()


def test_greedy_equals_numpy_argmax_on_many_rows_with_ties():
    rng = np.random.default_rng(3)
    rows = rng.integers(0, 6, size=(10_000, 20)).astype(np.float32)
    drawn = greedy().compile(20).sample(torch.tensor(rows))
    assert drawn.tolist() == rows.argmax(1).tolist()


def test_top_k_alone_uses_topk_not_a_full_sort(monkeypatch):
    calls = []
    real_sort = torch.sort
    monkeypatch.setattr(torch, "sort", lambda *a, **k: calls.append(1) or real_sort(*a, **k))
    (temperature(0.7) | top_k(50)).compile(32_000).sample(torch.randn(2, 32_000))
    assert calls == []


def test_top_p_after_top_k_reuses_the_ranking(monkeypatch):
    calls = []
    real_sort, real_topk = torch.sort, torch.topk
    monkeypatch.setattr(torch, "sort", lambda *a, **k: calls.append("sort") or real_sort(*a, **k))
    monkeypatch.setattr(torch, "topk", lambda *a, **k: calls.append("topk") or real_topk(*a, **k))
    (temperature(0.7) | top_k(40) | top_p(0.9) | min_p(0.05)).compile(32_000).sample(torch.randn(3, 32_000))
    assert calls == ["topk"]


def test_top_p_prefix_falls_back_to_a_full_sort_when_the_mass_lies_beyond():
    z = torch.zeros(2, 8192)
    z[0, :5] = 15.0  # concentrated: the top-256 prefix holds the mass
    compiled = top_p(0.95).compile(8192)
    kept = torch.isfinite(compiled.logprobs(z)).sum(1).tolist()
    assert kept == [5, 8192]  # row 1 is flat: every token is a tie of the boundary


@pytest.mark.parametrize("alpha", [0.2, 0.4, 0.8])
def test_top_h_equals_the_official_loop_on_many_rows(alpha):
    """V = 200, top_n = 100 (the paper's setting), rows of several scales in one batched call."""
    stage = top_h(alpha, top_n=100)
    rng = np.random.default_rng(int(alpha * 10))
    rows = []
    while len(rows) < 300:
        z = random_row(rng, 200, sigma=float(rng.choice([0.5, 1.0, 2.0, 4.0])))
        try:
            oracle_chain(z, [stage], strict=True)
        except NearBoundary:
            continue
        rows.append(z)
    rows = np.stack(rows)
    got = implementation(stage, rows) > 0
    want = np.stack([oracle_chain(z, [stage]) > 0 for z in rows])
    assert (got != want).any(axis=1).sum() == 0
