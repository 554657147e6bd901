"""Classify each hole's constraint: finite, regular, context-free, prefix predicate, or
complete-only predicate (the hardest part decides), or none.

    # choice, literal, bool, a regex without unbounded repetition -> finite
    # regex, int, float, stop S, a JSON Schema without recursion  -> regular
    # a Lark grammar, a recursive JSON Schema                      -> context-free
    # C where p(x), p a prefix predicate of the hole's text        -> prefix predicate
    # C where <anything else>                                      -> complete-only predicate
    # a & b with a finite side -> finite;  otherwise the harder side
"""

from __future__ import annotations

import json
from dataclasses import replace

from genweave.compiler import ir
from genweave.compiler.embedded import regex_is_finite
from genweave.compiler.json_schema import is_recursive

CLASSES = ("none", "finite", "regular", "context-free", "prefix predicate", "complete-only predicate")


def classify_constraints(program: ir.Program) -> ir.Program:
    """Annotate every hole with its ``constraint_class``."""
    return replace(program, ops=ir.map_ops(program.ops, _classify_hole))


def _classify_hole(op: ir.Op) -> ir.Op:
    if not isinstance(op, ir.Hole):
        return op
    return replace(op, constraint_class=hole_class(op))


def hole_class(hole: ir.Hole) -> str:
    if hole.constraint is None:
        return "regular" if hole.stop is not None else "none"
    kind = constraint_class(hole.constraint, hole.name)
    if hole.stop is not None and kind != "finite":
        kind = harder(kind, "regular")
    return kind


def constraint_class(c: ir.ConstraintIR, hole: str) -> str:
    match c:
        case ir.Choice() | ir.Literal():
            return "finite"
        case ir.Builtin(name):
            return "finite" if name == "bool" else "regular"
        case ir.Regex(pattern):
            return "finite" if regex_is_finite(pattern) else "regular"
        case ir.Grammar():
            return "context-free"
        case ir.Json(schema):
            return "context-free" if is_recursive(json.loads(schema)) else "regular"
        case ir.Intersect(left, right):
            a, b = constraint_class(left, hole), constraint_class(right, hole)
            return "finite" if "finite" in (a, b) else harder(a, b)
        case ir.Union(left, right):
            return harder(constraint_class(left, hole), constraint_class(right, hole))
        case ir.Where(inner, condition):
            return harder(constraint_class(inner, hole), predicate_class(condition, hole))
    raise TypeError(f"not a constraint: {c!r}")


def predicate_class(condition: ir.Expr, hole: str) -> str:
    """A prefix predicate checks the hole's text alone and is declared ``prefix``; any other
    condition can only be decided on the complete value."""
    if (isinstance(condition, ir.ExternCall) and condition.extern.kind == "predicate" and condition.extern.prefix
            and condition.args == (ir.Ref(hole),)):
        return "prefix predicate"
    return "complete-only predicate"


def harder(a: str, b: str) -> str:
    return a if CLASSES.index(a) >= CLASSES.index(b) else b
