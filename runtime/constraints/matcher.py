"""The per-sequence matcher: one sequence's walk through a compiled constraint.

A matcher keeps the history of its states so it can roll back (speculative decoding rejects
draft tokens) and fork (beams, SMC particles). A token the constraint does not allow makes the
matcher *dead*; that is sticky (until rolled back) and never raises, so one broken row cannot kill
a batch. After an EOS token the matcher is *ended*: its mask allows only EOS, so finished rows of
a batch can be padded with EOS.

>>> from genweave.runtime.vocab import Vocabulary
>>> from genweave.runtime.constraints import compile_constraint, choice
>>> vocab = Vocabulary.from_bytes([b"yes", b"no", b"n", b"o", b"<eos>"], eos_ids=[4])
>>> m = Matcher(compile_constraint(choice(["yes", "no"]), vocab, cache=False))
>>> m.consume([2]), m.allows(3), m.allows(0), m.accepts("o")
(True, True, False, True)
>>> m.consume([3, 4]), m.is_complete(), m.is_ended()
(True, True, True)
>>> m.rollback(2); m.consume([0]), m.is_dead()
(False, True)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from genweave.runtime.constraints.compiled import CompiledConstraint


class Matcher:
    """One sequence's state in a constraint with the step protocol (``initial``, ``mask``,
    ``advance``, ``check``, ``is_complete``, ``is_dead``, ``dead_state``, ``eos_mask``, ``walk``,
    ``eos_ids``): a
    :class:`CompiledConstraint` or a :class:`~genweave.runtime.constraints.budget.TokenBudget`."""

    def __init__(self, constraint: CompiledConstraint, *, _history: list | None = None):
        self.constraint = constraint
        # (state, ended, token) after each consumed token; entry 0 is the start (token -1).
        self._history: list[tuple[Any, bool, int]] = _history or [(constraint.initial(), False, -1)]

    @property
    def state(self) -> Any:
        return self._history[-1][0]

    @property
    def num_consumed(self) -> int:
        return len(self._history) - 1

    def consume(self, token_ids: Sequence[int]) -> bool:
        """Advance by each token; returns False if the matcher is dead afterwards."""
        state, ended, _ = self._history[-1]
        eos = self.constraint.eos_ids
        for token in token_ids:
            token = int(token)
            if ended:  # only EOS may pad an ended row; anything else kills it (and ends "ended")
                state, ended = (state, True) if token in eos else (self.constraint.dead_state(), False)
            else:
                state = self.constraint.advance(state, token)
                ended = token in eos and not self.constraint.is_dead(state)
            self._history.append((state, ended, token))
        return not self.constraint.is_dead(state)

    def mask(self) -> torch.Tensor:
        """The packed int32 allowed-token row ``[ceil(V/32)]`` of the current state."""
        state, ended, _ = self._history[-1]
        return self.constraint.eos_mask() if ended else self.constraint.mask([state])[0]

    def allows(self, token_id: int) -> bool:
        state, ended, _ = self._history[-1]
        if ended:
            return int(token_id) in self.constraint.eos_ids
        return self.constraint.check(state, int(token_id))

    def is_complete(self) -> bool:
        """Whether the text so far is a complete string of the language (or EOS was consumed)."""
        state, ended, _ = self._history[-1]
        return ended or self.constraint.is_complete(state)

    def is_ended(self) -> bool:
        return self._history[-1][1]

    def is_dead(self) -> bool:
        return self.constraint.is_dead(self.state)

    def tokens(self) -> list[int]:
        """The token ids consumed so far (including an EOS)."""
        return [token for _, _, token in self._history[1:]]

    def rollback(self, n: int) -> None:
        """Forget the last ``n`` consumed tokens."""
        if not 0 <= n <= self.num_consumed:
            raise ValueError(f"cannot roll back {n} tokens: {self.num_consumed} consumed")
        del self._history[len(self._history) - n:]

    def fork(self) -> Matcher:
        """An independent copy (sharing the compiled constraint)."""
        return Matcher(self.constraint, _history=list(self._history))

    def accepts(self, text: str | bytes) -> bool:
        """Whether the text so far followed by ``text`` is a complete string of the language
        (bytes only: token budgets are not counted; False once ended)."""
        state, ended, _ = self._history[-1]
        if ended:
            return False
        data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
        return self.constraint.is_complete(self.constraint.walk(state, data))
