"""State each hole's guarantee and the program's (the weakest of its holes).

    # smc                         -> consistent (exact as particles grow)
    # rejection, enumerate x      -> exact
    # beam, best_of, cautious, lookahead_tree -> selection (not a sample)
    # sample/greedy: an unconstrained hole in a target without factor/condition -> exact,
    #                else local (exact per step, not for pi/Z once constraints prune)
    # speculate, heal: transparent (keep the guarantee of what they accelerate)
"""

from __future__ import annotations

from dataclasses import replace

from genweave.compiler import ir

STRENGTH = ("selection", "local", "consistent", "exact")  # weakest first
_SEARCH = {ir.Smc: "consistent", ir.Rejection: "exact", ir.Beam: "selection", ir.BestOf: "selection",
           ir.Cautious: "selection", ir.LookaheadTree: "selection"}


def annotate_guarantees(program: ir.Program) -> ir.Program:
    """Annotate every hole's ``guarantee`` and ``program.decoding.guarantee``."""
    decoding = program.decoding
    search = _SEARCH.get(type(decoding.search)) if decoding.search is not None else None
    weighted = _has_weights(program.ops)
    holes: list[str] = []

    def annotate(op: ir.Op) -> ir.Op:
        if not isinstance(op, ir.Hole):
            return op
        if op.name in decoding.enumerate:
            guarantee = "exact"
        elif search is not None:
            guarantee = search
        else:
            guarantee = "exact" if op.constraint_class in ("none", None) and not weighted else "local"
        holes.append(guarantee)
        return replace(op, guarantee=guarantee)

    ops = ir.map_ops(program.ops, annotate)
    overall = min(holes, key=STRENGTH.index) if holes else (search or "exact")
    return replace(program, ops=ops, decoding=replace(decoding, guarantee=overall))


def _has_weights(ops: tuple[ir.Op, ...]) -> bool:
    for op in ops:
        if isinstance(op, ir.Factor | ir.Condition):
            return True
        if isinstance(op, ir.If) and (_has_weights(op.then) or _has_weights(op.orelse)):
            return True
        if isinstance(op, ir.For | ir.Call) and _has_weights(op.body):
            return True
    return False
