"""Conjunctions of subschemas merged into one :class:`Merged` description per instance position.

``allOf``, ``$ref`` (with its siblings), boolean schemas and the keywords of several subschemas
that apply to one value are folded into one record: type sets intersect, bounds tighten, property
maps join (a name declared by one conjunct gets the other's ``patternProperties`` or
``additionalProperties`` schema as a further conjunct), pattern and format lists concatenate.
Disjunctions (``anyOf``, ``oneOf``) and negations (``not``) are kept as lists of subschemas for the
emitter, which distributes them. Sub-schemas of properties and items stay unmerged (:class:`Sub`)
until the emitter reaches them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, fields
from dataclasses import replace as dataclass_replace
from decimal import Decimal
from typing import Any

from genweave.dsl.errors import GenCheckError
from genweave.runtime.constraints.json_schema.document import Document, Sub
from genweave.runtime.constraints.json_schema.keywords import (
    ANNOTATIONS,
    ENFORCED,
    REFUSED,
    STRUCTURAL,
    refusal,
)
from genweave.runtime.constraints.json_schema.numeric import number_bounds

TYPES = ("null", "boolean", "object", "array", "string", "integer", "number")
ALL_TYPES = frozenset(TYPES)

Conjunction = tuple[Sub, ...]  # subschemas that all apply to one value
_NUMERIC = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
# A private keyword of synthetic subschemas (negations, case splits): the exact type set, where
# "number" means the non-integral numbers (the "type" keyword adds "integer" to "number").
EXACT_TYPES = "$genweave:types"


@dataclass(frozen=True)
class ObjectRule:
    """One conjunct's rule for the properties it does not declare: a name matching some of
    ``patterns`` gets those schemas, any other name gets ``additional`` (None: anything)."""

    names: frozenset[str]
    patterns: tuple[tuple[str, Sub], ...]
    additional: Sub | None

    def view(self, name: str) -> Conjunction:
        """The schemas this rule puts on the value of the undeclared property ``name``."""
        matched = tuple(sub for pattern, sub in self.patterns if search(pattern, name))
        if matched:
            return matched
        return (self.additional,) if self.additional is not None else ()


@dataclass(frozen=True)
class Merged:
    """Everything the conjunction of some subschemas says about one value (see module doc)."""

    pointer: str
    types: frozenset[str] = ALL_TYPES
    enum: tuple[Any, ...] | None = None  # allowed values (None: no enum)
    # objects
    properties: tuple[tuple[str, Conjunction], ...] = ()  # declared names, in order
    required: tuple[str, ...] = ()
    object_rules: tuple[ObjectRule, ...] = ()  # patternProperties/additionalProperties per conjunct
    property_names: Conjunction = ()
    min_properties: int = 0
    max_properties: int | None = None
    dependent_required: tuple[tuple[str, tuple[str, ...]], ...] = ()
    dependent_schemas: tuple[tuple[str, Sub], ...] = ()
    forbidden: frozenset[str] = frozenset()  # names that must not occur
    # arrays
    prefix: tuple[Conjunction, ...] = ()
    items: Conjunction | None = ()  # None: no items after the prefix
    min_items: int = 0
    max_items: int | None = None
    unique_items: bool = False
    contains: tuple[tuple[Sub, int, int | None], ...] = ()  # (schema, minContains, maxContains)
    # strings
    min_length: int = 0
    max_length: int | None = None
    patterns: tuple[tuple[str, str], ...] = ()  # (pattern, pointer)
    formats: tuple[tuple[str, str], ...] = ()  # (format, pointer)
    # numbers: (low, low exclusive, high, high exclusive) per conjunct, divisors
    bounds: tuple[tuple[Decimal | None, bool, Decimal | None, bool], ...] = ()
    multiple_of: tuple[tuple[Any, str], ...] = ()  # (divisor, pointer)
    non_integer: bool = False  # from not {type: integer}: numbers with a nonzero fraction only
    # combinators
    any_of: tuple[tuple[Sub, ...], ...] = ()
    one_of: tuple[tuple[Sub, ...], ...] = ()
    negations: tuple[Sub, ...] = ()
    conditions: tuple[tuple[Sub, Sub | None, Sub | None], ...] = ()  # (if, then, else)
    excluded: tuple[Merged, ...] = ()  # scalar languages removed by a compiled negation
    refused: tuple[tuple[str, str], ...] = ()  # (keyword, pointer) of refused keywords
    depth_cut: bool = False  # a recursive $ref beyond max_depth: accepts nothing

    def number_range(self):
        """(low, low exclusive, high, high exclusive) of all bounds together."""
        low = high = None
        low_ex = high_ex = False
        for lo, lo_ex, hi, hi_ex in self.bounds:
            if lo is not None and (low is None or lo > low or (lo == low and lo_ex)):
                low, low_ex = lo, lo_ex
            if hi is not None and (high is None or hi < high or (hi == high and hi_ex)):
                high, high_ex = hi, hi_ex
        return low, low_ex, high, high_ex

    def is_free(self) -> bool:
        """Whether nothing constrains the value (any JSON value is allowed)."""
        return self == Merged(self.pointer)

    def is_empty(self) -> bool:
        return self.depth_cut or not self.types or (self.enum is not None and not self.enum)


_DEFAULTS = Merged("")


@dataclass
class MergeContext:
    """What merging needs: the document, the recursion bound, what may be relaxed."""

    document: Document
    max_depth: int
    relax: frozenset[str]
    relaxed: list[tuple[str, str]] = field(default_factory=list)
    depth_bounded: list[str] = field(default_factory=list)  # recursive $refs cut at max_depth
    free_values: set[str] = field(default_factory=set)  # where free values (bounded nesting) occur
    approximated: list[tuple[str, str]] = field(default_factory=list)  # (keyword, pointer) under-approximated
    ignored: list[tuple[str, str]] = field(default_factory=list)  # ("format", pointer) of non-standard formats
    expansions: int = 0  # subschemas merged by the emitter so far (bounds the case splits of negations)
    merged: dict = field(default_factory=dict)  # memo of merge()


def canonical(value: Any) -> str:
    """A key under which JSON-equal values coincide (``1 == 1.0``, but ``true != 1``)."""
    def norm(v):
        if isinstance(v, bool) or v is None:
            return v
        if isinstance(v, float) and v.is_integer():
            return int(v)
        if isinstance(v, dict):
            return {k: norm(x) for k, x in v.items()}
        if isinstance(v, list):
            return [norm(x) for x in v]
        return v
    return json.dumps(norm(value), sort_keys=True, ensure_ascii=False)


def json_type(value: Any) -> str:
    """The JSON type of a Python value (integral floats are integers, as JSON Schema says)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def merge(subs: Conjunction, context: MergeContext, pointer: str | None = None) -> Merged:
    """The :class:`Merged` record of the conjunction ``subs`` (``$ref`` and ``allOf`` inlined).

    Memoised per compile by the ids of the schema objects; the entry keeps ``subs`` (so the
    objects, synthetic ones included) alive, so an id is never reused while it is a key.
    """
    key = (pointer, tuple((id(s.schema), s.pointer, s.refs) for s in subs))
    found = context.merged.get(key)
    if found is not None:
        return found[0]
    result = _Accumulator(pointer if pointer is not None else (subs[0].pointer if subs else ""))
    pending = list(subs)
    while pending:
        sub = pending.pop(0)
        result, more = _merge_one(result, sub, context)
        pending.extend(more)
        if result.is_empty():
            break
    merged = result.freeze()
    context.merged[key] = (merged, subs)
    return merged


class _Accumulator:
    """A mutable :class:`Merged` under construction (``replace`` updates it in place)."""

    def __init__(self, pointer: str):
        self.__dict__.update({f.name: getattr(_DEFAULTS, f.name) for f in fields(Merged)})
        self.pointer = pointer

    def is_empty(self) -> bool:
        return self.depth_cut or not self.types or (self.enum is not None and not self.enum)

    def freeze(self) -> Merged:
        return Merged(**{f.name: getattr(self, f.name) for f in fields(Merged)})


def replace(record, **changes):
    """``dataclasses.replace`` for :class:`Merged`; in-place update for an accumulator."""
    if isinstance(record, _Accumulator):
        record.__dict__.update(changes)
        return record
    return dataclass_replace(record, **changes)


def _merge_one(result: Merged, sub: Sub, context: MergeContext) -> tuple[Merged, list[Sub]]:
    schema = sub.schema
    if schema is True:
        return result, []
    if schema is False:
        return replace(result, types=frozenset()), []
    if not isinstance(schema, dict):
        raise GenCheckError(f"the schema at {sub.pointer or '/'} must be an object or a boolean, not {schema!r}")
    more: list[Sub] = []
    if "$ref" in schema:
        target = context.document.resolve(schema["$ref"], sub)
        if sub.depth_of(target.pointer) >= context.max_depth:
            context.depth_bounded.append(sub.pointer)
            return replace(result, depth_cut=True), []
        more.append(target)
        if context.document.ref_overrides_siblings:
            return result, more
    keys = sorted(schema, key=lambda k: k not in ("prefixItems", "items"))  # positions first
    for key in keys:
        if key in ANNOTATIONS or key in STRUCTURAL or key == "$ref" or key in _NUMERIC:
            continue
        if key == EXACT_TYPES:
            result = replace(result, types=result.types & frozenset(schema[key]))
            continue
        if key in REFUSED:
            result = replace(result, refused=result.refused + ((key, sub.pointer),))
            continue
        if key not in ENFORCED:
            continue  # not a JSON Schema keyword: validators ignore it
        result, extra = _HANDLERS[key](result, schema[key], sub, context)
        more.extend(extra)
    if any(key in schema for key in _NUMERIC):
        try:
            bounds = number_bounds(schema)
        except GenCheckError as error:
            raise GenCheckError(f"{sub.pointer or '/'}: {error.message}") from None
        result = replace(result, bounds=result.bounds + (bounds,))
    if "additionalProperties" in schema or "patternProperties" in schema:
        result = _object_rule(result, sub)
    return result, more


def _type(m, value, sub, context):
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or any(n not in TYPES for n in names):
        raise GenCheckError(f"invalid type {value!r} at {sub.pointer or '/'}",
                            hint=f"types are {', '.join(TYPES)}")
    allowed = set(names)
    if "number" in allowed:
        allowed.add("integer")
    return replace(m, types=m.types & frozenset(allowed)), []


def _enum(m, value, sub, context):
    if not isinstance(value, list):
        raise GenCheckError(f"enum at {sub.pointer or '/'} must be a list")
    return _restrict_values(m, value), []


def _const(m, value, sub, context):
    return _restrict_values(m, [value]), []


def _restrict_values(m: Merged, values: list) -> Merged:
    if m.enum is None:
        unique = {}
        for v in values:
            unique.setdefault((canonical(v), json_type(v) == "boolean"), v)
        return replace(m, enum=tuple(unique.values()))
    keys = {(canonical(v), json_type(v) == "boolean") for v in values}
    return replace(m, enum=tuple(v for v in m.enum if (canonical(v), json_type(v) == "boolean") in keys))


def _properties(m, value, sub, context):
    if not isinstance(value, dict):
        raise GenCheckError(f"properties at {sub.pointer or '/'} must be an object")
    props = dict(m.properties)
    for name, schema in value.items():
        props[name] = props.get(name, ()) + (sub.child(schema, "properties", name),)
    return replace(m, properties=tuple(props.items())), []


def _object_rule(m: Merged, sub: Sub) -> Merged:
    patterns = sub.schema.get("patternProperties", {})
    if not isinstance(patterns, dict):
        raise GenCheckError(f"patternProperties at {sub.pointer or '/'} must be an object")
    for pattern in patterns:
        search(pattern, "", sub.child(None, "patternProperties", pattern).pointer)  # valid regex?
    additional = sub.schema.get("additionalProperties", True)
    rule = ObjectRule(
        names=frozenset(sub.schema.get("properties", {}) or {}),
        patterns=tuple((p, sub.child(s, "patternProperties", p)) for p, s in patterns.items()),
        additional=None if additional is True else sub.child(additional, "additionalProperties"),
    )
    if not rule.patterns and rule.additional is None:
        return m
    return replace(m, object_rules=m.object_rules + (rule,))


def search(pattern: str, name: str, pointer: str = "") -> bool:
    """``re.search(pattern, name)``, with a :class:`GenCheckError` for an invalid pattern."""
    try:
        return re.search(pattern, name) is not None
    except re.error as error:
        raise GenCheckError(f"invalid patternProperties regex {pattern!r} at {pointer or '/'}: {error}") from None


def _required(m, value, sub, context):
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise GenCheckError(f"required at {sub.pointer or '/'} must be a list of strings")
    merged = list(m.required) + [n for n in value if n not in m.required]
    return replace(m, required=tuple(merged)), []


def _property_names(m, value, sub, context):
    return replace(m, property_names=m.property_names + (sub.child(value, "propertyNames"),)), []


def _count(name, minimum):
    def apply(m, value, sub, context):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise GenCheckError(f"{name} at {sub.pointer or '/'} must be a non-negative integer")
        current = getattr(m, name)
        if minimum:
            return replace(m, **{name: max(current, value)}), []
        return replace(m, **{name: value if current is None else min(current, value)}), []
    return apply


def _dependencies(m, value, sub, context):
    if not isinstance(value, dict):
        raise GenCheckError(f"dependencies at {sub.pointer or '/'} must be an object")
    required, schemas = list(m.dependent_required), list(m.dependent_schemas)
    for name, dependency in value.items():
        if isinstance(dependency, list):
            required.append((name, tuple(dependency)))
        else:
            schemas.append((name, sub.child(dependency, "dependencies", name)))
    return replace(m, dependent_required=tuple(required), dependent_schemas=tuple(schemas)), []


def _dependent_required(m, value, sub, context):
    return _dependencies(m, {k: list(v) for k, v in value.items()}, sub, context)


def _dependent_schemas(m, value, sub, context):
    schemas = list(m.dependent_schemas)
    schemas += [(name, sub.child(s, "dependentSchemas", name)) for name, s in value.items()]
    return replace(m, dependent_schemas=tuple(schemas)), []


def _items(m, value, sub, context):
    if isinstance(value, list):  # draft <= 2019-09 tuple form
        return _prefix_items(m, value, sub, context, key="items")
    own_prefix = sub.schema.get("prefixItems", [])
    return _after_prefix(m, sub.child(value, "items"), len(own_prefix) if isinstance(own_prefix, list) else 0), []


def _additional_items(m, value, sub, context):
    if not isinstance(sub.schema.get("items"), list):
        return m, []  # without a tuple-form items, additionalItems has no effect
    child = sub.child(value, "additionalItems")
    return _after_prefix(m, child, len(sub.schema["items"])), []


def _after_prefix(m: Merged, child: Sub, own_prefix: int) -> Merged:
    """Add ``child`` as the schema of every item at index >= ``own_prefix``."""
    prefix = tuple(c + (child,) if i >= own_prefix else c for i, c in enumerate(m.prefix))
    items = m.items + (child,) if m.items is not None else None
    if child.schema is False:
        items = None
    return replace(m, prefix=prefix, items=items)


def _prefix_items(m, value, sub, context, key="prefixItems"):
    if not isinstance(value, list):
        raise GenCheckError(f"{key} at {sub.pointer or '/'} must be a list")
    prefix = list(m.prefix)
    for i, schema in enumerate(value):
        child = sub.child(schema, key, i)
        if i < len(prefix):
            prefix[i] = prefix[i] + (child,)
        else:
            prefix.append((m.items if m.items is not None else (Sub(False, sub.pointer),)) + (child,))
    return replace(m, prefix=tuple(prefix)), []


def _unique(m, value, sub, context):
    return replace(m, unique_items=m.unique_items or value is True), []


def _pattern(m, value, sub, context):
    if not isinstance(value, str):
        raise GenCheckError(f"pattern at {sub.pointer or '/'} must be a string")
    return replace(m, patterns=m.patterns + ((value, sub.pointer),)), []


def _format(m, value, sub, context):
    return replace(m, formats=m.formats + ((value, sub.pointer),)), []


def _multiple_of(m, value, sub, context):
    return replace(m, multiple_of=m.multiple_of + ((value, sub.pointer),)), []


def _all_of(m, value, sub, context):
    if not isinstance(value, list):
        raise GenCheckError(f"allOf at {sub.pointer or '/'} must be a list")
    return m, [sub.child(s, "allOf", i) for i, s in enumerate(value)]


def _any_of(m, value, sub, context):
    if not isinstance(value, list) or not value:
        raise GenCheckError(f"anyOf at {sub.pointer or '/'} must be a non-empty list")
    return replace(m, any_of=m.any_of + (tuple(sub.child(s, "anyOf", i) for i, s in enumerate(value)),)), []


def _one_of(m, value, sub, context):
    if not isinstance(value, list) or not value:
        raise GenCheckError(f"oneOf at {sub.pointer or '/'} must be a non-empty list")
    return replace(m, one_of=m.one_of + (tuple(sub.child(s, "oneOf", i) for i, s in enumerate(value)),)), []


def _not(m, value, sub, context):
    return replace(m, negations=m.negations + (sub.child(value, "not"),)), []


def _contains(m, value, sub, context):
    low, high = sub.schema.get("minContains", 1), sub.schema.get("maxContains")
    for name, bound in (("minContains", low), ("maxContains", high)):
        if bound is not None and (not isinstance(bound, int) or isinstance(bound, bool) or bound < 0):
            raise GenCheckError(f"{name} at {sub.pointer or '/'} must be a non-negative integer")
    if (high is not None and high > MAX_CONTAINS) or low > MAX_CONTAINS or len(m.contains) >= 3:
        if "contains" not in context.relax:
            raise refusal("contains", sub.pointer, f"with counts above {MAX_CONTAINS}, or more than three on "
                                                   "one array, is not supported")
        context.relaxed.append(("contains", sub.pointer))
        return m, []
    return replace(m, contains=m.contains + ((sub.child(value, "contains"), low, high),)), []


MAX_CONTAINS = 16  # each count of matching items costs a copy of the item automaton


def _if(m, value, sub, context):
    schema = sub.schema
    then = sub.child(schema["then"], "then") if "then" in schema else None
    otherwise = sub.child(schema["else"], "else") if "else" in schema else None
    if then is None and otherwise is None:
        return m, []  # no effect on validity
    return replace(m, conditions=m.conditions + ((sub.child(value, "if"), then, otherwise),)), []


def _no_op(m, value, sub, context):
    return m, []  # handled per conjunct after the other keywords


_HANDLERS = {
    "type": _type, "enum": _enum, "const": _const, "properties": _properties, "required": _required,
    "additionalProperties": _no_op, "patternProperties": _no_op,
    "propertyNames": _property_names, "minProperties": _count("min_properties", True),
    "maxProperties": _count("max_properties", False), "dependencies": _dependencies,
    "dependentRequired": _dependent_required, "dependentSchemas": _dependent_schemas,
    "items": _items, "prefixItems": _prefix_items, "additionalItems": _additional_items,
    "minItems": _count("min_items", True), "maxItems": _count("max_items", False),
    "uniqueItems": _unique, "minLength": _count("min_length", True),
    "maxLength": _count("max_length", False), "pattern": _pattern, "format": _format,
    "multipleOf": _multiple_of, "allOf": _all_of, "anyOf": _any_of, "oneOf": _one_of, "not": _not,
    "if": _if, "then": _no_op, "else": _no_op,
    "contains": _contains, "minContains": _no_op, "maxContains": _no_op,
}


def raise_refused(m: Merged, context: MergeContext) -> None:
    """Raise for the first refused keyword that is not relaxed; record the relaxed ones."""
    from genweave.runtime.constraints.json_schema.keywords import relaxation_of

    for keyword, pointer in m.refused:
        if relaxation_of(keyword) in context.relax:
            context.relaxed.append((keyword, pointer))
        else:
            raise refusal(keyword, pointer)
