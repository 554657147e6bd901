"""Holes constrained by Lark grammars: every draw parses, and draws follow the exact local law."""

import json

import lark
import pytest

import genweave
from genweave.testing import ToyLM, assert_matches, exact_distribution

GRAMMAR = r'''
start: item+ "."
?item: "a" | "b" | NUMBER
NUMBER: /[12]+/
%ignore " "
'''

SOURCE = f'''
grammar items = lark """{GRAMMAR}"""
program p() -> str:
  target:
    "x"
    g = gen items max 4 tokens
    return g
  infer:
    sample temperature 0.9
'''


@pytest.fixture(scope="module")
def toy():
    return ToyLM([b"x", b"a", b"b", b"1", b"2", b"12", b".", b" ", b"a.", b"b "], seed=4)


def test_every_draw_parses(toy):
    parser = lark.Lark(GRAMMAR, parser="lalr")
    for r in genweave.compile(SOURCE).p(model=toy, draws=300, seed=0):
        parser.parse(r.value)


def test_grammar_holes_follow_the_exact_local_law(toy):
    module = genweave.compile(SOURCE)
    law = exact_distribution(module.p, toy)
    assert law.dead_end == 0.0  # every prefix can end in one token here
    results = module.p(model=toy, draws=20_000, seed=1)
    assert_matches([(r.hole_tokens["g"],) for r in results], law.probs, alpha=1e-4)


def test_stdlib_json_grammar_constrains_a_hole():
    source = 'use std.json\nprogram p() -> str:\n  target:\n    "x"\n    v = gen json.value\n    return v\n'
    toy = ToyLM([b"x", b"1", b"2", b"[", b"]", b",", b"[1", b"]]", b"true", b"null", b" "], seed=0)
    results = genweave.compile(source).p(model=toy, draws=40, seed=2)
    for r in results:
        json.loads(r.value)
