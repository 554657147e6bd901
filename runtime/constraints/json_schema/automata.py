"""Byte NFAs built by continuation passing, and their subset construction into trim byte DFAs.

The JSON Schema compiler emits a schema right to left: every piece is compiled *given the state
that follows it* (its continuation), so a tail shared by several alternatives (the rest of an
object after an optional property) is built once and the NFA stays linear in the schema. Pieces
are byte DFAs embedded as blocks (strings, numbers, literals) joined by epsilon edges.

:meth:`NFA.determinize` runs the subset construction (compiled, :mod:`subsets`), then trims.

>>> nfa = NFA()
>>> tail = nfa.literal(b"}", nfa.final)
>>> entry = nfa.union([nfa.literal(b"{}", nfa.final), nfa.literal(b'{"a"', tail)])
>>> dfa = nfa.determinize(entry)
>>> dfa.accepts(b"{}"), dfa.accepts(b'{"a"}'), dfa.accepts(b"{")
(True, True, False)
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from genweave.dsl.errors import GenCheckError
from genweave.runtime.constraints.byte_dfa import DEAD, ByteDFA, empty_dfa
from genweave.runtime.constraints.json_schema import subsets

MAX_DFA_STATES = 200_000  # beyond this a schema is rejected rather than exhausting memory


class TooLarge(GenCheckError):
    """The automaton of a schema needs more than :data:`MAX_DFA_STATES` states."""

    def __init__(self):
        super().__init__(f"the schema needs more than {MAX_DFA_STATES} automaton states",
                         hint="lower max_depth (free values), max_string_length or max_array_length")
MINIMIZE_BELOW = 3_000  # larger schema DFAs are nearly minimal already, and Moore rounds add up


class NFA:
    """A growing byte NFA: a deterministic byte table plus epsilon edges (local to one compile).

    State ``final`` is the single accepting state; it has no edges. A state with byte edges
    never has two targets on one byte (blocks are DFAs), so nondeterminism is epsilon-only.
    """

    def __init__(self):
        self._blocks: list[np.ndarray] = []
        self._size = 0
        self.epsilon: dict[int, list[int]] = {}
        self.final = self.junction()

    @property
    def size(self) -> int:
        return self._size

    def _allocate(self, block: np.ndarray) -> int:
        offset = self._size
        self._blocks.append(block)
        self._size += block.shape[0]
        if self._size > MAX_DFA_STATES:
            raise TooLarge()
        return offset

    def junction(self) -> int:
        """A new state without byte edges (a place to hang epsilon edges)."""
        return self._allocate(np.full((1, 256), DEAD, dtype=np.int32))

    def link(self, source: int, target: int) -> None:
        """An epsilon edge ``source -> target``."""
        self.epsilon.setdefault(source, []).append(target)

    def union(self, entries: Iterable[int]) -> int:
        """A state from which each of ``entries`` is one epsilon step away."""
        entry = self.junction()
        for target in entries:
            self.link(entry, target)
        return entry

    def embed(self, dfa: ByteDFA, cont: int) -> int:
        """Copy ``dfa`` in; its accepting states continue to ``cont``. Returns the entry state
        (a fresh junction leading nowhere for the empty language)."""
        if dfa.is_empty():
            return self.junction()
        table = dfa.transitions
        offset = self._size
        block = np.where(table == DEAD, DEAD, table + offset).astype(np.int32)
        self._allocate(block)
        for state in np.flatnonzero(dfa.accepting).tolist():
            self.link(offset + state, cont)
        return offset + dfa.initial

    def literal(self, data: bytes, cont: int) -> int:
        """The bytes ``data``, then ``cont``."""
        if not data:
            return cont
        offset = self._size
        block = np.full((len(data) + 1, 256), DEAD, dtype=np.int32)
        block[np.arange(len(data)), np.frombuffer(data, dtype=np.uint8)] = offset + 1 + np.arange(len(data))
        self._allocate(block)
        self.link(offset + len(data), cont)  # the last row is a junction
        return offset

    def table(self) -> np.ndarray:
        return np.concatenate(self._blocks, axis=0) if self._blocks else np.zeros((0, 256), np.int32)

    def determinize(self, entry: int, *, minimal: bool = True) -> ByteDFA:
        """The trim DFA of the language from ``entry`` to ``final`` (minimised when small)."""
        sources = np.array(sorted(self.epsilon), dtype=np.int64)
        counts = np.zeros(self._size + 1, dtype=np.int64)
        counts[sources + 1] = [len(self.epsilon[s]) for s in sources.tolist()]
        targets = np.array([t for s in sources.tolist() for t in self.epsilon[s]], dtype=np.int32)
        rows, accepting, start = subsets.determinize(self.table(), np.cumsum(counts), targets, self.final,
                                                     entry, MAX_DFA_STATES)
        if start == subsets.OVERFLOW:
            raise TooLarge()
        dfa = trim(rows, accepting, int(start))
        if minimal and dfa.num_states < MINIMIZE_BELOW:
            return minimize(dfa)
        return dfa


def difference(left: ByteDFA, right: ByteDFA) -> ByteDFA:
    """The DFA of ``left`` minus ``right`` (pairs of states; ``right`` may be DEAD)."""
    return _pair_product(left, right, keep_left_only=True)


def intersection(left: ByteDFA, right: ByteDFA) -> ByteDFA:
    """The DFA of the strings in both (like ``product(union=False)``, without minimising)."""
    return _pair_product(left, right, keep_left_only=False)


def _pair_product(left: ByteDFA, right: ByteDFA, *, keep_left_only: bool) -> ByteDFA:
    if left.is_empty() or (right.is_empty() and not keep_left_only):
        return empty_dfa()
    right_table = right.transitions if not right.is_empty() else np.full((1, 256), DEAD, dtype=np.int32)
    right_accepting = right.accepting if not right.is_empty() else np.zeros(1, dtype=bool)
    rows, accepting = subsets.pair_product(left.transitions, left.accepting, right_table, right_accepting,
                                           left.initial, right.initial, keep_left_only)
    return trim(rows, accepting, 0)


def repeat_dfa(unit: ByteDFA, low: int, high: int | None) -> ByteDFA:
    """``unit{low,high}`` (``high=None``: unbounded) for a *prefix-free* unit with one accepting
    state without outgoing edges (one character, one escape), built level by level in numpy."""
    accepting = np.flatnonzero(unit.accepting)
    if len(accepting) != 1 or (unit.transitions[accepting[0]] != DEAD).any():
        raise ValueError("repeat_dfa needs a unit with one accepting state and no edges out of it")
    done = int(accepting[0])
    inner = [s for s in range(unit.num_states) if s != done]
    renumber = np.full(unit.num_states, DEAD, dtype=np.int64)
    renumber[inner] = np.arange(len(inner))
    width = len(inner)  # states per level (level start = renumbered initial)
    levels = (high if high is not None else low) + 1
    base = unit.transitions[inner]  # [width, 256]
    table = np.full((levels * width, 256), DEAD, dtype=np.int32)
    for level in range(levels):
        rows = np.full_like(base, DEAD)
        to_inner = (base != DEAD) & (base != done)
        rows[to_inner] = renumber[base[to_inner]] + level * width
        to_next = base == done
        if level + 1 < levels:
            rows[to_next] = (level + 1) * width + renumber[unit.initial]
        elif high is None:  # the last level loops on itself
            rows[to_next] = level * width + renumber[unit.initial]
        table[level * width:(level + 1) * width] = rows
    accepting_states = np.zeros(levels * width, dtype=bool)
    starts = np.arange(low, levels) * width + renumber[unit.initial]
    accepting_states[starts] = True
    return trim(table, accepting_states, int(renumber[unit.initial]))


def trim(transitions: np.ndarray, accepting: np.ndarray, initial: int) -> ByteDFA:
    """Like :func:`genweave.runtime.constraints.byte_dfa.trim` (keep the states reachable from
    ``initial`` that reach acceptance, breadth-first from ``initial``), in one compiled pass so
    that long chains (length counters) cost no more than short ones."""
    transitions = np.ascontiguousarray(transitions, dtype=np.int32)
    accepting = np.ascontiguousarray(accepting, dtype=np.bool_)
    if initial == DEAD or transitions.shape[0] == 0:
        return empty_dfa()
    order = subsets.live_order(transitions, accepting, initial)
    if not order.size:
        return empty_dfa()
    renumber = np.full(transitions.shape[0] + 1, DEAD, dtype=np.int32)
    renumber[order] = np.arange(len(order), dtype=np.int32)
    return ByteDFA(renumber[transitions[order]], accepting[order].copy(), 0)


def minimize(dfa: ByteDFA, max_rounds: int = 256) -> ByteDFA:
    """The minimal DFA of the same language (compiled Moore refinement on byte classes), trim;
    ``dfa`` itself when the refinement needs more than ``max_rounds`` rounds (long counters)."""
    if dfa.is_empty():
        return dfa
    n = dfa.num_states
    total = np.vstack([dfa.transitions, np.full((1, 256), DEAD, dtype=np.int32)])
    total[total == DEAD] = n  # an explicit dead state n
    # Bytes that act alike in every state share a column (found by a random projection).
    weights = np.random.default_rng(0).integers(1, 2**61, size=n + 1, dtype=np.int64)
    _, first, inverse = np.unique(weights @ total.astype(np.int64), return_index=True, return_inverse=True)
    if not np.array_equal(total[:, first][:, inverse.reshape(-1)], total):  # a hash collision
        _, first = np.unique(total, axis=1, return_index=True)
    blocks = subsets.refine_blocks(np.ascontiguousarray(total[:, np.sort(first)]), dfa.accepting, max_rounds)
    if not blocks.size:
        return dfa
    representatives = np.unique(blocks[:n], return_index=True)[1]
    index = np.full(int(blocks.max()) + 1, DEAD, dtype=np.int32)
    index[blocks[representatives]] = np.arange(len(representatives), dtype=np.int32)
    index[blocks[n]] = DEAD
    table = index[blocks[total[representatives]]]
    return trim(table, dfa.accepting[representatives], int(index[blocks[dfa.initial]]))
