"""The executor on hand-built plans: control flow that splits rows, and exact laws.

Draws are compared with laws enumerated by ``genweave.testing.exact.plan_distribution`` (G-test,
false-alarm rate 1e-4, fixed seeds).
"""

import pytest

from genweave.runtime.execute import Assign, Branch, Emit, Fill, Loop, Plan, Return, run_plan
from genweave.runtime.samplers import build_chain, fold
from genweave.testing import ToyLM, assert_matches
from genweave.testing.exact import plan_distribution

VOCAB = [b"a", b"b", b"ab", b" ", b"x"]


@pytest.fixture(scope="module")
def toy():
    return ToyLM(VOCAB, seed=11)


def chain(*stages):
    return fold(build_chain(list(stages)))


def plain(steps, *stages):
    return Plan(tuple(steps), chain(*stages), chat=False)


def hole(name, max_tokens):
    return Fill(name, max_tokens, None, f"test:{name}")


def branching_plan(*stages):
    # first hole picks a branch: texts starting with "a" get one more hole, the rest a literal
    return plain([
        Emit(lambda env: "x"),
        hole("h", 2),
        Branch(lambda env: env["h"].startswith("a"),
               then=(Emit(lambda env: " "), hole("k", 1), Return(lambda env: env["h"] + "|" + env["k"])),
               orelse=(Return(lambda env: "other:" + env["h"]),)),
    ], *stages)


def test_branches_split_rows_and_follow_the_exact_law(toy):
    plan = branching_plan(("temperature", {"t": 0.9}))
    law = plan_distribution(plan, toy, {})
    results = run_plan(plan, toy, {}, draws=20_000, seed=3)
    samples = [tuple(r.hole_tokens.get(n, ()) for n in ("h", "k") if n in r.hole_tokens) for r in results]
    assert_matches(samples, law.probs, alpha=1e-4)
    for r in results:
        if r.holes["h"].startswith("a"):
            assert r.value == r.holes["h"] + "|" + r.holes["k"]
        else:
            assert r.value == "other:" + r.holes["h"] and "k" not in r.holes


def test_loops_unroll_per_row_and_bind_the_variable(toy):
    plan = plain([
        Emit(lambda env: "x"),
        hole("n", 1),
        Loop("i", lambda env: range(len(env["n"])), (Emit(lambda env: " "), hole("w", 1),
                                                     Assign("last", lambda env: env["w"] + str(env["i"])))),
        Return(lambda env: env.get("last", "none")),
    ], ("temperature", {"t": 1.0}))
    results = run_plan(plan, toy, {}, draws=300, seed=1)
    for r in results:
        count = len(r.holes["n"])
        if count:
            assert r.value == r.holes["w"] + str(count - 1)
        else:
            assert r.value == "none"
    law = plan_distribution(plan, toy, {})
    values = [r.value for r in run_plan(plan, toy, {}, draws=20_000, seed=9)]
    assert_matches(values, law.value_law(), alpha=1e-4)


@pytest.mark.parametrize("stages", [
    [("temperature", {"t": 0.7}), ("top_p", {"p": 0.8})],
    [("top_k", {"k": 3}), ("temperature", {"t": 1.3})],
    [("repetition_penalty", {"penalty": 1.8}), ("temperature", {"t": 0.9})],
    [("min_p", {"p": 0.1})],
])
def test_sampler_chains_follow_their_exact_law(toy, stages):
    plan = plain([Emit(lambda env: "ab"), hole("h", 3), Return(lambda env: env["h"])], *stages)
    law = plan_distribution(plan, toy, {})
    results = run_plan(plan, toy, {}, draws=20_000, seed=21)
    assert_matches([(r.hole_tokens["h"],) for r in results], law.probs, alpha=1e-4)


def test_greedy_chain_is_a_point_mass(toy):
    plan = branching_plan(("greedy", {}))
    law = plan_distribution(plan, toy, {})
    assert list(law.probs.values()) == [1.0]
    results = run_plan(plan, toy, {}, draws=3)
    assert {tuple(r.hole_tokens.values()) for r in results} == set(law.probs)
