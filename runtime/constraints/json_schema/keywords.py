"""Which JSON Schema keywords constrain instances, which are annotations, which are refused.

Every keyword of a schema object falls in exactly one class:

* ``ENFORCED``: compiled exactly (within the documented serialization, see ``docs/constraints.md``);
* ``ANNOTATIONS``: the specification gives them no effect on validity (``title``, ``description``,
  ``default``, ``examples``, ``$comment``, ``readOnly``, ...): ignored;
* ``STRUCTURAL``: identifiers and containers handled by reference resolution (``$id``,
  ``$schema``, ``$defs``, ``definitions``, ``$anchor``, ...): no effect by themselves;
* ``REFUSED``: validation keywords that cannot be compiled to a regular language here. They raise
  :class:`GenCheckError` naming the keyword and its JSON pointer, unless the caller *relaxes*
  them by name (then they are over-approximated and listed on the compiled language);
* anything else is not a JSON Schema keyword (``x-*`` extensions, vendor keys, typos): JSON
  Schema validators ignore unknown keywords, and so does the compiler.
"""

from __future__ import annotations

from genweave.dsl.errors import GenCheckError

ENFORCED = frozenset({
    "type", "enum", "const", "properties", "required", "additionalProperties", "patternProperties",
    "propertyNames", "dependentRequired", "dependentSchemas", "dependencies", "minProperties",
    "maxProperties", "items", "prefixItems", "additionalItems", "minItems", "maxItems", "uniqueItems",
    "minLength", "maxLength", "pattern", "format", "minimum", "maximum", "exclusiveMinimum",
    "exclusiveMaximum", "multipleOf", "allOf", "anyOf", "oneOf", "not", "if", "then", "else", "contains",
    "minContains", "maxContains", "$ref",
})

ANNOTATIONS = frozenset({
    "title", "description", "default", "examples", "example", "$comment", "readOnly", "writeOnly",
    "deprecated", "contentEncoding", "contentMediaType", "contentSchema", "discriminator", "xml",
    "externalDocs", "nullable_comment",
})

STRUCTURAL = frozenset({
    "$schema", "$id", "id", "$defs", "definitions", "$anchor", "$dynamicAnchor", "$vocabulary",
    "$recursiveAnchor",
})

REFUSED = frozenset({
    "unevaluatedProperties",
    "unevaluatedItems", "$dynamicRef", "$recursiveRef",
})

# Keywords whose refusal the caller may lift (``relax=``): what relaxing each one means.
RELAXATIONS = {
    "format": "an unknown format is treated as an annotation (any string)",
    "oneOf": "no effect (kept for compatibility): oneOf is compiled exactly or as a reported subset",
    "uniqueItems": "arrays may repeat items",
    "contains": "a contains that is not compiled (more than three on one array, counts above 16) is ignored",
    "if": "no effect (kept for compatibility): if/then/else are compiled",
    "not": "no effect (kept for compatibility): not is compiled exactly or as a reported subset",
    "minProperties": "minProperties/maxProperties are ignored",
    "unevaluatedProperties": "unevaluatedProperties/unevaluatedItems are ignored",
    "pattern": "a pattern that is not a regular expression here is ignored",
    "multipleOf": "a multipleOf that cannot be enforced exactly is ignored",
}

_RELAXATION_OF = {"minContains": "contains", "maxContains": "contains", "then": "if", "else": "if",
                  "maxProperties": "minProperties", "unevaluatedItems": "unevaluatedProperties"}


def relaxation_of(keyword: str) -> str:
    """The ``relax=`` name that lifts the refusal of ``keyword``."""
    return _RELAXATION_OF.get(keyword, keyword)


def check_relax(relax) -> frozenset[str]:
    """The relaxation names of a ``relax=`` argument (``True``: all of them)."""
    if relax is True:
        return frozenset(RELAXATIONS)
    if relax is False or relax is None:
        return frozenset()
    names = frozenset([relax] if isinstance(relax, str) else relax)
    unknown = sorted(names - set(RELAXATIONS))
    if unknown:
        raise GenCheckError(f"cannot relax {', '.join(unknown)}",
                            hint=f"relaxable keywords: {', '.join(sorted(RELAXATIONS))}")
    return names


def refusal(keyword: str, pointer: str, reason: str = "is not supported") -> GenCheckError:
    """The error for a refused keyword at ``pointer``."""
    name = relaxation_of(keyword)
    hint = (f"pass relax={{{name!r}}} to over-approximate it ({RELAXATIONS[name]})" if name in RELAXATIONS
            else "remove the keyword or rewrite the schema without it")
    return GenCheckError(f"JSON Schema keyword {keyword!r} at {pointer or '/'} {reason}", hint=hint)
