"""``anyOf``, ``oneOf``, ``not`` and dependencies, rewritten into unions of positive cases.

:func:`expand` handles one pending combinator of a merged conjunction and emits the union of its
cases, each case being the conjunction plus some subschemas (re-merged by ``Emitter.value``):

* ``anyOf``: one case per branch;
* ``oneOf``: one case per branch, plus ``not`` of every other branch that is not provably disjoint
  from it (:func:`provably_disjoint`); when such a ``not`` cannot be compiled the ``oneOf`` is
  refused (or, relaxed, treated as ``anyOf``);
* ``not N``: per JSON type, ``N`` holds for no value of the type (keep it), for every value (drop
  it), or for some: then objects split on ``N``'s ``required`` names (one case per missing name),
  scalars subtract ``N``'s exact language (strings, numbers, literals); ``not`` of an ``anyOf`` is
  the conjunction of the negated branches, ``not not N`` is ``N``; anything else is refused;
* ``dependentRequired``/``dependentSchemas``/``dependencies``: a case without the trigger
  property and a case with it and what it brings.
"""

from __future__ import annotations

from genweave.dsl.errors import GenCheckError
from genweave.runtime.constraints.json_schema import strings
from genweave.runtime.constraints.json_schema.automata import intersection
from genweave.runtime.constraints.json_schema.document import Sub
from genweave.runtime.constraints.json_schema.keywords import refusal
from genweave.runtime.constraints.json_schema.merge import (
    EXACT_TYPES,
    Conjunction,
    Merged,
    canonical,
    json_type,
    merge,
)

SCALARS = ("null", "boolean", "string", "integer", "number")


def expand(e, subs: Conjunction, m: Merged, cont: int, budget: int, expanded: frozenset,
           excluded: tuple[Merged, ...]) -> int:
    """Emit ``m`` (the merge of ``subs``): the first pending combinator as a union of cases."""
    for kind, groups in (("anyOf", m.any_of), ("oneOf", m.one_of)):
        for group in groups:
            mark = (kind, group[0].pointer, group[0].refs)
            if mark not in expanded:
                cases = [(alt,) for alt in group] if kind == "anyOf" else _one_of_cases(e, group)
                return _union(e, subs, cases, cont, budget, expanded | {mark}, excluded)
    for negation in m.negations:
        mark = ("not", negation.pointer, negation.refs)
        if mark not in expanded:
            try:
                cases, exclusion = negate(e, m, negation)
            except GenCheckError:
                if "not" not in e.options.relax:
                    raise
                e.context.relaxed.append(("not", negation.pointer))
                cases, exclusion = [()], ()
            return _union(e, subs, cases, cont, budget, expanded | {mark}, excluded + exclusion)
    for name, needed in m.dependent_required:
        mark = ("dependentRequired", m.pointer, name)
        if mark not in expanded:
            cases = _dependency_cases(m, name, (_synthetic(m, {"required": [name, *needed]}),))
            return _union(e, subs, cases, cont, budget, expanded | {mark}, excluded)
    for name, schema in m.dependent_schemas:
        mark = ("dependentSchemas", schema.pointer, name)
        if mark not in expanded:
            cases = _dependency_cases(m, name, (_synthetic(m, {"required": [name]}), schema))
            return _union(e, subs, cases, cont, budget, expanded | {mark}, excluded)
    return e.typed(m, cont, budget, excluded)


def _union(e, subs, cases, cont, budget, expanded, excluded) -> int:
    return e.nfa.union(e.value(subs + case, cont, budget, expanded, excluded) for case in cases)


def _synthetic(m: Merged, schema: dict, at: Sub | None = None) -> Sub:
    """A subschema made by the compiler (reported at the pointer of what it came from)."""
    return Sub(schema, at.pointer if at else m.pointer, at.refs if at else ())


def _types(m: Merged, types) -> Sub:
    return _synthetic(m, {EXACT_TYPES: sorted(types)})


def _dependency_cases(m: Merged, name: str, present: tuple[Sub, ...]) -> list[Conjunction]:
    others = m.types - {"object"}
    cases = [(_types(m, others),)] if others else []
    if "object" in m.types:
        cases.append((_types(m, {"object"}), _synthetic(m, {"properties": {name: False}})))
        cases.append((_types(m, {"object"}),) + present)
    return cases


def _one_of_cases(e, group: tuple[Sub, ...]) -> list[Conjunction]:
    merged = [merge((alt,), e.context) for alt in group]
    cases = []
    for i, alt in enumerate(group):
        if merged[i].is_empty():
            continue
        others = [_synthetic(merged[j], {"not": group[j].schema}, group[j]) for j in range(len(group))
                  if j != i and not merged[j].is_empty() and not provably_disjoint(e, merged[i], merged[j])]
        try:
            for other in others:
                negate(e, merged[i], other.child(other.schema["not"], "not"))
        except GenCheckError:
            if "oneOf" not in e.options.relax:
                raise refusal("oneOf", group[0].pointer.rsplit("/", 1)[0],
                              "has branches that may overlap and whose negation cannot be compiled") from None
            e.context.relaxed.append(("oneOf", group[0].pointer.rsplit("/", 1)[0]))
            others = []
        cases.append((alt, *others))
    return cases


# -- negation ---------------------------------------------------------------------------------

def negate(e, m: Merged, negation: Sub) -> tuple[list[Conjunction], tuple[Merged, ...]]:
    """(cases, scalar exclusions) whose union is ``m`` and not ``negation`` (module docstring)."""
    n = merge((negation,), e.context)
    if n.refused:
        raise refusal("not", negation.pointer, f"contains the unsupported keyword {n.refused[0][0]!r}")
    if n.is_empty():
        return [()], ()
    if n.any_of and not n.one_of and len(n.any_of) == 1 and _only(n, any_of=n.any_of):
        return [tuple(_synthetic(n, {"not": alt.schema}, alt) for alt in n.any_of[0])], ()
    if n.negations and len(n.negations) == 1 and _only(n, negations=n.negations):
        return [(n.negations[0],)], ()
    if n.any_of or n.one_of or n.negations or n.dependent_required or n.dependent_schemas or n.excluded:
        raise refusal("not", negation.pointer, "negates a combination that cannot be compiled")
    keep, split, exclude = set(), None, False
    for kind in m.types:
        effect = _effect(n, kind)
        if effect == "none":
            keep.add(kind)
        elif effect == "partial" and kind == "object":
            split = _object_split(n, negation)
        elif effect == "partial" and kind in SCALARS:
            _check_exact_scalar(n, kind, negation)
            keep.add(kind)
            exclude = True
        elif effect == "partial":
            raise refusal("not", negation.pointer, f"negates {kind} constraints, which is not supported")
    cases = [(_types(m, keep),)] if keep else []
    if split:
        cases += [(_types(m, {"object"}), _synthetic(n, {"properties": {name: False}}, negation))
                  for name in split]
    return cases, ((n,) if exclude else ())


def _only(n: Merged, **fields) -> bool:
    """Whether ``n`` says nothing but the given fields (and types)."""
    from dataclasses import replace

    return replace(n, types=Merged(n.pointer).types, **{k: () for k in fields}) == Merged(n.pointer)


_RELEVANT = {
    "null": (), "boolean": (),
    "string": ("min_length", "max_length", "patterns", "formats"),
    "integer": ("bounds", "multiple_of"), "number": ("bounds", "multiple_of"),
    "object": ("properties", "required", "object_rules", "property_names", "min_properties",
               "max_properties", "forbidden"),
    "array": ("prefix", "items", "min_items", "max_items", "unique_items"),
}


def _effect(n: Merged, kind: str) -> str:
    """Whether ``n`` holds for no ("none"), every ("all") or some ("partial") value of ``kind``."""
    if kind not in n.types:
        return "none"
    if n.enum is not None:
        if not any(_enum_kind(v, kind) for v in n.enum):
            return "none"
        return "partial"
    defaults = Merged(n.pointer)
    relevant = [f for f in _RELEVANT[kind] if getattr(n, f) != getattr(defaults, f)]
    return "partial" if relevant else "all"


def _enum_kind(value, kind: str) -> bool:
    found = json_type(value)
    return found == kind


def _object_split(n: Merged, negation: Sub) -> list[str]:
    defaults = Merged(n.pointer)
    others = [f for f in _RELEVANT["object"] if f != "required" and getattr(n, f) != getattr(defaults, f)]
    if others or n.enum is not None or not n.required:
        raise refusal("not", negation.pointer, "negates object constraints other than 'required'")
    return list(n.required)


def _check_exact_scalar(n: Merged, kind: str, negation: Sub) -> None:
    if kind == "string" and n.formats:
        raise refusal("not", negation.pointer, "negates a format (formats are enforced as sub-languages)")
    if n.enum is not None and any(json_type(v) in ("object", "array") for v in n.enum):
        raise refusal("not", negation.pointer, "negates an enum of objects or arrays")


# -- disjointness -----------------------------------------------------------------------------

def provably_disjoint(e, a: Merged, b: Merged, depth: int = 0) -> bool:
    """Whether no JSON value satisfies both (a sound, incomplete test on the merged records)."""
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
