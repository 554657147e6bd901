"""Builders of the search and selection statements (``beam``, ``best_of``, ``cautious``,
``lookahead_tree``, ``enumerate``) lower to the same IR as their ``.gen`` form, and run."""

import pytest

import genweave
from genweave import builders as gw
from genweave.compiler import ir
from genweave.compiler.check import check
from genweave.compiler.features import LANGUAGE
from genweave.compiler.lower import lower
from genweave.compiler.pipeline import optimize
from genweave.dsl.parser import parse
from genweave.testing import ToyLM


def one_hole(name: str, *infer):
    p = gw.Program(name, returns=str)
    p.text("a")
    x = p.gen("x", max_tokens=3)
    p.ret(x)
    p.infer(*infer)
    return p


def searches():
    return [
        one_hole("wide", gw.sample(gw.temperature(0.8)),
                 gw.beam(4, length_penalty=0.5, early_stopping="never", kind="stochastic", returns=2)),
        one_hole("plain", gw.beam(2, early_stopping=True)),
        one_hole("best", gw.best_of(3, by="len(x)"), gw.draws(2)),
        one_hole("careful", gw.cautious(candidates=8, entropy_low=0.1, entropy_high=1.0, segment=16)),
        one_hole("tree", gw.greedy(), gw.lookahead_tree(width=3, depth=5, rollouts=4, absolute=0.2, relative=0.3,
                                                         edit=0.5)),
        one_hole("exact", gw.enumerate_hole("x"), gw.seed(1)),
    ]


SEARCHES = '''
program wide() -> str:
  target:
    "a"
    x = gen max 3 tokens
    return x
  infer:
    sample temperature 0.8
    beam 4 length_penalty 0.5 early_stopping never kind stochastic returns 2

program plain() -> str:
  target:
    "a"
    x = gen max 3 tokens
    return x
  infer:
    beam width 2 early_stopping true

program best() -> str:
  target:
    "a"
    x = gen max 3 tokens
    return x
  infer:
    best_of 3 by len(x)
    draws 2

program careful() -> str:
  target:
    "a"
    x = gen max 3 tokens
    return x
  infer:
    cautious candidates 8 entropy_low 0.1 entropy_high 1.0 segment 16

program tree() -> str:
  target:
    "a"
    x = gen max 3 tokens
    return x
  infer:
    greedy
    lookahead_tree width 3 depth 5 rollouts 4 absolute 0.2 relative 0.3 edit 0.5

program exact() -> str:
  target:
    "a"
    x = gen max 3 tokens
    return x
  infer:
    enumerate x
    seed 1
'''


def test_search_builders_and_source_lower_to_equal_ir():
    built, written = gw.module(*searches()), parse(SEARCHES)
    check(built, supported=LANGUAGE)
    check(written, supported=LANGUAGE)
    from_builders, from_source = lower(built), lower(written)
    assert from_builders == from_source
    assert {n: optimize(p) for n, p in from_builders.items()} == {n: optimize(p) for n, p in from_source.items()}
    assert parse(gw.to_source(*searches())) == built
    assert from_source["wide"].decoding.search == ir.Beam(4, 0.5, "never", True, 2)
    assert from_source["plain"].decoding.search == ir.Beam(2, 1.0, "true", False, 1)
    assert from_source["careful"].decoding.search == ir.Cautious(8, 0.1, 1.0, 16)
    assert from_source["tree"].decoding.search == ir.LookaheadTree(3, 5, 4, 0.2, 0.3, 0.5)
    assert optimize(from_source["exact"]).holes()[0].guarantee == "exact"
    assert {optimize(from_source[n]).decoding.guarantee for n in ("wide", "best", "careful", "tree")} == {"selection"}


def test_defaults_follow_the_references():
    program = lower(parse('program p() -> str:\n  target:\n    return "a"\n  infer:\n    cautious\n'))["p"]
    assert program.decoding.search == ir.Cautious(40, 0.01, 1.5, 64)
    program = lower(parse('program p() -> str:\n  target:\n    return "a"\n  infer:\n    lookahead_tree\n'))["p"]
    assert program.decoding.search == ir.LookaheadTree(2, 20, 8, 0.25, 0.15, 0.4)


@pytest.mark.parametrize("name", ["wide", "plain", "best", "careful", "tree", "exact"])
def test_compiled_search_builders_run(name):
    module = gw.compile_module(*searches())
    results = getattr(module, name)(model=ToyLM([b"a", b"b", b"."], seed=3), seed=4)
    results = results if isinstance(results, genweave.Results) else genweave.Results((results,))
    assert all(isinstance(r.value, str) for r in results)
    counts = {"wide": 2, "plain": 1, "best": 2, "careful": 1, "tree": 4}
    if name in counts:
        assert len(results) == counts[name]
    else:
        assert sum(results.posterior.values()) == pytest.approx(1.0)
