"""Completeness (texts of the language: every step of their canonical tokenization and of a
random other tokenization is allowed, EOS at the end) and soundness (seeded random walks over
allowed tokens end in texts lark parses, and never reach an empty mask)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from constraint_oracles import unpack
from grammar_cases import STD, canonical_ids, std_text
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from lark import Lark
from lark.exceptions import LarkError

from genweave.runtime.constraints import Matcher

SETTINGS = settings(max_examples=25, deadline=None, database=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

KEYWORDS = {"select", "distinct", "from", "as", "join", "on", "inner", "left", "right", "where", "group",
            "by", "having", "order", "limit", "or", "and", "not", "is", "null", "in", "like", "asc", "desc"}


def json_texts():
    scalars = (st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.text(max_size=6)
               | st.floats(allow_nan=False, allow_infinity=False, width=32))
    values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                          | st.dictionaries(st.text(max_size=4), inner, max_size=3), max_leaves=6)
    layout = st.sampled_from([{"separators": (",", ":")}, {}, {"indent": 1}, {"ensure_ascii": False}])
    return st.builds(lambda value, options: json.dumps(value, **options), values, layout)


def arithmetic_texts():
    names = st.from_regex(r"[a-z_][a-z0-9_]{0,4}", fullmatch=True)
    numbers = st.from_regex(r"[0-9]{1,3}(\.[0-9]{1,2})?", fullmatch=True)
    spaces = st.sampled_from(["", " "])

    def grow(inner):
        binary = st.builds(lambda a, op, b, s: f"{a}{s}{op}{s}{b}", inner, st.sampled_from("+-*/^"), inner, spaces)
        call = st.builds(lambda f, args: f"{f}({', '.join(args)})", names, st.lists(inner, min_size=1, max_size=2))
        return binary | inner.map(lambda x: f"({x})") | inner.map(lambda x: f"-{x}") | call

    return st.recursive(names | numbers, grow, max_leaves=6)


def sql_texts():
    names = st.from_regex(r"[a-z_][a-z0-9_]{0,5}", fullmatch=True).filter(lambda n: n not in KEYWORDS)
    literals = st.from_regex(r"[0-9]{1,3}|'[a-z %]{0,4}'", fullmatch=True)
    expr = names | literals | st.builds(lambda a, b: f"{a}.{b}", names, names) | \
        st.builds(lambda f, a: f"{f}({a})", names, names | st.just("*"))

    def kw(word):
        return st.sampled_from([word, word.upper(), word.capitalize()])

    condition = st.builds(lambda a, op, b: f"{a} {op} {b}", expr, st.sampled_from(["=", "<>", "<=", ">"]), expr) | \
        st.builds(lambda a, n: f"{a} is {n}null", expr, st.sampled_from(["", "not "]))
    where = st.lists(condition, max_size=2).map(lambda cs: f" WHERE {' AND '.join(cs)}" if cs else "")
    items = st.just("*") | st.lists(st.builds(lambda e, a: e + a, expr, st.sampled_from(["", " AS x"])),
                                    min_size=1, max_size=3).map(", ".join)
    tail = st.sampled_from(["", " ORDER BY a DESC", " LIMIT 5", " GROUP BY a, b HAVING c > 1", ";"])
    return st.builds(lambda s, d, i, f, t, w, x: f"{s} {d}{i} {f} {t}{w}{x}", kw("select"),
                     st.sampled_from(["", "DISTINCT "]), items, kw("from"), names, where, tail)


TEXTS = {"json": json_texts, "arithmetic": arithmetic_texts, "sql": sql_texts}


def random_tokenization(vocab, data: bytes, rng) -> list[int]:
    """A random split of ``data`` into vocabulary tokens (single bytes always exist)."""
    out, i = [], 0
    while i < len(data):
        lengths = [n for n in range(1, min(12, len(data) - i) + 1) if vocab.ids_of(data[i:i + n])]
        n = int(rng.choice(lengths))
        out.append(vocab.ids_of(data[i:i + n])[0])
        i += n
    return out


def assert_accepted(constraint, ids, eos) -> None:
    matcher = Matcher(constraint)
    for token in [*ids, eos]:
        assert matcher.allows(token), token
        assert unpack(matcher.mask())[token]
        matcher.consume([token])
    assert matcher.is_complete() and not matcher.is_dead()


@pytest.mark.parametrize("vocab_name", ["smollm2", "sp"])
@pytest.mark.parametrize("name", STD)
def test_texts_of_the_language_are_allowed(name, vocab_name, vocabs, compiled):
    tokenizer, vocab, _ = vocabs[vocab_name]
    constraint = compiled(name, vocab_name)
    lark = Lark(std_text(name), parser="lalr")
    rng = np.random.default_rng(11)

    @SETTINGS
    @given(TEXTS[name]())
    def complete(text):
        try:
            lark.parse(text)
        except LarkError:
            assume(False)  # the strategy over-approximates (e.g. SQL keywords in odd places)
        ids = canonical_ids(tokenizer, vocab, text)
        assume(ids is not None)
        assert_accepted(constraint, ids, vocab.eos_ids[0])
        assert_accepted(constraint, random_tokenization(vocab, text.encode(), rng), vocab.eos_ids[0])

    complete()


def random_walk(constraint, rng, eos_ids, max_steps=150) -> list[int] | None:
    """Seeded walk over allowed tokens until EOS (taken with probability 1/2 when allowed); a
    token is drawn uniformly, or (half of the time) among the allowed single-byte tokens, which
    close strings and brackets; after 40 steps tokens that end the text are preferred."""
    matcher = Matcher(constraint)
    for step in range(max_steps):
        row = unpack(matcher.mask())[: constraint.vocab_size]
        allowed = np.flatnonzero(row)
        assert allowed.size, "a live state with an empty mask"
        ends = np.isin(allowed, eos_ids)
        if ends.any() and (ends.all() or rng.random() < 0.5):
            return matcher.tokens()
        tokens = allowed[~ends]
        finishing = np.zeros(0, dtype=np.int64)
        if step > 40:
            finishing = np.flatnonzero(unpack(constraint.complete_mask([matcher.state]))[0, : constraint.vocab_size])
            finishing = finishing[~np.isin(finishing, eos_ids)]
        if finishing.size:
            tokens = finishing
        elif rng.random() < 0.5:
            short = tokens[constraint.trie.token_offsets[tokens + 1] - constraint.trie.token_offsets[tokens] == 1]
            tokens = short if short.size else tokens
        assert matcher.consume([int(rng.choice(tokens))])
    return None


@pytest.mark.parametrize("vocab_name", ["smollm2", "sp"])
@pytest.mark.parametrize("name", STD)
def test_random_walks_give_texts_lark_parses(name, vocab_name, vocabs, compiled):
    _, vocab, _ = vocabs[vocab_name]
    constraint = compiled(name, vocab_name)
    lark = Lark(std_text(name), parser="lalr")
    rng = np.random.default_rng(zlib_seed(name + vocab_name))
    finished = 0
    for _ in range(12):
        ids = random_walk(constraint, rng, vocab.eos_ids)
        if ids is None:
            continue
        finished += 1
        text = vocab.decode([t for t in ids if t not in vocab.eos_ids]).decode("utf-8")
        lark.parse(text)  # raises if the constraint let a text outside the language through
    assert finished >= 6


def zlib_seed(text: str) -> int:
    return int.from_bytes(text.encode()[:8].ljust(8, b"\0"), "little") % (2**32)


def test_json_walk_texts_are_json(vocabs, compiled):
    """The std.json grammar is JSON: its texts load with the json module."""
    _, vocab, _ = vocabs["smollm2"]
    constraint = compiled("json", "smollm2")
    rng = np.random.default_rng(5)
    for _ in range(6):
        ids = random_walk(constraint, rng, vocab.eos_ids)
        if ids is not None:
            json.loads(vocab.decode([t for t in ids if t not in vocab.eos_ids]))


def test_sql_keywords_are_case_insensitive(compiled, vocabs):
    _, vocab, _ = vocabs["smollm2"]
    constraint = compiled("sql", "smollm2")
    for text in ("SeLeCt a FrOm t", "select * from t where a is not null limit 3;"):
        assert constraint.is_complete(constraint.walk(constraint.initial(), text.encode()))
    assert not constraint.is_complete(constraint.walk(constraint.initial(), b"select a"))
