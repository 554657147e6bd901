"""Languages beyond a single regex: literals, choices, stop strings, builtins, & and |."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genweave.dsl.errors import GenCheckError
from genweave.runtime.constraints import (
    builtin,
    choice,
    compile_constraint,
    language_dfa,
    literal,
    regex,
    stop,
)

FAST = settings(max_examples=150, deadline=None, database=None)
TEXT = st.text("ab\n.<|>é日-0123456789e+", max_size=10)


def accepts(language, text: str) -> bool:
    return language_dfa(language).accepts(text.encode("utf-8"))


def test_literal_and_choice():
    assert accepts(literal("héllo"), "héllo") and not accepts(literal("héllo"), "héll")
    assert accepts(literal(""), "") and not accepts(literal(""), "a")
    options = ["yes", "no", "n", "日本", "日"]
    dfa = language_dfa(choice(options))
    for text in ["yes", "no", "n", "日本", "日", "ye", "", "nono", "本"]:
        assert dfa.accepts(text.encode()) == (text in options), text
    assert choice(["b", "a"]).key() == choice(["a", "b", "a"]).key()


@pytest.mark.parametrize("needle", ["\n", "</s>", "abab", "日本", "aa"])
def test_stop_is_first_occurrence_as_suffix(needle):
    dfa = language_dfa(stop(needle))

    @FAST
    @given(TEXT, st.booleans())
    def agree(text, append):
        text = text + needle if append else text
        expected = text.endswith(needle) and text.find(needle) == len(text) - len(needle)
        assert dfa.accepts(text.encode()) == expected, text

    agree()


def test_stop_rejects_invalid_utf8():
    dfa = language_dfa(stop("\n"))
    assert dfa.accepts("日\n".encode()) and not dfa.accepts(b"\xe6\x97\n") and not dfa.accepts(b"\xff\n")


@pytest.mark.parametrize("name, parse, good, bad", [
    ("int", int, ["0", "-7", "1234567890"], ["01", "+1", "1.0", "-", "", "1_000"]),
    ("float", float, ["0", "-0.5", "3.25e-7", "1E+10", "12"], ["1.", ".5", "01", "1e", "nan", "inf"]),
    ("bool", {"true": True, "false": False}.__getitem__, ["true", "false"], ["True", "1", "fals"]),
])
def test_builtins(name, parse, good, bad):
    language = builtin(name)
    for text in good:
        assert accepts(language, text), text
        parse(text)
    for text in bad:
        assert not accepts(language, text), text


def test_every_float_text_parses():
    dfa = language_dfa(builtin("float"))

    @FAST
    @given(st.from_regex(re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?"), fullmatch=True))
    def parses(text):
        assert dfa.accepts(text.encode())
        float(text)

    parses()


COMBINED = [
    (r"[a-z]+", r"[a-c0-9]{2,4}"),
    (r"(ab)*", r"a(ba)*b|"),
    (r".*日.*", r"[^a]{1,3}"),
    (r"-?[0-9]+", r"[0-9]*5"),
]


@pytest.mark.parametrize("left, right", COMBINED)
def test_intersection_and_union_match_python_re(left, right):
    both = language_dfa(regex(left) & regex(right))
    either = language_dfa(regex(left) | regex(right))
    a, b = re.compile(left, re.ASCII), re.compile(right, re.ASCII)

    @FAST
    @given(st.one_of(st.from_regex(a, fullmatch=True), st.from_regex(b, fullmatch=True),
                     st.text("abc05-日é", max_size=6)))
    def agree(text):
        data = text.encode()
        in_a, in_b = bool(a.fullmatch(text)), bool(b.fullmatch(text))
        assert both.accepts(data) == (in_a and in_b), text
        assert either.accepts(data) == (in_a or in_b), text

    agree()


def test_combinators_nest_and_print():
    language = (regex("[a-z]+") & stop("ing")) | literal("42")
    assert str(language) == "(regex('[a-z]+') & stop('ing')) | literal('42')"
    assert language.key() != ((regex("[a-z]+") | stop("ing")) & literal("42")).key()
    dfa = language_dfa(language)
    assert [dfa.accepts(t.encode()) for t in ("sing", "singing", "42", "ing")] == [True, False, True, True]


@pytest.mark.parametrize("language", [
    regex("a") & regex("b"),
    regex(r"[0-9]+") & builtin("bool"),
    regex(r"[^\s\S]"),
    stop("ab") & regex("abab"),
])
def test_empty_languages_are_rejected_at_compile_time(language):
    with pytest.raises(GenCheckError, match="accepts no string"):
        language_dfa(language)


def test_empty_language_rejected_by_compile_constraint(toy_vocab):
    with pytest.raises(GenCheckError, match="accepts no string"):
        compile_constraint(choice(["a"]) & choice(["b"]), toy_vocab, cache=False)


@pytest.mark.parametrize("build, message", [
    (lambda: choice([]), "at least one option"),
    (lambda: choice(["a", 3]), "must be strings"),
    (lambda: stop(""), "non-empty"),
    (lambda: builtin("complex"), "unknown builtin"),
    (lambda: regex("a") & "b", "cannot combine"),
    (lambda: regex(3), "pattern string"),
])
def test_builder_errors(build, message):
    with pytest.raises(GenCheckError, match=message):
        build()
