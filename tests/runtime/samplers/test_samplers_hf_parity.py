"""Parity with transformers' logits processors on 1,000 random rows where the semantics agree, and
one test per intended difference (tie handling, min_keep tie closure)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from samplers_oracle import NearBoundary, oracle_chain, random_row
from transformers.generation import logits_process as hf

from genweave.runtime.samplers import (
    compile_batch,
    epsilon,
    eta,
    min_p,
    repetition_penalty,
    temperature,
    top_h,
    top_k,
    top_p,
    typical,
)

V = 200
ROWS = 1000


def random_rows(stage, seed: int, ties: bool = False) -> torch.Tensor:
    """``ROWS`` random rows (several scales, some with -inf) away from ``stage``'s thresholds."""
    rng = np.random.default_rng(seed)
    rows = []
    while len(rows) < ROWS:
        z = random_row(rng, V, sigma=[0.5, 1.5, 3.0, 6.0][len(rows) % 4], n_masked=[0, 20][len(rows) % 2])
        if ties:
            z = np.round(z * 2) / 2  # many exact ties
        try:
            oracle_chain(z, [stage], strict=True)
        except NearBoundary:
            continue
        rows.append(z)
    return torch.tensor(np.stack(rows), dtype=torch.float32)


def kept_by_us(stage, logits: torch.Tensor) -> torch.Tensor:
    return torch.isfinite(compile_batch([stage], logits.shape[1]).logprobs(logits))


def kept_by_hf(processor, logits: torch.Tensor, input_ids: torch.Tensor | None = None) -> torch.Tensor:
    ids = torch.zeros(logits.shape[0], 1, dtype=torch.long) if input_ids is None else input_ids
    return torch.isfinite(processor(ids, logits.clone()))


PAIRS = [
    (top_k(1), hf.TopKLogitsWarper(1)),
    (top_k(17), hf.TopKLogitsWarper(17)),
    (top_p(0.3), hf.TopPLogitsWarper(0.3)),
    (top_p(0.9), hf.TopPLogitsWarper(0.9)),
    (min_p(0.05), hf.MinPLogitsWarper(0.05)),
    (min_p(0.4), hf.MinPLogitsWarper(0.4)),
    (typical(0.2), hf.TypicalLogitsWarper(0.2)),
    (typical(0.9), hf.TypicalLogitsWarper(0.9)),
    (epsilon(3e-4), hf.EpsilonLogitsWarper(3e-4)),
    (epsilon(0.02), hf.EpsilonLogitsWarper(0.02)),
    (eta(3e-4), hf.EtaLogitsWarper(3e-4)),
    (eta(4e-3), hf.EtaLogitsWarper(4e-3)),
    (top_h(0.4, top_n=100, variant="hf"), hf.TopHLogitsWarper(0.4)),
    (top_h(0.8, top_n=100, variant="hf"), hf.TopHLogitsWarper(0.8)),
]


@pytest.mark.parametrize(("stage", "processor"), PAIRS, ids=[str(s) for s, _ in PAIRS])
def test_kept_sets_equal_transformers_on_random_rows(stage, processor):
    logits = random_rows(stage, seed=len(str(stage)))
    ours, theirs = kept_by_us(stage, logits), kept_by_hf(processor, logits)
    differing = (ours != theirs).any(-1).nonzero().flatten().tolist()
    assert differing == [], f"{stage}: kept sets differ from transformers on rows {differing[:10]}"


@pytest.mark.parametrize(("stage", "processor"), [
    (top_k(5), hf.TopKLogitsWarper(5)),
    (top_k(5, min_keep=8), hf.TopKLogitsWarper(5, min_tokens_to_keep=8)),
    (epsilon(0.01, min_keep=3), hf.EpsilonLogitsWarper(0.01, min_tokens_to_keep=3)),
    (typical(0.6), hf.TypicalLogitsWarper(0.6)),
], ids=["top_k", "top_k-min_keep", "epsilon-min_keep", "typical"])
def test_tie_inclusive_rules_agree_with_transformers_even_on_tied_rows(stage, processor):
    """transformers is tie-inclusive for top-k, epsilon's min_keep and typical's cut: same sets."""
    logits = random_rows(stage, seed=9, ties=True)
    assert torch.equal(kept_by_us(stage, logits), kept_by_hf(processor, logits))


def test_temperature_matches_transformers_values():
    logits = random_rows(temperature(0.7), seed=1)
    ours = compile_batch([temperature(0.7)], V).logprobs(logits)
    theirs = torch.log_softmax(hf.TemperatureLogitsWarper(0.7)(None, logits.clone()), -1)
    torch.testing.assert_close(ours, theirs)


def test_repetition_penalty_matches_transformers_values():
    rng = np.random.default_rng(4)
    logits = random_rows(temperature(1.0), seed=2)[:200]
    histories = [rng.integers(0, V, size=30).tolist() for _ in range(200)]
    compiled = compile_batch([repetition_penalty(1.3)], V)
    state = compiled.new_state(200, prompts=histories)
    ours = compiled.logprobs(logits, state)
    penalised = hf.RepetitionPenaltyLogitsProcessor(1.3)(torch.tensor(histories), logits.clone())
    torch.testing.assert_close(ours, torch.log_softmax(penalised, -1))


def test_chain_matches_a_transformers_processor_list():
    chain = temperature(0.8) | top_k(40) | top_p(0.9) | min_p(0.05)
    processors = hf.LogitsProcessorList([hf.TemperatureLogitsWarper(0.8), hf.TopKLogitsWarper(40),
                                         hf.TopPLogitsWarper(0.9), hf.MinPLogitsWarper(0.05)])
    rng = np.random.default_rng(6)
    rows = []
    while len(rows) < ROWS:
        z = random_row(rng, V, 3.0)
        try:
            oracle_chain(z, chain.stages, strict=True)
        except NearBoundary:
            continue
        rows.append(z)
    logits = torch.tensor(np.stack(rows), dtype=torch.float32)
    ours = compile_batch([chain], V).logprobs(logits)
    theirs = torch.log_softmax(processors(torch.zeros(ROWS, 1, dtype=torch.long), logits.clone()), -1)
    assert torch.equal(torch.isfinite(ours), torch.isfinite(theirs))
    torch.testing.assert_close(ours.exp(), theirs.exp(), atol=1e-6, rtol=1e-5)


# ------------------------------------------------------------------------- intended differences
def test_top_p_keeps_every_tie_of_the_boundary_where_transformers_splits_them():
    logits = torch.tensor([[2.0, 1.0, 1.0, 1.0, 0.0]])
    ours = kept_by_us(top_p(0.5), logits)[0].tolist()
    theirs = kept_by_hf(hf.TopPLogitsWarper(0.5), logits)[0].tolist()
    assert ours == [True, True, True, True, False]
    assert sum(theirs) < 4 and theirs[0]  # transformers keeps only part of the tied boundary


def test_min_keep_of_typical_is_tie_closed_where_transformers_is_not():
    # all tokens tied: transformers' forced min_keep picks 2 positions of the s-order, tie closure keeps all
    logits = torch.zeros(1, 10)
    logits[0, 0] = 5.0
    ours = kept_by_us(typical(0.01, min_keep=2), logits)[0]
    theirs = kept_by_hf(hf.TypicalLogitsWarper(0.01, min_tokens_to_keep=2), logits)[0]
    assert ours.sum() == 10 and theirs.sum() == 2


def test_official_top_h_differs_from_the_transformers_variant_on_some_rows():
    logits = random_rows(top_h(0.4), seed=12)
    official = kept_by_us(top_h(0.4), logits)
    theirs = kept_by_hf(hf.TopHLogitsWarper(0.4), logits)
    assert (official != theirs).any(-1).sum() > 0
    assert torch.equal(kept_by_us(top_h(0.4, variant="hf"), logits[:200]),
                       kept_by_hf(hf.TopHLogitsWarper(0.4), logits[:200]))
