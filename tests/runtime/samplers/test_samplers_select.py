"""The sort-free CPU kernels (runtime/samplers/select.py) against the sort-based torch paths they
replace: the crossing key on random and adversarial rows (ties at the crossing, exact binary
boundaries, -inf, one dominant token, uniform), top-p and typical kept sets with the kernel and with
the sort path, in-place masks, and the sparse penalty update against the dense formula."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import genweave.runtime.samplers.truncation as truncation
from genweave.runtime.samplers import (
    compile_batch,
    frequency_penalty,
    min_p,
    pack_mask,
    presence_penalty,
    repetition_penalty,
    temperature,
    top_k,
    top_p,
    typical,
)
from genweave.runtime.samplers.select import crossing_key, mask_below, mask_packed

NEG = float("-inf")


def sorted_crossing(keys: torch.Tensor, mass: torch.Tensor, target: torch.Tensor, descending: bool) -> torch.Tensor:
    """The reference: stable sort, head-first float64 cumulative sum, first index reaching target."""
    values, order = torch.sort(keys, dim=-1, descending=descending, stable=True)
    cum = mass.gather(1, order).cumsum(-1, dtype=torch.float64)
    first = (cum < target).sum(-1, keepdim=True).clamp(max=keys.shape[1] - 1)
    return values.gather(1, first)


def kernel_crossing(keys, mass, target, descending):
    active = torch.ones(keys.shape[0], 1, dtype=torch.bool)
    return crossing_key(keys, mass, target, active, descending)


def random_logits(rng: np.random.Generator, batch: int, vocab: int) -> torch.Tensor:
    """Rows of several scales; some rounded (many ties), some with -inf entries or a dominant token."""
    z = rng.normal(0.0, 1.0, (batch, vocab)) * rng.choice([0.1, 1.0, 3.0, 8.0], (batch, 1))
    z[::3] = np.round(z[::3])
    z[1::4, ::5] = -np.inf
    z[2::5, rng.integers(vocab)] = 40.0
    return torch.tensor(z, dtype=torch.float32)


@pytest.mark.parametrize("vocab", [1, 7, 50, 3000, 40_000])
@pytest.mark.parametrize("descending", [True, False])
def test_crossing_key_equals_the_sorted_cumulative_sum_on_random_rows(vocab, descending):
    rng = np.random.default_rng(vocab + descending)
    z = random_logits(rng, 24, vocab)
    mass = torch.softmax(z, -1)
    target = torch.tensor(rng.choice([0.0, 1e-9, 0.3, 0.9, 0.999, 1.0, 1.5], (24, 1)))
    assert torch.equal(kernel_crossing(z, mass, target, descending), sorted_crossing(z, mass, target, descending))


def test_crossing_key_on_adversarial_rows():
    vocab = 5000
    rows = torch.zeros(6, vocab)
    rows[1] = NEG
    rows[1, 17] = 0.0  # a single finite entry
    rows[2, :100] = 5.0  # a block of ties holding almost all the mass
    rows[3] = torch.arange(vocab) % 2 * 1e-7  # two keys one float32 step apart
    rows[4, ::2] = -0.0  # -0.0 and +0.0 compare equal
    rows[5] = torch.linspace(-30, 30, vocab)
    mass = torch.softmax(rows, -1)
    for target in (0.0, 0.25, 0.5, 0.99, 1.0):
        goal = torch.full((6, 1), target, dtype=torch.float64)
        for descending in (True, False):
            got = kernel_crossing(rows, mass, goal, descending)
            assert torch.equal(got, sorted_crossing(rows, mass, goal, descending)), (target, descending)


def test_crossing_at_a_tie_returns_the_tie_and_exact_binary_boundaries_hold():
    # masses 1/8 each on a block of 4 ties after a token of mass 1/2: p = 0.6 crosses inside the block
    z = torch.log(torch.tensor([[0.5, 0.125, 0.125, 0.125, 0.125]]))
    mass = torch.tensor([[0.5, 0.125, 0.125, 0.125, 0.125]])
    for target, want in ((0.5, 0.5), (0.6, 0.125), (0.75, 0.125), (1.0, 0.125)):
        got = kernel_crossing(z, mass, torch.tensor([[target]], dtype=torch.float64), True)
        assert got.item() == torch.log(torch.tensor(want)).item()
    binary = torch.tensor([[0.5, 0.25, 0.125, 0.0625, 0.0625]])
    got = kernel_crossing(binary, binary, torch.tensor([[0.75]], dtype=torch.float64), True)
    assert got.item() == 0.25  # the cumulative mass reaches 0.75 exactly at the second token


def test_inactive_rows_are_left_as_nan():
    z = torch.randn(3, 100)
    active = torch.tensor([[True], [False], [True]])
    got = crossing_key(z, torch.softmax(z, -1), torch.full((1, 1), 0.5, dtype=torch.float64), active, True)
    assert torch.isnan(got[1]).all() and torch.isfinite(got[[0, 2]]).all()


def test_mask_kernels_equal_their_torch_forms():
    rng = np.random.default_rng(5)
    z = random_logits(rng, 8, 1000)
    thr = torch.tensor(rng.normal(0, 2, (8, 1)), dtype=torch.float32)
    got = z.clone()
    mask_below(got, thr)
    assert torch.equal(got, z.masked_fill(z < thr, NEG))
    allowed = torch.tensor(rng.random((8, 1000)) < 0.3)
    got = z.clone()
    mask_packed(got, pack_mask(allowed))
    assert torch.equal(got, z.masked_fill(~allowed, NEG))
    got = z.clone()
    mask_packed(got, pack_mask(allowed[:1]))  # one mask shared by every row
    assert torch.equal(got, z.masked_fill(~allowed[:1], NEG))


# ------------------------------------------------------------------ stages: kernel vs sort path
def kept(chain, z: torch.Tensor, kernel: bool, monkeypatch) -> torch.Tensor:
    with monkeypatch.context() as patch:
        if not kernel:
            patch.setattr(truncation, "usable", lambda *tensors: False)  # the device (sort) path
        return torch.isfinite(compile_batch([chain], z.shape[1], batch=z.shape[0]).logprobs(z))


CHAINS = [top_p(0.9), top_p(0.5, min_keep=7), top_p(0.0), temperature(0.6) | top_p(0.95),
          typical(0.2), typical(0.9), typical(0.5, min_keep=9), min_p(0.01) | typical(0.7),
          top_k(300) | top_p(0.8)]


@pytest.mark.parametrize("vocab", [50, 6000])
@pytest.mark.parametrize("chain", CHAINS, ids=[str(c) for c in CHAINS])
def test_kernel_and_sort_paths_keep_the_same_sets(chain, vocab, monkeypatch):
    rng = np.random.default_rng(vocab)
    z = random_logits(rng, 40, vocab)
    z[0] = 0.0  # uniform: every token ties
    with_kernel = kept(chain, z, True, monkeypatch)
    assert torch.equal(with_kernel, kept(chain, z, False, monkeypatch))
    assert with_kernel.any(-1).all()


def test_top_p_at_a_tie_crossing_keeps_the_whole_tie_on_both_paths(monkeypatch):
    z = torch.log(torch.tensor([[0.5, 0.125, 0.125, 0.125, 0.125]]))
    for kernel in (True, False):
        assert kept(top_p(0.6), z, kernel, monkeypatch).tolist() == [[True] * 5]
        assert kept(top_p(0.5), z, kernel, monkeypatch).tolist() == [[True] + [False] * 4]


def test_top_p_and_typical_do_not_sort_on_cpu(monkeypatch):
    def no_sort(*args, **kwargs):
        raise AssertionError("torch.sort called")

    monkeypatch.setattr(torch, "sort", no_sort)
    z = torch.randn(4, 50_000) * 3
    for chain in (temperature(0.7) | top_p(0.9), repetition_penalty(1.1) | temperature(0.7) | typical(0.9)):
        compiled = compile_batch([chain], 50_000, batch=4)
        state = compiled.new_state(4, prompts=[[1, 2, 3]] * 4) if compiled.stateful else None
        assert torch.isfinite(compiled.logprobs(z, state)).any(-1).all()


# ------------------------------------------------------------------ sparse penalty update
PENALTIES = [
    repetition_penalty(1.3) | frequency_penalty(0.4) | presence_penalty(0.7),
    repetition_penalty(0.8, scope="generated") | frequency_penalty(-0.3, scope="all", window=6),
]


@pytest.mark.parametrize("chain", PENALTIES, ids=[str(c) for c in PENALTIES])
def test_sparse_penalties_equal_the_dense_formula(chain):
    """V = 3000 with short histories: the penalty writes only the history's columns."""
    vocab, batch = 3000, 5
    rng = np.random.default_rng(1)
    prompts = [rng.integers(0, 40, size=rng.integers(0, 12)).tolist() for _ in range(batch)]
    compiled = compile_batch([chain], vocab, batch=batch)
    state = compiled.new_state(batch, prompts=prompts)
    for step in range(12):
        tokens = torch.tensor(rng.integers(0, 40, size=batch))
        tokens[step % batch] = -1
        state.advance(tokens)
        if step == 8:
            state.rollback(3)
    z = torch.tensor(rng.normal(0, 2, (batch, vocab)), dtype=torch.float32)
    z[:, 0] = 0.0
    z[:, 1] = NEG
    dense = z.clone()
    for stage in compiled.stages:
        dense = stage._transform(dense, state.counts_for(stage.scope, stage.window))
    assert torch.equal(compiled.logprobs(z, state), torch.log_softmax(dense, -1))
