"""Anchors anywhere in a pattern (``^``, ``$``, ``\\A``, ``\\Z``): the DFA agrees with ``re`` on
every text of a small alphabet, for hypothesis-generated patterns and for the known shapes.

Semantics checked: :func:`regex_dfa` is ``re.fullmatch(p, s, re.ASCII)`` (``$`` also before a final
newline); with ``ecma=True``, ``$`` is only the end (the oracle writes it ``\\Z``); JSON Schema's
:func:`decoded_pattern` is an ECMA-262 search (``re.search`` of the ``\\Z`` spelling).
"""

from __future__ import annotations

import doctest
import itertools
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genweave.dsl.errors import GenCheckError
from genweave.runtime.constraints import regex_anchors
from genweave.runtime.constraints.json_schema.strings import decoded_pattern
from genweave.runtime.constraints.regex import regex_dfa

ALPHABET = ("a", "b", " ", "\n")
TEXTS = ["".join(chars) for n in range(5) for chars in itertools.product(ALPHABET, repeat=n)]

# (Python spelling, ECMA spelling in Python syntax) of each atom.
ATOMS = [("a", "a"), ("b", "b"), (" ", " "), (r"\n", r"\n"), (".", "."), ("[^a]", "[^a]"), (r"\s", r"\s"),
         ("^", "^"), ("$", r"\Z"), (r"\A", r"\A"), (r"\Z", r"\Z")]


def _combine(parts: st.SearchStrategy) -> st.SearchStrategy:
    def concat(items):
        return "".join(p for p, _ in items), "".join(e for _, e in items)

    def alternation(items):
        return "(?:" + "|".join(p for p, _ in items) + ")", "(?:" + "|".join(e for _, e in items) + ")"

    def quantified(item_and_suffix):
        (p, e), suffix = item_and_suffix
        return f"(?:{p}){suffix}", f"(?:{e}){suffix}"

    return st.one_of(
        st.lists(parts, min_size=2, max_size=3).map(concat),
        st.lists(parts, min_size=2, max_size=3).map(alternation),
        st.tuples(parts, st.sampled_from(["*", "?", "+", "{1,2}"])).map(quantified),
    )


PATTERNS = st.recursive(st.sampled_from(ATOMS), _combine, max_leaves=7)


def _disagreements(dfa, matches) -> list[str]:
    return [t for t in TEXTS if dfa.accepts(t.encode()) != bool(matches(t))]


@settings(max_examples=60, deadline=None, database=None)
@given(PATTERNS)
def test_fullmatch_semantics_python_and_ecma(spellings):
    python, ecma = spellings
    assert _disagreements(regex_dfa(python), lambda t: re.fullmatch(python, t, re.ASCII)) == [], python
    assert _disagreements(regex_dfa(python, ecma=True), lambda t: re.fullmatch(ecma, t, re.ASCII)) == [], python


@settings(max_examples=40, deadline=None, database=None)
@given(PATTERNS)
def test_json_schema_patterns_are_ecma_searches(spellings):
    python, ecma = spellings
    assert _disagreements(decoded_pattern(python), lambda t: re.search(ecma, t, re.ASCII)) == [], python


@pytest.mark.parametrize("pattern", [
    r"(^a|b)+", r"a(?:$|,)b?", r"a$\n", r"(?:a|^)b$", r"a*(?:\Z|b)", r"(?:^)*a(?:$)*", r"[$^]a\$", r"(?s).$",
])
def test_known_shapes(pattern):
    dfa = regex_dfa(pattern)
    assert _disagreements(dfa, lambda t: re.fullmatch(pattern, t, re.ASCII)) == []


def test_o55159_name_pattern_is_a_search_with_an_inner_end_anchor():
    dfa = decoded_pattern("^([^,]|$)")  # the first character is not a comma, or the text is empty
    assert [dfa.accepts(t) for t in (b"", b"a", b"a,b", b",", b",a", "é".encode())] == \
        [True, True, True, False, False, True]


def test_anchors_never_match_inside_a_class_or_escaped():
    dfa = regex_dfa(r"a[$^]\^")
    assert dfa.accepts(b"a$^") and dfa.accepts(b"a^^") and not dfa.accepts(b"a")


@pytest.mark.parametrize("pattern, message", [
    (r"(?m)a$\nb", "multiline mode (?m)"),
    (r"a(?m:\n^b)", "multiline mode (?m)"),
    (r"a\bb", "word boundary"),
    ("a\U0010fff0$|b$", "reserved character"),
])
def test_refused_anchor_shapes_are_named(pattern, message):
    with pytest.raises(GenCheckError, match=re.escape(message)):
        regex_dfa(pattern)


def test_docstring_examples():
    result = doctest.testmod(regex_anchors, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_regex_pieces_and_top_level_alternatives():
    from genweave.runtime.constraints.json_schema.strings import split_alternatives
    from genweave.runtime.constraints.regex_anchors import regex_pieces

    pattern = r"a|(b|c)|[]|]|[^]x]\||\\"
    pieces = list(regex_pieces(pattern))
    assert "".join(piece for _, piece, _ in pieces) == pattern
    assert [piece for _, piece, kind in pieces if kind == "open"] == ["[]", "[^]"]
    assert [piece for _, piece, kind in pieces if kind == "escape"] == [r"\|", "\\\\"]
    assert split_alternatives(pattern) == ["a", "(b|c)", "[]|]", r"[^]x]\|", "\\\\"]
