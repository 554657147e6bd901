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
    """Interned parser stacks; node 0 is the stack holding only ``initial``."""

    def __init__(self, initial: int):
        self.node_state = np.zeros(64, dtype=np.int32)
        self.node_parent = np.zeros(64, dtype=np.int32)
        self._ids: dict[tuple[int, int], int] = {}
        self.count = 0
        self._new(initial, -1)

    def _new(self, state: int, parent: int) -> int:
        node = self.count
        if node == self.node_state.shape[0]:
            self.node_state = np.concatenate([self.node_state, np.zeros_like(self.node_state)])
            self.node_parent = np.concatenate([self.node_parent, np.zeros_like(self.node_parent)])
        self.node_state[node] = state
        self.node_parent[node] = parent
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

    def states(self, node: int) -> list[int]:
        """The stack of ``node``, bottom first."""
        out = []
        while node >= 0:
            out.append(int(self.node_state[node]))
            node = int(self.node_parent[node])
        return out[::-1]


class RowStore:
    """Static mask rows and context-dependent token lists, per position (state, lexer state)."""

    def __init__(self, num_parser_states: int, num_lexer_states: int, words: int):
        self.row_of = np.full((num_parser_states, num_lexer_states), -1, dtype=np.int32)
        self.rows = np.zeros((16, words), dtype=np.uint32)
        self.cd_start = np.zeros(16, dtype=np.int32)
        self.cd_end = np.zeros(16, dtype=np.int32)
        self.cd_tokens = np.zeros(1024, dtype=np.int32)
        self.count = 0
        self._cd_used = 0

    def add_parser_states(self, count: int) -> None:
        """Room for ``count`` more parser states (the Earley fallback adds them on the way)."""
        extra = np.full((count, self.row_of.shape[1]), -1, dtype=np.int32)
        self.row_of = np.concatenate([self.row_of, extra])

    def store(self, state: int, q: int, row: np.ndarray, dependent: np.ndarray) -> int:
        """Record a position's row and context-dependent tokens; returns the row index."""
        r = self.count
        if r == self.rows.shape[0]:
            self.rows = np.concatenate([self.rows, np.zeros_like(self.rows)])
            self.cd_start = np.concatenate([self.cd_start, np.zeros_like(self.cd_start)])
            self.cd_end = np.concatenate([self.cd_end, np.zeros_like(self.cd_end)])
        need = self._cd_used + len(dependent)
        if need > self.cd_tokens.shape[0]:
            grown = np.zeros(max(need, 2 * self.cd_tokens.shape[0]), dtype=np.int32)
            grown[: self._cd_used] = self.cd_tokens[: self._cd_used]
            self.cd_tokens = grown
        self.rows[r] = row
        self.cd_start[r] = self._cd_used
        self.cd_tokens[self._cd_used:need] = dependent
        self.cd_end[r] = need
        self._cd_used = need
        self.row_of[state, q] = r
        self.count += 1
        return r

    def dependent(self, r: int) -> np.ndarray:
        """The context-dependent tokens of row ``r``."""
        return self.cd_tokens[self.cd_start[r]:self.cd_end[r]]

    def stats(self) -> tuple[int, int]:
        """(positions cached, context-dependent tokens stored)."""
        return self.count, self._cd_used
