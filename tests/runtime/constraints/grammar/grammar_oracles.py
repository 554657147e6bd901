"""An independent reference recognizer for grammar constraints (imported as ``grammar_oracles``).

It shares nothing with the engine but the terminals' byte DFAs (``regex_dfa``, tested on its
own): the parser is lark's own LALR :class:`~lark.parsers.lalr_interactive_parser.InteractiveParser`
or :class:`NaiveEarley` below, the lexer is a set of per-terminal DFA states read byte by byte
(no product automaton), following the lexing rule of ``docs/constraints.md``: a lexeme grows
while one of the terminals the parser state accepts (plus the ignored ones) can still match a
longer text; then it becomes the best terminal matching it whole (priority, then string
literals, then lark's order) and is fed to the parser.

:meth:`Reference.allowed` is the brute-force mask: every token's bytes are read from a state,
vectorised over the vocabulary one byte column at a time while they stay in the current lexeme,
and recursively (grouped) after each lexeme boundary.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from lark import Lark, Token
from lark.exceptions import UnexpectedInput
from lark.lexer import PatternStr

from genweave.runtime.constraints.regex import regex_dfa
from genweave.runtime.vocab import Vocabulary


class LarkLALR:
    """Parser states: lark InteractiveParsers (never mutated; feeding copies)."""

    def __init__(self, text: str, start: str):
        self.lark = Lark(text, parser="lalr", start=start)
        self.names = {t.name for t in self.lark.terminals}

    def initial(self):
        return self.lark.parse_interactive("")

    def key(self, parser) -> tuple:
        return tuple(parser.parser_state.state_stack)

    def acceptable(self, parser) -> frozenset[str]:
        return frozenset(name for name in parser.choices() if name in self.names)

    def feed(self, parser, name: str):
        parser = parser.copy()
        try:
            parser.feed_token(Token(name, ""))
        except UnexpectedInput:
            return None
        return parser

    def accepts_end(self, parser) -> bool:
        try:
            parser.copy().feed_eof()
        except UnexpectedInput:
            return False
        return True


class NaiveEarley:
    """Parser states: Earley charts as tuples of item sets, items ``(rule, dot, origin)``."""

    def __init__(self, text: str, start: str):
        self.lark = Lark(text, parser="earley", start=start)
        self.names = {t.name for t in self.lark.terminals}
        self.rules = [(r.origin.name, tuple(s.name for s in r.expansion)) for r in self.lark.rules]
        self.start = start
        self.nonterminals = {lhs for lhs, _ in self.rules}

    def _close(self, chart: tuple, items: set) -> frozenset:
        position = len(chart)
        todo = list(items)
        while todo:
            rule, dot, origin = todo.pop()
            lhs, rhs = self.rules[rule]
            if dot < len(rhs) and rhs[dot] in self.nonterminals:
                new = [(r, 0, position) for r, (left, _) in enumerate(self.rules) if left == rhs[dot]]
                # a nonterminal already completed here (nullable) advances the item too
                new += [(rule, dot + 1, origin) for r2, d2, o2 in items
                        if o2 == position and d2 == len(self.rules[r2][1]) and self.rules[r2][0] == rhs[dot]]
            elif dot == len(rhs):
                sets = chart + (items,)
                new = [(r2, d2 + 1, o2) for r2, d2, o2 in sets[origin]
                       if d2 < len(self.rules[r2][1]) and self.rules[r2][1][d2] == lhs]
            else:
                new = []
            for item in new:
                if item not in items:
                    items.add(item)
                    todo.append(item)
        return frozenset(items)

    def initial(self):
        return (self._close((), {(r, 0, 0) for r, (lhs, _) in enumerate(self.rules) if lhs == self.start}),)

    def key(self, chart) -> tuple:
        return chart

    def acceptable(self, chart) -> frozenset[str]:
        return frozenset(rhs[dot] for rule, dot, _ in chart[-1] for rhs in [self.rules[rule][1]]
                         if dot < len(rhs) and rhs[dot] in self.names)

    def feed(self, chart, name: str):
        kernel = {(rule, dot + 1, origin) for rule, dot, origin in chart[-1]
                  if dot < len(self.rules[rule][1]) and self.rules[rule][1][dot] == name}
        return chart + (self._close(chart, kernel),) if kernel else None

    def accepts_end(self, chart) -> bool:
        return any(self.rules[rule][0] == self.start and dot == len(self.rules[rule][1]) and origin == 0
                   for rule, dot, origin in chart[-1])


@dataclass(frozen=True)
class RefState:
    parser: object
    lexeme: tuple | None  # ((terminal name, dfa state), ...) alive in the lexeme, None: nothing read


class Reference:
    """The brute-force recognizer of a grammar (module docstring)."""

    def __init__(self, text: str, start: str = "start", parser: str = "lalr"):
        self.parser = LarkLALR(text, start) if parser == "lalr" else NaiveEarley(text, start)
        terminals = self.parser.lark.terminals
        self.ignore = frozenset(self.parser.lark.ignore_tokens)
        self.dfa = {t.name: regex_dfa(t.pattern.to_regexp()) for t in terminals}
        self.rank = {t.name: (-t.priority, not isinstance(t.pattern, PatternStr), -t.pattern.max_width,
                              -len(t.pattern.value), t.name) for t in terminals}
        self.padded = {name: np.vstack([d.transitions, np.full((1, 256), -1, np.int32)])
                       for name, d in self.dfa.items()}
        self._winners: dict = {}
        self._feeds: dict = {}

    # -- byte by byte ------------------------------------------------------------------------

    def initial(self) -> RefState:
        return RefState(self.parser.initial(), None)

    def start_lexeme(self, parser) -> tuple:
        names = sorted(self.parser.acceptable(parser) | self.ignore)
        return tuple((n, self.dfa[n].initial) for n in names if not self.dfa[n].is_empty())

    def _best(self, lexeme) -> str | None:
        done = [n for n, q in lexeme if self.dfa[n].accepting[q]]
        return min(done, key=self.rank.__getitem__) if done else None

    def feed(self, parser, name: str):
        if name in self.ignore:
            return parser
        key = (self.parser.key(parser), name)
        if key not in self._feeds:
            self._feeds[key] = self.parser.feed(parser, name)
        return self._feeds[key]

    def step(self, state: RefState, byte: int) -> RefState | None:
        lexeme = state.lexeme if state.lexeme is not None else self.start_lexeme(state.parser)
        grown = tuple((n, int(self.dfa[n].transitions[q, byte])) for n, q in lexeme
                      if self.dfa[n].transitions[q, byte] >= 0)
        if grown:
            return RefState(state.parser, grown)
        if state.lexeme is None or (name := self._best(lexeme)) is None:
            return None
        parser = self.feed(state.parser, name)
        if parser is None:
            return None
        return self.step(RefState(parser, self.start_lexeme(parser)), byte)

    def walk(self, state: RefState | None, data: bytes) -> RefState | None:
        for byte in data:
            if state is None:
                return None
            state = self.step(state, byte)
        return state

    def winners(self, lexeme: tuple) -> frozenset[str]:
        """The terminals the lexeme in progress can still end as (a search over continuations)."""
        if lexeme not in self._winners:
            seen, todo, found = {lexeme}, [lexeme], set()
            while todo:
                current = todo.pop()
                best = self._best(current)
                if best is not None:
                    found.add(best)
                for byte in range(256):
                    nxt = tuple((n, int(self.dfa[n].transitions[q, byte])) for n, q in current
                                if self.dfa[n].transitions[q, byte] >= 0)
                    if nxt and nxt not in seen:
                        seen.add(nxt)
                        todo.append(nxt)
            self._winners[lexeme] = frozenset(found)
        return self._winners[lexeme]

    def viable(self, state: RefState) -> bool:
        if state.lexeme is None:
            return True
        return any(self.feed(state.parser, name) is not None for name in self.winners(state.lexeme))

    def can_end(self, state: RefState) -> bool:
        parser = state.parser
        if state.lexeme is not None:
            name = self._best(state.lexeme)
            parser = self.feed(parser, name) if name is not None else None
        return parser is not None and self.parser.accepts_end(parser)

    # -- brute force over a vocabulary ---------------------------------------------------------

    def allowed(self, state: RefState, vocab: Vocabulary) -> np.ndarray:
        """bool [V]: the tokens whose bytes keep ``state`` viable, and EOS where it may end."""
        matrix, lengths = vocab.token_array()
        text = ~vocab.special_mask & (lengths > 0)
        ids = np.flatnonzero(text)
        out = np.zeros(len(vocab), dtype=bool)
        out[ids] = self._allowed(state, ids, 0, matrix, lengths)
        out[list(vocab.eos_ids)] = self.can_end(state)
        return out

    def _allowed(self, state: RefState, ids: np.ndarray, column: int, matrix, lengths) -> np.ndarray:
        lexeme = state.lexeme if state.lexeme is not None else self.start_lexeme(state.parser)
        names = [n for n, _ in lexeme]
        current = np.array([[q] * len(ids) for _, q in lexeme], dtype=np.int64).reshape(len(names), len(ids))
        active = np.ones(len(ids), dtype=bool)
        boundary = np.full(len(ids), -1)
        for k in range(column, matrix.shape[1]):
            reading = np.flatnonzero(active & (lengths[ids] > k))
            if not reading.size:
                break
            byte = matrix[ids[reading], k]
            live = np.flatnonzero((current[:, reading] >= 0).any(axis=1))  # components alive anywhere
            nxt = np.full((len(names), reading.size), -1, dtype=np.int64)
            for j in live.tolist():
                nxt[j] = self.padded[names[j]][current[j, reading], byte]
            alive = (nxt >= 0).any(axis=0)
            moved = reading[alive]
            current[:, moved] = nxt[:, alive]
            stopped = reading[~alive]
            active[stopped] = False
            boundary[stopped] = k
        result = np.zeros(len(ids), dtype=bool)
        ends = np.flatnonzero(boundary < 0)
        self._decide_ends(state, names, current, ends, result)
        self._decide_boundaries(state, names, current, boundary, ids, result, matrix, lengths)
        return result

    def _decide_ends(self, state, names, current, ends, result) -> None:
        if not ends.size:
            return
        live = np.flatnonzero((current[:, ends] >= 0).any(axis=1))
        columns, inverse = _unique_rows(current[np.ix_(live, ends)].T)
        verdicts = np.array([
            self.viable(RefState(state.parser, tuple((names[j], int(q)) for j, q in zip(live, column) if q >= 0)))
            for column in columns])
        result[ends] = verdicts[inverse]

    def _decide_boundaries(self, state, names, current, boundary, ids, result, matrix, lengths) -> None:
        cut = np.flatnonzero(boundary >= 0)
        if not cut.size:
            return
        live = np.flatnonzero((current[:, cut] >= 0).any(axis=1))
        keys = np.concatenate([boundary[cut, None], current[np.ix_(live, cut)].T], axis=1)
        groups, inverse = _unique_rows(keys)
        for g, key in enumerate(groups):
            members = cut[inverse == g]
            lexeme = tuple((names[j], int(q)) for j, q in zip(live, key[1:]) if q >= 0)
            name = self._best(lexeme)  # None when nothing was read: a dead first byte rejects
            parser = self.feed(state.parser, name) if name is not None else None
            if parser is not None:
                after = RefState(parser, self.start_lexeme(parser))
                result[members] = self._allowed(after, ids[members], int(key[0]), matrix, lengths)


def _unique_rows(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct rows, index of each row's distinct row) of an integer matrix (lexsort based;
    ``np.unique(axis=0)`` sorts void views and is much slower)."""
    if matrix.shape[1] == 0:
        return matrix[:1], np.zeros(matrix.shape[0], dtype=np.int64)
    order = np.lexsort(matrix.T[::-1])
    ordered = matrix[order]
    starts = np.concatenate([[True], (ordered[1:] != ordered[:-1]).any(axis=1)])
    inverse = np.empty(matrix.shape[0], dtype=np.int64)
    inverse[order] = np.cumsum(starts) - 1
    return ordered[starts], inverse
