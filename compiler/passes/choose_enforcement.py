"""Choose how each hole's constraint is enforced per step: full token masks or AWRS, by cost.

Cost model (estimated microseconds per decoding step on CPU, vocabulary ~49k tokens):

* a mask of a finite or regular language is a precomputed row per automaton state (paid once per
  tokenizer and constraint): ``MASK_COST``; it is always chosen for them (exact without weights);
* a context-free mask parses every token against the parser state: ``MASK_COST["context-free"]``;
* AWRS checks sampled tokens one at a time until one is accepted: ``EXPECTED_CHECKS`` checks of
  ``CHECK_COST`` each (a predicate check calls the host function);
* a complete-only predicate cannot be checked on prefixes: ``+check`` at the end of the hole
  (the search method, smc or rejection, accounts for it).

``awrs`` in ``infer:`` forces AWRS for every constrained hole.
"""

from __future__ import annotations

from dataclasses import replace

from genweave.compiler import ir

MASK_COST = {"finite": 2.0, "regular": 5.0, "context-free": 400.0}
CHECK_COST = {"finite": 0.5, "regular": 0.5, "context-free": 5.0, "prefix predicate": 20.0}
EXPECTED_CHECKS = 4.0  # a prior: AWRS typically accepts within a few draws


def choose_enforcement(program: ir.Program) -> ir.Program:
    """Annotate every hole with ``method`` and ``cost`` (needs ``constraint_class``)."""
    forced = program.decoding.awrs

    def choose(op: ir.Op) -> ir.Op:
        if not isinstance(op, ir.Hole) or op.constraint_class is None:
            return op
        awrs = forced or (op.decoding is not None and op.decoding.awrs)
        method, cost = enforcement(op.constraint_class, _masked_class(op), awrs=awrs)
        return replace(op, method=method, cost=cost)

    return replace(program, ops=ir.map_ops(program.ops, choose))


def _masked_class(hole: ir.Hole) -> str:
    """The class of the part of the constraint that can be enforced per step (``where`` dropped)."""
    from genweave.compiler.passes.classify_constraints import constraint_class, harder

    constraint = hole.constraint
    while isinstance(constraint, ir.Where):
        constraint = constraint.constraint
    if constraint is None:
        return "regular" if hole.stop is not None else "none"
    kind = constraint_class(constraint, hole.name)
    return harder(kind, "regular") if hole.stop is not None and kind != "finite" else kind


def enforcement(kind: str, masked: str, *, awrs: bool) -> tuple[str, float]:
    """``(method, cost)`` for a hole of class ``kind`` whose per-step part has class ``masked``."""
    if kind == "none":
        return "none", 0.0
    check = "+check" if kind == "complete-only predicate" else ""
    if kind == "prefix predicate":
        return "awrs", EXPECTED_CHECKS * (CHECK_COST.get(masked, 0.0) + CHECK_COST["prefix predicate"])
    if masked == "none":
        return "check", 0.0
    awrs_cost = EXPECTED_CHECKS * CHECK_COST[masked]
    if awrs or (masked == "context-free" and awrs_cost < MASK_COST[masked]):
        return "awrs" + check, awrs_cost
    return "mask" + check, MASK_COST[masked]
