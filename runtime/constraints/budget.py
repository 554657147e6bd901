"""``max N tokens``: a token-count budget on top of a compiled constraint.

A state is ``(inner, remaining)``: the inner constraint's state and how many text tokens may
still be produced (EOS is not counted: it ends the hole). The masks are

* ``remaining >= 2``: the inner mask;
* ``remaining == 1``: only tokens that *complete* the language (lead to an accepting state), plus
  EOS when the inner state accepts — so a text never stops one token short;
* ``remaining == 0``: EOS when the inner state accepts, otherwise nothing.

The look-ahead is one token deep: a budget of 2 may still run into a state from which no single
token completes the language, which then has an empty mask. The runtime reports that as
:class:`~genweave.dsl.errors.BudgetExhaustedError` under ``sample`` (a zero weight under SMC);
it is never a silent truncation.

>>> from genweave.runtime.vocab import Vocabulary
>>> from genweave.runtime.constraints import compile_constraint, regex
>>> vocab = Vocabulary.from_bytes([b"a", b"b", b"<eos>"], eos_ids=[2])
>>> c = TokenBudget(compile_constraint(regex("a*b"), vocab, cache=False), max_tokens=1)
>>> c.mask([c.initial()])[0].item()  # only "b" completes the text in one token
2
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch

from genweave.dsl.errors import GenCheckError
from genweave.runtime.constraints.byte_dfa import DEAD
from genweave.runtime.constraints.compiled import CompiledConstraint


class BudgetState(NamedTuple):
    inner: int
    remaining: int


class TokenBudget:
    """A :class:`CompiledConstraint` limited to ``max_tokens`` text tokens (module docstring)."""

    def __init__(self, constraint: CompiledConstraint, max_tokens: int):
        if not isinstance(max_tokens, int) or max_tokens < 0:
            raise GenCheckError(f"max tokens must be a non-negative integer, not {max_tokens!r}")
        self.inner = constraint
        self.max_tokens = max_tokens
        self.vocab_size = constraint.vocab_size
        self.eos_ids = constraint.eos_ids

    def initial(self) -> BudgetState:
        return BudgetState(self.inner.initial(), self.max_tokens)

    def mask(self, states: Sequence[BudgetState]) -> torch.Tensor:
        """Packed int32 masks ``[len(states), ceil(V/32)]`` (see the module docstring)."""
        inner = [s.inner for s in states]
        out = self.inner.mask(inner)
        last = [i for i, s in enumerate(states) if s.remaining <= 1]
        if last:
            out[last] = self.inner.complete_mask([inner[i] for i in last])
        spent = [i for i, s in enumerate(states) if s.remaining == 0]
        if spent:
            out[spent] = self.inner.complete_mask([inner[i] for i in spent]) & self.inner.eos_mask()
        return out

    def advance(self, state: BudgetState, token: int) -> BudgetState:
        """The state after ``token``; an inner DEAD state if the token is not allowed."""
        if token in self.eos_ids:
            return BudgetState(self.inner.advance(state.inner, token), state.remaining)
        if state.remaining == 0:
            return BudgetState(DEAD, 0)
        nxt = self.inner.advance(state.inner, token)
        if state.remaining == 1 and not self.inner.is_complete(nxt):
            nxt = DEAD
        return BudgetState(nxt, state.remaining - 1)

    def check(self, state: BudgetState, token: int) -> bool:
        return not self.is_dead(self.advance(state, token))

    def is_complete(self, state: BudgetState) -> bool:
        return self.inner.is_complete(state.inner)

    def is_dead(self, state: BudgetState) -> bool:
        return state.inner == DEAD

    def dead_state(self) -> BudgetState:
        return BudgetState(DEAD, 0)

    def eos_mask(self) -> torch.Tensor:
        return self.inner.eos_mask()

    def walk(self, state: BudgetState, data: bytes) -> BudgetState:
        """Raw bytes through the inner constraint (bytes are not tokens: the budget is kept)."""
        return BudgetState(self.inner.walk(state.inner, data), state.remaining)

    def __repr__(self) -> str:
        return f"TokenBudget({self.inner!r}, max_tokens={self.max_tokens})"
