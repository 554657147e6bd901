"""A constraint together with ``stop`` on one hole: a value of the constraint, then the stop
string, which occurs only as the suffix (the hole ends at its first occurrence)."""

from __future__ import annotations

import re

import pytest

import genweave
from genweave.compiler import ir
from genweave.compiler.bind_constraints import hole_language
from genweave.dsl.errors import GenCheckError
from genweave.testing import ToyLM


def language(constraint, stop):
    return hole_language(ir.Hole("y", constraint, stop, None)).to_dfa()


def test_value_then_stop():
    dfa = language(ir.Regex("[0-9]+"), "\n")
    assert [dfa.accepts(t) for t in (b"12\n", b"7\n")] == [True, True]
    assert [dfa.accepts(t) for t in (b"12", b"\n", b"1\n2\n", b"1a\n")] == [False] * 4


def test_stop_only_as_the_suffix():
    # "xa" + "aa" contains "aa" before its end: the hole would have stopped at "xaa".
    dfa = language(ir.Regex("x?a?"), "aa")
    assert dfa.accepts(b"xaa") and dfa.accepts(b"aa")
    assert not dfa.accepts(b"xaaa") and not dfa.accepts(b"aaa")


def test_json_schema_then_stop():
    dfa = language(ir.Json('{"type": "integer", "minimum": 0}'), ";")
    assert dfa.accepts(b"12;") and not dfa.accepts(b"-1;") and not dfa.accepts(b"12")


def test_grammar_then_stop_is_an_error():
    with pytest.raises(GenCheckError, match="regular constraint only"):
        hole_language(ir.Hole("y", ir.Grammar('start: "a"+\n'), "\n", None))


def test_program_draws_end_with_the_stop_and_the_value_excludes_it():
    toy = ToyLM([b"a", b"b", b"ab", b"1", b"12", b".", b"b."], seed=3)
    module = genweave.compile('program p():\n  target:\n    "a"\n    y = gen regex r"[ab]+" stop "." max 8 tokens\n'
                              '    return y\n  infer:\n    sample\n')
    results = module.p(model=toy, draws=100, seed=1)
    for r in results:
        text = toy.decode(r.hole_tokens["y"]).decode()
        assert re.fullmatch(r"[ab]+\.", text) and r.value == text[:-1]
