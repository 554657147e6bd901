"""A Lark grammar read by lark itself: terminals as byte DFAs, rules, and the LALR(1) table.

:func:`load_spec` runs lark's grammar loader (``%import``, templates, ``?rule`` inlining, EBNF
operators expanded into plain rules), compiles every terminal pattern to a byte DFA with
:func:`genweave.runtime.constraints.regex.regex_dfa`, drops rules that can derive no text, and
asks lark's LALR(1) analyser (strict: shift/reduce conflicts are errors, not silently resolved as
shifts) for the parse table. When the grammar is not LALR(1) the spec records why, and the
compiler uses the Earley fallback instead.

Symbols are ints: terminals ``0 .. T-1``, the end marker ``T`` (``$END``), nonterminals
``T + 1 + j``. The action table is ``int32 [states, T + 1]``: ``a >= 0`` shifts to state ``a``,
``-1`` is an error and ``a <= -2`` reduces by rule ``-a - 2``.

>>> spec = load_spec('start: "a" start | "b"', "start")
>>> [t.name for t in spec.terminals], spec.parser_kind
(['A', 'B'], 'lalr')
>>> load_spec('start: x | y\\nx: "a"\\ny: "a"', "start").parser_kind
'earley'
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from lark.common import ParserConf
from lark.exceptions import GrammarError, LarkError
from lark.grammar import Rule
from lark.lexer import PatternStr
from lark.load_grammar import load_grammar
from lark.parsers.lalr_analysis import LALR_Analyzer, Shift

from genweave.dsl.errors import GenCheckError
from genweave.runtime.constraints.byte_dfa import ByteDFA, literal_dfa
from genweave.runtime.constraints.regex import regex_dfa

_HINT = "write the grammar in Lark syntax (https://lark-parser.readthedocs.io/en/stable/grammar.html)"


@dataclass(frozen=True, eq=False)
class TerminalSpec:
    """One terminal: its name, Python regex (lark's ``to_regexp``), byte DFA and lexing order."""

    name: str
    pattern: str
    dfa: ByteDFA
    priority: int
    is_string: bool
    max_width: int
    value_length: int  # length of lark's pattern text (its lexer's third sort key)
    ignored: bool

    def order(self) -> tuple:
        """Sort key of the terminal a lexeme becomes when several match it whole: higher priority
        first, then string literals (lark retypes a regex match equal to a literal), then lark's
        lexer order (longer possible matches, longer patterns, name)."""
        return (-self.priority, not self.is_string, -self.max_width, -self.value_length, self.name)


@dataclass(frozen=True, eq=False)
class LALRTable:
    """LALR(1) tables in the encoding of the module docstring."""

    action: np.ndarray  # int32 [S, T + 1]
    goto: np.ndarray  # int32 [S, N], -1 where undefined
    initial: int
    accept: int  # the state reached by the goto on the start symbol: reaching it on $END accepts
    lexing_states: np.ndarray  # int32: the initial state and every shift target of a terminal


@dataclass(frozen=True, eq=False)
class GrammarSpec:
    """A grammar ready to compile: terminals, productive rules, and an LALR table when there is one."""

    terminals: tuple[TerminalSpec, ...]
    nonterminals: tuple[str, ...]
    rules: tuple[tuple[int, tuple[int, ...]], ...]  # (lhs nonterminal index, rhs symbols)
    start: int  # nonterminal index of the start symbol
    lalr: LALRTable | None
    conflict: str | None  # why the grammar is not LALR(1), when it is not

    @property
    def parser_kind(self) -> str:
        return "lalr" if self.lalr is not None else "earley"

    @property
    def end(self) -> int:
        """The symbol of the end marker."""
        return len(self.terminals)

    def symbol_name(self, symbol: int) -> str:
        if symbol < self.end:
            return self.terminals[symbol].name
        return "$END" if symbol == self.end else self.nonterminals[symbol - self.end - 1]

    def rule_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """(rule lengths, rule left-hand sides as nonterminal indices), int32."""
        lengths = np.array([len(rhs) for _, rhs in self.rules], dtype=np.int32)
        lhs = np.array([left for left, _ in self.rules], dtype=np.int32)
        return lengths, lhs


@lru_cache(maxsize=32)
def load_spec(text: str, start: str = "start") -> GrammarSpec:
    """The spec of a Lark grammar (cached per text and start symbol); :class:`GenCheckError` for
    invalid grammars, unsupported terminal patterns and empty languages."""
    terminals, rules, ignore = _lark_compile(text, start)
    specs = tuple(_terminal_spec(t, t.name in ignore) for t in terminals)
    return _assemble(specs, rules, start)


def spec_from_rules(terminals: tuple[TerminalSpec, ...], rules, start: str) -> GrammarSpec:
    """The spec of a grammar given directly: terminals (byte DFAs already built) and rules
    ``(name, (symbol names...))``, a symbol being a terminal's name or a rule's name."""
    from lark.grammar import NonTerminal, Terminal

    names = {t.name for t in terminals}
    built = [Rule(NonTerminal(origin), [Terminal(s) if s in names else NonTerminal(s) for s in rhs])
             for origin, rhs in rules]
    return _assemble(tuple(terminals), built, start)


def _assemble(specs: tuple[TerminalSpec, ...], rules, start: str) -> GrammarSpec:
    index = {t.name: i for i, t in enumerate(specs)}
    live = {t.name for t in specs if not t.dfa.is_empty()}
    rules = _productive(rules, live)
    if not any(rule.origin.name == start for rule in rules):
        raise GenCheckError(f"the grammar's start rule {start!r} derives no text at all",
                            hint="every derivation of the start rule must end in terminals that match something")
    names = sorted({rule.origin.name for rule in rules}, key=lambda n: (n != start, n))
    nt_index = {name: i for i, name in enumerate(names)}
    end = len(specs)

    def symbol(sym) -> int:
        return index[sym.name] if sym.is_term else end + 1 + nt_index[sym.name]

    encoded = tuple((nt_index[r.origin.name], tuple(symbol(s) for s in r.expansion)) for r in rules)
    table, conflict = _lalr_table(rules, start, index, nt_index)
    return GrammarSpec(specs, tuple(names), encoded, nt_index[start], table, conflict)


def _lark_compile(text: str, start: str):
    if not isinstance(text, str) or not text.strip():
        raise GenCheckError("grammar() takes the text of a Lark grammar", hint=_HINT)
    try:
        grammar, _ = load_grammar(text, "<grammar>", [], False)
        terminals, rules, ignore = grammar.compile([start], set())
    except LarkError as error:
        raise GenCheckError(f"invalid Lark grammar: {_first_line(error)}", hint=_HINT) from None
    for t in terminals:
        if t.pattern.min_width == 0:
            raise GenCheckError(f"terminal {t.name} matches the empty string",
                                hint="every terminal must consume at least one character")
    return terminals, rules, set(ignore)


def _summary(error: Exception, limit: int = 300) -> str:
    """The error's text on one line (lark lists a conflict's rules on the following lines)."""
    text = " ".join(str(error).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def _terminal_spec(terminal, ignored: bool) -> TerminalSpec:
    pattern = terminal.pattern.to_regexp()
    literal = isinstance(terminal.pattern, PatternStr) and not terminal.pattern.flags
    try:
        dfa = _literal_dfa(terminal.pattern.value) if literal else _regex_dfa(pattern)
    except GenCheckError as error:
        raise GenCheckError(f"terminal {terminal.name} ({pattern!r}) cannot be compiled: {error.message}",
                            hint=error.hint) from None
    return TerminalSpec(terminal.name, pattern, dfa, int(terminal.priority),
                        isinstance(terminal.pattern, PatternStr), int(terminal.pattern.max_width),
                        len(terminal.pattern.value), ignored)


@lru_cache(maxsize=1024)
def _regex_dfa(pattern: str) -> ByteDFA:
    """Terminal patterns recur across grammars (JSON strings, numbers): compile each once."""
    return regex_dfa(pattern)


@lru_cache(maxsize=1024)
def _literal_dfa(text: str) -> ByteDFA:
    return literal_dfa([text.encode("utf-8")])


def _productive(rules: list[Rule], live_terminals: set[str]) -> list[Rule]:
    """The rules whose symbols all derive some text (least fixpoint); the language is unchanged."""
    productive: set[str] = set()
    changed = True
    while changed:
        changed = False
        for rule in rules:
            name = rule.origin.name
            if name not in productive and all(
                    s.name in (live_terminals if s.is_term else productive) for s in rule.expansion):
                productive.add(name)
                changed = True
    return [r for r in rules
            if all(s.name in (live_terminals if s.is_term else productive) for s in r.expansion)]


def _lalr_table(rules, start, index, nt_index) -> tuple[LALRTable | None, str | None]:
    """The LALR(1) table of ``rules``, or (None, the conflict lark reports)."""
    try:
        analysis = LALR_Analyzer(ParserConf(list(rules), {}, [start]), strict=True)
        analysis.compute_lalr()
    except GrammarError as error:
        return None, _summary(error)
    table = analysis.parse_table
    rule_index = {(r.origin.name, tuple(s.name for s in r.expansion)): i for i, r in enumerate(rules)}
    end = len(index)
    n = len(table.states)
    action = np.full((n, end + 1), -1, dtype=np.int32)
    goto = np.full((n, max(len(nt_index), 1)), -1, dtype=np.int32)
    shifted = {table.start_states[start]}
    for state, row in table.states.items():
        for name, (kind, arg) in row.items():
            if kind is Shift:
                if name in nt_index:
                    goto[state, nt_index[name]] = arg
                else:
                    action[state, index[name]] = arg
                    shifted.add(arg)
                continue
            key = (arg.origin.name, tuple(s.name for s in arg.expansion))
            if key in rule_index:  # not the root rule: reaching `accept` on $END is acceptance
                action[state, end if name == "$END" else index[name]] = -rule_index[key] - 2
    lexing = np.array(sorted(shifted), dtype=np.int32)
    return LALRTable(action, goto, table.start_states[start], table.end_states[start], lexing), None
