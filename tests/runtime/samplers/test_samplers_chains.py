"""Chains: composition equals successive oracles, order matters where the spec says so,
temperature_last, fold, build_chain validation and the documented registry."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from samplers_oracle import NearBoundary, adversarial_rows, oracle_chain, random_row

from genweave.dsl.errors import GenCheckError
from genweave.runtime.samplers import (
    SAMPLERS,
    ChainSpec,
    build_chain,
    compile_batch,
    epsilon,
    eta,
    fold,
    frequency_penalty,
    greedy,
    logit_bias,
    min_p,
    mirostat,
    positional_param,
    repetition_penalty,
    standard_chain,
    temperature,
    top_h,
    top_k,
    top_n_sigma,
    top_p,
    typical,
    xtc,
)

V = 50
TRUNCATIONS = [top_k(8), top_p(0.8), min_p(0.1), typical(0.7), epsilon(0.01), eta(0.01), top_h(0.5, top_n=30),
               top_n_sigma(1.0), xtc(0.5, 0.08)]


def stable_rows(stages, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows = []
    while len(rows) < n:
        z = random_row(rng, V, sigma=[1.0, 2.5][len(rows) % 2])
        try:
            oracle_chain(z, stages, strict=True)
        except NearBoundary:
            continue
        rows.append(z)
    return np.stack(rows)


def chain_probs(chain, rows: np.ndarray) -> np.ndarray:
    logp = compile_batch([chain], rows.shape[1]).logprobs(torch.tensor(rows, dtype=torch.float32))
    return logp.double().exp().numpy()


@pytest.mark.parametrize(("first", "second"), list(itertools.permutations(TRUNCATIONS, 2)),
                         ids=[f"{a.name}-{b.name}" for a, b in itertools.permutations(TRUNCATIONS, 2)])
def test_a_pair_of_truncations_equals_the_oracle_of_one_then_the_other(first, second):
    chain = temperature(0.9) | first | second
    rows = np.concatenate([stable_rows(chain.stages, 12, seed=len(str(chain))),
                           np.stack(list(adversarial_rows(V).values()))])
    got = chain_probs(chain, rows)
    for z, probs in zip(rows, got):
        want = oracle_chain(z, chain.stages)
        assert np.array_equal(probs > 0, want > 0), f"{chain}: kept sets differ"
        np.testing.assert_allclose(probs, want, atol=2e-6)


@pytest.mark.parametrize(("a", "b"), [(temperature(0.5), min_p(0.2)), (temperature(2.0), top_p(0.6)),
                                      (top_k(5), top_p(0.5)), (typical(0.5), top_p(0.5)),
                                      (min_p(0.3), epsilon(0.05))])
def test_order_matters(a, b):
    rows = stable_rows([a, b], 40, seed=1)
    forward, backward = chain_probs(a | b, rows), chain_probs(b | a, rows)
    assert not np.allclose(forward, backward, atol=1e-4)


def test_temperature_last_reproduces_llama_cpp_min_p_in_logit_space():
    chain = build_chain([("temperature", {"t": 0.5}), ("min_p", {"p": 0.1})], temperature_last=True)
    assert [s.name for s in chain.stages] == ["min_p", "temperature"]
    rows = stable_rows(chain.stages, 30, seed=2)
    got = chain_probs(chain, rows)
    for z, probs in zip(rows, got):
        kept = z - z.max() >= np.log(0.1)  # llama.cpp: the cut ignores the temperature
        want = np.where(kept, np.exp((z - z.max()) / 0.5), 0.0)
        np.testing.assert_allclose(probs, want / want.sum(), atol=2e-6)


def test_temperature_last_keeps_a_final_mirostat_last():
    chain = build_chain(temperature(0.7) | top_k(40) | mirostat(), temperature_last=True)
    assert [s.name for s in chain.stages] == ["top_k", "temperature", "mirostat"]


def test_standard_chain_orders():
    hf_order = standard_chain(temperature=0.7, top_k=50, top_p=0.9, min_p=0.05, repetition_penalty=1.1)
    assert str(hf_order) == "repetition_penalty(1.1) | temperature(0.7) | top_k(50) | top_p(0.9) | min_p(0.05)"
    llama = standard_chain(temperature=0.8, top_k=40, top_p=0.95, min_p=0.05, typical_p=0.9, order="llama.cpp")
    assert [s.name for s in llama.stages] == ["top_k", "typical", "top_p", "min_p", "temperature"]
    assert str(standard_chain(temperature=0.0, top_p=0.9, repetition_penalty=1.2)) == \
        "repetition_penalty(1.2) | greedy()"


# ------------------------------------------------------------------------------------------ fold
@pytest.mark.parametrize(("chain", "folded"), [
    (temperature(1.0) | top_k(0) | top_p(1.0) | min_p(0.0) | typical(1.0), ""),
    (epsilon(0.0) | eta(0.0) | repetition_penalty(1.0) | frequency_penalty(0.0) | xtc(0.0), ""),
    (temperature(0.0) | top_p(0.9), "greedy()"),
    (top_k(10) | top_p(0.9) | temperature(0.0), "greedy()"),
    (repetition_penalty(1.2) | greedy() | top_k(5) | xtc(0.5) | typical(0.5), "repetition_penalty(1.2) | greedy()"),
    (temperature(0.5) | temperature(0.5) | temperature(2.0), "temperature(0.5)"),
    (logit_bias({1: 1.0}) | logit_bias({1: 0.5, 2: -1.0}), "logit_bias({1: 1.5, 2: -1.0})"),
    (typical(0.5) | greedy(), "typical(0.5) | greedy()"),  # typical may drop the mode: kept
    (temperature(0.7) | mirostat(), "temperature(0.7) | mirostat(5.0)"),
])
def test_fold_rules(chain, folded):
    assert str(fold(chain)) == (folded or "sample()")
    assert fold(fold(chain)) == fold(chain)


RANDOM_CHAINS = [
    temperature(1.0) | top_k(0) | temperature(0.5) | temperature(1.5) | top_p(0.9),
    top_k(12) | min_p(0.05) | temperature(0.0) | top_p(0.3),
    logit_bias({3: 2.0}) | logit_bias({3: -1.0, 4: 1.0}) | temperature(0.8) | typical(1.0),
    top_p(1.0) | greedy() | top_k(3),
]


@pytest.mark.parametrize("chain", RANDOM_CHAINS, ids=[str(c) for c in RANDOM_CHAINS])
def test_fold_preserves_the_distribution(chain):
    rows = stable_rows(chain.stages, 30, seed=4)
    np.testing.assert_allclose(chain_probs(fold(chain), rows), chain_probs(chain, rows), atol=1e-6)


def test_is_greedy():
    assert compile_batch([fold(temperature(0.0) | top_k(4))], V).is_greedy
    assert compile_batch([repetition_penalty(1.1) | greedy()], V).is_greedy
    assert not compile_batch([xtc(0.5) | greedy()], V).is_greedy
    assert not compile_batch([temperature(0.5)], V).is_greedy


def test_commutes_with_mask():
    assert (repetition_penalty(1.1) | temperature(0.7) | logit_bias({1: 2.0})).commutes_with_mask
    assert not (temperature(0.7) | top_p(0.9)).commutes_with_mask
    assert not temperature(0.0).compile(V).spec.commutes_with_mask


# ----------------------------------------------------------------------------------- validation
@pytest.mark.parametrize(("stages", "pattern"), [
    ([("top_q", {"p": 0.9})], r"unknown sampler 'top_q'.*did you mean 'top_p'"),
    ([("top_p", {"q": 0.9})], r"top_p has no parameter 'q'; its parameters are: p, min_keep"),
    ([("top_p", {"p": 1.5})], r"top_p: parameter p must be \[0, 1\], got 1.5"),
    ([("top_k", {"k": 2.5})], r"top_k: parameter k must be an integer in \[0, inf\), got 2.5"),
    ([("temperature", {"t": -1})], r"temperature: parameter t must be \[0, inf\), got -1"),
    ([("temperature", {"t": "hot"})], r"temperature: parameter t must be"),
    ([("min_p", {"p": True})], r"min_p: parameter p must be"),
    ([("typical", {"mass": 0.0})], r"typical: parameter mass must be \(0, 1\]"),
    ([("repetition_penalty", {"penalty": 1.1, "scope": "prompt"})], r"one of 'all', 'generated'"),
    ([("top_h", {"alpha": 0.4, "variant": "vllm"})], r"top_h: parameter variant must be one of"),
    ([("mirostat", {}), ("top_k", {"k": 5})], r"mirostat must be the last stage"),
    ([("xtc", {}), ("mirostat", {})], r"mirostat cannot be combined with xtc"),
    ([("logit_bias", {"bias": {-1: 2.0}})], r"logit_bias: parameter bias must be"),
    ([("frequency_penalty", {"penalty": float("nan")})], r"frequency_penalty: parameter penalty must be"),
])
def test_build_chain_rejects_invalid_chains_with_a_precise_message(stages, pattern):
    with pytest.raises(GenCheckError) as error:
        build_chain(stages)
    assert error.value.span is None
    assert re.search(pattern, error.value.render(), re.S), error.value.render()


def test_build_chain_accepts_stages_pairs_and_chains():
    chain = build_chain([temperature(0.7), ("top_p", {"p": 0.9}), ("greedy", {})])
    assert isinstance(chain, ChainSpec) and [s.name for s in chain.stages] == ["temperature", "top_p", "greedy"]
    assert build_chain(chain) == chain
    assert positional_param("top_p") == "p" and positional_param("greedy") is None


def test_logit_bias_ids_are_checked_against_the_vocabulary():
    with pytest.raises(GenCheckError, match="outside the vocabulary"):
        logit_bias({V + 3: 1.0}).compile(V)


def test_rows_of_one_batch_must_share_a_chain_shape():
    with pytest.raises(GenCheckError, match="share a chain shape"):
        compile_batch([temperature(0.5) | top_p(0.9), top_p(0.9) | temperature(0.5)], V)
    with pytest.raises(GenCheckError, match="share a chain shape"):
        compile_batch([top_h(0.4), top_h(0.4, variant="hf")], V)


def test_every_registered_sampler_and_parameter_is_documented():
    text = (Path(__file__).parents[3] / "docs" / "samplers.md").read_text()
    for name, cls in SAMPLERS.items():
        assert f"`{name}`" in text, f"docs/samplers.md does not document {name}"
        for param in cls.params:
            assert re.search(rf"\|\s*`{name}`\s*\|\s*`{param.name}`", text), f"{name}.{param.name} undocumented"


def test_docstring_examples_run():
    import doctest

    from genweave.runtime.samplers import base, builders, chain

    for module in (base, builders, chain):
        result = doctest.testmod(module)
        assert result.failed == 0 and result.attempted > 0, module.__name__
