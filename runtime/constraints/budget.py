"""``max N tokens``: a token-count budget on top of a compiled constraint.

A state is ``(inner, remaining)``: the inner constraint's state and how many text tokens may
still be produced (EOS is not counted: it ends the hole). For a regular inner constraint (a
:class:`CompiledConstraint`) the masks are **exact**: with ``d(q)`` the least number of text
tokens that lead from DFA state ``q`` to an accepting state (0 if ``q`` accepts), the mask of
``(s, r)`` allows

* the text tokens ``t`` allowed in ``s`` with ``d(δ(s, t)) <= r - 1``, and
* EOS iff ``s`` accepts.

So masked decoding never dead-ends once the language has a text of at most ``max_tokens``
tokens: every allowed token keeps a completion within the budget. Whether it has one is
:meth:`TokenBudget.least_tokens`; :meth:`TokenBudget.require_text` raises
:class:`~genweave.dsl.errors.GenCheckError` ("needs at least K tokens") when it has none, which
binding a hole calls. Without that check such a budget (every walk is doomed) falls back to
the one-token look-ahead below, so the runtime reports the dead end where the budget runs out.

Distances are computed lazily over the token-level graph (edge ``q -> δ(q, t)`` for each allowed
text token): the distinct successor states of a state come from one numba trie walk, cached; a
question "is ``d(q) <= k``?" runs a breadth-first search from ``q`` that stops at the first
accepting state or at depth ``k``, and records exact distances and lower bounds for reuse. The
work is therefore proportional to the states within reach of the states actually decoded, never
to the whole DFA; no Python loop touches the vocabulary. Rows are cached per ``(state, r - 1)``
for ``r - 1`` below the largest successor distance; from there on the row is the inner mask
itself (so a state has at most that many distinct budget rows).

Other inner constraints (context-free grammars and their combinations) keep a one-token
look-ahead: ``r >= 2`` the inner mask, ``r == 1`` the tokens that complete the language,
``r == 0`` EOS if complete. There a budget of 2 may still run into a state from which no single
token completes the language; its mask is empty, which the runtime reports as
:class:`~genweave.dsl.errors.BudgetExhaustedError` under ``sample`` (a zero weight under SMC),
never a silent truncation.

>>> from genweave.runtime.vocab import Vocabulary
>>> from genweave.runtime.constraints import compile_constraint, regex
>>> vocab = Vocabulary.from_bytes([b"a", b"b", b"<eos>"], eos_ids=[2])
>>> c = TokenBudget(compile_constraint(regex("a*b"), vocab, cache=False), max_tokens=1)
>>> c.mask([c.initial()])[0].item()  # only "b" completes the text in one token
2
>>> c = TokenBudget(compile_constraint(regex("aab"), vocab, cache=False), max_tokens=3)
>>> c.mask([c.advance(c.initial(), 0)])[0].item()  # "a" then "b"; a second "b" could not follow
1
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numba
import numpy as np
import torch

from genweave.dsl.errors import GenCheckError
from genweave.runtime.constraints.byte_dfa import DEAD
from genweave.runtime.constraints.compiled import CompiledConstraint
from genweave.runtime.constraints.token_trie import TokenTrie, walk_states


class BudgetState(NamedTuple):
    inner: int
    remaining: int


class TokenBudget:
    """A compiled constraint limited to ``max_tokens`` text tokens (module docstring)."""

    #: masks are rows cached per automaton state: cheap enough to apply at every step
    cached_masks = True

    def __init__(self, constraint, max_tokens: int):
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 0:
            raise GenCheckError(f"max tokens must be a non-negative integer, not {max_tokens!r}")
        self.inner = constraint
        self.max_tokens = max_tokens
        self.vocab_size = constraint.vocab_size
        self.eos_ids = constraint.eos_ids
        self.distances = TokenDistances(constraint) if isinstance(constraint, CompiledConstraint) else None
        self._rows: dict[tuple[int, int], np.ndarray] = {}  # (state, r - 1) -> packed row
        self._inner_from: dict[int, int] = {}  # state -> the least r - 1 whose row is the inner row
        #: exact masks: a regular inner constraint with a text of at most ``max_tokens`` tokens
        self.exact = self.distances is not None and self.least_tokens() is not None

    def least_tokens(self, bound: int | None = None) -> int | None:
        """``d(initial)``, the fewest text tokens of a text of the language, if it is at most
        ``bound`` (default ``max_tokens``), else None; always None for a non-regular inner
        constraint (no distances there)."""
        if self.distances is None:
            return None
        return self.distances.within(self.inner.initial(), self.max_tokens if bound is None else bound)

    def require_text(self, hole: str | None = None) -> None:
        """Raise :class:`GenCheckError` when the (regular) language has no text of at most
        ``max_tokens`` tokens — every masked walk would dead-end; ``hole`` names it in the message."""
        if self.distances is None or self.least_tokens() is not None:
            return
        search = 4 * self.max_tokens + 64
        least = self.least_tokens(search)
        what = f"hole '{hole}'" if hole else (self.inner.description or "the constraint")
        if least is None and self.distances.exact.get(self.inner.initial(), 0) is None:
            raise GenCheckError(f"no text of the language of {what} can be written with the tokens of "
                                "this vocabulary", hint="check the constraint against the model's tokens")
        needs = f"at least {least}" if least is not None else f"more than {search}"
        raise GenCheckError(
            f"the language of {what} needs {needs} tokens but max {self.max_tokens} tokens allows "
            f"{self.max_tokens}",
            hint=f"raise the budget to max {least or search} tokens or loosen the constraint")

    def initial(self) -> BudgetState:
        return BudgetState(self.inner.initial(), self.max_tokens)

    def mask(self, states: Sequence[BudgetState]) -> torch.Tensor:
        """Packed int32 masks ``[len(states), ceil(V/32)]`` (see the module docstring)."""
        if not self.exact:
            return self._lookahead_mask(states)
        inner = [s.inner for s in states]
        out = self.inner.mask(inner)
        for i, s in enumerate(states):  # a loop over the batch, not the vocabulary
            row = self._exact_row(s.inner, s.remaining)
            if row is not None:
                out[i] = torch.from_numpy(row)
        return out

    def _exact_row(self, state: int, remaining: int) -> np.ndarray | None:
        """The row of ``(state, remaining)``, or None when it is the inner mask row."""
        if state == DEAD:
            return None
        if remaining <= 1:
            rows = self.inner.complete_mask([state])[0]
            return (rows & self.inner.eos_mask()).numpy() if remaining == 0 else rows.numpy()
        threshold = remaining - 1
        if threshold >= self._inner_from.get(state, threshold + 1):
            return None
        key = (state, threshold)
        row = self._rows.get(key)
        if row is None:
            successors = self.distances.successors(state)
            far = [self.distances.within(q, threshold) for q in successors]
            if all(d is not None for d in far):  # every successor finishes in time: the inner row
                self._inner_from[state] = max(far, default=0)
                return None
            row = self._rows[key] = self.distances.row(state, successors[[d is not None for d in far]])
        return row

    def _lookahead_mask(self, states: Sequence[BudgetState]) -> torch.Tensor:
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
        if nxt != DEAD and not self._finishes(nxt, state.remaining - 1):
            nxt = DEAD
        return BudgetState(nxt, state.remaining - 1)

    def _finishes(self, state: int, remaining: int) -> bool:
        """Whether a text can be completed from ``state`` within ``remaining`` tokens."""
        if self.exact:
            return self.distances.within(state, remaining) is not None
        return remaining > 0 or self.inner.is_complete(state)

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


class TokenDistances:
    """Token distances ``d(q)`` to acceptance in a :class:`CompiledConstraint`'s DFA, lazily.

    ``successors(q)``: the distinct states one text token leads to (one numba trie walk, cached);
    ``within(q, k)``: ``d(q)`` if it is at most ``k``, else None (a breadth-first search that stops
    at the first accepting state or depth ``k``; exact distances and lower bounds are kept);
    ``row(q, targets)``: the packed row of the text tokens from ``q`` that end in ``targets``.
    """

    def __init__(self, constraint: CompiledConstraint):
        self.dfa = constraint.dfa
        self.trie: TokenTrie = constraint.trie
        self.exact: dict[int, int | None] = {}  # None: no accepting state is reachable
        self.floor: dict[int, int] = {}  # d(q) >= floor[q]
        self._successors: dict[int, np.ndarray] = {}
        self._mark = np.zeros(self.dfa.num_states, dtype=np.uint8)

    def successors(self, state: int) -> np.ndarray:
        found = self._successors.get(state)
        if found is None:
            t = self.trie
            out = np.empty(self.dfa.num_states, dtype=np.int32)
            count = _successor_states(t.node_byte, t.node_depth, t.node_end, t.node_tokens_lo,
                                      t.node_tokens_hi, self.dfa.transitions, state, t.max_depth,
                                      self._mark, out)
            found = np.sort(out[:count])
            self._successors[state] = found
        return found

    def _known(self, state: int) -> tuple[bool, int | None]:
        if self.dfa.accepting[state]:
            return True, 0
        if state in self.exact:
            return True, self.exact[state]
        return False, None

    def within(self, state: int, bound: int) -> int | None:
        """``d(state)`` if it is at most ``bound``, else None (see the class docstring)."""
        known, d = self._known(state)
        if known:
            return d if d is not None and d <= bound else None
        if self.floor.get(state, 1) > bound:
            return None
        best, depth, layer, seen = None, 0, [state], {state: 0}
        while layer:
            for q in layer:
                known, d = self._known(q)
                if d is not None and (best is None or depth + d < best):
                    best = depth + d
            if (best is not None and best <= depth + 1) or depth >= bound:
                break
            nxt = [int(p) for q in layer if not self._known(q)[0] for p in self.successors(q)]
            layer = [p for p in dict.fromkeys(nxt) if p not in seen]
            depth += 1
            seen.update((p, depth) for p in layer)
        if not layer or (best is not None and best <= depth + 1):
            self.exact[state] = best  # every continuation was examined
            return best if best is not None and best <= bound else None
        for q, j in seen.items():  # d(state) > bound, and d(state) <= j + d(q)
            if not self._known(q)[0]:
                self.floor[q] = max(self.floor.get(q, 1), bound + 1 - j)
        return None

    def row(self, state: int, targets: np.ndarray) -> np.ndarray:
        """Packed int32 row: the text tokens from ``state`` whose bytes end in one of ``targets``."""
        t = self.trie
        ok = np.zeros(self.dfa.num_states, dtype=np.bool_)
        ok[targets] = True
        readable, rows = np.zeros((1, t.words), dtype=np.uint32), np.zeros((1, t.words), dtype=np.uint32)
        # the trie walk of the masks, with the target states in the role of the accepting ones
        walk_states(t.node_byte, t.node_depth, t.node_end, t.node_tokens_lo, t.node_tokens_hi, t.sorted_tokens,
                    self.dfa.transitions, ok, np.array([state], dtype=np.int64), readable, rows, t.max_depth)
        row = rows[0]
        if self.dfa.accepting[state]:
            for token in t.eos_ids:
                row[token >> 5] |= np.uint32(1 << (token & 31))
        return row.view(np.int32)


@numba.njit(cache=True, nogil=True)
def _successor_states(trie_byte, trie_depth, trie_end, trie_lo, trie_hi, transitions, start,
                      max_depth, mark, out):  # pragma: no cover - compiled
    """Write into ``out`` the distinct states where a text token from ``start`` ends; their count.
    ``mark`` (one byte per DFA state, zero on entry) is zero again on return."""
    path = np.empty(max_depth + 1, np.int32)
    path[0] = start
    count = 0
    i = 0
    n = trie_byte.shape[0]
    while i < n:
        depth = trie_depth[i]
        state = transitions[path[depth - 1], trie_byte[i]]
        if state < 0:
            i = trie_end[i]
            continue
        path[depth] = state
        if trie_lo[i] < trie_hi[i] and mark[state] == 0:
            mark[state] = 1
            out[count] = state
            count += 1
        i += 1
    for k in range(count):
        mark[out[k]] = 0
    return count

