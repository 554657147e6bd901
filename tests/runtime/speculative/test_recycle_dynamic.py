"""Token Recycling with a dynamic tree (``speculate recycle k K tree dynamic``).

* the heap grows the ancestor-closed tree of the highest values (product of recorded probabilities
  along the path), in value order, up to the budget (hand-computed case, and brute force);
* the adjacency update records the model's top-k successors with their probabilities;
* draws follow the exact law of plain decoding (G-test against ``plan_distribution`` /
  ``exact_distribution``, false-alarm rate 1e-4, fixed seeds) with a constraint, a token budget and
  a stateful sampler chain; under ``greedy`` the tokens are the greedy ones;
* the checker accepts the statement, it binds ``tree="dynamic"``, and the Python builder lowers to
  the same IR as the ``.gen`` form.
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pytest
import torch

import genweave
from genweave import builders as gw
from genweave.compiler.check import check
from genweave.compiler.features import LANGUAGE
from genweave.compiler.lower import lower
from genweave.compiler.plan import plan as bind
from genweave.dsl.parser import parse
from genweave.runtime.constraints import compile_constraint, regex
from genweave.runtime.constraints.budget import TokenBudget
from genweave.runtime.execute import Emit, Fill, Plan, Return, run_plan
from genweave.runtime.inference.speculative import SpeculatePlan
from genweave.runtime.inference.speculative.dynamic_tree import DynamicRecycleDrafter, grow_tree
from genweave.runtime.samplers import build_chain, fold
from genweave.testing import ToyLM, assert_matches
from genweave.testing.exact import exact_distribution, plan_distribution

TOKENS = [b"a", b"b", b"ab", b" "]
CHAIN = [("repetition_penalty", {"penalty": 1.6}), ("temperature", {"t": 0.9}), ("top_k", {"k": 3})]
DYNAMIC = SpeculatePlan("recycle", 2, tree="dynamic")


@pytest.fixture(scope="module")
def toy():
    return ToyLM(TOKENS, seed=5, sharpness=2.0)


# ------------------------------------------------------------------------------------ the heap
SUCC = np.array([[1, 2], [2, 0], [0, 1]])
PROBS = np.array([[0.6, 0.4], [0.9, 0.1], [0.5, 0.2]])


def test_the_heap_takes_nodes_in_value_order_up_to_the_budget():
    # root 0: children 1 (.6) and 2 (.4); 1 -> 2 (.9), 0 (.1); 2 -> 0 (.5), 1 (.2). Path values:
    # [1] .6, [1,2] .54, [2] .4, [1,2,0] .27, [2,0] .2, [1,2,0,1] .162, [1,2,0,1,2] .1458, then [2,0,1] .12
    tokens, parents, values = grow_tree(0, SUCC, PROBS, budget=7)
    assert tokens == [1, 2, 2, 0, 0, 1, 2]
    assert parents == [-1, 0, -1, 1, 2, 3, 5]
    assert values == pytest.approx([0.6, 0.54, 0.4, 0.27, 0.2, 0.162, 0.1458])
    assert grow_tree(0, SUCC, PROBS, budget=8)[:2] == ([1, 2, 2, 0, 0, 1, 2, 1], [-1, 0, -1, 1, 2, 3, 5, 4])
    assert grow_tree(0, SUCC, PROBS, budget=2) == ([1, 2], [-1, 0], pytest.approx([0.6, 0.54]))


def test_equal_values_go_to_the_entry_offered_first():
    probs = np.array([[0.5, 0.5], [0.5, 0.25], [0.5, 0.5]])  # dyadic: the ties are exact
    # [1] .5 then its sibling [2] .5; at .25: [1,2] (offered when [1] was taken), then [2,0] (offered
    # when [2] was taken), then [2,1] (offered when [2,0] was taken)
    tokens, parents, values = grow_tree(0, SUCC, probs, budget=5)
    assert (tokens, parents, values) == ([1, 2, 2, 0, 1], [-1, -1, 0, 1, 1], [0.5, 0.5, 0.25, 0.25, 0.25])


def _all_paths(root, depth):
    """Every path of successor indices up to ``depth`` with its value and token."""
    out = []
    for n in range(1, depth + 1):
        for path in itertools.product(range(SUCC.shape[1]), repeat=n):
            token, value = root, 1.0
            for j in path:
                token, value = SUCC[token, j], value * PROBS[token, j]
            out.append((value, path))
    return out


@pytest.mark.parametrize("budget", [1, 3, 8, 12])
def test_the_grown_tree_is_the_ancestor_closed_top_by_value(budget):
    tokens, parents, values = grow_tree(2, SUCC, PROBS, budget)
    assert len(tokens) == budget and all(p < i for i, p in enumerate(parents))
    assert values == sorted(values, reverse=True)
    best = sorted((v for v, _ in _all_paths(2, budget)), reverse=True)[:budget]
    assert values == pytest.approx(best)
    for i, (token, parent) in enumerate(zip(tokens, parents)):
        above = 2 if parent < 0 else tokens[parent]
        assert token in SUCC[above]
        j = list(SUCC[above]).index(token)
        assert values[i] == pytest.approx((1.0 if parent < 0 else values[parent]) * PROBS[above, j])


def test_the_update_records_top_k_successors_with_their_probabilities():
    drafter = DynamicRecycleDrafter(5, 2)
    logits = torch.tensor([[0., 1, 2, 3, 4], [4., 3, 2, 1, 0], [1., 0, 0, 0, 2]])
    drafter.update(torch.tensor([3, 1, 3]), logits)  # unnormalised rows: probabilities are normalised
    probs = torch.softmax(logits, -1)
    assert drafter.adjacency[3].tolist() == [4, 0] and drafter.adjacency[1].tolist() == [0, 1]  # last wins
    assert drafter.probs[3].tolist() == pytest.approx(probs[2, [4, 0]].tolist())
    assert drafter.probs[1].tolist() == pytest.approx(probs[1, [0, 1]].tolist())
    tokens, parents, depth = drafter.draft_tree(torch.tensor([3, 1, 3]))
    assert tokens.shape == parents.shape == (3, drafter.budget) and drafter.budget == 28  # static k=2 size
    assert torch.equal(tokens[0], tokens[2]) and tokens[0, 0] == 4 and tokens[1, 0] == 0
    assert depth >= 1


# ------------------------------------------------------------------------------------ whole programs
def two_holes(toy, stages, speculate=DYNAMIC):
    """Two holes with text between them; the first is constrained and budgeted."""
    c = TokenBudget(compile_constraint(regex("(a|b)*b ?"), toy.vocab, cache=False), 4)
    steps = (Emit(lambda env: "ab a"), Fill("h", 4, None, "t:h", constraint=c), Emit(lambda env: " a"),
             Fill("k", 2, None, "t:k"), Return(lambda env: env["h"] + "|" + env["k"]))
    return Plan(steps, fold(build_chain(list(stages))), chat=False, speculate=speculate)


def outcomes(results):
    return [(r.hole_tokens["h"], r.hole_tokens["k"]) for r in results]


def test_dynamic_recycling_samples_the_law_of_plain_decoding(toy):
    plan = two_holes(toy, CHAIN)
    law = plan_distribution(dataclasses.replace(plan, speculate=None), toy, {})
    results = run_plan(plan, toy, {}, draws=2000, seed=11)
    assert_matches(outcomes(results), law.probs, alpha=1e-4)
    assert results.stats.verifications > 0 and 0 < results.stats.accepted <= results.stats.drafted
    for r in results[:50]:
        assert r.logprob == pytest.approx(math.log(law.probs[(r.hole_tokens["h"], r.hole_tokens["k"])]), abs=1e-4)


def test_dynamic_recycling_gives_the_greedy_tokens(toy):
    plan = two_holes(toy, [("greedy", {})])
    (expected,) = plan_distribution(dataclasses.replace(plan, speculate=None), toy, {}).probs
    results = run_plan(plan, toy, {}, draws=3)
    assert set(outcomes(results)) == {expected}
    assert all(r.logprob == 0.0 for r in results)


def test_dynamic_recycling_learns_a_bigram_model():
    bigram = ToyLM(TOKENS, seed=5, sharpness=2.0, max_context=1)
    steps = (Emit(lambda env: "ab a"), Fill("h", 12, None, "t:h"), Return(lambda env: env["h"]))
    plan = Plan(steps, build_chain([("greedy", {})]), chat=False, speculate=SpeculatePlan("recycle", 4, tree="dynamic"))
    (expected,) = plan_distribution(dataclasses.replace(plan, speculate=None), bigram, {}).probs
    results = run_plan(plan, bigram, {}, draws=2)
    assert all((r.hole_tokens["h"],) == expected for r in results)
    assert results.stats.forwards < len(expected[0])  # fewer forwards than tokens


# ------------------------------------------------------------------------------------ .gen and builders
SOURCE = '''
model lm = "toy"

program p() -> str:
  target:
    "ab a"
    x = gen regex r"(a|b)+ ?" max 4 tokens
    return x
  infer:
    sample repetition_penalty 1.5 | temperature 0.8 | top_p 0.9
    speculate recycle k 3 tree dynamic
'''


def test_gen_recycle_tree_dynamic_samples_the_exact_law(toy):
    module = genweave.compile(SOURCE)
    assert bind(module.p.ir, toy.vocab).speculate == SpeculatePlan("recycle", 3, tree="dynamic")
    results = module.p(model=toy, draws=2000, seed=3)
    law = exact_distribution(module.p, toy)
    assert_matches([(r.hole_tokens["x"],) for r in results], law.probs, alpha=1e-4)
    assert results.stats.verifications > 0


def test_the_builder_lowers_to_the_same_dynamic_recycling():
    p = gw.Program("p", returns=str)
    p.text("ab a")
    p.ret(p.gen("x", gw.regex("(a|b)+ ?"), max_tokens=4))
    p.infer(gw.sample(gw.temperature(0.8)), gw.speculate("recycle", k=3, tree="dynamic"))
    module = gw.module(gw.model("lm", "toy"), p)
    source = ('model lm = "toy"\nprogram p() -> str:\n  target:\n    "ab a"\n'
              '    x = gen regex "(a|b)+ ?" max 4 tokens\n    return x\n  infer:\n    sample temperature 0.8\n'
              '    speculate recycle k 3 tree dynamic\n')
    check(module, supported=LANGUAGE)
    lowered = lower(module)
    assert lowered == lower(parse(source))
    assert dict(lowered["p"].decoding.speculate.params)["tree"] == "dynamic"


def test_dynamic_recycling_on_smollm2_gives_the_greedy_tokens(smollm2):
    prompt = "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib("
    steps = (Emit(lambda env: prompt), Fill("h", 10, None, "t:h"), Return(lambda env: env["h"]))
    plain = Plan(steps, build_chain([("greedy", {})]), chat=False)
    expected = run_plan(plain, smollm2, {})[0].hole_tokens
    results = run_plan(dataclasses.replace(plain, speculate=SpeculatePlan("recycle", 8, tree="dynamic")), smollm2, {})
    assert results[0].hole_tokens == expected
    assert results.stats.verifications > 0 and results.stats.drafted == 80 * results.stats.verifications
