"""``not N`` as a difference of automata: the texts of ``C`` minus the texts of ``C`` and ``N``.

:func:`genweave.runtime.constraints.json_schema.combinators.negate` writes ``C and not N`` as
positive cases, and leaves out violations that no positive case can say (a member whose name
matches one of ``N``'s ``patternProperties`` with a value ``N`` forbids...). For those, a second
route is exact: compile ``C`` (the conjunction without this negation) and ``C and N`` to DFAs and
subtract. A text of ``C`` is in ``C and N`` exactly when its value satisfies ``N`` provided

* ``N`` does not change how a value may be written: it declares no members (``properties``,
  ``required``, dependencies: declared members come in one order), has no ``enum``/``const``
  (written as ``json.dumps`` writes them), no numeric keyword and no ``integer`` without
  ``number`` (integers are written canonically, ``1e2`` is not), no ``not``/``oneOf``/``if``
  (whose cases add required members), no ``format`` or ``uniqueItems`` (subsets), anywhere
  inside it (:func:`layout_neutral`, following ``$ref``);
* ``C and N`` is compiled exactly: no subset (``approximated``), no recursion cut at
  ``max_depth``, no capped length, no format (formats are regular subsets), which
  :func:`difference_entry` checks, falling back to the positive cases otherwise.

Free values nest no deeper in ``C`` than the typed values of ``C and N`` at the same place, so
the bound on nesting removes nothing from ``C and N`` that ``C`` keeps.
"""

from __future__ import annotations

from genweave.dsl.errors import GenCheckError
from genweave.runtime.constraints.json_schema.automata import difference
from genweave.runtime.constraints.json_schema.document import Sub
from genweave.runtime.constraints.json_schema.keywords import ANNOTATIONS, ENFORCED, REFUSED, STRUCTURAL

# Keywords of N that keep the layout: their subschemas are checked in turn.
_NEUTRAL = frozenset({
    "type", "patternProperties", "additionalProperties", "propertyNames", "minProperties", "maxProperties",
    "items", "prefixItems", "additionalItems", "contains", "minContains", "maxContains", "minItems", "maxItems",
    "minLength", "maxLength", "pattern", "allOf", "anyOf", "$ref",
})
_SCHEMA_LISTS = ("allOf", "anyOf", "prefixItems")
_SCHEMA_MAPS = ("patternProperties",)
_SCHEMA_VALUES = ("additionalProperties", "propertyNames", "contains", "additionalItems")


def layout_neutral(document, sub: Sub) -> bool:
    """Whether ``sub`` and every subschema it reaches only use layout-neutral keywords (see the
    module docstring)."""
    seen: set[str] = set()
    pending = [sub]
    while pending:
        current = pending.pop()
        if current.pointer in seen:
            continue
        seen.add(current.pointer)
        children = _neutral_children(document, current)
        if children is None:
            return False
        pending += children
    return True


def _neutral_children(document, sub: Sub) -> list[Sub] | None:
    """The subschemas of ``sub`` to check next, or None when ``sub`` itself is not neutral."""
    schema = sub.schema
    if isinstance(schema, bool):
        return []
    if not isinstance(schema, dict):
        return None
    keys = set(schema) - ANNOTATIONS - STRUCTURAL
    known = keys & _KEYWORDS
    if not known <= _NEUTRAL:
        return None
    types = schema.get("type", "number")
    types = [types] if isinstance(types, str) else types
    if not isinstance(types, list) or ("integer" in types and "number" not in types):
        return None
    children = []
    for key in _SCHEMA_LISTS + ("items",):
        value = schema.get(key)
        if isinstance(value, list):
            children += [sub.child(s, key, i) for i, s in enumerate(value)]
        elif key == "items" and value is not None:
            children.append(sub.child(value, key))
    for key in _SCHEMA_MAPS:
        value = schema.get(key, {})
        children += [sub.child(s, key, name) for name, s in value.items()] if isinstance(value, dict) else []
    children += [sub.child(schema[key], key) for key in _SCHEMA_VALUES if key in schema]
    if "$ref" in schema:
        try:
            children.append(document.resolve(schema["$ref"], sub))
        except GenCheckError:
            return None
    return children


_KEYWORDS = ENFORCED | REFUSED | {"format"}  # every keyword with an effect on validity


def difference_entry(e, subs, negation: Sub, cont: int, budget: int, expanded: frozenset,
                     excluded: tuple) -> int | None:
    """Entry of the texts of ``subs`` (without this negation: ``expanded`` marks it) minus those
    that also satisfy ``negation``, then ``cont``; None (and the context as it was) when the
    difference would not be exact or does not compile."""
    context = e.context
    saved = (len(context.approximated), len(context.depth_bounded), len(context.relaxed), len(context.ignored))
    try:
        whole, whole_capped = _standalone(e, subs, budget, expanded, excluded)
        before = (len(context.approximated), len(context.depth_bounded))
        inside, inside_capped = _standalone(e, subs + (negation,), budget, expanded, excluded)
        exact = (len(context.approximated), len(context.depth_bounded)) == before and not inside_capped
    except GenCheckError:  # too large, or a keyword N uses that is refused here: the cases apply
        exact = False
    if not exact:
        for name, length in zip(("approximated", "depth_bounded", "relaxed", "ignored"), saved, strict=True):
            del getattr(context, name)[length:]
        return None
    e.capped += whole_capped
    return e.nfa.embed(difference(whole, inside), cont)


def _standalone(e, subs, budget, expanded, excluded):
    """(the DFA of ``subs``, the lengths capped on the way), from a separate NFA, same context."""
    from genweave.runtime.constraints.json_schema.emit import Emitter

    child = Emitter(e.document, e.options, e.context)
    dfa = child.nfa.determinize(child.value(subs, child.nfa.final, budget, expanded, excluded))
    return dfa, child.capped
