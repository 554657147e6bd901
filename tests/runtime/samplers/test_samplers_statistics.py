"""Draws follow the exact target: 100,000 batched draws per sampler (one call, the row replicated)
compared with the float64 oracle by a G-test (fixed seeds, reject at p < 1e-4), plus a support
check with no tolerance."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
import torch
from samplers_cases import CASES, V
from samplers_oracle import NearBoundary, g_test_counts, oracle_chain, random_row

from genweave.runtime.samplers import (
    compile_batch,
    min_p,
    mirostat,
    repetition_penalty,
    temperature,
    top_k,
    top_p,
    typical,
    xtc,
)

N = 100_000
ALPHA = 1e-4


def stable_row(chain_stages, seed: int, sigma: float = 2.0, mu: float | None = None) -> np.ndarray:
    rng = np.random.default_rng(seed)
    while True:
        z = random_row(rng, V, sigma)
        try:
            oracle_chain(z, chain_stages, strict=True, mu=mu)
            return z
        except NearBoundary:
            continue


def draw_counts(compiled, z: np.ndarray, seed: int, state=None) -> np.ndarray:
    logits = torch.tensor(z, dtype=torch.float32).expand(N, -1)
    generator = torch.Generator().manual_seed(seed)
    tokens = compiled.sample(logits, generator, state=state, advance=False)
    return np.bincount(tokens.numpy(), minlength=V)


def assert_law(counts: np.ndarray, target: np.ndarray, label: str) -> None:
    outside = np.flatnonzero((target <= 0) & (counts > 0))
    assert outside.size == 0, f"{label}: drew tokens outside the support: {outside.tolist()}"
    p_value = g_test_counts(counts, target)
    assert p_value >= ALPHA, f"{label}: G-test rejects the target law (p = {p_value:.2e})"


# one setting per sampler (every setting's log-probs equal the oracle exactly in test_samplers_exact;
# the draw is shared), every XTC setting (its draw mixes two branches)
DRAWN = [stages[0] for stages in CASES.values()] + CASES["xtc"][1:]


@pytest.mark.parametrize("stage", DRAWN, ids=[str(s) for s in DRAWN])
def test_draws_follow_the_target_of_each_sampler(stage):
    seed = zlib.crc32(str(stage).encode())
    z = stable_row([stage], seed)
    counts = draw_counts(compile_batch([stage], V), z, seed)
    assert_law(counts, oracle_chain(z, [stage]), str(stage))


CHAINS = [
    temperature(0.7) | top_p(0.9) | min_p(0.05),
    temperature(1.3) | top_k(20) | top_p(0.8),
    typical(0.9) | temperature(0.5),
    temperature(0.8) | xtc(0.5, 0.05) | top_k(10),
]


@pytest.mark.parametrize("chain", CHAINS, ids=[str(c) for c in CHAINS])
def test_draws_follow_the_target_of_chains(chain):
    seed = zlib.crc32(str(chain).encode())
    z = stable_row(chain.stages, seed, sigma=3.0)
    counts = draw_counts(compile_batch([chain], V), z, seed)
    assert_law(counts, oracle_chain(z, chain.stages), str(chain))


def test_mirostat_draws_follow_the_truncation_at_a_fixed_mu():
    chain = temperature(0.9) | mirostat(tau=3.0, eta=0.1)
    compiled = compile_batch([chain], V)
    state = compiled.new_state(N)
    mu = 3.5
    state.mu.fill_(mu)
    z = stable_row(chain.stages, 17, mu=mu)
    counts = draw_counts(compiled, z, 17, state=state)
    assert_law(counts, oracle_chain(z, chain.stages, mu=mu), str(chain))


def test_penalised_draws_follow_the_transformed_logits():
    chain = repetition_penalty(1.8) | temperature(0.8)
    compiled = compile_batch([chain], V)
    history = [3, 3, 9, 12, 40]
    state = compiled.new_state(N, prompts=[history] * N)
    z = stable_row([temperature(0.8)], 23)
    counts = draw_counts(compiled, z, 23, state=state)
    penalised = z.copy()
    for token in set(history):
        penalised[token] = z[token] / 1.8 if z[token] > 0 else z[token] * 1.8
    assert_law(counts, oracle_chain(penalised, [temperature(0.8)]), str(chain))


def test_the_test_rejects_a_wrong_law():
    """Power check: draws from T = 0.7 are rejected as draws from T = 0.8."""
    z = stable_row([temperature(0.7)], 5)
    counts = draw_counts(temperature(0.7).compile(V), z, 5)
    assert g_test_counts(counts, oracle_chain(z, [temperature(0.8)])) < ALPHA
