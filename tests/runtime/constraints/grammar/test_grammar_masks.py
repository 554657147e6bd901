"""Grammar masks are exact: equal to the brute-force reference (every token's bytes read through
lark's own LALR parser, or a naive Earley recognizer, and per-terminal DFAs) on reachable states."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from constraint_oracles import unpack
from grammar_cases import EARLEY, STD, canonical_ids, std_text
from lark import Lark
from lark.exceptions import UnexpectedInput

from genweave.runtime.constraints import DEAD
from genweave.runtime.constraints.grammar import grammar

VALID = {
    "json": ['{"name": "Ada", "tags": ["x", 1.5e3, true, null], "nested": {"k": [], "e": {}}}',
             '[-0.25, "a\\u00e9\\n", false]'],
    "arithmetic": ["-2^3^x * (1 + f(2, y)) / 4 - 1", "a*b+c"],
    "sql": ["SELECT DISTINCT a, count(*) AS n FROM t AS x LEFT JOIN u ON x.id = u.id WHERE a > 1 "
            "AND NOT b IS NOT NULL OR c IN (1, 'x') GROUP BY a HAVING n > 2 ORDER BY n DESC LIMIT 10;",
            "select * from users where name like 'bo%'"],
}


def walk_states(constraint, reference, ids, vocab, picks):
    """(engine state, reference state) after ``ids[:k]`` for each k in ``picks``."""
    state, ref = constraint.initial(), reference.initial()
    out = []
    for k in range(max(picks) + 1):
        if k in picks:
            out.append((state, ref))
        if k < len(ids):
            state = constraint.advance(state, ids[k])
            ref = reference.walk(ref, vocab.token_bytes[ids[k]])
            assert state != DEAD and ref is not None
    return out


def random_states(constraint, reference, vocab, rng, count, steps=12):
    """States reached by random walks over allowed tokens (the reference follows the bytes)."""
    out = []
    for _ in range(count):
        state, ref = constraint.initial(), reference.initial()
        for _ in range(int(rng.integers(1, steps))):
            allowed = np.flatnonzero(unpack(constraint.mask([state]))[0, : constraint.vocab_size])
            allowed = allowed[~np.isin(allowed, vocab.eos_ids)]
            if not allowed.size:
                break
            token = int(rng.choice(allowed))
            state = constraint.advance(state, token)
            ref = reference.walk(ref, vocab.token_bytes[token])
        out.append((state, ref))
    return out


def assert_exact(constraint, reference, vocab, pairs) -> None:
    V = len(vocab)
    got = unpack(constraint.mask([state for state, _ in pairs]))
    assert not got[:, V:].any(), "bits beyond the vocabulary"
    for row, (_, ref) in enumerate(pairs):
        want = reference.allowed(ref, vocab)
        wrong = np.flatnonzero(got[row, :V] != want)
        assert not wrong.size, [(vocab.token_bytes[t], bool(want[t])) for t in wrong[:8]]


@pytest.mark.parametrize("vocab_name", ["smollm2", "sp"])
@pytest.mark.parametrize("name", STD)
def test_masks_match_reference(name, vocab_name, vocabs, compiled, references):
    tokenizer, vocab, _ = vocabs[vocab_name]
    constraint, reference = compiled(name, vocab_name), references(name)
    rng = np.random.default_rng(len(name) + len(vocab_name))
    pairs = []
    for text in VALID[name]:
        ids = canonical_ids(tokenizer, vocab, text)
        assert ids is not None
        count = len(ids) + 1
        picks = set(range(count)) if vocab_name == "sp" else {0, count - 1, *rng.choice(count, 4).tolist()}
        pairs += walk_states(constraint, reference, ids, vocab, picks)
    pairs += random_states(constraint, reference, vocab, rng, 2 if vocab_name == "smollm2" else 6)
    assert_exact(constraint, reference, vocab, pairs)


@pytest.mark.parametrize("name", sorted(EARLEY))
def test_earley_fallback_masks_match_reference(name, vocabs, references):
    tokenizer, vocab, trie = vocabs["smollm2"]
    text, sample = EARLEY[name]
    constraint = grammar(text).compile(trie)
    assert constraint.parser_kind == "earley"
    reference = references(name)
    ids = tokenizer.encode(sample, add_special_tokens=False)
    pairs = walk_states(constraint, reference, ids, vocab, set(range(len(ids) + 1)))
    pairs += random_states(constraint, reference, vocab, np.random.default_rng(7), 3)
    assert_exact(constraint, reference, vocab, pairs)
    assert constraint.is_complete(pairs[len(ids)][0])


def test_batched_masks_equal_single_rows(compiled, vocabs):
    constraint = compiled("json", "smollm2")
    tokenizer, vocab, _ = vocabs["smollm2"]
    ids = tokenizer.encode('{"a": [1, {"b": null}]}', add_special_tokens=False)
    states = [constraint.initial()]
    for token in ids:
        states.append(constraint.advance(states[-1], token))
    batch = [states[3], DEAD, states[0], states[-1], states[3], states[5]]
    masks = constraint.mask(batch)
    assert masks.dtype == torch.int32 and masks.shape == (6, (len(vocab) + 31) // 32)
    for row, state in enumerate(batch):
        assert torch.equal(masks[row], constraint.mask([state])[0])
    assert not masks[1].any()
    masks[0] = 0  # a fresh tensor: mutating it leaves the caches alone
    assert constraint.mask([states[3]]).any()


@pytest.mark.parametrize("name", STD)
def test_check_advance_and_walk_agree_with_masks(name, compiled, vocabs):
    tokenizer, vocab, _ = vocabs["smollm2"]
    constraint = compiled(name, "smollm2")
    ids = tokenizer.encode(VALID[name][0], add_special_tokens=False)
    rng = np.random.default_rng(3)
    state = constraint.initial()
    for k in range(0, len(ids), max(1, len(ids) // 4)):
        allowed = set(constraint.allowed_tokens(state).tolist())
        for token in rng.choice(len(vocab), 150).tolist() + sorted(allowed)[:40]:
            nxt = constraint.advance(state, token)
            assert constraint.check(state, token) == (token in allowed) == (nxt != DEAD)
            if nxt != DEAD and token not in vocab.eos_ids:
                assert constraint.walk(state, vocab.token_bytes[token]) == nxt
        for token in ids[k:k + max(1, len(ids) // 4)]:
            state = constraint.advance(state, token)
    for outside in (-1, len(vocab), len(vocab) + 3):
        assert constraint.advance(constraint.initial(), outside) == DEAD


def test_eos_exactly_when_complete_and_specials_never(compiled, vocabs):
    tokenizer, vocab, _ = vocabs["smollm2"]
    constraint = compiled("arithmetic", "smollm2")
    specials = sorted(vocab.special - set(vocab.eos_ids))
    state = constraint.initial()
    for token in tokenizer.encode("(1 + x) * 2", add_special_tokens=False):
        bits = unpack(constraint.mask([state]))[0]
        assert bits[list(vocab.eos_ids)].all() == constraint.is_complete(state)
        assert not bits[specials].any()
        assert all(constraint.advance(state, s) == DEAD for s in specials[:3])
        state = constraint.advance(state, token)
    assert constraint.is_complete(state)
    assert constraint.advance(state, vocab.eos_ids[0]) == state
    assert not constraint.is_complete(DEAD) and constraint.is_dead(constraint.dead_state())


def test_complete_mask_allows_the_tokens_that_end_the_text(compiled, vocabs):
    """A token is in the complete mask iff it is allowed and the text may end after it."""
    tokenizer, vocab, _ = vocabs["smollm2"]
    constraint = compiled("json", "smollm2")
    state = constraint.initial()
    for token in tokenizer.encode('[1, "ab', add_special_tokens=False):
        state = constraint.advance(state, token)
    complete = unpack(constraint.complete_mask([state]))[0, : len(vocab)]
    for token in constraint.allowed_tokens(state).tolist():
        nxt = constraint.advance(state, token)
        ends = token in vocab.eos_ids and constraint.is_complete(state)
        assert complete[token] == (ends or (token not in vocab.eos_ids and constraint.is_complete(nxt))), \
            vocab.token_bytes[token]
    assert complete.sum() > 0  # '"]' closes the array


def test_initial_and_lexer_boundaries(vocabs):
    """Lexemes end where the next byte cannot extend them: "SELECTa" lexes as SELECT then a
    name (only SELECT is possible first), while "ab" after SELECT is one name."""
    _, vocab, trie = vocabs["smollm2"]
    sql = grammar(std_text("sql")).compile(trie)
    lark = Lark(std_text("sql"), parser="lalr")
    state = sql.walk(sql.initial(), b"SELECTa FROM t")
    assert state != DEAD and sql.is_complete(state) and lark.parse("SELECTa FROM t")
    assert sql.walk(sql.initial(), b"SELECT aFROM t") == DEAD
    with pytest.raises(UnexpectedInput):
        lark.parse("SELECT aFROM t")
