"""Regex -> byte DFA: same language as ``re.fullmatch(p, s, re.ASCII)``, UTF-8 exact, errors named."""

from __future__ import annotations

import re

import numpy as np
import pytest
from constraint_oracles import REGISTRY
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genweave.dsl.errors import GenCheckError
from genweave.runtime.constraints.byte_dfa import DEAD
from genweave.runtime.constraints.regex import regex_dfa, strip_edge_anchors

ALPHABET = "ab01-.@ \n\"xzé日🙂\u0100\u024fTZ:+"


def run_all(dfa, sequences: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Vectorised acceptance of byte sequences (rows of ``sequences``, padded)."""
    table = np.vstack([dfa.transitions, np.full((1, 256), DEAD, dtype=np.int32)])
    state = np.full(len(sequences), dfa.initial, dtype=np.int64)
    for k in range(sequences.shape[1]):
        step = lengths > k
        state[step] = table[state[step], sequences[step, k]]
    return np.append(dfa.accepting, False)[state]


def test_any_character_is_exactly_utf8():
    """``(?s).`` accepts exactly the valid UTF-8 encodings of one character (all 1-3 byte
    sequences checked; 4-byte ones sampled around the boundaries)."""
    dfa = regex_dfa(r"(?s).")

    def valid(data: bytes) -> bool:
        try:
            return len(data.decode("utf-8")) == 1
        except UnicodeDecodeError:
            return False

    for length in (1, 2):
        grid = np.stack(np.meshgrid(*[np.arange(256)] * length, indexing="ij"), -1).reshape(-1, length)
        expected = np.array([valid(bytes(row)) for row in grid.tolist()])
        assert np.array_equal(run_all(dfa, grid, np.full(len(grid), length)), expected)
    rng = np.random.default_rng(0)
    for length, leads in ((3, (0xE0, 0xF0)), (4, (0xF0, 0xF8))):
        grid = rng.integers(0x78, 0xC4, size=(40_000, length))
        grid[:, 0] = rng.integers(*leads, size=len(grid))
        expected = np.array([valid(bytes(row)) for row in grid.tolist()])
        assert expected.any() and not expected.all()
        assert np.array_equal(run_all(dfa, grid, np.full(len(grid), length)), expected)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_same_language_as_python_re(name):
    pattern = REGISTRY[name]
    dfa = regex_dfa(pattern)
    compiled = re.compile(pattern, re.ASCII)

    @settings(max_examples=150, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(st.one_of(st.from_regex(compiled, fullmatch=True), st.text(ALPHABET, max_size=8)))
    def agree(text):
        assert dfa.accepts(text.encode("utf-8")) == bool(compiled.fullmatch(text)), text

    agree()


@pytest.mark.parametrize("pattern, accepted, rejected", [
    (r"^ab$", ["ab"], ["a", "abb"]),
    (r"\Aab\Z", ["ab"], ["ab\n"]),
    (r"a\$", ["a$"], ["a"]),
    (r"a\\$", ["a\\"], ["a\\$"]),
    (r"^a|b$", ["a", "b"], ["ab"]),
    (r"\u00e9+\U0001F642", ["é🙂", "éé🙂"], ["🙂"]),
    (r"[\u0041-\u005a]\u002d", ["Q-"], ["q-"]),
    (r"(?i)hello", ["HeLLo"], ["help"]),
    (r"(?s)a.b", ["a\nb"], ["ab"]),
    (r"a.b", ["a-b"], ["a\nb"]),
    (r"\d\w\s", ["1_ "], ["١a "]),  # ASCII classes: Arabic-Indic digit is not \d
    (r"(?:ab){2,}?c*?", ["abab", "ababc"], ["ab"]),
    (r"a{,2}", ["", "aa"], ["aaa"]),
    (r"[^\n]{0,3}", ["", "日日日"], ["日日日日"]),
])
def test_pattern_examples(pattern, accepted, rejected):
    dfa = regex_dfa(pattern)
    for text in accepted:
        assert dfa.accepts(text.encode()), text
    for text in rejected:
        assert not dfa.accepts(text.encode()), text


@pytest.mark.parametrize("pattern, feature", [
    (r"(a)\1", "backreference"),
    (r"(?P<x>a)(?P=x)", "backreference"),
    (r"(?=a)a", "lookahead"),
    (r"a(?!b)", "negative lookahead"),
    (r"(?<=a)b", "lookbehind"),
    (r"(?<!a)b", "negative lookbehind"),
    (r"(a)?(?(1)b|c)", "conditional"),
    (r"a\bc", "word boundary"),
    (r"a\Bc", "non-boundary"),
    (r"(?m)a^b", "multiline mode (?m)"),
    (r"(?>ab)", "atomic group"),
    (r"a++", "possessive"),
    (r"(?x) a b", "verbose"),
])
def test_unsupported_features_are_named(pattern, feature):
    with pytest.raises(GenCheckError, match=re.escape(feature)):
        regex_dfa(pattern)


@pytest.mark.parametrize("pattern", ["(", "a{2}{3}", r"\p{L}", "[b-a]", "*a"])
def test_invalid_patterns_are_check_errors(pattern):
    with pytest.raises(GenCheckError, match="invalid regex"):
        regex_dfa(pattern)


def test_strip_edge_anchors_keeps_escaped_dollars():
    assert strip_edge_anchors(r"^a$") == "a"
    assert strip_edge_anchors(r"a\$") == r"a\$"
    assert strip_edge_anchors(r"a\\$") == r"a\\"
    assert strip_edge_anchors(r"\Aa\Z") == "a"


def test_dfas_are_trim_and_minimal():
    """Every state reaches acceptance (no dead ends) and equivalent states are merged."""
    dfa = regex_dfa(r"(ab|cb)*(ab|cb)")  # minimal DFA: 3 states (start, after a or c, accept)
    assert dfa.num_states == 3
    for pattern in REGISTRY.values():
        dfa = regex_dfa(pattern)
        for state in range(dfa.num_states):  # a random walk from any state hits acceptance
            assert _reaches_acceptance(dfa, state)


def _reaches_acceptance(dfa, state) -> bool:
    seen, frontier = {state}, [state]
    while frontier:
        if any(dfa.accepting[s] for s in frontier):
            return True
        nxt = {int(t) for s in frontier for t in dfa.transitions[s] if t != DEAD} - seen
        seen |= nxt
        frontier = list(nxt)
    return False


def equivalent(a, b) -> bool:
    """Two trim DFAs accept the same language: every pair of states reached by the same bytes
    agrees on acceptance and on which bytes lead on."""
    seen, queue = {(a.initial, b.initial)}, [(a.initial, b.initial)]
    for p, q in queue:
        if a.accepting[p] != b.accepting[q]:
            return False
        if not np.array_equal(a.transitions[p] == DEAD, b.transitions[q] == DEAD):
            return False
        for pair in set(zip(a.transitions[p].tolist(), b.transitions[q].tolist())) - {(DEAD, DEAD)}:
            if pair not in seen:
                seen.add(pair)
                queue.append(pair)
    return True


def test_alphabet_compression_keeps_the_language(monkeypatch):
    """Classes of >4096 characters are compressed to atoms; the DFA is the one without."""
    pattern = r"([\u0400-\u4fff]x|[\u3000-\u9fff]y|[^\u4000-\u40ff]z|.)+"
    compressed = regex_dfa(pattern)
    monkeypatch.setattr("genweave.runtime.constraints.alphabet.COMPRESS_ABOVE", 10**9)
    plain = regex_dfa(pattern)
    assert equivalent(compressed, plain) and compressed.num_states == plain.num_states
    assert not equivalent(compressed, regex_dfa(r"([\u0400-\u4fff]x|[\u3000-\u9fff]y|.)+"))


def test_huge_classes_match_python_re():
    pattern = r"[\u0100-\U0010ffff]{1,2}[^\u00e0-\U000e0000]?"
    dfa = regex_dfa(pattern)
    compiled = re.compile(pattern, re.ASCII)

    @settings(max_examples=200, deadline=None, database=None)
    @given(st.text(st.characters(codec="utf-8"), max_size=4))
    def agree(text):
        assert dfa.accepts(text.encode()) == bool(compiled.fullmatch(text)), text

    agree()
