"""Deterministic finite automata over bytes: the common currency of every regular constraint.

A :class:`ByteDFA` has states ``0 .. n-1``, a transition table ``transitions[state, byte]`` whose
entry ``-1`` means "dead" (the input can never be completed), a boolean ``accepting`` row and an
``initial`` state. Every DFA produced here is *trim*: each state is reachable from the initial
state and can reach an accepting state, so "the transition is not -1" is exactly "the bytes read so
far are a prefix of some string of the language". An empty language is the DFA with no states.

>>> dfa = literal_dfa([b"ab", b"ac"])
>>> dfa.accepts(b"ab"), dfa.accepts(b"a"), dfa.walk(dfa.initial, b"ad")
(True, False, -1)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

DEAD = -1


@dataclass(frozen=True, eq=False)
class ByteDFA:
    """A trim DFA over the byte alphabet (see the module docstring)."""

    transitions: np.ndarray  # int32 [n, 256], DEAD for no transition
    accepting: np.ndarray  # bool [n]
    initial: int  # DEAD when the language is empty

    @property
    def num_states(self) -> int:
        return int(self.transitions.shape[0])

    def is_empty(self) -> bool:
        return self.initial == DEAD

    def walk(self, state: int, data: bytes) -> int:
        """The state after reading ``data`` from ``state`` (DEAD once no continuation exists)."""
        table = self.transitions
        for byte in data:
            if state == DEAD:
                return DEAD
            state = int(table[state, byte])
        return state

    def accepts(self, data: bytes) -> bool:
        """Whether ``data`` is a complete string of the language."""
        end = self.walk(self.initial, data)
        return end != DEAD and bool(self.accepting[end])


def trim(transitions: np.ndarray, accepting: np.ndarray, initial: int) -> ByteDFA:
    """Keep the states reachable from ``initial`` that can reach an accepting state, renumbered
    in breadth-first order from ``initial`` (state 0); transitions to dropped states become DEAD."""
    transitions = np.asarray(transitions, dtype=np.int32)
    accepting = np.asarray(accepting, dtype=bool)
    live = _coreachable(transitions, accepting)
    if initial == DEAD or not live[initial]:
        return empty_dfa()
    order = _reachable_order(transitions, live, initial)
    renumber = np.full(transitions.shape[0] + 1, DEAD, dtype=np.int32)  # index -1 -> DEAD
    renumber[order] = np.arange(len(order), dtype=np.int32)
    kept = transitions[order]
    return ByteDFA(renumber[kept], accepting[order].copy(), 0)


def _coreachable(transitions: np.ndarray, accepting: np.ndarray) -> np.ndarray:
    """Boolean [n]: states from which an accepting state is reachable (backward fixpoint)."""
    live = accepting.copy()
    padded = np.append(live, False)  # padded[-1] is the dead state
    while True:
        grown = live | padded[transitions].any(axis=1)
        if np.array_equal(grown, live):
            return live
        live = grown
        padded = np.append(live, False)


def _reachable_order(transitions: np.ndarray, live: np.ndarray, initial: int) -> np.ndarray:
    """Live states reachable from ``initial`` through live states, in breadth-first order."""
    seen = np.zeros(transitions.shape[0], dtype=bool)
    seen[initial] = True
    order = [np.array([initial])]
    frontier = order[0]
    while frontier.size:
        targets = np.unique(transitions[frontier])
        targets = targets[targets != DEAD]
        targets = targets[live[targets] & ~seen[targets]]
        seen[targets] = True
        order.append(targets)
        frontier = targets
    return np.concatenate(order).astype(np.int64)


def empty_dfa() -> ByteDFA:
    """The DFA of the empty language."""
    return ByteDFA(np.zeros((0, 256), dtype=np.int32), np.zeros(0, dtype=bool), DEAD)


def minimize(dfa: ByteDFA) -> ByteDFA:
    """The minimal DFA of the same language (Moore's partition refinement, vectorised).

    Two states stay in one block while they agree on acceptance and, for every byte, on the block
    of their successor; the dead state is its own block. Blocks become the new states.
    """
    if dfa.is_empty():
        return dfa
    n = dfa.num_states
    total = np.vstack([dfa.transitions, np.full((1, 256), n, dtype=np.int32)])
    total[total == DEAD] = n  # an explicit dead state n
    # Bytes with identical columns act alike everywhere: refine on one column per byte class.
    total = np.unique(total, axis=1)
    blocks = np.append(dfa.accepting.astype(np.int64), 2)  # dead state: its own block
    count = len(np.unique(blocks))
    while True:
        signature = np.concatenate([blocks[:, None], blocks[total]], axis=1)
        _, refined = np.unique(_rows_as_scalars(signature), return_inverse=True)
        blocks = refined.reshape(-1)
        new_count = int(blocks.max()) + 1
        if new_count == count:
            break
        count = new_count
    return _quotient(dfa, blocks[:n], blocks[n])


def _rows_as_scalars(matrix: np.ndarray) -> np.ndarray:
    """Each row of a 2-D array as one opaque scalar, so that ``np.unique`` compares whole rows."""
    matrix = np.ascontiguousarray(matrix)
    return matrix.view(np.dtype((np.void, matrix.dtype.itemsize * matrix.shape[1]))).reshape(-1)


def _quotient(dfa: ByteDFA, blocks: np.ndarray, dead_block: int) -> ByteDFA:
    """The DFA whose states are the blocks of a congruence on ``dfa``'s states."""
    representatives = np.unique(blocks, return_index=True)[1]
    block_ids = blocks[representatives]
    index = np.full(int(blocks.max()) + 2, DEAD, dtype=np.int32)
    index[block_ids] = np.arange(len(block_ids), dtype=np.int32)
    index[-1] = DEAD
    padded = np.append(blocks, dead_block)
    table = dfa.transitions[representatives]
    target_blocks = padded[table]  # DEAD entries index the appended dead block
    target_blocks[target_blocks == dead_block] = -1
    transitions = index[target_blocks]
    accepting = dfa.accepting[representatives]
    return trim(transitions, accepting, int(index[blocks[dfa.initial]]))


def product(left: ByteDFA, right: ByteDFA, *, union: bool) -> ByteDFA:
    """The product automaton: intersection (``union=False``) or union of the two languages."""
    if left.is_empty() or right.is_empty():
        if not union:
            return empty_dfa()
        return right if left.is_empty() else left
    pairs: dict[tuple[int, int], int] = {(left.initial, right.initial): 0}
    queue = [(left.initial, right.initial)]
    rows: list[np.ndarray] = []
    stride = right.num_states + 1
    nowhere = np.full(256, DEAD, dtype=np.int32)
    for p, q in queue:  # the queue grows while it is walked: breadth-first over reachable pairs
        lrow = left.transitions[p] if p != DEAD else nowhere
        rrow = right.transitions[q] if q != DEAD else nowhere
        alive = (lrow != DEAD) | (rrow != DEAD) if union else (lrow != DEAD) & (rrow != DEAD)
        codes = (lrow[alive].astype(np.int64) + 1) * stride + (rrow[alive] + 1)
        distinct, inverse = np.unique(codes, return_inverse=True)
        targets = np.empty(len(distinct), dtype=np.int32)
        for i, code in enumerate(distinct.tolist()):
            pair = (code // stride - 1, code % stride - 1)
            if pair not in pairs:
                pairs[pair] = len(queue)
                queue.append(pair)
            targets[i] = pairs[pair]
        row = np.full(256, DEAD, dtype=np.int32)
        row[alive] = targets[inverse.reshape(-1)]
        rows.append(row)
    accepting = np.array([_pair_accepts(left, right, p, q, union) for p, q in queue], dtype=bool)
    return minimize(trim(np.array(rows, dtype=np.int32), accepting, 0))


def _pair_accepts(left: ByteDFA, right: ByteDFA, p: int, q: int, union: bool) -> bool:
    a = p != DEAD and bool(left.accepting[p])
    b = q != DEAD and bool(right.accepting[q])
    return a or b if union else a and b


def literal_dfa(options: Iterable[bytes]) -> ByteDFA:
    """The minimal DFA of a finite set of byte strings (a trie, then minimised)."""
    rows = [np.full(256, DEAD, dtype=np.int32)]
    accepting = [False]
    for option in options:
        state = 0
        for byte in option:
            if rows[state][byte] == DEAD:
                rows[state][byte] = len(rows)
                rows.append(np.full(256, DEAD, dtype=np.int32))
                accepting.append(False)
            state = int(rows[state][byte])
        accepting[state] = True
    return minimize(trim(np.array(rows), np.array(accepting), 0))


def first_occurrence_dfa(needle: bytes) -> ByteDFA:
    """Byte strings in which ``needle`` occurs exactly once, as a suffix (the KMP automaton).

    State ``k < len(needle)`` means "the longest suffix read so far that is a prefix of the
    needle has length k"; state ``len(needle)`` accepts and has no way out.
    """
    m = len(needle)
    transitions = np.full((m + 1, 256), DEAD, dtype=np.int32)
    transitions[0, :] = 0
    transitions[0, needle[0]] = 1
    fallback = 0  # the state reached from the longest proper border of needle[:k]
    for k in range(1, m):
        transitions[k] = transitions[fallback]
        transitions[k, needle[k]] = k + 1
        fallback = int(transitions[fallback, needle[k]])
    accepting = np.zeros(m + 1, dtype=bool)
    accepting[m] = True
    return minimize(trim(transitions, accepting, 0))
