"""The per-sequence Matcher and the ``max N tokens`` budget."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from constraint_oracles import unpack

from genweave.dsl.errors import GenCheckError
from genweave.runtime.constraints import (
    DEAD,
    BudgetState,
    Matcher,
    TokenBudget,
    choice,
    compile_constraint,
    regex,
)
from genweave.runtime.vocab import Vocabulary

TOKENS = [b"a", b"b", b"ab", b"c", b"abc", b"<pad>", b"</s>"]
A, B, AB, C, ABC, PAD, EOS = range(len(TOKENS))


@pytest.fixture(scope="module")
def vocab() -> Vocabulary:
    return Vocabulary.from_bytes(TOKENS, eos_ids=[EOS], special=[PAD])


def ids(mask) -> set[int]:
    return set(np.flatnonzero(unpack(mask)[: len(TOKENS)]).tolist())


def test_consume_mask_allows_and_complete(vocab):
    matcher = Matcher(compile_constraint(regex("(ab)+c?"), vocab, cache=False))
    assert ids(matcher.mask()) == {A, AB, ABC}
    assert matcher.consume([A, B]) and matcher.is_complete()
    assert ids(matcher.mask()) == {A, AB, ABC, C, EOS}
    assert matcher.allows(C) and not matcher.allows(B) and not matcher.allows(PAD)
    assert matcher.consume([C, EOS]) and matcher.is_ended() and matcher.tokens() == [A, B, C, EOS]
    assert ids(matcher.mask()) == {EOS}  # an ended row may be padded with EOS
    assert matcher.consume([EOS]) and matcher.is_complete()
    assert not matcher.consume([A]) and matcher.is_dead()


def test_dead_is_sticky_and_never_raises(vocab):
    matcher = Matcher(compile_constraint(regex("ab"), vocab, cache=False))
    assert not matcher.consume([B])
    assert matcher.is_dead() and matcher.state == DEAD and not matcher.is_complete()
    assert not matcher.consume([A, B]) and matcher.is_dead()
    assert ids(matcher.mask()) == set() and not matcher.allows(A) and not matcher.accepts("ab")
    assert not Matcher(matcher.constraint).consume([EOS])  # EOS before completion kills too


def test_rollback_and_fork(vocab):
    matcher = Matcher(compile_constraint(regex("(ab)+"), vocab, cache=False))
    matcher.consume([A, B, A])
    other = matcher.fork()
    assert not matcher.consume([A]) and matcher.is_dead()
    matcher.rollback(2)
    assert matcher.tokens() == [A, B] and matcher.is_complete() and not matcher.is_dead()
    assert other.tokens() == [A, B, A] and other.allows(B) and not other.is_complete()
    other.consume([B, EOS])
    assert other.is_ended() and not matcher.is_ended()
    with pytest.raises(ValueError, match="cannot roll back 3"):
        matcher.rollback(3)
    matcher.rollback(2)
    assert matcher.num_consumed == 0 and matcher.state == matcher.constraint.initial()


def test_accepts_walks_text_bytes(vocab):
    matcher = Matcher(compile_constraint(regex("(ab)+é?"), vocab, cache=False))
    assert matcher.accepts("abab") and matcher.accepts("abé") and not matcher.accepts("aba")
    matcher.consume([A])
    assert matcher.accepts("b") and matcher.accepts(b"b" + "é".encode()) and not matcher.accepts("")
    assert not matcher.accepts(b"b\xc3")  # half a character is not a complete text


def test_choice_matcher_on_a_trie(vocab):
    matcher = Matcher(compile_constraint(choice(["ab", "abc", "c"]), vocab, cache=False))
    assert ids(matcher.mask()) == {A, AB, ABC, C}
    matcher.consume([AB])
    assert ids(matcher.mask()) == {C, EOS}


def test_budget_last_step_only_completes(vocab):
    inner = compile_constraint(regex("a*b"), vocab, cache=False)
    budget = TokenBudget(inner, max_tokens=3)
    state = budget.initial()
    assert state == BudgetState(inner.initial(), 3)
    assert ids(budget.mask([state])) == {A, B, AB}
    state = budget.advance(state, A)
    assert ids(budget.mask([state])) == {A, B, AB}
    state = budget.advance(state, A)  # one token left: it must finish the text
    assert ids(budget.mask([state])) == {B, AB}
    assert not budget.check(state, A) and budget.is_dead(budget.advance(state, A))
    state = budget.advance(state, AB)
    assert state.remaining == 0 and budget.is_complete(state)
    assert ids(budget.mask([state])) == {EOS}
    assert budget.is_dead(budget.advance(state, B))
    assert not budget.is_dead(budget.advance(state, EOS))


def test_budget_batches_rows_of_every_kind(vocab):
    budget = TokenBudget(compile_constraint(regex("a*b?"), vocab, cache=False), max_tokens=5)
    start = budget.inner.initial()
    states = [BudgetState(start, 5), BudgetState(start, 1), BudgetState(start, 0), BudgetState(DEAD, 3)]
    masks = budget.mask(states)
    assert masks.dtype == torch.int32 and masks.shape == (4, 1)
    assert [ids(m) for m in masks] == [{A, B, AB, EOS}, {A, B, AB, EOS}, {EOS}, set()]
    budget_of_b = TokenBudget(compile_constraint(regex("ab"), vocab, cache=False), max_tokens=0)
    assert ids(budget_of_b.mask([budget_of_b.initial()])) == set()  # exhausted: a dead end


def test_matcher_over_a_budget(vocab):
    matcher = Matcher(TokenBudget(compile_constraint(regex("(ab)+"), vocab, cache=False), max_tokens=2))
    assert matcher.consume([A])
    assert ids(matcher.mask()) == {B}
    assert matcher.consume([B, EOS]) and matcher.is_ended()
    forked = Matcher(matcher.constraint)
    assert forked.consume([AB, A]) is False


def test_budget_rejects_bad_sizes(vocab):
    with pytest.raises(GenCheckError, match="non-negative integer"):
        TokenBudget(compile_constraint(regex("a"), vocab, cache=False), max_tokens=-1)
