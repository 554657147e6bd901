"""The JSON Schema emitter: subschemas -> one byte NFA, compiled right to left.

:meth:`Emitter.value` emits the language of the JSON texts that satisfy a conjunction of
subschemas, followed by a continuation state, and returns its entry state. On the way it

1. merges the conjunction (:mod:`merge`), raising for refused keywords;
2. distributes ``anyOf``/``oneOf`` (each branch is re-merged with the rest; a ``oneOf`` branch also
   gets the negation of every other branch that is not provably disjoint from it);
3. compiles negations and dependencies into positive case splits or scalar exclusions
   (:mod:`combinators`);
4. emits one alternative per JSON type: literals, numbers (:mod:`numeric`), strings
   (:mod:`strings`), arrays (here) and objects (:mod:`objects`).

Values that nothing constrains (``{}``, ``true``, ``additionalProperties`` left open) are any JSON
value nested at most ``max_depth`` arrays/objects deep; deeper free values are scalars. Every
place where that bound applies is recorded, as are relaxed keywords and capped lengths.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass, replace
from decimal import Decimal
from functools import lru_cache

import numpy as np

from genweave.dsl.errors import GenCheckError
from genweave.runtime.constraints.byte_dfa import ByteDFA, empty_dfa
from genweave.runtime.constraints.json_schema import numeric, strings
from genweave.runtime.constraints.json_schema.automata import NFA, difference, intersection
from genweave.runtime.constraints.json_schema.document import Document, Sub
from genweave.runtime.constraints.json_schema.keywords import refusal
from genweave.runtime.constraints.json_schema.merge import (
    ALL_TYPES,
    Conjunction,
    MergeContext,
    Merged,
    canonical,
    json_type,
    merge,
    raise_refused,
)
from genweave.runtime.constraints.regex import regex_dfa as _regex_dfa

WHITESPACE = {
    "compact": "",
    "spaces": None,  # json.dumps' default separators ", " and ": ", nothing else
    "pretty": r"(?:\n {0,32}| )?",
}

_NON_INTEGRAL = r"-?(?:0|[1-9][0-9]*)\.[0-9]*[1-9][0-9]*"


@lru_cache(maxsize=512)
def regex_dfa(pattern: str) -> ByteDFA:
    """:func:`genweave.runtime.constraints.regex.regex_dfa`, memoised (the same number,
    whitespace and key patterns recur in every schema)."""
    return _regex_dfa(pattern)


@dataclass(frozen=True)
class Options:
    """Compile options (see :func:`genweave.runtime.constraints.json_schema.json_schema`)."""

    whitespace: str = "compact"
    max_depth: int = 3
    free_depth: int | None = None  # nesting of free values (None: max_depth)
    recursion_depth: int | None = None  # expansions of a recursive $ref (None: max_depth)
    max_string_length: int = 128
    max_array_length: int = 16
    relax: frozenset[str] = frozenset()
    cheap_negations: bool = False  # negations leave out member and item violations (smaller automata)

    def gap_pattern(self) -> str | None:
        """The regex of the whitespace between tokens ('' none; None: json.dumps spacing)."""
        return WHITESPACE.get(self.whitespace, self.whitespace)


@lru_cache(maxsize=32)
def free_dfa(budget: int, whitespace: str) -> ByteDFA:
    """Every JSON value nested at most ``budget`` arrays/objects deep, in a whitespace style."""
    emitter = Emitter(Document({}), Options(whitespace=whitespace, max_depth=budget))
    m = Merged("") if budget > 0 else Merged("", types=ALL_TYPES - {"object", "array"})
    return emitter.nfa.determinize(emitter.typed(m, emitter.nfa.final, budget, ()))


class Emitter:
    """Emits subschemas into one NFA (local to one compile; see the module docstring)."""

    def __init__(self, document: Document, options: Options, context: MergeContext | None = None):
        self.document = document
        self.options = options
        depth = options.recursion_depth if options.recursion_depth is not None else options.max_depth
        self.context = context or MergeContext(document, depth, options.relax)
        self.nfa = NFA()
        self.capped: list[str] = []
        gap = options.gap_pattern()
        self._gap = regex_dfa(gap) if gap else None
        self._spaces = gap is None

    # -- layout ------------------------------------------------------------------------------

    def gap(self, cont: int) -> int:
        return self.nfa.embed(self._gap, cont) if self._gap is not None else cont

    def token(self, text: bytes, cont: int, *, before: bool = True, after: bool = True) -> int:
        """A structural token with the whitespace around it (``before``/``after`` it)."""
        if self._spaces:
            return self.nfa.literal(text + (b" " if text in (b",", b":") else b""), cont)
        inner = self.gap(cont) if after else cont
        inner = self.nfa.literal(text, inner)
        return self.gap(inner) if before else inner

    def dumps(self, value) -> bytes:
        separators = (", ", ": ") if self._spaces else (",", ":")
        return json.dumps(value, ensure_ascii=False, separators=separators).encode("utf-8")

    # -- values ------------------------------------------------------------------------------

    def standalone(self, subs: Conjunction, budget: int) -> ByteDFA:
        """The DFA of ``subs`` alone (a separate NFA, same context)."""
        child = Emitter(self.document, self.options, self.context)
        dfa = child.nfa.determinize(child.value(subs, child.nfa.final, budget))
        self.capped += child.capped
        return dfa

    def value(self, subs: Conjunction, cont: int, budget: int, expanded: frozenset = frozenset(),
              excluded: tuple[Merged, ...] = (), *, nested: bool = False) -> int:
        """Entry of the texts satisfying every subschema of ``subs``, then ``cont``.

        ``budget`` is the nesting left to free values; a free value that is the element or
        member of a container (``nested``) has one level less than the container.
        """
        from genweave.runtime.constraints.json_schema import combinators

        self.context.expansions += len(subs)  # the cost of merging them
        if self.context.expansions > MAX_EXPANSIONS:
            raise GenCheckError(f"the schema's combinators split into too many cases (more than "
                                f"{MAX_EXPANSIONS} subschemas merged)",
                                hint="simplify anyOf/oneOf/not/if combinations (e.g. add 'required' to "
                                     "discriminating properties)")
        m = merge(subs, self.context)
        raise_refused(m, self.context)
        if m.is_empty():
            return self.nfa.junction()
        if m.is_free() and not excluded:
            return self.free(cont, budget - 1 if nested else budget, m.pointer)
        return combinators.expand(self, subs, m, cont, budget, expanded, excluded)

    def free(self, cont: int, budget: int, pointer: str) -> int:
        """Any JSON value nested at most ``budget`` levels deep (a memoised DFA, embedded)."""
        self.context.free_values.add(pointer)
        if self.options.free_depth is not None:
            budget -= self.options.max_depth - self.options.free_depth
        return self.nfa.embed(free_dfa(max(budget, 0), self.options.whitespace), cont)

    def typed(self, m: Merged, cont: int, budget: int, excluded: tuple[Merged, ...]) -> int:
        """Entry of the values of ``m`` (no pending combinators), one branch per JSON type."""
        from genweave.runtime.constraints.json_schema.objects import emit_object

        if m.enum is not None:
            return self.enumerated(m, cont, excluded)
        entries = []
        for name in ("null", "boolean"):
            if name in m.types:
                texts = [b"null"] if name == "null" else [b"true", b"false"]
                texts = [t for t in texts if not _excluded_literal(t, excluded)]
                entries += [self.nfa.literal(t, cont) for t in texts]
        if "string" in m.types:
            entries.append(self.nfa.embed(self.string(m, excluded), cont))
        if m.types & {"integer", "number"}:
            entries.append(self.nfa.embed(self.number(m, excluded), cont))
        if "array" in m.types:
            entries.append(self.array(m, cont, budget))
        if "object" in m.types:
            entries.append(emit_object(self, m, cont, budget))
        return self.nfa.union(entries)

    def enumerated(self, m: Merged, cont: int, excluded: tuple[Merged, ...]) -> int:
        """The enum values of ``m`` that satisfy its other keywords, as canonical texts."""
        rest = replace(m, enum=None)
        check = None
        if replace(rest, types=ALL_TYPES) != Merged(m.pointer) or excluded:
            child = Emitter(self.document, self.options, self.context)
            check = child.nfa.determinize(child.typed(rest, child.nfa.final, self.options.max_depth, excluded))
        texts = []
        for value in m.enum:
            kind = json_type(value)
            if kind not in m.types and not (kind == "integer" and "number" in m.types):
                continue
            text = self.dumps(value)
            if check is None or check.accepts(text):
                texts.append(text)
        return self.nfa.union(self.nfa.literal(t, cont) for t in dict.fromkeys(texts))

    # -- scalars -----------------------------------------------------------------------------

    def string(self, m: Merged, excluded: tuple[Merged, ...]) -> ByteDFA:
        high = m.max_length
        cap = max(self.options.max_string_length, m.min_length)
        if high is not None and high > cap:
            self.capped.append(f"{m.pointer or '/'}: maxLength {high} enforced as {cap}")
            high = cap
        patterns, formats = tuple(self.patterns(m)), tuple(self.formats(m))
        if not any("string" in other.types for other in excluded):
            return strings.json_string(m.min_length, high, patterns, formats, m.pointer)
        decoded = strings.decoded_string(min_length=m.min_length, max_length=high, patterns=patterns,
                                         formats=formats, pointer=m.pointer)
        for other in excluded:
            if "string" in other.types:
                decoded = difference(decoded, self.decoded_exclusion(other))
        return strings.encode_json_string(decoded)

    def decoded_exclusion(self, other: Merged) -> ByteDFA:
        """The decoded strings ``other`` accepts (an exact language: no formats)."""
        choices = None
        if other.enum is not None:
            choices = [v for v in other.enum if isinstance(v, str)]
        return strings.decoded_string(min_length=other.min_length, max_length=other.max_length,
                                      patterns=[p for p, _ in other.patterns], choices=choices,
                                      pointer=other.pointer)

    def patterns(self, m: Merged) -> list[str]:
        kept = []
        for pattern, pointer in m.patterns:
            try:
                strings.decoded_pattern(pattern)
            except GenCheckError as error:
                if "pattern" in self.options.relax:
                    self.context.relaxed.append(("pattern", pointer))
                    continue
                raise GenCheckError(f"JSON Schema keyword 'pattern' at {pointer or '/'}: {error.message}",
                                    hint="pass relax={'pattern'} to ignore patterns that are not regular "
                                         "expressions here") from None
            kept.append(pattern)
        return kept

    def formats(self, m: Merged) -> list[str]:
        kept = []
        for name, pointer in m.formats:
            if name in strings.FORMATS:
                kept.append(name)
            elif not isinstance(name, str) or name not in strings.DEFINED_FORMATS:
                self.context.ignored.append(("format", pointer))  # no draft defines it: an annotation
            elif "format" in self.options.relax:
                self.context.relaxed.append(("format", pointer))
            else:
                raise refusal("format", pointer, f"has the unknown format {name!r} "
                                                 f"(known: {', '.join(sorted(strings.FORMATS))})")
        return kept

    def number(self, m: Merged, excluded: tuple[Merged, ...]) -> ByteDFA:
        integral, fractional = "integer" in m.types, "number" in m.types
        divisor = self.divisor(m)
        if divisor is not None:
            fractional = False
        low, low_ex, high, high_ex = m.number_range()
        exclusions = [o for o in excluded if o.types & {"integer", "number"}]
        if integral and not fractional:
            lo, hi = numeric.integer_bounds(low, low_ex, high, high_ex)
            result = numeric.integer_dfa(lo, hi, divisor)
        elif low is None and high is None and not exclusions and integral:
            return regex_dfa(numeric.NUMBER)
        else:
            result = numeric.decimal_range_dfa(low, high, exclusive_low=low_ex, exclusive_high=high_ex)
            if not integral:
                result = intersection(result, regex_dfa(_NON_INTEGRAL))
        for other in exclusions:
            result = difference(result, self.number_exclusion(other, fractional))
        return result

    def number_exclusion(self, other: Merged, fractional: bool) -> ByteDFA:
        """Every text (of the emitted number forms) whose value ``other`` accepts."""
        if other.enum is not None:
            values = [Decimal(repr(v)) if isinstance(v, float) else Decimal(v) for v in other.enum
                      if json_type(v) in ("integer", "number")]
            if not values:
                return empty_dfa()
            return regex_dfa("|".join(numeric._equal(v) for v in values))
        low, low_ex, high, high_ex = other.number_range()
        divisor = self.divisor(other)
        if divisor is not None and fractional:  # exclude the whole range: a subset of "not other"
            self.context.approximated.append(("not", other.pointer))
            divisor = None
        if divisor is not None:
            lo, hi = numeric.integer_bounds(low, low_ex, high, high_ex)
            return numeric.integer_dfa(lo, hi, divisor)
        result = numeric.decimal_range_dfa(low, high, exclusive_low=low_ex, exclusive_high=high_ex)
        if "number" not in other.types:  # other accepts integral values only
            result = intersection(result, regex_dfa(r"-?(?:0|[1-9][0-9]*)(?:\.0+)?"))
        return result

    def divisor(self, m: Merged) -> int | None:
        divisor = None
        for value, pointer in m.multiple_of:
            try:
                k = numeric.integer_divisor(value, pointer)
            except GenCheckError:
                if "multipleOf" in self.options.relax:
                    self.context.relaxed.append(("multipleOf", pointer))
                    continue
                raise
            divisor = k if divisor is None else math.lcm(divisor, k)
        return divisor

    # -- arrays ------------------------------------------------------------------------------

    def array(self, m: Merged, cont: int, budget: int) -> int:
        """``[`` items ``]`` with the prefix schemas, the items schema and the length bounds."""
        prefix = len(m.prefix)
        high = m.max_items
        if m.unique_items and not self._unique_is_trivial(m):
            values = None if prefix else unique_values(self.standalone(m.items, budget - 1), m.max_items)
            if values is not None:
                return self.distinct_items(values, m.min_items, m.max_items, cont)
            if "uniqueItems" in self.options.relax:
                self.context.relaxed.append(("uniqueItems", m.pointer))
            else:  # a subset: arrays of at most one item have no duplicates
                self.context.approximated.append(("uniqueItems", m.pointer))
                high = 1 if high is None else min(high, 1)
        if m.items is None:
            high = prefix if high is None else min(high, prefix)
        cap = max(self.options.max_array_length, m.min_items, prefix)
        if high is not None and high > cap:
            self.capped.append(f"{m.pointer or '/'}: maxItems {high} enforced as {cap}")
            high = cap
        if high is not None and high < m.min_items:
            return self.nfa.junction()
        counter = Counter(self, m)
        close = {c: self.token(b"]", cont, after=False) if counter.ok(c) else None for c in counter.counts}

        def element(i: int, after: dict) -> dict:
            base = m.prefix[i] if i < prefix else m.items
            return {c: counter.element(base, c, after, budget) for c in counter.counts}

        def with_comma(entries: dict) -> dict:
            return {c: self.token(b",", state) for c, state in entries.items()}

        if high is None:  # a loop over the items schema after the counted positions
            counted = max(prefix, m.min_items, 1)
            loop = {c: self.nfa.junction() for c in counter.counts}
            for c, entry in with_comma(element(counted, loop)).items():
                self.nfa.link(loop[c], entry)
                if close[c] is not None:
                    self.nfa.link(loop[c], close[c])
            after, top = loop, counted
        else:
            after = {c: state if state is not None else self.nfa.junction() for c, state in close.items()}
            top = high
        for i in range(top - 1, -1, -1):  # ``after`` is the states after i + 1 elements
            entries = element(i, after)
            entries = with_comma(entries) if i > 0 else entries
            after = {c: self.nfa.union([entries[c]] + ([close[c]] if i >= m.min_items and close[c] is not None
                                                       else [])) for c in counter.counts}
        return self.token(b"[", after[counter.zero], before=False)

    def distinct_items(self, values: list[list[bytes]], low: int, high: int | None, cont: int) -> int:
        """``[`` distinct values ``]``, ``low`` to ``high`` of them: a state per set of values
        written (``values``: the texts of each distinct value)."""
        k = len(values)
        top = k if high is None else min(high, k)
        close = self.token(b"]", cont, after=False)
        after: dict[int, int] = {}
        for written in sorted(range(1 << k), key=lambda s: -s.bit_count()):
            count = written.bit_count()
            if count > top:
                continue
            choices = [close] if count >= low else []
            if count < top:
                for v in range(k):
                    if not written >> v & 1:
                        item = self.nfa.union(self.nfa.literal(t, after[written | 1 << v]) for t in values[v])
                        choices.append(self.token(b",", item) if count else item)
            after[written] = self.nfa.union(choices) if choices else self.nfa.junction()
        return self.token(b"[", after[0], before=False)

    def _unique_is_trivial(self, m: Merged) -> bool:
        high = m.max_items if m.items is not None else len(m.prefix)
        return high is not None and high <= 1


MAX_EXPANSIONS = 400_000  # subschemas merged per compile before it is abandoned as too large
MAX_UNIQUE_VALUES = 10  # uniqueItems is exact when the items take at most this many values
MAX_UNIQUE_SETS = 1024  # ... and the sets of values an array can hold are at most this many


def unique_values(dfa: ByteDFA, high: int | None) -> list[list[bytes]] | None:
    """The texts of the item DFA's language grouped by JSON value, or None when it is infinite or
    too large for a state per set of values (at most ``high`` values per array)."""
    texts: list[bytes] = []
    live = dfa.transitions != -1

    def walk(state: int, prefix: bytearray, path: set[int]) -> bool:
        if dfa.accepting[state]:
            texts.append(bytes(prefix))
        if len(texts) > 4 * MAX_UNIQUE_VALUES or len(prefix) > 256:
            return False
        for byte in np.flatnonzero(live[state]):
            target = int(dfa.transitions[state, byte])
            if target in path:
                return False  # a cycle: infinitely many texts
            prefix.append(int(byte))
            path.add(target)
            ok = walk(target, prefix, path)
            path.discard(target)
            prefix.pop()
            if not ok:
                return False
        return True

    if dfa.is_empty() or not walk(dfa.initial, bytearray(), {dfa.initial}):
        return None
    groups: dict[str, list[bytes]] = {}
    for text in texts:
        groups.setdefault(canonical(json.loads(text)), []).append(text)
    k = len(groups)
    sets = sum(math.comb(k, i) for i in range(min(k, high if high is not None else k) + 1))
    if k > MAX_UNIQUE_VALUES or sets > MAX_UNIQUE_SETS:
        return None
    return list(groups.values())


class Counter:
    """The items an array has matching each of its ``contains`` schemas, counted (saturating)
    in the states: 0..``minContains`` without a maximum, 0..``maxContains`` + 1 with one. A count
    is a tuple (one entry per ``contains``; the empty tuple without any)."""

    def __init__(self, e: Emitter, m: Merged):
        self.e, self.rules = e, m.contains
        self.saturated = [high + 1 if high is not None else low for _, low, high in self.rules]
        self.counts = list(itertools.product(*(range(top + 1) for top in self.saturated)))
        self.zero = self.counts[0]

    def ok(self, count: tuple[int, ...]) -> bool:
        return all(c >= low and (high is None or c <= high) for c, (_, low, high) in zip(count, self.rules, strict=True))

    def element(self, base: Conjunction, count: tuple[int, ...], after: dict, budget: int) -> int:
        """An item read at ``count``, continuing to the state of the new count: one case per
        subset of the ``contains`` schemas it matches (and the negations of the others)."""
        cases = []
        for hits in itertools.product((True, False), repeat=len(self.rules)):
            conj, new = base, []
            for hit, (schema, _, _), c, top in zip(hits, self.rules, count, self.saturated, strict=True):
                conj += (schema,) if hit else (Sub({"not": schema.schema}, schema.pointer, schema.refs),)
                new.append(min(c + 1, top) if hit else c)
            cases.append(self.e.value(conj, after[tuple(new)], budget, nested=True))
        return cases[0] if len(cases) == 1 else self.e.nfa.union(cases)


def _excluded_literal(text: bytes, excluded: tuple[Merged, ...]) -> bool:
    value = json.loads(text)
    for other in excluded:
        if json_type(value) in other.types and (other.enum is None or
                                                canonical(value) in {canonical(v) for v in other.enum}):
            return True
    return False
