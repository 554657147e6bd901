"""Token masks are exact: equal to walking every token's bytes through the byte DFA."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from constraint_oracles import PARTIAL_TOKENS, REGISTRY, allowed_ids, brute_force_masks, unpack

from genweave.runtime.constraints import DEAD, TokenTrie, compile_constraint, regex
from genweave.runtime.vocab import Vocabulary


def sample_states(constraint, rng, count=8) -> list[int]:
    """The initial state, DEAD and random other states of the DFA."""
    n = constraint.dfa.num_states
    picked = rng.choice(n, size=min(count, n), replace=False).tolist()
    return [constraint.initial(), DEAD, *picked]


def assert_exact(constraint, vocab, states) -> None:
    allowed, complete = brute_force_masks(constraint.dfa, vocab, states)
    V = len(vocab)
    got = unpack(constraint.mask(states))
    assert got.shape == (len(states), 32 * ((V + 31) // 32))
    assert not got[:, V:].any(), "bits beyond the vocabulary"
    for row, state in enumerate(states):
        assert np.array_equal(got[row, :V], allowed[row]), f"state {state}"
    assert np.array_equal(unpack(constraint.complete_mask(states))[:, :V], complete)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_masks_match_brute_force_smollm2(name, smollm2_vocab, smollm2_trie):
    constraint = compile_constraint(regex(REGISTRY[name]), smollm2_trie, cache=False)
    assert_exact(constraint, smollm2_vocab, sample_states(constraint, np.random.default_rng(len(name))))


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_masks_match_brute_force_sentencepiece(name, sp_vocab):
    constraint = compile_constraint(regex(REGISTRY[name]), sp_vocab, cache=False)
    assert_exact(constraint, sp_vocab, list(range(constraint.dfa.num_states)) + [DEAD])


@pytest.mark.parametrize("pattern", [r"(ab|é|日)+", r".{1,2}", r"[^a]\n?", r"[é日🙂]*1?"])
def test_partial_utf8_tokens(pattern, toy_vocab):
    """Tokens holding part of a character are allowed exactly when the character can complete;
    invalid UTF-8 (stray bytes, overlong forms, surrogates) never is."""
    constraint = compile_constraint(regex(pattern), toy_vocab, cache=False)
    states = list(range(constraint.dfa.num_states)) + [DEAD]
    assert_exact(constraint, toy_vocab, states)
    never = {PARTIAL_TOKENS.index(t) for t in (b"\xff", b"\xc0\xaf", b"\xed\xa0\x80")}
    never |= {len(PARTIAL_TOKENS), len(PARTIAL_TOKENS) + 1}  # the empty token and <s>
    for state in states:
        assert not never & set(allowed_ids(constraint, state).tolist())


def test_split_character_walk(toy_vocab):
    """"日" in three tokens: each prefix is allowed and only the full character completes."""
    ids = [PARTIAL_TOKENS.index(t) for t in (b"\xe6", b"\x97", b"\xa5")]
    constraint = compile_constraint(regex("日"), toy_vocab, cache=False)
    state = constraint.initial()
    for token in ids:
        assert constraint.check(state, token)
        assert not constraint.is_complete(state)
        state = constraint.advance(state, token)
    assert constraint.is_complete(state)
    assert set(allowed_ids(constraint, state).tolist()) == set(toy_vocab.eos_ids)


def test_eos_only_in_accepting_states_and_specials_never(smollm2_vocab, smollm2_trie):
    constraint = compile_constraint(regex(r"[0-9]{1,3}"), smollm2_trie, cache=False).precompute()
    specials = np.array(sorted(smollm2_vocab.special - set(smollm2_vocab.eos_ids)))
    bits = unpack(constraint.mask(list(range(constraint.dfa.num_states))))
    for state in range(constraint.dfa.num_states):
        eos_allowed = bits[state, list(smollm2_vocab.eos_ids)]
        assert eos_allowed.all() == constraint.is_complete(state) and eos_allowed.any() == eos_allowed.all()
        assert not bits[state, specials].any()
        for token in specials[:3].tolist():
            assert constraint.advance(state, token) == DEAD


def test_batched_masks_equal_single_rows_and_fill_lazily(smollm2_trie):
    constraint = compile_constraint(regex(REGISTRY["iso8601"]), smollm2_trie, cache=False)
    assert not constraint.is_fully_indexed()
    states = [0, 3, DEAD, 3, 7, 0]
    batch = constraint.mask(states)
    assert batch.dtype == torch.int32 and batch.shape == (6, (49152 + 31) // 32)
    for row, state in enumerate(states):
        assert torch.equal(batch[row], constraint.mask([state])[0])
    assert not batch[2].any()
    batch[0] = 0  # a fresh tensor: mutating it leaves the cache alone
    assert constraint.mask([0]).any()
    assert constraint.precompute().is_fully_indexed()


def test_advance_and_check_agree_with_masks(smollm2_vocab, smollm2_trie):
    """``advance``/``check``/``advance_batch`` agree with the mask on every token of a state."""
    constraint = compile_constraint(regex(REGISTRY["email"]), smollm2_trie, cache=False)
    rng = np.random.default_rng(0)
    for state in sample_states(constraint, rng, 4):
        allowed = set(allowed_ids(constraint, state).tolist())
        tokens = rng.choice(len(smollm2_vocab), 300).tolist() + sorted(allowed)[:50]
        nxt = constraint.advance_batch([state] * len(tokens), tokens)
        for token, batched in zip(tokens, nxt.tolist()):
            single = constraint.advance(state, token)
            assert single == batched
            assert constraint.check(state, token) == (token in allowed) == (single != DEAD)
            if token in allowed and token not in smollm2_vocab.eos_ids:
                data = smollm2_vocab.token_bytes[token]
                assert single == constraint.walk(state, data)
    outside = [-1, len(smollm2_vocab), len(smollm2_vocab) + 5]
    assert constraint.advance_batch([0, 0, 0], outside).tolist() == [DEAD] * 3
    assert [constraint.advance(0, token) for token in outside] == [DEAD] * 3


def test_trie_holds_every_text_token_once(sp_vocab):
    trie = TokenTrie.from_vocabulary(sp_vocab)
    text = [i for i in range(len(sp_vocab)) if i not in sp_vocab.special and sp_vocab.token_bytes[i]]
    assert sorted(trie.sorted_tokens.tolist()) == text
    # node i's subtree ends where a node of depth <= depth(i) starts
    depth, end = trie.node_depth, trie.node_end
    for i in range(len(depth)):
        assert end[i] == len(depth) or depth[end[i]] <= depth[i]
        assert (depth[i + 1:end[i]] > depth[i]).all()


def test_duplicate_token_bytes_share_a_node():
    vocab = Vocabulary.from_bytes([b"a", b"ab", b"a", b"b", b"</s>"], eos_ids=[4])
    constraint = compile_constraint(regex("ab?"), vocab, cache=False)
    assert allowed_ids(constraint, constraint.initial()).tolist() == [0, 1, 2]
