"""``anyOf``, ``oneOf``, ``not``, ``if``/``then``/``else`` and dependencies, rewritten into unions of
positive cases.

:func:`expand` handles one pending combinator of a merged conjunction and emits the union of its
cases, each case being the conjunction plus some subschemas (re-merged by ``Emitter.value``):

* ``anyOf``: one case per branch;
* ``oneOf``: one case per branch, plus ``not`` of every other branch that is not provably disjoint
  from it (:func:`provably_disjoint`, on what the enclosing schema says of types and members);
* ``if``/``then``/``else``: the cases ``if`` and ``then``, ``not if`` and ``else``; conditions that
  only test one member's value are expanded together (:class:`Discriminated`);
* ``not N`` (:func:`negate`): the union of the ways to violate ``N``: per JSON type, a type ``N``
  excludes is kept whole; scalars subtract ``N``'s exact language; objects get one case per
  violated member (a missing required name, a present member whose value violates ``N``'s schema
  for it, too few or too many members, a dependency broken); arrays one per violated length bound
  or prefix item, an item violating ``items`` (via ``contains``), too few or too many matches of
  ``contains``; ``N``'s ``anyOf``/``not``/``if`` give the negations of their branches. A
  violation that cannot be written as a positive case (an additional member violating ``N``'s
  ``additionalProperties``, duplicates under ``uniqueItems``,
  ``propertyNames``, formats, recursion cut at ``max_depth`` inside ``N``...) is left out: the
  result is then a *subset* of ``not N`` (every text still validates) and the place is listed on
  ``CompiledSchema.approximated`` -- unless ``N`` is layout-neutral, where the difference of two
  automata is exact (:mod:`complement`);
* ``dependentRequired``/``dependentSchemas``/``dependencies``: a case without the trigger
  property and a case with it and what it brings.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from genweave.dsl.errors import GenCheckError
from genweave.runtime.constraints.json_schema import strings
from genweave.runtime.constraints.json_schema.automata import intersection
from genweave.runtime.constraints.json_schema.complement import difference_entry, layout_neutral
from genweave.runtime.constraints.json_schema.document import Sub
from genweave.runtime.constraints.json_schema.keywords import ANNOTATIONS
from genweave.runtime.constraints.json_schema.merge import (
    EXACT_TYPES,
    Conjunction,
    Merged,
    canonical,
    json_type,
    merge,
)

# After this many subschemas merged in one compile, negations leave out the violations of member and
# item schemas (each a nested negation: their case splits multiply), keeping the cheap ones.
CHEAP_AFTER = 100_000
SCALARS = ("null", "boolean", "string", "integer", "number")
Case = tuple[Conjunction, tuple[Merged, ...]]  # (subschemas added, scalar exclusions)


def expand(e, subs: Conjunction, m: Merged, cont: int, budget: int, expanded: frozenset,
           excluded: tuple[Merged, ...]) -> int:
    """Emit ``m`` (the merge of ``subs``): the first pending combinator as a union of cases."""
    for kind, groups in (("anyOf", m.any_of), ("oneOf", m.one_of)):
        for group in groups:
            mark = (kind, group[0].pointer, group[0].refs)
            if mark not in expanded:
                cases = [(alt,) for alt in group] if kind == "anyOf" else _one_of_cases(e, group, m)
                return _union(e, subs, [(c, ()) for c in cases], cont, budget, expanded | {mark}, excluded)
    group = discriminated_conditions(m, expanded)
    if group is not None:
        marks = frozenset(("if", c.pointer, c.refs) for c, _, _ in group.conditions)
        return _union(e, subs, [(c, ()) for c in group.cases(m)], cont, budget, expanded | marks, excluded)
    for condition, then, otherwise in m.conditions:
        mark = ("if", condition.pointer, condition.refs)
        if mark not in expanded:
            cases = [(condition,) + ((then,) if then else ()), (_not(condition),) + ((otherwise,) if otherwise else ())]
            return _union(e, subs, [(c, ()) for c in cases], cont, budget, expanded | {mark}, excluded)
    for negation in m.negations:
        mark = ("not", negation.pointer, negation.refs)
        if mark not in expanded:
            before = len(e.context.approximated)
            cases = negate(e, m, negation)
            if len(e.context.approximated) > before and layout_neutral(e.document, negation):
                # The positive cases are a subset: subtract automata instead, when that is exact.
                kept = e.context.approximated[before:]
                del e.context.approximated[before:]
                entry = difference_entry(e, subs, negation, cont, budget, expanded | {mark}, excluded)
                if entry is not None:
                    return entry
                e.context.approximated.extend(kept)
            return _union(e, subs, cases, cont, budget, expanded | {mark}, excluded)
    for name, needed in m.dependent_required:
        mark = ("dependentRequired", m.pointer, name)
        if mark not in expanded:
            cases = _dependency_cases(m, name, (_synthetic(m, {"required": [name, *needed]}),))
            return _union(e, subs, [(c, ()) for c in cases], cont, budget, expanded | {mark}, excluded)
    for name, schema in m.dependent_schemas:
        mark = ("dependentSchemas", schema.pointer, name)
        if mark not in expanded:
            cases = _dependency_cases(m, name, (_synthetic(m, {"required": [name]}), schema))
            return _union(e, subs, [(c, ()) for c in cases], cont, budget, expanded | {mark}, excluded)
    return e.typed(m, cont, budget, excluded)


def _union(e, subs, cases: list[Case], cont, budget, expanded, excluded) -> int:
    return e.nfa.union(e.value(subs + case, cont, budget, expanded, excluded + more) for case, more in cases)


def _synthetic(m: Merged, schema: dict, at: Sub | None = None) -> Sub:
    """A subschema made by the compiler (reported at the pointer of what it came from)."""
    return Sub(schema, at.pointer if at else m.pointer, at.refs if at else ())


def _not(sub: Sub) -> Sub:
    return Sub({"not": sub.schema}, sub.pointer, sub.refs)


def _not_all(conj: Conjunction, pointer: str) -> Sub:
    """``not`` of a conjunction (its ``$ref`` histories joined: recursion is bounded no later)."""
    refs = tuple(r for s in conj for r in s.refs)
    return Sub({"not": {"allOf": [s.schema for s in conj]}}, conj[0].pointer if conj else pointer, refs)


def _types(m: Merged, types) -> Sub:
    return _synthetic(m, {EXACT_TYPES: sorted(types)})


def _dependency_cases(m: Merged, name: str, present: tuple[Sub, ...]) -> list[Conjunction]:
    others = m.types - {"object"}
    cases = [(_types(m, others),)] if others else []
    if "object" in m.types:
        cases.append((_types(m, {"object"}), _synthetic(m, {"properties": {name: False}})))
        cases.append((_types(m, {"object"}),) + present)
    return cases


def _one_of_cases(e, group: tuple[Sub, ...], m: Merged) -> list[Conjunction]:
    """Each branch and the negations of the others it may share values with (on ``m``'s types)."""
    merged = [_within(merge((alt,), e.context), m) for alt in group]
    cases = []
    for i, alt in enumerate(group):
        if merged[i].is_empty():
            continue
        others = [_not(group[j]) for j in range(len(group))
                  if j != i and (merged[j].depth_cut or not merged[j].is_empty())
                  and not provably_disjoint(e, merged[i], merged[j])]
        cases.append((alt, *others))
    return cases


def _within(branch: Merged, m: Merged) -> Merged:
    """``branch`` with what the enclosing ``m`` says about the same value's types, required names
    and declared members added (a record of ``branch`` and ``m``, for disjointness tests only).

    Adding constraints only shrinks a branch, so two branches proven disjoint this way share no
    value that ``m`` allows: e.g. ``m`` requires ``kind`` and the branches give it different
    ``const`` values, though neither branch requires it.
    """
    properties = dict(branch.properties)
    for name, conj in m.properties:
        properties[name] = properties.get(name, ()) + conj
    required = branch.required + tuple(n for n in m.required if n not in branch.required)
    return replace(branch, types=branch.types & m.types, required=required, properties=tuple(properties.items()))


# -- negation ---------------------------------------------------------------------------------

def negate(e, m: Merged, negation: Sub) -> list[Case]:
    """Cases whose union is ``m`` and not ``negation``, or a subset of it (module docstring)."""
    n = merge((negation,), e.context)
    approximate = _Approximation(e, negation.pointer)
    if n.depth_cut:
        approximate()  # N is unknown beyond max_depth: nothing is known to violate it
        return []
    if n.is_empty():
        return [((), ())]
    if n.refused:
        approximate()  # the keyword is left out of N: N grows, so not N shrinks
    obj = _types(n, {"object"})
    cases: list[Case] = []
    for group in n.any_of + n.one_of:
        cases.append((tuple(_not(alt) for alt in group), ()))
    if n.one_of:
        approximate()  # values matching two branches violate oneOf too
    cases += [((sub,), ()) for sub in n.negations]
    for condition, then, otherwise in n.conditions:
        cases += [((condition, _not(then)), ())] if then else []
        cases += [((_not(condition), _not(otherwise)), ())] if otherwise else []
    for name, needed in n.dependent_required:
        cases += [((obj, _required(n, name), _synthetic(n, {"properties": {d: False}})), ()) for d in needed]
    for name, schema in n.dependent_schemas:
        cases.append(((obj, _required(n, name), _not(schema)), ()))
    keep, exclusion = set(), None
    for kind in sorted(m.types):
        effect = _effect(n, kind)
        if effect == "none":
            keep.add(kind)
        elif effect == "partial" and kind == "object":
            cases += [((obj,) + case, ()) for case in _object_violations(e, m, n, approximate)]
        elif effect == "partial" and kind == "array":
            cases += [((_types(n, {"array"}),) + case, ()) for case in _array_violations(e, n, approximate)]
        elif effect == "partial":
            keep.add(kind)
            exclusion = _scalar_exclusion(n, approximate)
    if keep:
        cases.insert(0, ((_types(m, keep),), (exclusion,) if exclusion is not None else ()))
    return cases


class _Approximation:
    """Records that a negation is compiled as a subset of its language."""

    def __init__(self, e, pointer: str):
        self.e, self.pointer = e, pointer

    def __call__(self) -> None:
        self.e.context.approximated.append(("not", self.pointer))


def _cheap(e) -> bool:
    """Whether negations leave out the violations of member and item schemas (nested negations,
    whose case splits multiply): on request of the compile ladder, or after many cases."""
    return e.options.cheap_negations or e.context.expansions > CHEAP_AFTER


def _required(n: Merged, name: str) -> Sub:
    return _synthetic(n, {"required": [name]})


def _object_violations(e, m: Merged, n: Merged, approximate) -> list[Conjunction]:
    """Objects violating ``n``'s object keywords, one case per violation that can be written."""
    from genweave.runtime.constraints.json_schema.objects import declared_members

    if n.enum is not None or n.property_names:
        approximate()
        if n.enum is not None:
            return []
    cases: list[Conjunction] = [(_synthetic(n, {"properties": {name: False}}),) for name in n.required]
    own = {name: conj for name, conj, _ in declared_members(n)}
    names = list(own) + [name for name, _, _ in declared_members(m) if name not in own]
    if _cheap(e):  # member violations (nested negations) are left out
        approximate()
        names = []
    for name in names:
        view = own[name] if name in own else _undeclared_view(n, name)
        if not view or merge(view, e.context).is_free():
            continue
        negated = _not_all(view, n.pointer)
        cases.append((_required(n, name), _synthetic(n, {"properties": {name: negated.schema}}, negated)))
    cases += [(_required(n, name),) for name in sorted(n.forbidden - own.keys())]
    if n.min_properties > 0:
        cases.append((_synthetic(n, {"maxProperties": n.min_properties - 1}),))
    if n.max_properties is not None:
        cases.append((_synthetic(n, {"minProperties": n.max_properties + 1}),))
    restricting = [rule for rule in n.object_rules if rule.patterns or rule.additional is not None]
    closed = any(not rule.patterns and rule.additional is not None and rule.additional.schema is False
                 for rule in m.object_rules)
    if restricting and not closed:
        approximate()  # an additional member violating N's rules: not a positive case here
    return cases


def _array_violations(e, n: Merged, approximate) -> list[Conjunction]:
    """Arrays violating ``n``'s array keywords, one case per violation that can be written."""
    if n.enum is not None:
        approximate()
        return []
    cases: list[Conjunction] = []
    if n.min_items > 0:
        cases.append((_synthetic(n, {"maxItems": n.min_items - 1}),))
    if n.max_items is not None:
        cases.append((_synthetic(n, {"minItems": n.max_items + 1}),))
    for i, conj in enumerate(n.prefix):
        if _cheap(e):
            approximate()
            break
        if conj and not merge(conj, e.context).is_free():
            negated = _not_all(conj, n.pointer)
            cases.append((Sub({"minItems": i + 1, "prefixItems": [True] * i + [negated.schema]},
                              negated.pointer, negated.refs),))
    for schema, low, high in n.contains:  # too few or too many matching items
        if low > 0:
            cases.append((Sub({"contains": schema.schema, "minContains": 0, "maxContains": low - 1},
                              schema.pointer, schema.refs),))
        if high is not None:
            cases.append((Sub({"contains": schema.schema, "minContains": high + 1}, schema.pointer, schema.refs),))
    if n.items is None:
        cases.append((_synthetic(n, {"minItems": len(n.prefix) + 1}),))
    elif n.items and not merge(n.items, e.context).is_free():
        if n.prefix or _cheap(e):
            approximate()  # an item after the prefix violating N's items: not a positive case here
        else:  # some item violates N's items
            negated = _not_all(n.items, n.pointer)
            cases.append((Sub({"contains": negated.schema}, negated.pointer, negated.refs),))
    if n.unique_items:
        approximate()  # a repeated item: not a positive case here
    return cases


def _scalar_exclusion(n: Merged, approximate) -> Merged:
    """``n`` as a scalar exclusion; formats (enforced as sub-languages) are left out of it."""
    if n.formats:
        approximate()
        return replace(n, formats=())
    return n


_RELEVANT = {
    "null": (), "boolean": (),
    "string": ("min_length", "max_length", "patterns", "formats"),
    "integer": ("bounds", "multiple_of"), "number": ("bounds", "multiple_of"),
    "object": ("properties", "required", "object_rules", "property_names", "min_properties",
               "max_properties", "forbidden"),
    "array": ("prefix", "items", "min_items", "max_items", "unique_items", "contains"),
}


def _effect(n: Merged, kind: str) -> str:
    """Whether ``n``'s own keywords hold for no ("none"), every ("all") or some ("partial")
    value of ``kind`` (its combinators are negated separately)."""
    if kind not in n.types:
        return "none"
    if n.enum is not None:
        if not any(json_type(v) == kind for v in n.enum):
            return "none"
        return "partial"
    defaults = Merged(n.pointer)
    relevant = [f for f in _RELEVANT[kind] if getattr(n, f) != getattr(defaults, f)]
    return "partial" if relevant else "all"


# -- disjointness -----------------------------------------------------------------------------

def provably_disjoint(e, a: Merged, b: Merged, depth: int = 0) -> bool:
    """Whether no JSON value satisfies both (a sound, incomplete test on the merged records)."""
    if a.depth_cut or b.depth_cut:
        return False  # cut at max_depth: unknown, not empty
    if a.is_empty() or b.is_empty():
        return True
    common = possible_types(e, a, depth) & possible_types(e, b, depth)
    return all(_disjoint_on(e, a, b, kind, depth) for kind in common)


def possible_types(e, m: Merged, depth: int = 0) -> frozenset[str]:
    """The JSON types ``m`` may accept: its type set, narrowed by its enum and by every pending
    anyOf/oneOf (a value must satisfy one branch of each)."""
    types = m.types
    if m.enum is not None:
        types = types & frozenset(json_type(v) for v in m.enum)
    if depth < 4:
        for group in m.any_of + m.one_of:
            union = frozenset()
            for alt in group:
                union |= possible_types(e, merge((alt,), e.context), depth + 1)
            types = types & union
    return types


def _disjoint_on(e, a: Merged, b: Merged, kind: str, depth: int) -> bool:
    va, vb = _values_of(a, kind), _values_of(b, kind)
    if va is not None and vb is not None:
        return not (va & vb)
    if kind == "string":
        return _strings_disjoint(e, a, b)
    if kind in ("integer", "number"):
        return _ranges_disjoint(a, b)
    if kind == "object" and depth < 3:
        return _objects_disjoint(e, a, b, depth)
    return False


def _values_of(m: Merged, kind: str) -> set[str] | None:
    if m.enum is None:
        return None
    return {canonical(v) for v in m.enum if json_type(v) == kind}


def _strings_disjoint(e, a: Merged, b: Merged) -> bool:
    try:
        da, db = (strings.decoded_string(min_length=m.min_length, max_length=m.max_length,
                                         patterns=[p for p, _ in m.patterns],
                                         choices=[v for v in m.enum if isinstance(v, str)] if m.enum else None)
                  for m in (a, b))
    except GenCheckError:
        return False
    return intersection(da, db).is_empty()


def _ranges_disjoint(a: Merged, b: Merged) -> bool:
    lo_a, lo_a_ex, hi_a, hi_a_ex = a.number_range()
    lo_b, lo_b_ex, hi_b, hi_b_ex = b.number_range()

    def below(hi, hi_ex, lo, lo_ex):  # every value of the first range is below the second
        return hi is not None and lo is not None and (hi < lo or (hi == lo and (hi_ex or lo_ex)))

    return below(hi_a, hi_a_ex, lo_b, lo_b_ex) or below(hi_b, hi_b_ex, lo_a, lo_a_ex)


def _objects_disjoint(e, a: Merged, b: Merged, depth: int) -> bool:
    """A member that one side requires and whose values the two sides cannot share."""
    from genweave.runtime.constraints.json_schema.objects import declared_members

    members_a = {name: (conj, required) for name, conj, required in declared_members(a)}
    members_b = {name: (conj, required) for name, conj, required in declared_members(b)}
    for name in members_a.keys() | members_b.keys():
        conj_a, req_a = members_a.get(name, (_undeclared_view(a, name), False))
        conj_b, req_b = members_b.get(name, (_undeclared_view(b, name), False))
        if not (req_a or req_b):
            continue
        # One side requires the member, so a common instance has it, with a value both allow.
        if provably_disjoint(e, merge(conj_a, e.context), merge(conj_b, e.context), depth + 1):
            return True
    return False


def _undeclared_view(m: Merged, name: str) -> Conjunction:
    """The schemas on the value of a member ``m`` does not declare (its rules' views)."""
    forbidden = (Sub(False, m.pointer),) if name in m.forbidden else ()
    return forbidden + tuple(s for rule in m.object_rules for s in rule.view(name))


# -- if/then/else keyed on one member -----------------------------------------------------------

@dataclass(frozen=True)
class Discriminated:
    """Conditions whose ``if`` only tests one member ``name`` against a set of values
    (``{"properties": {name: {"const"|"enum": ...}}}``, optionally with ``"required": [name]`` and
    ``"type": "object"``). Expanded together they need one case per tested value, plus "not an
    object", "no such member" and "another value", instead of the 2**n cases of expanding the
    conditions one at a time (n ``if``s on a ``type`` field in one ``allOf``)."""

    name: str
    conditions: tuple[tuple[Sub, Sub | None, Sub | None], ...]
    tests: tuple[tuple[frozenset, bool, bool], ...]  # per condition: (value keys, needs name, needs object)
    values: tuple  # the tested values, first occurrence of each key, in order

    def cases(self, m: Merged) -> list[Conjunction]:
        """Cases whose union is exactly the conjunction of the conditions (each ``then`` where its
        ``if`` holds, else its ``else``)."""
        def outcome(holds) -> Conjunction:
            return tuple(s for (_, then, otherwise), h in zip(self.conditions, holds, strict=True)
                         for s in ((then,) if h else (otherwise,)) if s is not None)

        obj = _types(m, {"object"})
        cases: list[Conjunction] = []
        others = m.types - {"object"}
        if others:
            cases.append((_types(m, others),) + outcome(not needs_object for _, _, needs_object in self.tests))
        if "object" in m.types:
            cases.append((obj, _synthetic(m, {"properties": {self.name: False}}))
                         + outcome(not needs_name for _, needs_name, _ in self.tests))
            for value in self.values:
                key = _value_key(value)
                member = _synthetic(m, {"required": [self.name], "properties": {self.name: {"const": value}}})
                cases.append((obj, member) + outcome(key in keys for keys, _, _ in self.tests))
            other = {"required": [self.name], "properties": {self.name: {"not": {"enum": list(self.values)}}}}
            cases.append((obj, _synthetic(m, other)) + outcome(False for _ in self.tests))
        return cases


def discriminated_conditions(m: Merged, expanded: frozenset) -> Discriminated | None:
    """The largest group (at least two) of pending conditions of ``m`` that test the same member
    (see :class:`Discriminated`), or None."""
    groups: dict[str, list] = {}
    for condition, then, otherwise in m.conditions:
        if ("if", condition.pointer, condition.refs) in expanded:
            continue
        test = _member_test(condition.schema)
        if test is not None:
            groups.setdefault(test[0], []).append(((condition, then, otherwise), test[1:]))
    name, members = max(groups.items(), key=lambda kv: len(kv[1]), default=(None, []))
    if len(members) < 2:
        return None
    values: dict = {}
    for _, (tested, _, _) in members:
        for value in tested:
            values.setdefault(_value_key(value), value)
    tests = tuple((frozenset(map(_value_key, tested)), needs_name, needs_object)
                  for _, (tested, needs_name, needs_object) in members)
    return Discriminated(name, tuple(c for c, _ in members), tests, tuple(values.values()))


def _member_test(schema) -> tuple[str, list, bool, bool] | None:
    """(name, tested values, requires the name, requires an object) of an ``if`` that only tests
    one member against a set of values, or None."""
    if not isinstance(schema, dict):
        return None
    keys = set(schema) - ANNOTATIONS
    properties = schema.get("properties")
    if not keys <= {"properties", "required", "type"} or not isinstance(properties, dict) or len(properties) != 1:
        return None
    (name, member), = properties.items()
    if not isinstance(member, dict) or not set(member) - ANNOTATIONS <= {"const", "enum"}:
        return None
    if len(set(member) - ANNOTATIONS) != 1 or ("enum" in member and not isinstance(member["enum"], list)):
        return None
    required = schema.get("required", [])
    if schema.get("type", "object") != "object" or required not in ([], [name]):
        return None
    tested = member["enum"] if "enum" in member else [member["const"]]
    return name, tested, bool(required), "type" in schema


def _value_key(value) -> tuple[str, bool]:
    """JSON equality of enum values (``1 == 1.0``, ``true != 1``), as ``merge`` compares them."""
    return canonical(value), json_type(value) == "boolean"
