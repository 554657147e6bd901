"""Programs under ``speculate``: the same law as plain decoding, the same tokens under greedy.

Draws with speculation are compared with the exact law of the same plan *without* speculation,
enumerated by ``genweave.testing.exact.plan_distribution`` (G-test, false-alarm rate 1e-4, fixed
seeds). Every plan has a constraint with a token budget and a stateful sampler chain (repetition
penalty, temperature, top-k), so the masks and the penalty counts are advanced along the drafts.
"""

from __future__ import annotations

import dataclasses

import pytest

import genweave
from genweave import builders as gw
from genweave.compiler.check import check
from genweave.compiler.features import LANGUAGE
from genweave.compiler.lower import lower
from genweave.dsl.errors import GenCheckError, GenModelError
from genweave.dsl.parser import parse
from genweave.runtime.constraints import compile_constraint, regex
from genweave.runtime.constraints.budget import TokenBudget
from genweave.runtime.execute import Emit, Fill, Plan, Return, run_plan
from genweave.runtime.inference.speculative import SpeculatePlan, SpeculationStats
from genweave.runtime.samplers import build_chain, fold
from genweave.testing import ToyLM, assert_matches
from genweave.testing.exact import exact_distribution, plan_distribution

TOKENS = [b"a", b"b", b"ab", b" "]
CHAIN = [("repetition_penalty", {"penalty": 1.6}), ("temperature", {"t": 0.9}), ("top_k", {"k": 3})]


@pytest.fixture(scope="module")
def toy():
    return ToyLM(TOKENS, seed=5, sharpness=2.0)


def methods(toy):
    return {
        "draft": SpeculatePlan("draft", 3, draft=ToyLM(TOKENS, seed=9)),
        "draft=target": SpeculatePlan("draft", 3, draft=toy),
        "ngram": SpeculatePlan("ngram", 3, n=2),
        "self": SpeculatePlan("self", 3, layers=2),
        "recycle": SpeculatePlan("recycle", 2),
        "spectr": SpeculatePlan("spectr", 2, draft=ToyLM(TOKENS, seed=9), candidates=3),
        "rsd": SpeculatePlan("rsd", 0, draft=ToyLM(TOKENS, seed=9), width=2, depth=3),
    }


def two_holes(toy, speculate, stages, constrained=True):
    """Two holes with text between them; the first is constrained and budgeted."""
    c = TokenBudget(compile_constraint(regex("(a|b)*b ?"), toy.vocab, cache=False), 4) if constrained else None
    steps = (Emit(lambda env: "ab a"), Fill("h", 4, None, "t:h", constraint=c), Emit(lambda env: " a"),
             Fill("k", 2, None, "t:k"), Return(lambda env: env["h"] + "|" + env["k"]))
    return Plan(steps, fold(build_chain(list(stages))), chat=False, speculate=speculate)


def outcomes(results):
    return [(r.hole_tokens["h"], r.hole_tokens["k"]) for r in results]


@pytest.mark.parametrize("method", ["draft", "draft=target", "ngram", "self", "recycle", "spectr", "rsd"])
def test_speculation_samples_the_law_of_plain_decoding(toy, method):
    plan = two_holes(toy, methods(toy)[method], CHAIN)
    law = plan_distribution(dataclasses.replace(plan, speculate=None), toy, {})
    results = run_plan(plan, toy, {}, draws=2000, seed=11)
    assert_matches(outcomes(results), law.probs, alpha=1e-4)
    stats = results.stats
    assert isinstance(stats, SpeculationStats) and stats.verifications > 0
    assert stats.accepted <= stats.drafted


@pytest.mark.parametrize("method", ["draft", "recycle"])
def test_mirostat_state_follows_the_emitted_tokens(toy, method):
    # mirostat's mu after a token depends on the distribution it was drawn from: chains verify it in order
    plan = two_holes(toy, methods(toy)[method], [("repetition_penalty", {"penalty": 1.3}),
                                                 ("mirostat", {"tau": 1.0, "eta": 0.5})])
    law = plan_distribution(dataclasses.replace(plan, speculate=None), toy, {})
    assert_matches(outcomes(run_plan(plan, toy, {}, draws=2000, seed=13)), law.probs, alpha=1e-4)


@pytest.mark.parametrize("method", ["draft", "ngram", "self", "recycle", "spectr", "rsd"])
def test_greedy_speculation_gives_the_greedy_tokens(toy, method):
    plan = two_holes(toy, methods(toy)[method], [("greedy", {})])
    (expected,) = plan_distribution(dataclasses.replace(plan, speculate=None), toy, {}).probs
    results = run_plan(plan, toy, {}, draws=3)
    assert {o for o in outcomes(results)} == {expected}
    assert all(r.logprob == 0.0 for r in results)


def test_a_draft_equal_to_the_target_is_always_accepted(toy):
    plan = two_holes(toy, SpeculatePlan("draft", 3, draft=toy), [("temperature", {"t": 1.0})], constrained=False)
    stats = run_plan(plan, toy, {}, draws=200, seed=2).stats
    assert stats.accepted == stats.drafted > 0
    assert stats.mean_accepted > 1.5


def test_recycling_learns_the_successors_of_a_bigram_model():
    bigram = ToyLM(TOKENS, seed=5, sharpness=2.0, max_context=1)
    steps = (Emit(lambda env: "ab a"), Fill("h", 12, None, "t:h"), Return(lambda env: env["h"]))
    plan = Plan(steps, build_chain([("greedy", {})]), chat=False, speculate=SpeculatePlan("recycle", 4))
    (expected,) = plan_distribution(dataclasses.replace(plan, speculate=None), bigram, {}).probs
    results = run_plan(plan, bigram, {}, draws=2)
    assert all((r.hole_tokens["h"],) == expected for r in results)
    assert results.stats.forwards < len(expected[0])  # fewer forwards than tokens


def test_logprob_is_the_log_probability_of_the_draw(toy):
    plan = two_holes(toy, methods(toy)["draft"], CHAIN)
    law = plan_distribution(dataclasses.replace(plan, speculate=None), toy, {})
    for r in run_plan(plan, toy, {}, draws=50, seed=4):
        assert r.logprob == pytest.approx(__import__("math").log(law.probs[(r.hole_tokens["h"], r.hole_tokens["k"])]),
                                          abs=1e-4)


def test_a_draft_with_another_vocabulary_is_refused(toy):
    plan = two_holes(toy, SpeculatePlan("draft", 3, draft=ToyLM([b"a", b"c"], seed=1)), CHAIN)
    with pytest.raises(GenModelError, match="does not share the vocabulary"):
        run_plan(plan, toy, {}, draws=1)


# ------------------------------------------------------------------------------------ .gen
SOURCE = '''
model lm = "toy"
model small = "toy-small"

program p() -> str:
  target:
    "ab a"
    x = gen regex r"(a|b)+ ?" max 4 tokens
    return x
  infer:
    sample repetition_penalty 1.5 | temperature 0.8 | top_p 0.9
    SPECULATE
'''


@pytest.mark.parametrize("statement", ["speculate ngram 2 k 3", "speculate self layers 2 k 2", "speculate recycle k 3"])
def test_gen_programs_speculate_with_the_exact_law(toy, statement):
    module = genweave.compile(SOURCE.replace("SPECULATE", statement))
    results = module.p(model=toy, draws=2000, seed=3)
    law = exact_distribution(module.p, toy)
    assert_matches([(r.hole_tokens["x"],) for r in results], law.probs, alpha=1e-4)
    assert results.stats.verifications > 0


def test_gen_spectr_and_rsd_bind_their_options(toy):
    from genweave.compiler.plan import plan as bind

    module = genweave.compile(SOURCE.replace("SPECULATE", "speculate spectr draft small candidates 3 k 2"))
    assert bind(module.p.ir, toy.vocab).speculate == SpeculatePlan("spectr", 2, draft="toy-small", candidates=3)
    module = genweave.compile(SOURCE.replace("SPECULATE", "speculate rsd draft small width 3 depth 2"))
    assert bind(module.p.ir, toy.vocab).speculate == SpeculatePlan("rsd", 4, draft="toy-small", width=3, depth=2)


def test_gen_draft_model_binds_by_its_declared_spec(toy):
    from genweave.compiler.plan import plan as bind

    module = genweave.compile(SOURCE.replace("SPECULATE", "speculate draft small k 3"))
    bound = bind(module.p.ir, toy.vocab)
    assert bound.speculate == SpeculatePlan("draft", 3, draft="toy-small")
    with pytest.raises(GenModelError, match="toy-small"):
        run_plan(bound, toy, {}, draws=1)
    local = dataclasses.replace(bound, speculate=dataclasses.replace(bound.speculate, draft=ToyLM(TOKENS, seed=9)))
    law = plan_distribution(dataclasses.replace(bound, speculate=None), toy, {})
    assert_matches([(r.hole_tokens["x"],) for r in run_plan(local, toy, {}, draws=2000, seed=5)], law.probs,
                   alpha=1e-4)


@pytest.mark.parametrize(("statement", "message"), [
    ("speculate ngram\n    smc particles 4", "`speculate` together with `smc` is not supported yet"),
    ("speculate ngram\n    awrs", "`speculate` together with `awrs` is not supported yet"),
])
def test_the_checker_names_what_speculation_cannot_do(statement, message):
    with pytest.raises(GenCheckError, match=message):
        genweave.compile(SOURCE.replace("SPECULATE", statement))


@pytest.mark.parametrize(("built", "written"), [
    (gw.speculate("ngram", n=3, k=5), "speculate ngram 3 k 5"),
    (gw.speculate("draft", model="small", k=2), "speculate draft small k 2"),
    (gw.speculate("self", layers=4), "speculate self layers 4"),
    (gw.speculate("recycle", k=6), "speculate recycle k 6"),
    (gw.speculate("spectr", draft="small", candidates=3), "speculate spectr draft small candidates 3"),
    (gw.speculate("rsd", draft="small", width=3, depth=2), "speculate rsd draft small width 3 depth 2"),
])
def test_builders_lower_to_the_same_speculation(built, written):
    p = gw.Program("p", returns=str)
    p.text("ab a")
    p.ret(p.gen("x", gw.regex("(a|b)+ ?"), max_tokens=4))
    p.infer(gw.sample(gw.temperature(0.8)), built)
    module = gw.module(gw.model("lm", "toy"), gw.model("small", "toy-small"), p)
    source = ('model lm = "toy"\nmodel small = "toy-small"\nprogram p() -> str:\n  target:\n    "ab a"\n'
              '    x = gen regex "(a|b)+ ?" max 4 tokens\n    return x\n  infer:\n    sample temperature 0.8\n'
              f'    {written}\n')
    check(module, supported=LANGUAGE)
    assert lower(module) == lower(parse(source))
    assert lower(module)["p"].decoding.speculate is not None
