"""JSON objects: declared members in schema order, then additional members, counted if asked.

The layout of an object is ``{`` declared members ``,`` additional members ``}``:

* declared members (``properties`` in order, then ``required`` names that ``properties`` does not
  list) appear in that order, required ones always, optional ones at most once; a member's value
  satisfies its own schemas and what the other conjuncts' ``patternProperties`` and
  ``additionalProperties`` say about that name;
* additional members come after them, with names that are not declared (nor forbidden): the
  name space is split into *regions* by the ``patternProperties`` regexes of every conjunct, and
  a region's values satisfy the schemas its patterns select (or ``additionalProperties``);
  ``propertyNames`` restricts every name; a region whose values can only be ``false`` is closed;
* with ``minProperties``/``maxProperties`` the states also count members (saturating).

Valid instances whose declared members are in another order are rejected (a DFA that accepts
every order needs a state per subset of members); an instance re-serialised in this order (see
``JsonSchema.canonical_text``) is accepted.
"""

from __future__ import annotations

import json
from functools import lru_cache

from genweave.dsl.errors import GenCheckError
from genweave.runtime.constraints.byte_dfa import ByteDFA
from genweave.runtime.constraints.json_schema import strings
from genweave.runtime.constraints.json_schema.automata import difference, intersection, minimize
from genweave.runtime.constraints.json_schema.merge import Conjunction, Merged, merge

MAX_PATTERN_REGIONS = 64


def declared_members(m: Merged) -> list[tuple[str, Conjunction, bool]]:
    """(name, value schemas, required) of the declared members, in emission order; a name whose
    value can never be written is left out (the object is impossible if it is required)."""
    own = dict(m.properties)
    names = list(own) + [n for n in m.required if n not in own]
    members = []
    for name in names:
        conj = own.get(name, ()) + tuple(s for rule in m.object_rules if name not in rule.names
                                         for s in rule.view(name))
        if name in m.forbidden:
            conj = conj + (_false(m),)
        members.append((name, conj, name in m.required))
    return members


def _false(m: Merged):
    from genweave.runtime.constraints.json_schema.document import Sub

    return Sub(False, m.pointer)


def emit_object(e, m: Merged, cont: int, budget: int) -> int:
    """Entry of the objects of ``m`` followed by ``cont`` (see the module docstring)."""
    names_dfa = _property_names(e, m)
    members = []
    listed = declared_members(m)
    for name, conj, required in listed:
        allowed = names_dfa is None or names_dfa.accepts(name.encode("utf-8"))
        if not allowed or (any(s.schema is False for s in conj) or merge(conj, e.context).is_empty()):
            if required:
                return e.nfa.junction()  # a required member that cannot be written
            continue
        members.append((name, conj, required))
    declared = {name for name, _, _ in listed} | set(m.forbidden)
    regions = _regions(e, m, declared, names_dfa)
    low, high = m.min_properties, m.max_properties
    if high is not None and high < low:
        return e.nfa.junction()
    top = high if high is not None else max(low, 1)  # counts saturate at ``top`` without a maximum

    def step(count: int) -> int | None:
        if high is not None:
            return count + 1 if count < high else None
        return min(count + 1, top)

    close = e.token(b"}", cont, after=False)
    extras = _extras(e, regions, close, low, top, step, budget)
    after = extras  # after[c]: the state after the declared members with c members written
    for index in range(len(members) - 1, -1, -1):
        name, conj, required = members[index]
        entries: dict[int, int] = {}
        before: dict[int, int] = {}
        for count in range(0, min(index, top) + 1):
            following = step(count)
            take = None
            if following is not None:
                if following not in entries:
                    entries[following] = _member(e, name, conj, after[following], budget)
                take = entries[following] if count == 0 else e.token(b",", entries[following])
            options = [x for x in (take, None if required else after[count]) if x is not None]
            before[count] = e.nfa.union(options) if len(options) != 1 else options[0]
        after = before
    return e.token(b"{", after[0], before=False)


def _member(e, name: str, conj: Conjunction, cont: int, budget: int) -> int:
    value = e.value(conj, cont, budget, nested=True)
    return e.nfa.literal(json.dumps(name, ensure_ascii=False).encode("utf-8"), e.token(b":", value))


def _extras(e, regions, close: int, low: int, top: int, step, budget: int) -> dict[int, int]:
    """The states "declared members done, c members so far", for c in 0..top, with the loop of
    additional members (one junction per count, linked once all exist)."""
    states = {count: e.nfa.junction() for count in range(top + 1)}
    members: dict[tuple[int, int], int] = {}  # (region, next count) -> entry of a member
    for count, state in states.items():
        if count >= low:
            e.nfa.link(state, close)
        following = step(count)
        if following is None:
            continue
        for index, (key_dfa, conj) in enumerate(regions):
            if (index, following) not in members:
                value = e.value(conj, states[following], budget, nested=True)
                members[index, following] = e.nfa.embed(key_dfa, e.token(b":", value))
            entry = members[index, following]
            e.nfa.link(state, entry if count == 0 else e.token(b",", entry))
    return states


def _property_names(e, m: Merged) -> ByteDFA | None:
    """The decoded names ``propertyNames`` allows (None: any name)."""
    if not m.property_names:
        return None
    names = merge(m.property_names, e.context)
    pointer = m.property_names[0].pointer
    if names.is_empty() or "string" not in names.types:
        return strings.decoded_choices([])
    if names.any_of or names.one_of or names.negations or names.excluded:
        raise GenCheckError(f"propertyNames at {pointer}: combinators (anyOf/oneOf/not) are not supported here",
                            hint="write propertyNames as a string schema (pattern, enum, lengths, format)")
    choices = [v for v in names.enum if isinstance(v, str)] if names.enum is not None else None
    return strings.decoded_string(min_length=names.min_length, max_length=names.max_length,
                                  patterns=e.patterns(names), formats=e.formats(names), choices=choices,
                                  pointer=pointer)


def _regions(e, m: Merged, declared: set[str], names_dfa: ByteDFA | None) -> list[tuple[ByteDFA, Conjunction]]:
    """(encoded key DFA, value schemas) of the additional-member regions that can hold a member."""
    if not m.object_rules and names_dfa is None:  # one region: any other name, any value
        return [(strings.other_names_encoded(frozenset(declared)), ())]
    names = strings.other_names(frozenset(declared))
    if names_dfa is not None:
        names = intersection(names, names_dfa)
    patterns = list(dict.fromkeys(p for rule in m.object_rules for p, _ in rule.patterns))
    parts: list[tuple[ByteDFA, frozenset[str]]] = [(names, frozenset())]
    for pattern in patterns:
        dfa = strings.decoded_pattern(pattern)
        split = []
        for region, members in parts:
            for piece, chosen in ((intersection(region, dfa), members | {pattern}), (difference(region, dfa), members)):
                if not piece.is_empty():
                    split.append((piece, chosen))
        parts = split
        if len(parts) > MAX_PATTERN_REGIONS:
            raise GenCheckError(f"patternProperties at {m.pointer or '/'} split property names into more than "
                                f"{MAX_PATTERN_REGIONS} regions", hint="use fewer overlapping patterns")
    regions = []
    for region, chosen in parts:
        conj = tuple(s for rule in m.object_rules for s in _rule_view(rule, chosen))
        if merge(conj, e.context).is_empty():
            continue
        regions.append((_encoded(region), conj))
    return regions


def _rule_view(rule, chosen: frozenset[str]) -> Conjunction:
    matched = tuple(sub for pattern, sub in rule.patterns if pattern in chosen)
    if matched:
        return matched
    return (rule.additional,) if rule.additional is not None else ()


@lru_cache(maxsize=256)
def _encoded(region: ByteDFA) -> ByteDFA:
    return minimize(strings.encode_json_string(region))  # memoised by identity: regions repeat
