"""``speculate`` inside ``for HOLE:``: that hole is decoded in draft-and-verify rounds, the others
token by token, and the draws keep the exact law of plain decoding (G-test against
``genweave.testing.exact_distribution``, false-alarm rate 1e-4, fixed seeds).

A hole's ``for HOLE:`` block replaces the program's inference for that hole: under a program-level
``speculate``, a hole whose block has no ``speculate`` is not speculated.
"""

from __future__ import annotations

import pytest

import genweave
from genweave import builders as gw
from genweave.compiler.check import check
from genweave.compiler.features import LANGUAGE
from genweave.compiler.lower import lower
from genweave.compiler.plan import plan as bind
from genweave.dsl.errors import GenCheckError
from genweave.dsl.parser import parse
from genweave.runtime.inference.speculative import SpeculatePlan, SpeculationStats
from genweave.testing import ToyLM, assert_matches, exact_distribution

SOURCE = '''
model lm = "toy"

program p() -> str:
  target:
    "ab a"
    a = gen regex r"(a|b)+ ?" max 4 tokens
    " ab"
    b = gen max 3 tokens
    return b
  infer:
    DECODING
INFER
'''
OWN = "    for a:\n        DECODING\n        speculate ngram 2 k 3\n"
SAMPLE = "sample repetition_penalty 1.5 | temperature 0.9"


def program(infer: str, decoding: str = SAMPLE):
    return genweave.compile(SOURCE.replace("INFER", infer).replace("DECODING", decoding))


@pytest.fixture(scope="module")
def toy():
    return ToyLM([b"a", b"b", b"ab", b" "], seed=5, sharpness=2.0)


def outcomes(results):
    return [(r.hole_tokens["a"], r.hole_tokens["b"]) for r in results]


def test_one_speculated_hole_keeps_the_exact_law(toy):
    module = program(OWN)
    results = module.p(model=toy, draws=2000, seed=3)
    assert_matches(outcomes(results), exact_distribution(module.p, toy).probs, alpha=1e-4)
    assert isinstance(results.stats, SpeculationStats) and results.stats.verifications > 0


def speculated_tokens(results, holes):
    """Tokens drawn in holes ``holes``, the closing end-of-sequence of the constrained hole ``a``
    included (its budget is followed by one forced end-of-sequence draw)."""
    return sum(len(r.hole_tokens[h]) + (h == "a") for r in results for h in holes)


def test_only_the_hole_with_speculate_is_verified(toy):
    own = program(OWN).p(model=toy, draws=300, seed=4)
    assert own.stats.emitted == speculated_tokens(own, ["a"])  # every draw of `a`, none of `b`
    assert own.stats.verifications > 0 and 0 < own.stats.forwards <= 5  # batched rounds of `a`'s 4 + 1 draws
    everywhere = program("    speculate ngram 2 k 3\n").p(model=toy, draws=300, seed=4)
    assert everywhere.stats.emitted > speculated_tokens(everywhere, ["a"])  # `b` is drafted too
    assert everywhere.stats.forwards > own.stats.forwards


def test_a_hole_block_without_speculate_turns_the_program_speculation_off(toy):
    module = program(f"    speculate ngram 2 k 3\n    for b:\n        {SAMPLE}\n")
    bound = bind(module.p.ir, toy.vocab)
    fills = [s for s in bound.steps if type(s).__name__ == "Fill"]
    assert [f.speculate for f in fills] == [None, False]
    results = module.p(model=toy, draws=1500, seed=6)
    assert results.stats.emitted == speculated_tokens(results, ["a"])
    assert_matches(outcomes(results), exact_distribution(module.p, toy).probs, alpha=1e-4)


def test_greedy_with_one_speculated_hole_gives_the_greedy_tokens(toy):
    plain = program("", decoding="greedy").p(model=toy, draws=2)
    fast = program(OWN, decoding="greedy").p(model=toy, draws=3)
    assert set(outcomes(fast)) == set(outcomes(plain))
    assert fast.stats.verifications > 0 and all(r.logprob == 0.0 for r in fast)


def test_the_hole_speculation_binds_into_its_fill(toy):
    bound = bind(program(OWN).p.ir, toy.vocab)
    fills = [s for s in bound.steps if type(s).__name__ == "Fill"]
    assert bound.speculate is None
    assert [f.speculate for f in fills] == [SpeculatePlan("ngram", 3, n=2), None]


@pytest.mark.parametrize(("infer", "message"), [
    ("    smc particles 4\n" + OWN, "`speculate` together with `smc` is not supported yet"),
    ("    for a:\n        awrs\n        speculate ngram\n", "`speculate` together with `awrs`"),
])
def test_the_checker_refuses_what_per_hole_speculation_cannot_run(infer, message):
    with pytest.raises(GenCheckError, match=message):
        program(infer)


def test_builders_lower_to_the_same_per_hole_speculation():
    p = gw.Program("p", returns=str)
    p.text("ab a")
    p.gen("a", gw.regex("(a|b)+ ?"), max_tokens=4)
    p.text(" ab")
    p.ret(p.gen("b", max_tokens=3))
    p.infer(gw.sample(gw.temperature(0.9)),
            gw.for_hole("a", gw.sample(gw.temperature(0.9)), gw.speculate("ngram", n=2, k=3)))
    module = gw.module(gw.model("lm", "toy"), p)
    source = SOURCE.replace("INFER", OWN).replace("DECODING", "sample temperature 0.9")
    check(module, supported=LANGUAGE)
    assert lower(module) == lower(parse(source))
