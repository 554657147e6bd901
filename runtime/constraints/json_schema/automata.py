"""Byte NFAs built by continuation passing, and their subset construction into trim byte DFAs.

The JSON Schema compiler emits a schema right to left: every piece is compiled *given the state
that follows it* (its continuation), so a tail shared by several alternatives (the rest of an
object after an optional property) is built once and the NFA stays linear in the schema. Pieces
are byte DFAs embedded as blocks (strings, numbers, literals) joined by epsilon edges.

:meth:`NFA.determinize` runs the subset construction. Most DFA states are singletons of an
embedded block state without epsilon edges; those are expanded all at once (one ``numpy``
gather), and only the subsets at junctions go through Python.

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
from scipy.sparse import csr_array
from scipy.sparse.csgraph import breadth_first_order

from genweave.dsl.errors import GenCheckError
from genweave.runtime.constraints.byte_dfa import DEAD, ByteDFA, empty_dfa, minimize

MAX_DFA_STATES = 400_000  # beyond this a schema is rejected rather than exhausting memory
MINIMIZE_BELOW = 4_000  # Moore refinement (rounds ~ longest chain) pays off below this size


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
            raise GenCheckError(f"the schema needs more than {MAX_DFA_STATES} automaton states",
                                hint="lower maxLength/maxItems bounds or the max_depth option")
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
        dfa = _SubsetConstruction(self, entry).run()
        if minimal and dfa.num_states < MINIMIZE_BELOW:
            return minimize(dfa)
        return dfa


class _SubsetConstruction:
    """Subset construction where a DFA state is the epsilon closure of a set of NFA states,
    represented by its byte-bearing members (sorted) and whether it contains ``final``.

    A *simple* NFA state (byte edges, no epsilon edges) is its own closure: all of them become
    DFA states at once and are expanded by one gather (trim drops the unreachable ones); only
    the closures of junctions go through Python.
    """

    def __init__(self, nfa: NFA, entry: int):
        self.table = nfa.table()
        self.epsilon = nfa.epsilon
        self.final = nfa.final
        self.has_bytes = (self.table != DEAD).any(axis=1)
        self.simple = self.has_bytes.copy()
        self.simple[list(self.epsilon)] = False
        self.closure_id = np.full(self.table.shape[0] + 1, -2, dtype=np.int64)  # [-1]: DEAD
        self.closure_id[-1] = DEAD
        self.ids: dict[tuple[tuple[int, ...], bool], int] = {}
        self.members: list[tuple[int, ...] | None] = []  # None: a simple singleton
        self.accepting: list[bool] = []
        self.entry = entry

    def run(self) -> ByteDFA:
        simple = np.flatnonzero(self.simple)
        self.closure_id[simple] = np.arange(simple.size)
        self.members = [None] * simple.size
        self.accepting = [False] * simple.size
        start = self._new_state(*self._closure([self.entry]))
        gathered = self.table[simple]
        self._number_targets(np.unique(gathered))
        rows = [self.closure_id[gathered].astype(np.int32)]
        done = simple.size
        while done < len(self.members):
            if len(self.members) > MAX_DFA_STATES:
                raise GenCheckError(f"the schema's automaton exceeds {MAX_DFA_STATES} states",
                                    hint="simplify the schema or lower its size bounds")
            batch = range(done, len(self.members))
            done = len(self.members)
            rows.append(np.stack([self._subset_row(self.members[d]) for d in batch]))
        return trim(np.concatenate(rows), np.array(self.accepting, dtype=bool), start)

    def _new_state(self, members: tuple[int, ...], accepting: bool) -> int:
        if len(members) == 1 and not accepting and self.simple[members[0]]:
            return int(self.closure_id[members[0]])
        key = (members, accepting)
        found = self.ids.get(key)
        if found is not None:
            return found
        index = len(self.members)
        self.ids[key] = index
        self.members.append(members)
        self.accepting.append(accepting)
        return index

    def _closure(self, states: Iterable[int]) -> tuple[tuple[int, ...], bool]:
        seen = set()
        stack = list(states)
        while stack:
            state = stack.pop()
            if state in seen:
                continue
            seen.add(state)
            stack.extend(self.epsilon.get(state, ()))
        members = tuple(sorted(s for s in seen if self.has_bytes[s]))
        return members, self.final in seen

    def _number_targets(self, targets: np.ndarray) -> None:
        """Give the closure of each single NFA state in ``targets`` its DFA id."""
        for state in targets[self.closure_id[targets] == -2].tolist():
            self.closure_id[state] = self._new_state(*self._closure([state]))

    def _subset_row(self, members: tuple[int, ...]) -> np.ndarray:
        if not members:
            return np.full(256, DEAD, dtype=np.int32)
        block = self.table[list(members)]  # [k, 256]
        live = (block != DEAD).sum(axis=0)
        single = block.max(axis=0)  # the target where at most one member has one
        self._number_targets(np.unique(single[live == 1]))
        row = np.where(live <= 1, self.closure_id[single], DEAD).astype(np.int32)
        shared = np.flatnonzero(live > 1)  # bytes on which several members move: set targets
        if shared.size:
            columns = np.ascontiguousarray(block[:, shared].T)
            keys = columns.view(np.dtype((np.void, columns.dtype.itemsize * columns.shape[1]))).reshape(-1)
            _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
            ids = np.array([self._new_state(*self._closure([t for t in set(columns[i].tolist()) if t != DEAD]))
                            for i in first.tolist()], dtype=np.int32)
            row[shared] = ids[inverse.reshape(-1)]
        return row


def difference(left: ByteDFA, right: ByteDFA) -> ByteDFA:
    """The DFA of ``left`` minus ``right`` (pairs of states; ``right`` may be DEAD)."""
    return _pair_product(left, right, lambda a, b: a and not b, keep_left_only=True)


def intersection(left: ByteDFA, right: ByteDFA) -> ByteDFA:
    """The DFA of the strings in both (like ``product(union=False)``, without minimising)."""
    return _pair_product(left, right, lambda a, b: a and b, keep_left_only=False)


def _pair_product(left: ByteDFA, right: ByteDFA, accept, *, keep_left_only: bool) -> ByteDFA:
    if left.is_empty() or (right.is_empty() and not keep_left_only):
        return ByteDFA(np.zeros((0, 256), np.int32), np.zeros(0, bool), DEAD)
    stride = right.num_states + 1
    start = (left.initial, right.initial if not right.is_empty() else DEAD)
    pairs: dict[tuple[int, int], int] = {start: 0}
    queue = [start]
    rows = []
    nowhere = np.full(256, DEAD, dtype=np.int32)
    for p, q in queue:
        lrow = left.transitions[p]
        rrow = right.transitions[q] if q != DEAD else nowhere
        alive = lrow != DEAD if keep_left_only else (lrow != DEAD) & (rrow != DEAD)
        codes = lrow[alive].astype(np.int64) * stride + (rrow[alive] + 1)
        distinct, inverse = np.unique(codes, return_inverse=True)
        targets = np.empty(len(distinct), dtype=np.int32)
        for i, code in enumerate(distinct.tolist()):
            pair = (code // stride, code % stride - 1)
            if pair not in pairs:
                pairs[pair] = len(queue)
                queue.append(pair)
            targets[i] = pairs[pair]
        row = np.full(256, DEAD, dtype=np.int32)
        row[alive] = targets[inverse.reshape(-1)]
        rows.append(row)
    accepting = np.array([accept(bool(left.accepting[p]), q != DEAD and bool(right.accepting[q]))
                          for p, q in queue], dtype=bool)
    return trim(np.array(rows, dtype=np.int32), accepting, 0)


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
    ``initial`` that reach acceptance, breadth-first from ``initial``), with the graph searches in
    scipy so that long chains (length counters) cost one pass instead of one numpy round a level."""
    transitions = np.asarray(transitions, dtype=np.int32)
    accepting = np.asarray(accepting, dtype=bool)
    n = transitions.shape[0]
    if initial == DEAD or n == 0:
        return empty_dfa()
    sources, columns = np.nonzero(transitions != DEAD)
    pairs = np.unique(sources.astype(np.int64) * n + transitions[sources, columns])
    source, target = pairs // n, pairs % n
    # Co-reachable states: reachable backwards from a virtual sink n that follows every accepting one.
    finals = np.flatnonzero(accepting)
    backward = _graph(np.concatenate([target, np.full(finals.size, n)]), np.concatenate([source, finals]), n + 1)
    live = np.zeros(n + 1, dtype=bool)
    live[breadth_first_order(backward, n, directed=True, return_predecessors=False)] = True
    if not live[initial]:
        return empty_dfa()
    inside = live[source] & live[target]
    forward = _graph(source[inside], target[inside], n)
    order = breadth_first_order(forward, initial, directed=True, return_predecessors=False)
    renumber = np.full(n + 1, DEAD, dtype=np.int32)
    renumber[order] = np.arange(len(order), dtype=np.int32)
    return ByteDFA(renumber[transitions[order]], accepting[order].copy(), 0)


def _graph(source: np.ndarray, target: np.ndarray, n: int) -> csr_array:
    return csr_array((np.ones(len(source), dtype=np.int8), (source, target)), shape=(n, n))
