"""The exact engines: ``enumerate`` equals the oracle to 1e-12, ``rejection`` samples follow
``pi / Z``, and the oracle itself is checked against brute force on a hand-computable case."""

from __future__ import annotations

import itertools
import math

import pytest
from inference_problems import NAMES, problem, toy

from genweave.dsl.errors import GenArgumentError, GenRuntimeError
from genweave.runtime.constraints import compile_constraint, regex
from genweave.runtime.inference import Hole, enumerate_hole, exact_local, exact_target, factor, rejection
from genweave.runtime.samplers import temperature, top_k
from genweave.testing import assert_matches


@pytest.mark.parametrize("name", NAMES)
def test_enumerate_equals_the_oracle(name):
    pr = problem(name)
    exact = exact_target(pr.model, pr.prompt, pr.hole)
    found = enumerate_hole(pr.model, pr.prompt, pr.hole)
    assert set(found.log_weights) == set(exact.weights)
    assert max(abs(found.log_weights[k] - w) for k, w in exact.weights.items()) < 1e-12
    assert found.log_z == pytest.approx(exact.log_z, abs=1e-12)
    by_text = exact.by_text(pr.model.vocab)
    assert max(abs(found.posterior[t] - p) for t, p in by_text.items()) < 1e-12


def test_enumerate_with_a_truncating_chain():
    pr = problem("finite_choice")
    size = len(pr.model.vocab)
    hole = Hole(pr.hole.constraint, pr.hole.potentials, pr.hole.max_tokens,
                chain=(temperature(0.8) | top_k(3)).compile(size))
    exact = exact_target(pr.model, pr.prompt, hole)
    found = enumerate_hole(pr.model, pr.prompt, hole)
    assert found.log_z == pytest.approx(exact.log_z, abs=1e-6)  # the chain computes in float32
    assert exact.log_z != pytest.approx(exact_target(pr.model, pr.prompt, pr.hole).log_z, abs=1e-3)


def test_enumerate_refuses_an_infinite_hole():
    lm = toy(0)
    hole = Hole(compile_constraint(regex("a(b|c)*"), lm.vocab, cache=False))
    with pytest.raises(GenRuntimeError, match="finite"):
        enumerate_hole(lm, [], hole, max_nodes=200)


def test_oracle_matches_brute_force():
    # pi(y) = prod Q(y_t) Q(EOS | y) exp(factor) 1[y in L], enumerated here by itertools
    lm = toy(7)
    c = compile_constraint(regex("[ab]+"), lm.vocab, cache=False)
    hole = Hole(c, (factor(lambda s: 0.3 * s.count("a")),), 2)
    eos = lm.vocab.eos_ids[0]
    brute = {}
    for n in range(1, 3):
        for ids in itertools.product(range(4), repeat=n):
            text = lm.vocab.decode(ids).decode()
            if not set(text) <= {"a", "b"}:
                continue
            log_p = sum(float(lm.next_token_logprobs(ids[:i])[t]) for i, t in enumerate(ids))
            brute[ids] = log_p + float(lm.next_token_logprobs(ids)[eos]) + 0.3 * text.count("a")
    exact = exact_target(lm, [], hole)
    assert set(exact.weights) == set(brute)
    assert max(abs(exact.weights[k] - w) for k, w in brute.items()) < 1e-12


@pytest.mark.parametrize("name", ["hard_only", "budget_condition"])
def test_rejection_samples_follow_the_global_target(name):
    pr = problem(name)
    result = rejection(pr.model, pr.prompt, pr.hole, draws=3000, batch=512, seed=3)
    assert len(result.values) == 3000
    exact = exact_target(pr.model, pr.prompt, pr.hole)
    assert_matches(result.values, exact.by_text(pr.model.vocab), alpha=1e-4)
    # the acceptance rate estimates Z (binomial standard error)
    z = math.exp(exact.log_z)
    assert abs(result.acceptance_rate - z) <= 4 * math.sqrt(z * (1 - z) / result.attempts)


def test_rejection_refuses_soft_potentials_and_reports_hopeless_constraints():
    pr = problem("prefix_factor")
    with pytest.raises(GenArgumentError, match="factor"):
        rejection(pr.model, pr.prompt, pr.hole)
    lm = toy(0)
    impossible = Hole(compile_constraint(regex("ccc"), lm.vocab, cache=False), max_tokens=1)
    with pytest.raises(GenRuntimeError, match="accepted"):
        rejection(lm, [], impossible, max_attempts=64, batch=32)


def test_local_law_sums_to_one_with_failures():
    lm = toy(0)
    # after "c" the language needs two more tokens but the budget allows one: a dead end
    hole = Hole(compile_constraint(regex("a|cab?c"), lm.vocab, cache=False), max_tokens=2)
    local = exact_local(lm, [], hole)
    assert local.failure > 0
    assert sum(local.probabilities.values()) + local.failure == pytest.approx(1.0, abs=1e-12)
