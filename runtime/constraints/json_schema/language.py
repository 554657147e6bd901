"""The ``json_schema`` builder: a JSON Schema (or Pydantic model) as a regular language.

>>> lang = json_schema({"type": "object", "properties": {"n": {"type": "integer", "minimum": 1}},
...                     "required": ["n"], "additionalProperties": False})
>>> dfa = lang.to_dfa()
>>> [dfa.accepts(t) for t in (b'{"n":3}', b'{"n":0}', b'{"n": 3}', b'{}')]
[True, False, False, False]
>>> lang.canonical_text({"n": 12})
'{"n":12}'
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

from genweave.dsl.errors import GenCheckError
from genweave.runtime.constraints.byte_dfa import DEAD, ByteDFA
from genweave.runtime.constraints.grammar.builder import describe_parser
from genweave.runtime.constraints.grammar.operators import CombinableConstraint
from genweave.runtime.constraints.json_schema.automata import MAX_DFA_STATES, TooLarge
from genweave.runtime.constraints.json_schema.document import Document, Sub, schema_of
from genweave.runtime.constraints.json_schema.emit import WHITESPACE, Emitter, Options
from genweave.runtime.constraints.json_schema.grammar_route import SchemaGrammar, build_grammar
from genweave.runtime.constraints.json_schema.keywords import check_relax
from genweave.runtime.constraints.languages import Language


@dataclass(frozen=True)
class CompiledSchema:
    """A compiled schema: its DFA and what the compiler had to bound or relax."""

    dfa: ByteDFA
    relaxed: tuple[tuple[str, str], ...]  # (keyword, JSON pointer) over-approximated on request
    depth_bounded: tuple[str, ...]  # pointers of recursive $refs cut at max_depth
    free_values: tuple[str, ...]  # pointers of free values (nesting bounded by max_depth)
    capped: tuple[str, ...]  # maxLength/maxItems bounds lowered to the options' caps
    free_depth: int  # how deep free values nest (max_depth, or less when the automaton was too large)
    recursion_depth: int  # how often a recursive $ref is expanded (likewise)
    # (keyword, pointer): enforced by a documented subset of its language (every text still validates)
    approximated: tuple[tuple[str, str], ...] = ()
    ignored: tuple[tuple[str, str], ...] = ()  # (keyword, pointer): formats no JSON Schema draft defines


@dataclass(frozen=True, eq=False)
class JsonSchema(Language):
    """The JSON texts (UTF-8) that validate against a schema, in the compiler's serialization:
    declared object members in schema order, then additional ones; whitespace per ``options``;
    canonical integers; strings without ``\\uXXXX`` escapes of printable characters."""

    schema_text: str  # the schema as compact JSON text (member order kept: it is meaningful)
    options: Options

    def compiled(self) -> CompiledSchema:
        return _compile(self.schema_text, self.options)

    def to_dfa(self) -> ByteDFA:
        return self.compiled().dfa

    def key(self) -> str:
        digest = hashlib.sha256(self.schema_text.encode("utf-8")).hexdigest()
        o = self.options
        return (f"json_schema({digest},ws={o.whitespace!r},depth={o.max_depth},str={o.max_string_length},"
                f"arr={o.max_array_length},relax={sorted(o.relax)})")

    def __str__(self) -> str:
        title = json.loads(self.schema_text).get("title") if self.schema_text.startswith("{") else None
        return f"json_schema({title!r})" if title else f"json_schema(<{len(self.schema_text)} chars>)"

    @property
    def relaxed(self) -> tuple[tuple[str, str], ...]:
        return self.compiled().relaxed

    @property
    def depth_bounded(self) -> tuple[str, ...]:
        return self.compiled().depth_bounded

    def canonical_text(self, value: Any) -> str | None:
        """The text of ``value`` in this language (members reordered as the schema declares
        them), or None when no serialization of ``value`` is in the language."""
        dfa = self.to_dfa()
        return _canonical(value, dfa.walk, dfa.initial, lambda state: bool(dfa.accepting[state]), self.options)

    def accepts(self, text: bytes) -> bool:
        """Whether ``text`` (UTF-8 bytes) is in the language."""
        return self.to_dfa().accepts(bytes(text))

    route = "dfa"  # see JsonSchemaGrammar


SERIALIZE_STEPS = 20_000  # member orders tried before canonical_text gives up


def _canonical(value: Any, walk, initial: int, final, options: Options) -> str | None:
    """The first serialization of ``value`` that ``walk`` reads from ``initial`` to a ``final`` state."""
    if options.whitespace not in ("compact", "spaces"):
        raise GenCheckError("canonical_text needs whitespace='compact' or 'spaces'")
    budget = [SERIALIZE_STEPS]
    for end, text in _serialize(value, walk, initial, options.whitespace == "spaces", budget):
        if final(end):
            return text
    return None


def _serialize(value: Any, walk, state: int, spaces: bool, budget: list[int]):
    """Yield (end state, text) for the serializations of ``value`` from ``state`` that the
    automaton can read (``walk(state, bytes)``, DEAD when it cannot): member orders found depth
    first, pruned by the automaton, at most ``budget`` steps."""
    budget[0] -= 1
    if budget[0] < 0:
        return
    if isinstance(value, dict):
        for end, text in _members(value, walk, walk(state, b"{"), spaces, list(value), True, budget):
            yield end, "{" + text
    elif isinstance(value, list):
        for end, text in _elements(value, walk, walk(state, b"["), spaces, 0, budget):
            yield end, "[" + text
    else:
        text = json.dumps(value, ensure_ascii=False)
        end = walk(state, text.encode("utf-8"))
        if end != DEAD:
            yield end, text


def _members(value: dict, walk, state: int, spaces: bool, keys: list, first: bool, budget: list[int]):
    """(end state, text) of the remaining members ``keys`` and the closing brace."""
    if state == DEAD:
        return
    if not keys:
        end = walk(state, b"}")
        if end != DEAD:
            yield end, "}"
        return
    for key in keys:
        head = ("" if first else ", " if spaces else ",") + json.dumps(key, ensure_ascii=False)
        head += ": " if spaces else ":"
        after_key = walk(state, head.encode("utf-8"))
        if after_key == DEAD:
            continue
        rest = [k for k in keys if k != key]
        for after_value, text in _serialize(value[key], walk, after_key, spaces, budget):
            for end, tail in _members(value, walk, after_value, spaces, rest, False, budget):
                yield end, head + text + tail


def _elements(value: list, walk, state: int, spaces: bool, index: int, budget: list[int]):
    """(end state, text) of the elements from ``index`` on and the closing bracket."""
    if state == DEAD:
        return
    if index == len(value):
        end = walk(state, b"]")
        if end != DEAD:
            yield end, "]"
        return
    sep = "" if index == 0 else (", " if spaces else ",")
    after_sep = walk(state, sep.encode())
    for after_item, text in _serialize(value[index], walk, after_sep, spaces, budget) if after_sep != DEAD else ():
        for end, tail in _elements(value, walk, after_item, spaces, index + 1, budget):
            yield end, sep + text + tail


@dataclass(frozen=True)
class JsonSchemaGrammar(CombinableConstraint):
    """A schema whose automaton is too large, as a context-free grammar (the *grammar route*,
    :mod:`~genweave.runtime.constraints.json_schema.grammar_route`): the same texts as
    :class:`JsonSchema` would accept, except that recursive ``$ref``\\ s and free values nest to
    any depth. It compiles like a grammar (``compile(vocab)``: masks, ``advance``,
    ``is_complete``...), so ``compile_constraint`` and holes take it unchanged; it has no DFA."""

    schema_text: str
    options: Options

    route = "grammar"

    def compiled(self) -> SchemaGrammar:
        return _compile_grammar(self.schema_text, self.options)

    @property
    def grammar_kind(self) -> str:
        """``"lalr"`` or ``"earley"`` (the general fallback), as for :class:`Grammar`."""
        return self.compiled().grammar.parser_kind

    def to_dfa(self) -> ByteDFA:
        raise GenCheckError(f"{self} takes the grammar route (its automaton would need more than "
                            f"{MAX_DFA_STATES} states): it has no DFA",
                            hint="compile it with compile_constraint(...) or test texts with .accepts(...)")

    def compile(self, vocab, *, index: str = "lazy"):
        """The grammar constraint for ``vocab`` (a Vocabulary or TokenTrie); see :class:`Grammar`.
        Compiled once per vocabulary and index (building the lexers of a large grammar takes
        seconds), then shared: its states are immutable ints."""
        return self.compiled().constraint_for(vocab, index)

    def accepts(self, text: bytes) -> bool:
        return self.compiled().accepts(bytes(text))

    def canonical_text(self, value: Any) -> str | None:
        """As :meth:`JsonSchema.canonical_text`, read by the grammar's recognizer."""
        recognizer = self.compiled().recognizer()
        return _canonical(value, recognizer.walk, recognizer.initial(), recognizer.is_complete, self.options)

    def key(self) -> str:
        return "grammar_" + JsonSchema.key(self)  # type: ignore[arg-type]

    @property
    def relaxed(self) -> tuple[tuple[str, str], ...]:
        return self.compiled().relaxed

    @property
    def depth_bounded(self) -> tuple[str, ...]:
        return ()

    def explain(self) -> str:
        compiled = self.compiled()
        return f"{self}: grammar route, {compiled.procedures} procedures; {describe_parser(compiled.grammar.spec())}"

    def __str__(self) -> str:
        return JsonSchema.__str__(self)  # type: ignore[arg-type]


@lru_cache(maxsize=8)
def _compile_grammar(schema_text: str, options: Options) -> SchemaGrammar:
    return build_grammar(json.loads(schema_text), options, f"json_schema_grammar(<{len(schema_text)} chars>)")


@lru_cache(maxsize=8)
def _compile(schema_text: str, options: Options) -> CompiledSchema:
    """Compile; when the automaton is too large, retry with free values nested less deeply,
    then recursive references expanded fewer times, then negations without their member and item
    violations (smaller languages, never larger ones), and report what was used."""
    root = json.loads(schema_text)
    depth = options.max_depth
    ladder = dict.fromkeys([(depth, depth, False), (depth, min(depth, 1), False), (depth, 0, False)] +
                           [(r, 0, False) for r in range(depth - 1, 0, -1)] +
                           [(depth, min(depth, 1), True), (min(depth, 1), 0, True)])
    for recursion, free, cheap in ladder:
        try:
            return _compile_once(root, replace(options, free_depth=free, recursion_depth=recursion,
                                               cheap_negations=cheap))
        except TooLarge:
            continue
    raise TooLarge()


def _compile_once(root: Any, options: Options) -> CompiledSchema:
    document = Document(root)
    emitter = Emitter(document, options)
    entry = emitter.value((Sub(root, ""),), emitter.nfa.final, options.max_depth)
    dfa = emitter.nfa.determinize(entry)
    if dfa.is_empty():
        detail = " within max_depth" if emitter.context.depth_bounded else ""
        if emitter.context.approximated:
            keyword, pointer = emitter.context.approximated[0]
            detail += f" (its {keyword!r} at {pointer or '/'} is compiled as a subset, see docs/constraints.md)"
        raise GenCheckError(f"the JSON schema accepts no value{detail}",
                            hint="check required properties, enums and bounds for contradictions")
    context = emitter.context
    return CompiledSchema(dfa, tuple(dict.fromkeys(context.relaxed)), tuple(dict.fromkeys(context.depth_bounded)),
                          tuple(sorted(context.free_values)), tuple(dict.fromkeys(emitter.capped)),
                          options.free_depth, options.recursion_depth,
                          tuple(dict.fromkeys(context.approximated)), tuple(dict.fromkeys(context.ignored)))


def json_schema(schema: Any, *, whitespace: str = "compact", max_depth: int = 3,
                max_string_length: int = 128, max_array_length: int = 16,
                relax: bool | str | tuple | list | set | frozenset = False) -> JsonSchema | JsonSchemaGrammar:
    """The language of the JSON texts that validate against ``schema`` (a dict, a JSON string
    or a Pydantic model class); compiled now, so unsupported input raises here.

    ``whitespace``: ``"compact"`` (none; the default), ``"spaces"`` (``", "`` and ``": "``, as
    ``json.dumps``), ``"pretty"`` (a newline and up to 32 spaces, or one space, between tokens) or
    a regex for the whitespace allowed between any two tokens. ``max_depth``: how deep free
    values (``{}``, open ``additionalProperties``) nest and how often a recursive ``$ref`` is
    expanded. ``max_string_length`` / ``max_array_length``: a larger ``maxLength`` / ``maxItems``
    is enforced as this cap (each counted character or item costs automaton states).
    ``relax``: keyword names (or ``True`` for all) that may be over-approximated instead of
    raising (see ``keywords.RELAXATIONS``); what was relaxed is listed on ``.relaxed``.

    A schema whose automaton needs more than ``MAX_DFA_STATES`` states (deep recursion, nested
    free values) takes the grammar route: a :class:`JsonSchemaGrammar` (``.route == "grammar"``).
    """
    if not isinstance(whitespace, str):
        raise GenCheckError(f"whitespace must be a string, not {whitespace!r}",
                            hint=f"use one of {', '.join(WHITESPACE)} or a regex")
    for name, value, least in (("max_depth", max_depth, 0), ("max_string_length", max_string_length, 1),
                               ("max_array_length", max_array_length, 1)):
        if not isinstance(value, int) or isinstance(value, bool) or value < least:
            raise GenCheckError(f"{name} must be an integer >= {least}, not {value!r}")
    root = schema_of(schema)
    text = json.dumps(root, ensure_ascii=False, separators=(",", ":"))  # keeps member order
    options = Options(whitespace=whitespace, max_depth=max_depth, max_string_length=max_string_length,
                      max_array_length=max_array_length, relax=check_relax(relax))
    if _route(text, options) == "grammar":  # too large for a DFA (docs/constraints.md, "grammar route")
        routed = JsonSchemaGrammar(text, options)
        routed.compiled()
        return routed
    return JsonSchema(text, options)


@lru_cache(maxsize=64)
def _route(schema_text: str, options: Options) -> str:
    """``"dfa"`` when some rung of the ladder fits, else ``"grammar"`` (remembered: finding out
    that no rung fits takes the whole ladder)."""
    try:
        _compile(schema_text, options)
    except TooLarge:
        return "grammar"
    return "dfa"
