"""Append-only stores of a compiled grammar: interned parser stacks and cached mask rows.

:class:`StackTable` holds persistent parser stacks as a hash-consed linked list: a node is
``(state, parent)`` and equal stacks are the same node, so a sequence state ``(node, lexer
state)`` is a plain int and rolling back is keeping an old int. :class:`RowStore` holds, per
position (top parser state, lexer state), the packed row of tokens accepted whatever the rest
of the stack is, and the list of context-dependent tokens to check per sequence.

>>> stacks = StackTable(initial=5)
>>> a = stacks.push(0, [7, 9]); b = stacks.push(0, [7, 9])
>>> a == b, stacks.states(a)
(True, [5, 7, 9])
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class StackTable:
    """Interned parser stacks; node 0 is the stack holding only ``initial``. ``nodes[n]`` is
    ``(state, parent)`` (int32; the root's parent is -1)."""

    def __init__(self, initial: int):
        self.nodes = np.zeros((64, 2), dtype=np.int32)
        self._ids: dict[tuple[int, int], int] = {}
        self.count = 0
        self._new(initial, -1)

    def _new(self, state: int, parent: int) -> int:
        node = self.count
        if node == self.nodes.shape[0]:
            self.nodes = np.concatenate([self.nodes, np.zeros_like(self.nodes)])
        self.nodes[node] = (state, parent)
        self._ids[(state, parent)] = node
        self.count += 1
        return node

    def push(self, node: int, states: Sequence[int]) -> int:
        """The node of the stack ``node`` with ``states`` pushed on top (in order)."""
        for state in states:
            key = (int(state), node)
            found = self._ids.get(key)
            node = found if found is not None else self._new(*key)
        return node

    def top(self, node: int) -> int:
        return int(self.nodes[node, 0])

    def states(self, node: int) -> list[int]:
        """The stack of ``node``, bottom first."""
        out = []
        while node >= 0:
            out.append(int(self.nodes[node, 0]))
            node = int(self.nodes[node, 1])
        return out[::-1]


def _grown(array: np.ndarray, need: int) -> np.ndarray:
    """``array`` with at least ``need`` rows (doubling), contents kept."""
    if need <= array.shape[0]:
        return array
    grown = np.zeros((max(need, 2 * array.shape[0]), *array.shape[1:]), dtype=array.dtype)
    grown[: array.shape[0]] = array
    return grown


class RowStore:
    """Per position (parser state, lexer state): a static row, context-dependent tokens
    ``cd[k] = (token, event, offset, first byte)`` and events ``events[e] = (kind, symbol, parent,
    length, overlay...)`` with their shift ``targets`` and the per-target verdicts ``sub`` of FEED tokens;
    ``ranges[r] = (cd_lo, cd_hi, event_lo, event_hi)``; ``event_rows[event_row_of[e, j]]``
    packs the tokens event ``e`` accepts (after target ``j`` for a FEED event) when it has many."""

    def __init__(self, num_parser_states: int, num_lexer_states: int, words: int, event_width: int,
                 max_targets: int):
        self.row_of = np.full((num_parser_states, num_lexer_states), -1, dtype=np.int32)
        self.rows = np.zeros((16, words), dtype=np.uint32)
        self.ranges = np.zeros((16, 4), dtype=np.int32)
        self.cd = np.zeros((256, 4), dtype=np.int32)
        self.events = np.zeros((16, event_width), dtype=np.int32)
        self.targets = np.full((16, max_targets), -1, dtype=np.int32)
        self.sub = np.zeros((256, max_targets), dtype=np.int16)
        self.event_row_of = np.full((16, max_targets), -1, dtype=np.int32)
        self.event_rows = np.zeros((4, words), dtype=np.uint32)
        self._event_rows_used = 0
        self.count = 0
        self.max_events = 0
        self._cd_used = 0
        self._events_used = 0

    def ensure(self, num_parser_states: int, num_lexer_states: int) -> None:
        """Room for this many parser and lexer states (the Earley fallback adds them on the way)."""
        rows, columns = self.row_of.shape
        if num_parser_states > rows or num_lexer_states > columns:
            grown = np.full((max(rows, num_parser_states), max(columns, num_lexer_states)), -1, dtype=np.int32)
            grown[:rows, :columns] = self.row_of
            self.row_of = grown

    def store(self, state: int, q: int, row: np.ndarray, cd: np.ndarray, events: np.ndarray,
              targets: np.ndarray, sub: np.ndarray, packed=()) -> int:
        """Record a position; ``cd`` holds event indices local to ``events``; ``packed`` lists
        ``(event, target slot, row)`` of the tokens an event decides as a whole. Returns the row."""
        r = self.count
        self.rows = _grown(self.rows, r + 1)
        self.ranges = _grown(self.ranges, r + 1)
        lo, hi = self._cd_used, self._cd_used + len(cd)
        elo, ehi = self._events_used, self._events_used + len(events)
        self.cd = _grown(self.cd, hi)
        self.events = _grown(self.events, ehi)
        self.targets = _grown(self.targets, ehi)
        self.sub = _grown(self.sub, hi)
        self.targets[elo:ehi] = targets
        self.sub[lo:hi] = sub
        self.event_row_of = _grown(self.event_row_of, ehi)
        self.event_row_of[elo:ehi] = -1
        for e, slot, packed_row in packed:
            self.event_rows = _grown(self.event_rows, self._event_rows_used + 1)
            self.event_rows[self._event_rows_used] = packed_row
            self.event_row_of[elo + e, slot] = self._event_rows_used
            self._event_rows_used += 1
        self.rows[r] = row
        self.cd[lo:hi] = cd
        self.cd[lo:hi, 1] += elo
        self.events[elo:ehi] = events
        parents = self.events[elo:ehi, 2]
        parents[parents >= 0] += elo
        self.ranges[r] = (lo, hi, elo, ehi)
        self._cd_used, self._events_used = hi, ehi
        self.max_events = max(self.max_events, len(events))
        self.row_of[state, q] = r
        self.count += 1
        return r

    def dependent(self, r: int) -> np.ndarray:
        """The context-dependent tokens of row ``r``."""
        return self.cd[self.ranges[r, 0]:self.ranges[r, 1], 0]

    def stats(self) -> tuple[int, int, int]:
        """(positions cached, context-dependent tokens, events) stored."""
        return self.count, self._cd_used, self._events_used
