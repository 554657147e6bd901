"""The general fallback: grammars that are not LALR(1), recognised with an incremental Earley parser.

The lexing rule is the same as for LALR grammars (contextual, longest match), with the terminals
the Earley chart expects next as the contextual set. A sequence state is an interned pair
(chart, lexer state); charts are persistent (each holds its parent), so rollback keeps old ints.

Masks reuse the static index of the LALR engine: each distinct set of expected terminals is a
*pseudo* parser state whose action row shifts exactly those terminals into a sink state whose
next lexer is unknown, so the static walk of a position accepts the tokens that stay in the
current lexeme and end as an expected terminal, and records every token crossing a lexeme
boundary as context-dependent; those are checked here on the chart (Python, with memoised scans).
This is slower than the LALR path (it is the fallback) but exact in the same sense.

>>> from genweave.runtime.constraints.grammar.spec import load_spec
>>> chart = EarleyCharts(load_spec('start: x "c" | y "d"\\nx: "a" | "ab"\\ny: "a" | "ab"', "start"))
>>> c = chart.scan(chart.initial, 2)  # "a" (terminal ids follow the spec: C, D, A, AB)
>>> sorted(chart.spec.terminals[t].name for t in chart.expected(c))
['C', 'D']
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from genweave.runtime.constraints.byte_dfa import DEAD
from genweave.runtime.constraints.grammar import walks
from genweave.runtime.constraints.grammar.base import TokenBase
from genweave.runtime.constraints.grammar.spec import GrammarSpec
from genweave.runtime.constraints.grammar.stores import RowStore, StackTable
from genweave.runtime.constraints.token_trie import EOS, TEXT, TokenTrie


class EarleyCharts:
    """Interned Earley charts over the spec's terminal ids (items ``(rule, dot, origin)``)."""

    def __init__(self, spec: GrammarSpec):
        self.spec = spec
        self.end = spec.end
        self.rhs = [rhs for _, rhs in spec.rules]
        self.lhs = [spec.end + 1 + left for left, _ in spec.rules]
        self.by_lhs: dict[int, list[int]] = {}
        for rule, symbol in enumerate(self.lhs):
            self.by_lhs.setdefault(symbol, []).append(rule)
        self.nullable = self._nullable()
        self._sets: list[frozenset] = []
        self._parent: list[int] = []
        self._position: list[int] = []
        self._scans: dict[tuple[int, int], int] = {}
        self._expected: dict[int, frozenset[int]] = {}
        start = spec.end + 1 + spec.start
        self.initial = self._new(self._close([], {(r, 0, 0) for r in self.by_lhs[start]}), -1)

    def _nullable(self) -> set[int]:
        nullable: set[int] = set()
        changed = True
        while changed:
            changed = False
            for rule, rhs in enumerate(self.rhs):
                if self.lhs[rule] not in nullable and all(s in nullable for s in rhs):
                    nullable.add(self.lhs[rule])
                    changed = True
        return nullable

    def _new(self, items: frozenset, parent: int) -> int:
        self._sets.append(items)
        self._parent.append(parent)
        self._position.append(self._position[parent] + 1 if parent >= 0 else 0)
        return len(self._sets) - 1

    def _chain(self, chart: int) -> list[frozenset]:
        """The item sets of ``chart``, position 0 first."""
        sets = []
        while chart >= 0:
            sets.append(self._sets[chart])
            chart = self._parent[chart]
        return sets[::-1]

    def _close(self, earlier: list[frozenset], kernel: set) -> frozenset:
        """Predict and complete from ``kernel`` at position ``len(earlier)`` (Aycock-Horspool
        for nullable nonterminals)."""
        position = len(earlier)
        items = set(kernel)
        todo = list(kernel)
        while todo:
            rule, dot, origin = todo.pop()
            rhs = self.rhs[rule]
            new = []
            if dot < len(rhs) and rhs[dot] > self.end:
                new = [(r, 0, position) for r in self.by_lhs.get(rhs[dot], ())]
                if rhs[dot] in self.nullable:
                    new.append((rule, dot + 1, origin))
            elif dot == len(rhs):
                source = earlier[origin] if origin < position else items
                new = [(r, d + 1, o) for r, d, o in list(source)
                       if d < len(self.rhs[r]) and self.rhs[r][d] == self.lhs[rule]]
            for item in new:
                if item not in items:
                    items.add(item)
                    todo.append(item)
        return frozenset(items)

    def scan(self, chart: int, terminal: int) -> int:
        """The chart after ``terminal``, or -1 if no item expects it (memoised)."""
        key = (chart, terminal)
        found = self._scans.get(key)
        if found is None:
            kernel = {(r, d + 1, o) for r, d, o in self._sets[chart]
                      if d < len(self.rhs[r]) and self.rhs[r][d] == terminal}
            found = self._new(self._close(self._chain(chart), kernel), chart) if kernel else -1
            self._scans[key] = found
        return found

    def expected(self, chart: int) -> frozenset[int]:
        """The terminals some item of the chart's last set expects."""
        found = self._expected.get(chart)
        if found is None:
            found = frozenset(self.rhs[r][d] for r, d, _ in self._sets[chart]
                              if d < len(self.rhs[r]) and self.rhs[r][d] < self.end)
            self._expected[chart] = found
        return found

    def accepts(self, chart: int) -> bool:
        """Whether the terminals read so far form a sentence."""
        start = self.end + 1 + self.spec.start
        return any(self.lhs[r] == start and d == len(self.rhs[r]) and o == 0 for r, d, o in self._sets[chart])


class EarleyRecognizer:
    """The byte-level walk of the Earley fallback on top of a lexer table (module docstring).

    ``lexer_for(expected)`` gives the lexer of a chart; states are ``(chart, q)`` pairs."""

    def __init__(self, charts: EarleyCharts, lexers, lexer_for, fresh: int):
        self.charts = charts
        self.lexers = lexers
        self.lexer_for = lexer_for
        self.fresh = fresh
        self.ignored = [bool(t.ignored) for t in charts.spec.terminals]

    def feed(self, chart: int, terminal: int) -> int:
        return chart if self.ignored[terminal] else self.charts.scan(chart, terminal)

    def walk(self, chart: int, q: int, data: bytes | np.ndarray) -> tuple[int, int]:
        """``(chart, q)`` after the bytes, or ``(-1, -1)`` when they leave the language."""
        table, terminal = self.lexers.transitions, self.lexers.terminal
        for byte in data:
            nxt = int(table[q, byte])
            if nxt < 0:
                term = int(terminal[q])
                if term < 0:
                    return -1, -1
                chart = self.feed(chart, term)
                if chart < 0:
                    return -1, -1
                lexer = self.lexer_for(chart)  # may add a lexer: read the tables after it
                table, terminal = self.lexers.transitions, self.lexers.terminal
                nxt = int(table[int(self.lexers.starts[lexer]), byte])
                if nxt < 0:
                    return -1, -1
            q = nxt
        return chart, q

    def viable(self, chart: int, q: int) -> bool:
        """Whether the lexeme in progress can still end as a terminal the chart accepts."""
        expected = self.charts.expected(chart)
        return any(self.ignored[t] or t in expected for t in self.lexers.emits[q])

    def can_end(self, chart: int, q: int) -> bool:
        if q != self.fresh:
            term = int(self.lexers.terminal[q])
            if term < 0:
                return False
            chart = self.feed(chart, term)
        return chart >= 0 and self.charts.accepts(chart)


class EarleyGrammar(TokenBase):
    """A grammar that is not LALR(1), compiled against one vocabulary (module docstring)."""

    parser_kind = "earley"

    def __init__(self, spec: GrammarSpec, trie: TokenTrie, description: str = ""):
        super().__init__(spec, trie, description)
        self.charts = EarleyCharts(spec)
        self._pseudo: dict[frozenset[int], int] = {}
        self._actions = [np.full(spec.end + 1, -1, dtype=np.int32)]  # state 0: the sink
        self._lexer_of = [-1]
        first = self.lexers.lexer_for(self.charts.expected(self.charts.initial))
        self.fresh = self.lexers.add_fresh(first)
        self.recognizer = EarleyRecognizer(self.charts, self.lexers, self._lexer_of_chart, self.fresh)
        self.stacks = StackTable(0)  # unused by the static walk of pseudo states, but passed along
        self.store = RowStore(1, self.lexers.num_states, trie.words, self._event_width, self.max_targets)
        self._pairs: list[tuple[int, int]] = []
        self._ids: dict[tuple[int, int], int] = {}
        self._first_dead: dict[int, np.ndarray] = {}
        self._repack()

    # -- pseudo parser states and tables -----------------------------------------------------

    def _lexer_of_chart(self, chart: int) -> int:
        return self.lexers.lexer_for(self.charts.expected(chart))

    def _pseudo_state(self, chart: int) -> int:
        """The pseudo parser state of the chart's expected terminals (created on first use)."""
        expected = self.charts.expected(chart)
        state = self._pseudo.get(expected)
        if state is None:
            state = len(self._actions)
            row = np.full(self.spec.end + 1, -1, dtype=np.int32)
            row[sorted(expected)] = 0  # shift into the sink, whose next lexer is unknown
            self._actions.append(row)
            self._lexer_of.append(self.lexers.lexer_for(expected))
            self._pseudo[expected] = state
            self._repack()
        return state

    def _repack(self) -> None:
        lex = self.lexers
        self.store.ensure(len(self._actions), lex.num_states)
        empty = np.zeros(0, dtype=np.int32)
        self._tab, self._lay = walks.pack_tables(
            {"transitions": lex.transitions, "terminal": lex.terminal, "emit_offsets": lex.emit_offsets,
             "emit_terminals": lex.emit_terminals, "starts": lex.starts,
             "lexer_of": np.array(self._lexer_of, dtype=np.int32), "ignored": lex.ignored},
            {"action": np.array(self._actions), "goto": np.zeros((len(self._actions), 1), dtype=np.int32),
             "rule_len": empty, "rule_lhs": empty},
            {"eos": np.array(self.eos_ids), "fresh": self.fresh, "stride": 1, "capacity": self.capacity,
             "accept": -1, "end": self.spec.end})

    def _row(self, chart: int, q: int) -> int:
        """The static row index of (the chart's pseudo state, q), computed on first use."""
        state = self._pseudo_state(chart)
        if self.lexers.num_states > self.store.row_of.shape[1]:
            self._repack()
        r = int(self.store.row_of[state, q])
        if r < 0:
            self._classify_position(state, q)
            r = int(self.store.row_of[state, q])
        return r

    # -- the step protocol -------------------------------------------------------------------

    def _state(self, chart: int, q: int) -> int:
        if chart < 0:
            return DEAD
        key = (chart, q)
        found = self._ids.get(key)
        if found is None:
            found = self._ids[key] = len(self._pairs)
            self._pairs.append(key)
        return found

    def initial(self) -> int:
        return self._state(self.charts.initial, self.fresh)

    def _compute_masks(self, codes: np.ndarray) -> np.ndarray:
        out = np.zeros((codes.shape[0], self.words), dtype=np.uint32)
        for i, code in enumerate(codes.tolist()):
            if code != DEAD:
                self._mask_into(out[i], *self._pairs[code])
        return out

    def _mask_into(self, out: np.ndarray, chart: int, q: int) -> None:
        r = self._row(chart, q)
        out |= self.store.rows[r]
        self._dependent(out, r, chart, q, None)
        term = int(self.lexers.terminal[q]) if q != self.fresh else -1
        after = self.recognizer.feed(chart, term) if term >= 0 else -1
        if after >= 0:
            lexer = self._lexer_of_chart(after)
            start = int(self.lexers.starts[lexer])
            r2 = self._row(after, start)
            out |= self.store.rows[r2] & self._dead_row(q)
            self._dependent(out, r2, after, start, q)
        if self.recognizer.can_end(chart, q):
            out |= self._eos_row

    def _dependent(self, out: np.ndarray, r: int, chart: int, q: int, first_q: int | None) -> None:
        """Check the context-dependent tokens of row ``r`` on the chart, byte by byte."""
        lo, hi = int(self.store.ranges[r, 0]), int(self.store.ranges[r, 1])
        trie, table = self.trie, self.lexers.transitions
        for token, first in self.store.cd[lo:hi, [0, 3]].tolist():
            if first_q is not None and table[first_q, first] >= 0:
                continue
            data = trie.token_data[trie.token_offsets[token]:trie.token_offsets[token + 1]]
            chart2, q2 = self.recognizer.walk(chart, q, data)
            if chart2 >= 0 and self.recognizer.viable(chart2, q2):
                out[token >> 5] |= np.uint32(1 << (token & 31))

    def _dead_row(self, q: int) -> np.ndarray:
        row = self._first_dead.get(q)
        if row is None:
            row = self._first_dead[q] = self._first_dead_row(q)
        return row

    def advance(self, state: int, token: int) -> int:
        """The state after ``token``; DEAD if it is not allowed (EOS keeps a state that may end)."""
        kind = self.token_kind(token)
        if state == DEAD or kind not in (TEXT, EOS):
            return DEAD
        if kind == EOS:
            return state if self.is_complete(state) else DEAD
        return self.walk(state, self.trie.token_bytes(token))

    def walk(self, state: int, data: bytes) -> int:
        """The state after reading raw bytes (independent of tokenization)."""
        if state == DEAD:
            return DEAD
        chart, q = self.recognizer.walk(*self._pairs[state], data)
        if chart < 0 or not self.recognizer.viable(chart, q):
            return DEAD
        return self._state(chart, q)

    def check(self, state: int, token: int) -> bool:
        return self.advance(state, token) != DEAD

    def is_complete(self, state: int) -> bool:
        return state != DEAD and self.recognizer.can_end(*self._pairs[state])

    def complete_mask(self, states: Sequence[int]) -> torch.Tensor:
        """Packed masks of the tokens after which the text may end (and EOS where it may end now)."""
        masks = self.mask(states).numpy().view(np.uint32)
        out = np.zeros_like(masks)
        for i, state in enumerate(states):
            bits = np.unpackbits(masks[i].view(np.uint8), bitorder="little")[: self.vocab_size]
            for token in np.flatnonzero(bits).tolist():
                nxt = self.advance(state, token)
                if nxt != DEAD and self.is_complete(nxt):
                    out[i, token >> 5] |= np.uint32(1 << (token & 31))
        return torch.from_numpy(out.view(np.int32))

    def precompute(self) -> EarleyGrammar:
        """Nothing to do ahead of time: pseudo states appear as charts are reached."""
        return self
