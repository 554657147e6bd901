"""Completeness (every valid text's canonical tokenization is allowed, EOS at its end) and
soundness (random walks over allowed tokens end in texts of the language)."""

from __future__ import annotations

import re
import zlib

import numpy as np
import pytest
from constraint_oracles import REGISTRY, unpack
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from genweave.runtime.constraints import Matcher, TokenTrie, compile_constraint, regex, stop


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_canonical_tokenizations_are_allowed(name, smollm2_tokenizer, smollm2_vocab, smollm2_trie):
    pattern = REGISTRY[name]
    constraint = compile_constraint(regex(pattern), smollm2_trie, cache=False)
    eos = smollm2_vocab.eos_ids[0]

    @settings(max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.from_regex(re.compile(pattern, re.ASCII), fullmatch=True))
    def complete(text):
        ids = smollm2_tokenizer.encode(text, add_special_tokens=False)
        assume(smollm2_vocab.decode(ids) == text.encode())  # the tokenizer drops some control chars
        matcher = Matcher(constraint)
        for token in [*ids, eos]:
            assert matcher.allows(token), (text, token)
            assert unpack(matcher.mask())[token]
            matcher.consume([token])
        assert matcher.is_complete() and not matcher.is_dead()

    complete()


def random_walk(constraint, rng, eos_ids, max_steps=200) -> list[int] | None:
    """Seeded walk over allowed tokens until EOS; None if ``max_steps`` pass without EOS.

    EOS is taken with probability 1/2 when allowed (so unbounded languages end). Otherwise a
    token is drawn uniformly among the allowed ones, or (half of the time) uniformly among those
    leading to a uniformly drawn next DFA state, so walks also cross rare transitions (the "@" of
    an e-mail address is a few tokens among thousands)."""
    matcher = Matcher(constraint)
    for _ in range(max_steps):
        allowed = np.flatnonzero(unpack(matcher.mask())[: constraint.vocab_size])
        assert allowed.size, "a live state with an empty mask"
        ends = np.isin(allowed, eos_ids)
        if ends.any() and (ends.all() or rng.random() < 0.5):
            return matcher.tokens()
        tokens = allowed[~ends]
        if rng.random() < 0.5:
            targets = constraint.advance_batch(np.full(tokens.size, matcher.state), tokens)
            tokens = tokens[targets == rng.choice(np.unique(targets))]
        assert matcher.consume([int(rng.choice(tokens))])
    return None


@pytest.mark.parametrize("vocab_name", ["smollm2", "sp"])
@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_random_walks_are_sound(name, vocab_name, request):
    vocab = request.getfixturevalue(f"{vocab_name}_vocab")
    trie = request.getfixturevalue("smollm2_trie") if vocab_name == "smollm2" else TokenTrie.from_vocabulary(vocab)
    constraint = compile_constraint(regex(REGISTRY[name]), trie, cache=False)
    pattern = re.compile(REGISTRY[name], re.ASCII)
    rng = np.random.default_rng(zlib.crc32(f"{name}/{vocab_name}".encode()))
    finished = 0
    for _ in range(15):
        tokens = random_walk(constraint, rng, list(vocab.eos_ids))
        if tokens is None:
            continue
        finished += 1
        text = vocab.decode(tokens).decode("utf-8")
        assert pattern.fullmatch(text), text
    assert finished >= 10


def test_random_walks_of_a_stop_language(smollm2_vocab, smollm2_trie):
    constraint = compile_constraint(stop("\n\n"), smollm2_trie, cache=False)
    rng = np.random.default_rng(7)
    for _ in range(10):
        matcher = Matcher(constraint)
        while not matcher.is_complete():
            allowed = np.flatnonzero(unpack(matcher.mask())[: constraint.vocab_size])
            # bias towards newline-holding tokens so that walks end quickly
            newline = [t for t in allowed[:2000].tolist() if b"\n" in smollm2_vocab.token_bytes[t]]
            pool = newline if newline and rng.random() < 0.5 else allowed
            matcher.consume([int(rng.choice(pool))])
        text = smollm2_vocab.decode(matcher.tokens()).decode("utf-8")
        assert text.endswith("\n\n") and text.find("\n\n") == len(text) - 2
