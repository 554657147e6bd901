"""``&`` and ``|`` of constraints when one side is a grammar: run both, combine their masks.

A :class:`Combination` of two languages (grammars, regular languages, or combinations) compiles
to a :class:`CompiledCombination` whose state is an interned pair of the two sides' states (an
int; ``DEAD`` is -1, so token budgets and matchers work unchanged):

* union (``|``): the mask is the OR of the two masks (a side that left its language is dead and
  adds nothing); complete when either side is. This is exact.
* intersection (``&``): the mask is the AND; complete when both are. Every allowed token keeps
  the text a prefix of *each* language, but not necessarily of their intersection: unlike the
  product automaton of two regular languages, this can reach a state with an empty mask (a
  context-free language intersected with another has no general emptiness test).

>>> from genweave.runtime.constraints import regex
>>> from genweave.runtime.constraints.grammar.builder import grammar
>>> from genweave.runtime.vocab import Vocabulary
>>> vocab = Vocabulary.from_bytes([b"a", b"b", b"c", b"</s>"], eos_ids=[3])
>>> both = (grammar('start: "a"+ "b"') | regex("c+")).compile(vocab)
>>> both.allowed_tokens(both.initial()).tolist()
[0, 2]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from genweave.dsl.errors import GenCheckError
from genweave.runtime.constraints.byte_dfa import DEAD
from genweave.runtime.constraints.compiled import compile_constraint
from genweave.runtime.constraints.languages import Language
from genweave.runtime.constraints.token_trie import TokenTrie
from genweave.runtime.vocab import Vocabulary


@dataclass(frozen=True, slots=True)
class Combination:
    """``left & right`` (``op="and"``) or ``left | right`` (``op="or"``); see the module docstring."""

    left: object
    right: object
    op: str

    def __post_init__(self) -> None:
        for side in (self.left, self.right):
            if not (isinstance(side, Language) or hasattr(side, "compile")):
                raise GenCheckError(f"cannot combine a constraint with {side!r}",
                                    hint="combine constraints built with regex(), grammar(), choice(), ...")

    def key(self) -> str:
        return f"{self.op}({self.left.key()},{self.right.key()})"

    def compile(self, vocab: Vocabulary | TokenTrie, *, index: str = "lazy") -> CompiledCombination:
        trie = vocab if isinstance(vocab, TokenTrie) else TokenTrie.from_vocabulary(vocab)
        sides = [compile_constraint(side, trie, index=index, cache=False) if isinstance(side, Language)
                 else side.compile(trie, index=index) for side in (self.left, self.right)]
        return CompiledCombination(sides[0], sides[1], union=self.op == "or", description=str(self))

    def __and__(self, other) -> Combination:
        return Combination(self, other, "and")

    def __rand__(self, other) -> Combination:
        return Combination(other, self, "and")

    def __or__(self, other) -> Combination:
        return Combination(self, other, "or")

    def __ror__(self, other) -> Combination:
        return Combination(other, self, "or")

    def __str__(self) -> str:
        return f"({self.left}) {'&' if self.op == 'and' else '|'} ({self.right})"


class CompiledCombination:
    """Two compiled constraints stepped together (see the module docstring)."""

    def __init__(self, left, right, *, union: bool, description: str = ""):
        if left.vocab_size != right.vocab_size:
            raise GenCheckError("cannot combine constraints compiled for different vocabularies")
        self.left, self.right = left, right
        self.union = union
        self.description = description
        self.vocab_size = left.vocab_size
        self.eos_ids = left.eos_ids
        self._pairs: list[tuple] = []
        self._ids: dict[tuple, int] = {}

    def _state(self, a, b) -> int:
        dead_a, dead_b = self.left.is_dead(a), self.right.is_dead(b)
        if (dead_a and dead_b) or (not self.union and (dead_a or dead_b)):
            return DEAD
        key = (a, b)
        found = self._ids.get(key)
        if found is None:
            found = self._ids[key] = len(self._pairs)
            self._pairs.append(key)
        return found

    def _sides(self, states: Sequence[int]) -> tuple[list, list]:
        pairs = [self._pairs[s] if s != DEAD else (self.left.dead_state(), self.right.dead_state())
                 for s in states]
        return [a for a, _ in pairs], [b for _, b in pairs]

    def initial(self) -> int:
        return self._state(self.left.initial(), self.right.initial())

    def mask(self, states: Sequence[int]) -> torch.Tensor:
        a, b = self._sides(states)
        left, right = self.left.mask(a), self.right.mask(b)
        return left | right if self.union else left & right

    def complete_mask(self, states: Sequence[int]) -> torch.Tensor:
        a, b = self._sides(states)
        left, right = self.left.complete_mask(a), self.right.complete_mask(b)
        return left | right if self.union else left & right

    def advance(self, state: int, token: int) -> int:
        if state == DEAD:
            return DEAD
        a, b = self._pairs[state]
        return self._state(self.left.advance(a, token), self.right.advance(b, token))

    def check(self, state: int, token: int) -> bool:
        if state == DEAD:
            return False
        a, b = self._pairs[state]
        ok_a, ok_b = self.left.check(a, token), self.right.check(b, token)
        return ok_a or ok_b if self.union else ok_a and ok_b

    def walk(self, state: int, data: bytes) -> int:
        if state == DEAD:
            return DEAD
        a, b = self._pairs[state]
        return self._state(self.left.walk(a, data), self.right.walk(b, data))

    def is_complete(self, state: int) -> bool:
        if state == DEAD:
            return False
        a, b = self._pairs[state]
        done_a, done_b = self.left.is_complete(a), self.right.is_complete(b)
        return done_a or done_b if self.union else done_a and done_b

    def is_dead(self, state) -> bool:
        return state == DEAD

    def dead_state(self) -> int:
        return DEAD

    def eos_mask(self) -> torch.Tensor:
        return self.left.eos_mask()

    def allowed_tokens(self, state: int) -> np.ndarray:
        row = self.mask([state])[0].numpy()
        return np.flatnonzero(np.unpackbits(row.view(np.uint8), bitorder="little")[: self.vocab_size])

    def explain(self) -> str:
        how = "union (OR of masks, exact)" if self.union else "intersection (AND of masks)"
        parts = [getattr(side, "explain", lambda side=side: repr(side))() for side in (self.left, self.right)]
        return f"{self.description}: {how} of\n  " + "\n  ".join(parts)

    def __repr__(self) -> str:
        return f"CompiledCombination({self.description})"
