"""Stateful samplers: penalties against a naive recomputation from the history, advance / rollback /
select laws, and mirostat's state trace and controller behaviour."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from samplers_oracle import softmax

from genweave.dsl.errors import GenRuntimeError
from genweave.runtime.samplers import (
    compile_batch,
    dry,
    frequency_penalty,
    mirostat,
    presence_penalty,
    repetition_penalty,
    temperature,
    top_k,
)

V = 40


def naive_penalties(z: np.ndarray, prompt: list[int], generated: list[int], stages) -> np.ndarray:
    """The penalties applied one stage at a time from the token lists (float64)."""
    out = z.astype(np.float64).copy()
    for stage in stages:
        tokens = prompt + generated if stage.scope == "all" else list(generated)
        if stage.window > 0:
            tokens = tokens[-stage.window:]
        counts = np.bincount(np.array(tokens, dtype=int), minlength=V) if tokens else np.zeros(V, int)
        for i in range(V):
            if stage.name == "repetition_penalty" and counts[i] > 0:
                out[i] = out[i] / stage.penalty if out[i] > 0 else out[i] * stage.penalty
            elif stage.name == "frequency_penalty":
                out[i] -= stage.penalty * counts[i]
            elif stage.name == "presence_penalty" and counts[i] > 0:
                out[i] -= stage.penalty
    return out


PENALTY_CHAINS = [
    repetition_penalty(1.3) | frequency_penalty(0.4) | presence_penalty(0.7),
    repetition_penalty(0.8, scope="generated") | frequency_penalty(-0.3, scope="all"),
    repetition_penalty(1.5, window=8) | presence_penalty(1.0, scope="all", window=64),
    frequency_penalty(0.25, window=5) | repetition_penalty(1.1),
]


@pytest.mark.parametrize("chain", PENALTY_CHAINS, ids=[str(c) for c in PENALTY_CHAINS])
def test_penalties_match_a_naive_recomputation_from_the_history(chain):
    rng = np.random.default_rng(0)
    batch, steps = 6, 90  # > 64 generated tokens: windows evict
    prompts = [rng.integers(0, V, size=rng.integers(0, 20)).tolist() for _ in range(batch)]
    compiled = compile_batch([chain], V)
    state = compiled.new_state(batch, prompts=prompts)
    generated = [[] for _ in range(batch)]
    for step in range(steps):
        z = rng.normal(0, 2, (batch, V)).astype(np.float32)
        z[:, 3] = 0.0  # z = 0 is left unchanged by the repetition penalty
        z[:, 5] = -np.inf
        got = compiled.logprobs(torch.tensor(z), state).double().numpy()
        for b in range(batch):
            want = naive_penalties(z[b], prompts[b], generated[b], chain.stages)
            np.testing.assert_allclose(np.exp(got[b]), softmax(want), atol=1e-6)
            assert got[b][5] == -np.inf
        tokens = rng.integers(0, V, size=batch)
        tokens[step % batch] = -1  # this row takes no token this step
        state.advance(torch.tensor(tokens))
        for b in range(batch):
            if tokens[b] >= 0:
                generated[b].append(int(tokens[b]))
    assert [state.tokens(b) for b in range(batch)] == [p + g for p, g in zip(prompts, generated)]


def _snapshot(state) -> dict:
    n = state.max_length
    return {"length": state.length.clone(), "history": [state.tokens(b) for b in range(state.batch)],
            "counts": {k: v.clone() for k, v in state.counts.items()}, "n_steps": state.n_steps,
            "mu": None if state.mu is None else state.mu.clone(), "n": n}


def _assert_same(a: dict, b: dict) -> None:
    assert torch.equal(a["length"], b["length"]) and a["history"] == b["history"]
    assert a["n_steps"] == b["n_steps"] and a["counts"].keys() == b["counts"].keys()
    for key in a["counts"]:
        assert torch.equal(a["counts"][key], b["counts"][key])
    if a["mu"] is not None:
        assert torch.equal(a["mu"], b["mu"])


STATEFUL = [
    repetition_penalty(1.2) | frequency_penalty(0.5) | presence_penalty(0.3, window=4) | temperature(0.9),
    dry(0.8, breakers=()) | temperature(0.9) | mirostat(tau=3.0),
]


@pytest.mark.parametrize("chain", STATEFUL, ids=[str(c) for c in STATEFUL])
def test_advance_then_rollback_restores_the_state_exactly(chain):
    compiled = compile_batch([chain], V)
    state = compiled.new_state(4, prompts=[[1, 2], [], [3, 3, 3], [7]])
    generator = torch.Generator().manual_seed(1)
    logits = torch.randn(4, V, generator=generator)
    for _ in range(5):
        compiled.sample(logits, generator, state=state)
    before = _snapshot(state)
    reference = compiled.logprobs(logits, state)
    for _ in range(7):
        compiled.sample(torch.randn(4, V, generator=generator), generator, state=state)
    state.advance(torch.tensor([-1, 2, -1, 0]))
    state.rollback(8)
    _assert_same(before, _snapshot(state))
    torch.testing.assert_close(compiled.logprobs(logits, state), reference, rtol=0, atol=0)
    with pytest.raises(GenRuntimeError, match="rollback"):
        state.rollback(6)


def test_select_reorders_and_duplicates_rows():
    chain = STATEFUL[0]
    compiled = compile_batch([chain], V)
    prompts = [[1, 2], [4], [3, 3, 3]]
    state = compiled.new_state(3, prompts=prompts)
    steps = torch.tensor([[5, 6, 7], [8, -1, 9]])
    for tokens in steps:
        state.advance(tokens)
    picked = state.select([2, 0, 0, 1])
    rebuilt = compiled.new_state(4, prompts=[prompts[2], prompts[0], prompts[0], prompts[1]])
    for tokens in steps[:, [2, 0, 0, 1]]:
        rebuilt.advance(tokens)
    logits = torch.randn(4, V)
    torch.testing.assert_close(compiled.logprobs(logits, picked), compiled.logprobs(logits, rebuilt))
    picked.rollback(2)
    assert [picked.tokens(b) for b in range(4)] == [prompts[2], prompts[0], prompts[0], prompts[1]]


def test_per_row_parameters_follow_their_rows_on_select():
    chains = [temperature(0.5) | top_k(3), temperature(2.0) | top_k(10), temperature(1.0) | top_k(0)]
    compiled = compile_batch(chains, V)
    logits = torch.randn(3, V)
    full = compiled.logprobs(logits)
    chosen = compiled.select([2, 2, 0])
    torch.testing.assert_close(chosen.logprobs(logits[[2, 2, 0]]), full[[2, 2, 0]])


def test_stateful_chain_without_a_state_uses_and_advances_its_own():
    compiled = compile_batch([presence_penalty(100.0) | temperature(1.0)], V, batch=2)
    generator = torch.Generator().manual_seed(0)
    seen = [set(), set()]
    for _ in range(10):
        tokens = compiled.sample(torch.zeros(2, V), generator)
        for b, t in enumerate(tokens.tolist()):
            assert t not in seen[b]  # a presence penalty of 100 forbids repeats in practice
            seen[b].add(t)
    assert compiled.state.n_steps == 10


# ---------------------------------------------------------------------------------- mirostat
def test_mirostat_state_trace_equals_a_float64_replay():
    tau, eta_, t = 3.0, 0.2, 0.8
    compiled = compile_batch([temperature(t) | mirostat(tau=tau, eta=eta_)], V)
    state = compiled.new_state(3)
    generator = torch.Generator().manual_seed(2)
    rng = np.random.default_rng(2)
    mu = np.full(3, 2 * tau)
    for _ in range(40):
        z = rng.normal(0, 3, (3, V)).astype(np.float32)
        tokens = compiled.sample(torch.tensor(z), generator, state=state).numpy()
        for b in range(3):
            p = softmax(z[b] / t)
            kept = p >= min(2.0 ** -mu[b], p.max())
            q = np.where(kept, p, 0.0) / p[kept].sum()
            assert q[tokens[b]] > 0, "drew a token outside the mirostat set"
            mu[b] -= eta_ * (-math.log2(q[tokens[b]]) - tau)
        np.testing.assert_allclose(state.mu[:, 0].numpy(), mu, rtol=1e-4, atol=1e-4)


def test_mirostat_keeps_the_observed_surprise_near_tau():
    ranks = np.arange(1, 1001)
    zipf = np.log(1.0 / ranks) - np.log(np.sum(1.0 / ranks))
    tau, steps, batch = 5.0, 700, 8
    compiled = compile_batch([mirostat(tau=tau, eta=0.1)], 1000)
    state = compiled.new_state(batch)
    logits = torch.tensor(zipf, dtype=torch.float32).expand(batch, -1)
    generator = torch.Generator().manual_seed(3)
    surprises = []
    for _ in range(steps):
        logp = compiled.logprobs(logits, state)
        tokens = compiled.sample(logits, generator, state=state)
        surprises.append(-logp.gather(1, tokens[:, None]).squeeze(1) / math.log(2))
    observed = torch.stack(surprises)[100:].mean().item()
    assert abs(observed - tau) < 0.3, f"mean surprise {observed:.3f} bits, target {tau}"


def test_a_forced_token_leaves_mu_unchanged():
    compiled = compile_batch([mirostat()], V)
    state = compiled.new_state(1)
    state.advance(torch.tensor([4]))  # no distribution computed since the last advance
    assert state.mu.item() == pytest.approx(10.0)
