"""Contextual lexers: one tagged byte DFA per set of terminals the parser can accept.

Lexing follows lark's contextual lexer with the longest match: in a parser state, the lexer
reads the terminals that state has an action for, plus the ``%ignore``-d ones. A lexeme grows
while some of those terminals can still match a longer text; when the next byte cannot extend it,
the lexeme ends and becomes the first terminal matching it whole in :meth:`TerminalSpec.order`
(then the byte starts the next lexeme, in the lexer of the parser's new state).

A :class:`Lexer` is the product of its terminals' byte DFAs (each component trim, so a product
state with a live component can still reach a match), minimised with the emitted terminal as a
tag. ``emits[q]`` lists the terminals a lexeme in state ``q`` can still end as. The
:class:`LexerTable` numbers the states of all lexers globally for the numba walks, plus one
*fresh* state per start (the start of the text, where nothing has been read: it moves like the
lexer's start state but may end the text without a lexeme).

>>> from genweave.runtime.constraints.grammar.spec import load_spec
>>> spec = load_spec('start: WORD ("," WORD)*\\nWORD: /[a-z]+/\\n%ignore " "', "start")
>>> lexer = build_lexer(spec.terminals, frozenset(range(len(spec.terminals))))
>>> q = lexer.transitions[0, ord("a")]
>>> spec.terminals[lexer.terminal[q]].name, [spec.terminals[t].name for t in lexer.emits[q]]
('WORD', ['WORD'])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from genweave.runtime.constraints.byte_dfa import DEAD
from genweave.runtime.constraints.grammar.spec import TerminalSpec


@dataclass(frozen=True, eq=False)
class Lexer:
    """A tagged DFA: local states ``0 .. n-1`` (0 is the start), ``transitions`` int32 [n, 256]
    (DEAD where no lexeme continues), ``terminal`` int32 [n] (the terminal a lexeme ending here
    becomes, -1 if none) and ``emits`` (the terminals a lexeme here can still end as)."""

    terminals: frozenset[int]
    transitions: np.ndarray
    terminal: np.ndarray
    emits: tuple[tuple[int, ...], ...]

    @property
    def num_states(self) -> int:
        return int(self.transitions.shape[0])


def build_lexer(terminals: tuple[TerminalSpec, ...], ids: frozenset[int]) -> Lexer:
    """The minimal tagged product DFA of the terminals ``ids`` (module docstring)."""
    members = sorted(ids, key=lambda i: terminals[i].order())
    if not members:  # a parser state that only accepts the end of the text
        return Lexer(frozenset(), np.full((1, 256), DEAD, dtype=np.int32), np.array([-1], dtype=np.int32), ((),))
    dfas = [terminals[i].dfa for i in members]
    transitions, tags = _product(dfas, members)
    transitions, tags = _minimize(transitions, tags)
    return Lexer(frozenset(ids), transitions, tags, _emits(transitions, tags))


def _product(dfas, members) -> tuple[np.ndarray, np.ndarray]:
    """Reachable product states (tuples of component states, DEAD for finished components),
    breadth-first from the tuple of starts; the tag of a state is its first accepting member."""
    nowhere = np.full(256, DEAD, dtype=np.int32)
    start = tuple(d.initial for d in dfas)
    number = {start: 0}
    queue = [start]
    rows: list[np.ndarray] = []
    tags: list[int] = []
    for state in queue:  # the queue grows while it is walked
        live = [k for k, c in enumerate(state) if c != DEAD]
        table = np.stack([dfas[k].transitions[state[k]] for k in live])
        alive = (table != DEAD).any(axis=0)
        row = nowhere.copy()
        targets = []
        for column in table[:, alive].T.tolist():  # at most 256 short tuples
            key = [DEAD] * len(state)
            for k, c in zip(live, column):
                key[k] = c
            key = tuple(key)
            if key not in number:
                number[key] = len(queue)
                queue.append(key)
            targets.append(number[key])
        row[alive] = targets
        rows.append(row)
        accepting = [m for d, c, m in zip(dfas, state, members) if c != DEAD and d.accepting[c]]
        tags.append(accepting[0] if accepting else -1)
    return np.array(rows, dtype=np.int32).reshape(-1, 256), np.array(tags, dtype=np.int32)


def _minimize(transitions: np.ndarray, tags: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Moore refinement starting from the partition by tag; state 0 stays the start."""
    n = transitions.shape[0]
    total = np.vstack([transitions, np.full((1, 256), n, dtype=np.int32)])
    total[total == DEAD] = n
    total = np.unique(total, axis=1)  # one column per byte class
    blocks = np.append(np.unique(tags, return_inverse=True)[1].reshape(-1), -1) + 1
    count = len(np.unique(blocks))
    while True:
        signature = np.ascontiguousarray(np.concatenate([blocks[:, None], blocks[total]], axis=1))
        rows = signature.view(np.dtype((np.void, signature.dtype.itemsize * signature.shape[1])))
        blocks = np.unique(rows.reshape(-1), return_inverse=True)[1].reshape(-1)
        if int(blocks.max()) + 1 == count:
            break
        count = int(blocks.max()) + 1
    # new ids in order of first appearance, so that the start's block is 0; the dead block
    # (blocks[n], alone since it reaches no tag) maps to DEAD, as does transitions' -1 -> blocks[-1]
    distinct, first = np.unique(blocks[:n], return_index=True)
    order = np.argsort(first)
    new_id = np.full(int(blocks.max()) + 1, DEAD, dtype=np.int32)
    new_id[distinct[order]] = np.arange(len(distinct), dtype=np.int32)
    representatives = first[order]
    return new_id[blocks[transitions[representatives]]], tags[representatives].astype(np.int32)


def _emits(transitions: np.ndarray, tags: np.ndarray) -> tuple[tuple[int, ...], ...]:
    """For each state, the tags reachable from it (itself included): backward fixpoints."""
    n = transitions.shape[0]
    found = np.zeros((n, 0), dtype=bool)
    present = sorted(set(tags.tolist()) - {-1})
    columns = []
    for tag in present:
        reach = tags == tag
        while True:
            padded = np.append(reach, False)
            grown = reach | padded[transitions].any(axis=1)
            if np.array_equal(grown, reach):
                break
            reach = grown
        columns.append(reach)
    if columns:
        found = np.stack(columns, axis=1)
    return tuple(tuple(present[k] for k in np.flatnonzero(found[q])) for q in range(n))


class LexerTable:
    """All lexers of one compiled grammar, their states numbered globally (module docstring).

    Arrays (rebuilt when a lexer is added): ``transitions`` int32 [Q, 256] (global targets),
    ``terminal`` int32 [Q], ``emit_offsets``/``emit_terminals`` (CSR of ``emits``), ``starts``
    int32 [lexers] and ``ignored`` uint8 [terminals].
    """

    def __init__(self, terminals: tuple[TerminalSpec, ...]):
        self.terminal_specs = terminals
        self.ignored = np.array([t.ignored for t in terminals], dtype=np.uint8)
        self._ignore = frozenset(i for i, t in enumerate(terminals) if t.ignored)
        self._by_terminals: dict[frozenset[int], int] = {}
        self._parts: list[tuple[np.ndarray, np.ndarray, tuple]] = []  # local arrays per block
        self._offsets: list[int] = []
        self._part_of: list[int] = []  # lexer id -> index in _parts
        self._starts: list[int] = []
        self.rebuild()

    @property
    def num_states(self) -> int:
        return int(self.transitions.shape[0])

    @property
    def num_lexers(self) -> int:
        return len(self._part_of)

    def states_of(self, lexer: int) -> range:
        """The global states of ``lexer`` (not its fresh copy)."""
        part = self._part_of[lexer]
        return range(self._offsets[part], self._offsets[part] + len(self._parts[part][1]))

    def lexer_for(self, accepted: frozenset[int], *, rebuild: bool = True) -> int:
        """The id of the lexer of a parser state accepting ``accepted`` (terminals; built once).
        ``rebuild=False`` defers rebuilding the global arrays to :meth:`rebuild` (many lexers
        added in a row: one concatenation instead of one per lexer)."""
        key = frozenset(accepted) | self._ignore
        if key not in self._by_terminals:
            lexer = build_lexer(self.terminal_specs, key)
            self._by_terminals[key] = len(self._by_terminals)
            self._part_of.append(len(self._parts))
            self._append(lexer.transitions, lexer.terminal, lexer.emits)
            self._starts.append(self._offsets[-1])
            if rebuild:
                self.rebuild()
        return self._by_terminals[key]

    def add_fresh(self, lexer: int) -> int:
        """A new global state that moves like ``lexer``'s start but stands for "nothing read"."""
        start = int(self.starts[lexer])
        row = self.transitions[start:start + 1]
        self._append(row, np.array([-1], dtype=np.int32), (self.emits[start],), shift=False)
        self.rebuild()
        return self._offsets[-1]

    def _append(self, transitions, terminal, emits, shift: bool = True) -> None:
        offset = self._offsets[-1] + len(self._parts[-1][1]) if self._parts else 0
        moved = np.where(transitions == DEAD, DEAD, transitions + offset) if shift else transitions
        self._parts.append((moved.astype(np.int32), terminal, tuple(emits)))
        self._offsets.append(offset)

    def rebuild(self) -> None:
        """Recompute the global arrays from the lexers added so far."""
        parts = self._parts
        self.starts = np.array(self._starts, dtype=np.int32)
        self.transitions = (np.concatenate([p[0] for p in parts]) if parts
                            else np.zeros((0, 256), dtype=np.int32))
        self.terminal = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, dtype=np.int32)
        self.emits = tuple(e for p in parts for e in p[2])
        lengths = np.array([len(e) for e in self.emits], dtype=np.int32)
        self.emit_offsets = np.zeros(len(self.emits) + 1, dtype=np.int32)
        np.cumsum(lengths, out=self.emit_offsets[1:])
        flat = [t for e in self.emits for t in e]
        self.emit_terminals = np.array(flat, dtype=np.int32)
