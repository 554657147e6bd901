"""The grammar route: a JSON Schema whose automaton is too large, as a context-free grammar.

A schema becomes one *procedure* per distinct value position that can hold an object or an
array (a conjunction of subschemas, keyed by their JSON pointers and schema values), plus one
shared procedure for free values. Each procedure is emitted by the DFA route's own emitter
(:class:`~genweave.runtime.constraints.json_schema.emit.Emitter`: merging, combinators, objects,
arrays, strings, numbers, enums), with two changes:

* every piece it writes — a structural token with its whitespace, a key, a scalar (a string,
  number or enum DFA from the usual emitters), a literal — becomes one *terminal* of the grammar,
  written into the procedure's automaton as a 3-byte code instead of its bytes;
* a nested value (an object member or an array item) that can be an object or an array, and
  every free value, is a *call*: the code of the procedure of that value.

The subset construction then gives a small DFA per procedure over terminal and call codes, read
as right-linear rules ``P_s -> X P_t`` (``X`` a terminal or the start of the called procedure).
Recursive ``$ref``\\ s are real recursion and free values nest to any depth, so nothing is cut at
``max_depth`` (every text accepted validates; the grammar accepts more valid texts than a depth
bound would). Terminals are JSON tokens (strings, numbers, literals, punctuation), so the longest
match of the grammar engine's contextual lexer splits a text where JSON does. Where two
overlapping terminals are expected at one place (e.g. two ``anyOf`` branches that constrain the
same string differently), the lexer keeps the first one: the text still validates, but a valid
text needing the other one can be refused.

>>> from genweave.runtime.constraints.json_schema.emit import Options
>>> tree = {"$ref": "#/$defs/t", "$defs": {"t": {"type": "object", "properties": {
...     "kids": {"type": "array", "items": {"$ref": "#/$defs/t"}}}, "additionalProperties": False}}}
>>> built = build_grammar(tree, Options())
>>> built.grammar.parser_kind, built.accepts(b'{"kids":[{"kids":[{}]},{}]}'), built.accepts(b'{"kid":[]}')
('lalr', True, False)
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import threading
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from genweave.dsl.errors import GenCheckError
from genweave.runtime.constraints.byte_dfa import DEAD, ByteDFA
from genweave.runtime.constraints.grammar.builder import Grammar
from genweave.runtime.constraints.grammar.spec import GrammarSpec, TerminalSpec, spec_from_rules
from genweave.runtime.constraints.json_schema.automata import MAX_DFA_STATES, NFA
from genweave.runtime.constraints.json_schema.document import Document, Sub
from genweave.runtime.constraints.json_schema.emit import Emitter, Options, regex_dfa
from genweave.runtime.constraints.json_schema.merge import Conjunction, MergeContext, Merged, merge

CODE_BYTES = 3  # a terminal or call is written as this many bytes in a procedure's automaton
MAX_SYMBOLS = 256 ** CODE_BYTES
FREE = "free"  # the key of the procedure of free values


def _code(symbol: int) -> bytes:
    return symbol.to_bytes(CODE_BYTES, "big")


class Symbols:
    """The terminals and procedures of one grammar, numbered together (codes are shared)."""

    def __init__(self):
        self.terminals: dict[Any, int] = {}  # key -> symbol
        self.terminal_specs: dict[int, TerminalSpec] = {}
        self.procedures: dict[Any, int] = {}  # key -> symbol
        self.bodies: dict[int, Any] = {}  # symbol -> what the procedure emits (a conjunction or FREE)
        self.pending: list[int] = []
        self._keep: list[Any] = []  # keeps keyed objects alive (their ids are in keys)

    def _next(self) -> int:
        symbol = len(self.terminals) + len(self.procedures)
        if symbol >= MAX_SYMBOLS:
            raise OverflowError("too many grammar symbols")
        return symbol

    def terminal(self, key: Any, dfa: ByteDFA, description: str, literal: bool) -> int:
        found = self.terminals.get(key)
        if found is None:
            if dfa.is_empty() or dfa.accepting[dfa.initial]:
                raise ValueError(f"a terminal must match non-empty texts only: {description}")
            found = self.terminals[key] = self._next()
            self.terminal_specs[found] = TerminalSpec(f"T{found}", description, dfa, 0, literal, 0, 0, False)
        return found

    def procedure(self, key: Any, body: Any) -> int:
        found = self.procedures.get(key)
        if found is None:
            found = self.procedures[key] = self._next()
            self.bodies[found] = body
            self.pending.append(found)
        return found


class TokenNFA(NFA):
    """An NFA whose literals and embedded DFAs are written as terminal codes."""

    def __init__(self, symbols: Symbols):
        super().__init__()
        self.symbols = symbols

    def code(self, symbol: int, cont: int) -> int:
        return super().literal(_code(symbol), cont)

    def literal(self, data: bytes, cont: int) -> int:
        if not data:
            return cont
        dfa = regex_dfa(re.escape(data.decode("utf-8")))
        return self.code(self.symbols.terminal(("literal", data), dfa, data.decode("utf-8"), True), cont)

    def embed(self, dfa: ByteDFA, cont: int) -> int:
        if dfa.is_empty():
            return self.junction()
        return self.code(self.symbols.terminal(("dfa", _digest(dfa)), dfa, f"<{dfa.num_states} states>", False),
                         cont)


def _digest(dfa: ByteDFA) -> str:
    h = hashlib.sha1(np.ascontiguousarray(dfa.transitions).tobytes())
    h.update(np.ascontiguousarray(dfa.accepting).tobytes())
    h.update(str(dfa.initial).encode())
    return h.hexdigest()


class GrammarEmitter(Emitter):
    """The emitter of one procedure body (module docstring): pieces as terminal codes, nested
    containers and free values as calls."""

    def __init__(self, document: Document, options: Options, context: MergeContext, symbols: Symbols,
                 keys: SchemaKeys):
        super().__init__(document, options, context)
        self.nfa = TokenNFA(symbols)
        self.symbols = symbols
        self.keys = keys

    def token(self, text: bytes, cont: int, *, before: bool = True, after: bool = True) -> int:
        gap = self.options.gap_pattern()
        if gap is None:  # json.dumps spacing
            data = text + (b" " if text in (b",", b":") else b"")
            return self.nfa.literal(data, cont)
        if not gap:
            return self.nfa.literal(text, cont)
        pattern = (f"(?:{gap})" if before else "") + re.escape(text.decode()) + (f"(?:{gap})" if after else "")
        symbol = self.symbols.terminal(("token", text, before, after), regex_dfa(pattern), pattern, False)
        return self.nfa.code(symbol, cont)

    def typed(self, m: Merged, cont: int, budget: int, excluded: tuple[Merged, ...]) -> int:
        cap = max(self.options.max_array_length, m.min_properties)
        if m.max_properties is not None and m.max_properties > cap:  # each counted member costs states
            self.capped.append(f"{m.pointer or '/'}: maxProperties {m.max_properties} enforced as {cap}")
            m = replace(m, max_properties=cap)
        return super().typed(m, cont, budget, excluded)

    def free(self, cont: int, budget: int, pointer: str) -> int:
        self.context.free_values.add(pointer)
        return self.nfa.code(self.symbols.procedure(FREE, FREE), cont)

    def value(self, subs: Conjunction, cont: int, budget: int, expanded: frozenset = frozenset(),
              excluded: tuple[Merged, ...] = (), *, nested: bool = False) -> int:
        if nested and not expanded and not excluded:
            m = merge(subs, self.context)
            if m.is_free():
                return self.free(cont, budget, m.pointer)
            if m.enum is None and m.types & {"object", "array"} and not m.is_empty():
                key = tuple(self.keys.key(s.schema) for s in subs)
                body = tuple(Sub(s.schema, s.pointer) for s in subs)
                return self.nfa.code(self.symbols.procedure(key, body), cont)
        return super().value(subs, cont, self.options.max_depth, expanded, excluded, nested=nested)


class SchemaKeys:
    """Hashable keys of schema values, equal for equal values: a digest of the content of the
    document's own dicts and lists (computed once, bottom up), the structure of the ones the
    compiler makes (negations, synthetic requirements). Equal subschemas at different places
    (normalized schemas repeat them) share one procedure."""

    def __init__(self, root: Any):
        self._own: dict[int, str] = {}
        self._index(root)

    def _index(self, node: Any) -> str:
        if isinstance(node, dict):
            parts = [json.dumps(k) + ":" + self._index(v) for k, v in node.items()]
            digest = hashlib.sha1(("{" + ",".join(parts) + "}").encode()).hexdigest()
        elif isinstance(node, list):
            digest = hashlib.sha1(("[" + ",".join(self._index(v) for v in node) + "]").encode()).hexdigest()
        else:
            return json.dumps(node)
        self._own[id(node)] = digest
        return digest

    def key(self, schema: Any) -> Any:
        found = self._own.get(id(schema)) if isinstance(schema, dict | list) else None
        if found is not None:
            return found
        if isinstance(schema, dict):
            return ("dict", tuple((k, self.key(v)) for k, v in schema.items()))
        if isinstance(schema, list):
            return ("list", tuple(self.key(v) for v in schema))
        return json.dumps(schema)


@dataclass(frozen=True, eq=False)
class SchemaGrammar:
    """The grammar of a schema: its spec, the :class:`Grammar` that compiles it, and what the
    compiler relaxed or approximated (as on :class:`CompiledSchema`)."""

    grammar: Grammar
    procedures: int
    relaxed: tuple[tuple[str, str], ...] = ()
    free_values: tuple[str, ...] = ()
    capped: tuple[str, ...] = ()
    approximated: tuple[tuple[str, str], ...] = ()
    ignored: tuple[tuple[str, str], ...] = ()
    _recognizer: list = field(default_factory=list, repr=False)
    _compiled: dict = field(default_factory=dict, repr=False)

    def constraint_for(self, vocab, index: str = "lazy"):
        """The grammar compiled for ``vocab`` (a Vocabulary or TokenTrie), once per vocabulary."""
        from genweave.runtime.constraints.token_trie import TokenTrie

        trie = vocab if isinstance(vocab, TokenTrie) else TokenTrie.from_vocabulary(vocab)
        key = (trie.vocab_key, index)
        found = self._compiled.get(key)
        if found is None:
            found = self._compiled[key] = self.grammar.compile(trie, index=index)
        return found

    def recognizer(self):
        """The grammar compiled for a one-token vocabulary: ``walk`` reads bytes, ``is_complete``
        tells acceptance (built on first use)."""
        if not self._recognizer:
            from genweave.runtime.vocab import Vocabulary

            self._recognizer.append(self.grammar.compile(Vocabulary.from_bytes([b"{", b"</s>"], eos_ids=[1])))
        return self._recognizer[0]

    def accepts(self, text: bytes) -> bool:
        """Whether the grammar accepts ``text``."""
        recognizer = self.recognizer()
        return recognizer.is_complete(recognizer.walk(recognizer.initial(), bytes(text)))


class PrebuiltGrammar(Grammar):
    """A :class:`Grammar` whose spec was built directly (no Lark text to parse)."""

    def __init__(self, spec: GrammarSpec, description: str, digest: str):
        object.__setattr__(self, "text", f"json_schema_grammar({digest})")
        object.__setattr__(self, "start", "start")
        object.__setattr__(self, "_spec", spec)
        object.__setattr__(self, "_description", description)

    def spec(self) -> GrammarSpec:
        return self._spec

    def __str__(self) -> str:
        return self._description


def build_grammar(root: Any, options: Options, description: str = "json_schema grammar") -> SchemaGrammar:
    """The grammar of the schema ``root`` (module docstring); :class:`GenCheckError` when it
    accepts no value."""
    document = Document(root)
    depth = options.recursion_depth if options.recursion_depth is not None else options.max_depth
    context = MergeContext(document, depth, options.relax)
    symbols, keys = Symbols(), SchemaKeys(root)
    start = symbols.procedure(("root",), (Sub(root, ""),))
    rules: list[tuple[str, tuple[str, ...]]] = []
    capped: list[str] = []
    while symbols.pending:
        procedure = symbols.pending.pop()
        emitter = GrammarEmitter(document, options, context, symbols, keys)
        context.expansions = 0  # each body is bounded on its own
        body = symbols.bodies[procedure]
        final = emitter.nfa.final
        if body == FREE:
            entry = emitter.typed(Merged(""), final, options.max_depth, ())
        else:
            entry = emitter.value(body, final, options.max_depth)
        rules += _procedure_rules(procedure, emitter.nfa.determinize(entry), symbols)
        capped += emitter.capped
        if len(rules) > MAX_RULES:
            raise GrammarTooLarge(f"more than {MAX_RULES} rules")
    terminals = tuple(symbols.terminal_specs[s] for s in sorted(symbols.terminal_specs))
    spec = _deep_call(spec_from_rules, terminals, [("start", (_start(start),))] + rules, "start")
    if spec.lalr is not None and spec.lalr.action.shape[0] > MAX_PARSER_STATES:
        raise GrammarTooLarge(f"{spec.lalr.action.shape[0]} LALR states (at most {MAX_PARSER_STATES})")
    digest = hashlib.sha256(repr(sorted(rules)).encode() + b"".join(_digest(t.dfa).encode() for t in terminals))
    grammar = PrebuiltGrammar(spec, description, digest.hexdigest()[:16])
    return SchemaGrammar(grammar, len(symbols.procedures), tuple(dict.fromkeys(context.relaxed)),
                         tuple(sorted(context.free_values)), tuple(dict.fromkeys(capped)),
                         tuple(dict.fromkeys(context.approximated)), tuple(dict.fromkeys(context.ignored)))


MAX_RULES = 30_000  # the grammar engine keeps a row per (parser state, lexer state): bounded sizes
MAX_PARSER_STATES = 20_000


class GrammarTooLarge(GenCheckError):
    """The grammar of a schema is too large for the grammar engine."""

    def __init__(self, detail: str):
        super().__init__(f"the schema needs more than {MAX_DFA_STATES} automaton states, and its grammar is "
                         f"too large too ({detail})",
                         hint="lower max_string_length or max_array_length, or split the schema")


def _deep_call(function, *args):
    """``function(*args)`` in a thread with a large stack: lark's LALR analysis recurses along
    chains of rules, as long as the longest path through a procedure."""
    result: list = []

    def run():
        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(max(limit, 200_000))
        try:
            result.append(function(*args))
        except BaseException as error:  # re-raised in the caller's thread
            result.append(error)
        finally:
            sys.setrecursionlimit(limit)

    previous = threading.stack_size(DEEP_STACK_BYTES)
    try:
        worker = threading.Thread(target=run)
        worker.start()
        worker.join()
    finally:
        threading.stack_size(previous)
    if isinstance(result[0], BaseException):
        raise result[0]
    return result[0]


DEEP_STACK_BYTES = 1 << 29


def _start(procedure: int) -> str:
    return f"p{procedure}_0"  # trim numbers the initial state 0


def _procedure_rules(procedure: int, dfa: ByteDFA, symbols: Symbols) -> list[tuple[str, tuple[str, ...]]]:
    """Right-linear rules of a procedure's DFA over codes: ``p_s -> X p_t`` per code edge, ``p_t ->``
    for accepting states with edges out, ``p_s -> X`` when ``t`` accepts and has none."""
    if dfa.is_empty():
        return []
    table = dfa.transitions
    live = table != DEAD
    seen, todo, rules = {dfa.initial}, [dfa.initial], []
    while todo:
        state = todo.pop()
        name = f"p{procedure}_{state}"
        if dfa.accepting[state] and live[state].any():
            rules.append((name, ()))
        for symbol, target in _code_edges(table, live, state):
            item = f"T{symbol}" if symbol in symbols.terminal_specs else _start(symbol)
            if dfa.accepting[target] and not live[target].any():
                rules.append((name, (item,)))
                continue
            rules.append((name, (item, f"p{procedure}_{target}")))
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return rules


def _code_edges(table: np.ndarray, live: np.ndarray, state: int) -> list[tuple[int, int]]:
    """(symbol, target) of the codes read from ``state``."""
    frontier = [(0, state)]
    for _ in range(CODE_BYTES):
        frontier = [(prefix << 8 | int(b), int(table[s, b])) for prefix, s in frontier
                    for b in np.flatnonzero(live[s]).tolist()]
    return frontier
