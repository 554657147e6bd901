"""ByteLM against brute-force enumeration of finite toy LMs (exact to 1e-9 in float64)."""

from __future__ import annotations

import math

import pytest
import torch
from byte_oracles import (
    FiniteToyLM,
    next_byte_probabilities,
    prefix_probability,
    prefixes,
    sequence_distribution,
    string_distribution,
    walk_prefixes,
)

from genweave.dsl.errors import GenArgumentError, GenRuntimeError
from genweave.runtime.bytes import EOT, ByteLM, ByteTrie

OVERLAPPING = [b"a", b"b", b"ab", b"ba", b"aab", b"bb", b"abb"]
TOL = 1e-9


@pytest.fixture(scope="module")
def finite_lm():
    return FiniteToyLM(OVERLAPPING, seed=11, max_tokens=4)


@pytest.fixture(scope="module")
def exact_strings(finite_lm):
    return {mode: string_distribution(finite_lm, sequence_distribution(finite_lm, mode))
            for mode in ("all", "canonical")}


@pytest.mark.parametrize("mode", ["all", "canonical"])
def test_unpruned_beam_equals_enumeration(finite_lm, exact_strings, mode):
    """prefix_logprob and next_byte_logprobs match enumeration for every prefix up to length 5."""
    byte_lm = ByteLM(finite_lm, mode=mode, settle=False)
    strings = exact_strings[mode]
    states = walk_prefixes(byte_lm.prefill(b""), byte_lm.advance, b"ab", 5)
    largest = 0
    for prefix, state in states.items():
        expected = prefix_probability(strings, prefix)
        assert expected > 0
        assert abs(math.exp(byte_lm.prefix_logprob(state)) - expected) < TOL
        next_byte = byte_lm.next_byte_logprobs(state).exp()
        assert abs(float(next_byte.sum()) - 1.0) < 1e-12
        torch.testing.assert_close(next_byte, next_byte_probabilities(strings, prefix), atol=TOL, rtol=0)
        largest = max(largest, state.size)
    # all tokenizations keep several hypotheses alive; canonical ones far fewer
    assert largest >= (6 if mode == "all" else 2)


def test_canonical_mode_with_a_settled_head_is_exact(finite_lm, exact_strings):
    """Prefilling the settled head as tokens changes nothing in canonical mode."""
    byte_lm = ByteLM(finite_lm, mode="canonical", settle=True)
    strings = exact_strings["canonical"]
    for prefix in [b"aabab", b"abbab", b"babba", b"aaaab", b"bbbab", b"abababa"]:
        state = byte_lm.prefill(prefix)
        assert state.head_ids and len(state.data) < byte_lm.trie.max_length
        assert abs(math.exp(byte_lm.prefix_logprob(state)) - prefix_probability(strings, prefix)) < TOL
        torch.testing.assert_close(byte_lm.next_byte_logprobs(state).exp(),
                                   next_byte_probabilities(strings, prefix), atol=TOL, rtol=0)


def test_all_mode_with_a_settled_head_sums_tokenizations_after_it(finite_lm):
    """"all" mode with a settled head = all tokenizations that start with the head's canonical tokens."""
    byte_lm = ByteLM(finite_lm, mode="all", settle=True)
    for prefix in [b"aabab", b"abbab", b"babba"]:
        state = byte_lm.prefill(prefix)
        assert state.head_ids == tuple(finite_lm.encode(state.head.decode()))
        strings = string_distribution(finite_lm, sequence_distribution(finite_lm, "all", state.head_ids))
        assert abs(math.exp(byte_lm.prefix_logprob(state)) - prefix_probability(strings, prefix)) < TOL
        torch.testing.assert_close(byte_lm.next_byte_logprobs(state).exp(),
                                   next_byte_probabilities(strings, prefix), atol=TOL, rtol=0)


@pytest.mark.parametrize("mode", ["all", "canonical"])
def test_byte_probabilities_sum_and_decrease(finite_lm, mode):
    """Σ_b P(xb) + P(x EOS) = P(x) and P(xb) <= P(x), for every prefix."""
    byte_lm = ByteLM(finite_lm, mode=mode, settle=False)
    states = walk_prefixes(byte_lm.prefill(b""), byte_lm.advance, b"ab", 4)
    for prefix, state in states.items():
        total = byte_lm.prefix_logprob(state)
        logweights = byte_lm.next_byte_logweights(state)
        assert abs(float(torch.logsumexp(logweights, 0)) - total) < 1e-12
        if len(prefix) < 4:
            for byte in b"ab":
                assert byte_lm.prefix_logprob(states[prefix + bytes([byte])]) <= total + 1e-12


def test_pruned_beams_are_lower_bounds_rising_with_k(finite_lm, exact_strings):
    strings = exact_strings["all"]
    exact = ByteLM(finite_lm, mode="all", settle=False)
    for prefix in prefixes(b"ab", 5)[1:]:
        expected = prefix_probability(strings, prefix)
        bounds = []
        for k in (1, 2, 3, 4, 6, 8):
            pruned = ByteLM(finite_lm, mode="all", beam=k, settle=False)
            bounds.append(math.exp(pruned.prefix_logprob(prefix)))
        assert all(b <= expected + 1e-12 for b in bounds)
        assert all(lo <= hi + 1e-12 for lo, hi in zip(bounds, bounds[1:])), (prefix, bounds)
        assert abs(math.exp(exact.prefix_logprob(prefix)) - expected) < TOL
    # the threshold rule also only removes mass
    thresholded = ByteLM(finite_lm, mode="all", prune=0.05, settle=False)
    for prefix in [b"abab", b"aabba", b"bbbb"]:
        assert math.exp(thresholded.prefix_logprob(prefix)) <= prefix_probability(strings, prefix) + 1e-12


def test_duplicate_token_bytes_stay_distinct():
    """Two ids with the same bytes are two tokens: the byte-level mass is their sum."""
    lm = FiniteToyLM([b"a", b"ab", b"ab", b"b"], seed=3, max_tokens=3)
    trie = ByteTrie.of(lm.vocab)
    assert trie.ends(trie.walk(b"ab")).tolist() == [1, 2]
    strings = string_distribution(lm, sequence_distribution(lm, "all"))
    byte_lm = ByteLM(lm, settle=False)
    for prefix in [b"a", b"ab", b"aba", b"abab"]:
        torch.testing.assert_close(byte_lm.next_byte_logprobs(prefix).exp(),
                                   next_byte_probabilities(strings, prefix), atol=TOL, rtol=0)


def test_impossible_prefix_has_no_next_byte(finite_lm):
    byte_lm = ByteLM(finite_lm, settle=False)
    state = byte_lm.prefill(b"abc")
    assert state.size == 0 and byte_lm.prefix_logprob(state) == float("-inf")
    with pytest.raises(GenRuntimeError, match="probability zero"):
        byte_lm.next_byte_logprobs(state)


def test_end_of_text_after_the_longest_texts(finite_lm):
    """With at most 4 tokens of at most 3 bytes, a 12-byte text must end."""
    byte_lm = ByteLM(finite_lm, mode="canonical")
    logprobs = byte_lm.next_byte_logprobs(b"aab" * 4)
    assert float(logprobs[EOT]) == 0.0


def test_options_are_checked(finite_lm):
    with pytest.raises(GenArgumentError):
        ByteLM(finite_lm, mode="greedy")
    with pytest.raises(GenArgumentError):
        ByteLM(finite_lm, beam=0)
    with pytest.raises(GenArgumentError):
        ByteLM(finite_lm, prune=1.0)
