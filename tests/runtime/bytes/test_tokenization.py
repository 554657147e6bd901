"""Canonical encodings, settled prefixes and canonicity masks, against the tokenizers themselves."""

from __future__ import annotations

import itertools
import random

import pytest
from byte_oracles import canonical

from genweave.runtime.bytes import LongestMatch, tokenization_of
from genweave.runtime.models import ToyLM

VOCABS = {
    "overlapping": [b"a", b"b", b"ab", b"ba", b"aab", b"bb", b"abb"],
    "spanning": [b"a", b"b", b"c", b"abc", b"bc", b"cab", b"ca", b"bcab"],
}


@pytest.mark.parametrize("name", sorted(VOCABS))
def test_canonical_mask_matches_encode(name):
    """mask(after)[t] == (encode(decode(after + t)) == after + t) for every canonical ``after``."""
    lm = ToyLM(VOCABS[name])
    tok = LongestMatch(lm.vocab)
    text_ids = range(len(VOCABS[name]))
    for length in range(4):
        for after in itertools.product(text_ids, repeat=length):
            if not canonical(lm, after):
                continue
            mask = tok.canonical_mask(tuple(after))
            expected = [canonical(lm, (*after, t)) for t in text_ids]
            assert mask[:len(expected)].tolist() == expected, after
            assert not bool(mask[lm.eos_ids[0]])


@pytest.mark.parametrize("name", sorted(VOCABS))
def test_longest_match_settled_head_is_stable(name):
    """encode(x + y) starts with encode(x[:settled]) for every y, and the tail is shorter than a token."""
    lm = ToyLM(VOCABS[name])
    tok = tokenization_of(lm)
    assert isinstance(tok, LongestMatch)
    alphabet = sorted(set(b"".join(VOCABS[name])))
    rng = random.Random(5)
    for _ in range(400):
        x = bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        settled = tok.settled_length(x)
        head = tok.encode(x[:settled])
        assert len(x) - settled < tok.trie.max_length or settled == len(x)
        assert tok.encode(x) == lm.encode(x.decode())
        for _ in range(10):
            y = bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 6)))
            assert tok.encode(x + y)[:len(head)] == head, (x, y)


def test_duplicates_only_the_smallest_id_is_canonical():
    lm = ToyLM([b"a", b"ab", b"ab", b"b"])
    mask = LongestMatch(lm.vocab).canonical_mask(())
    assert mask[:4].tolist() == [True, True, False, True]

