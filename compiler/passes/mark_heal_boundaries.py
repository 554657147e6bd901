"""Mark the literal/hole boundaries where tokenization can cut across text: a hole right after
text (``"The answer is " x = gen ...``: the best tokenization may merge the trailing space with
the hole's first characters) and text right after a hole. Token healing (``heal``) and byte-level
boundaries (``boundary bytes``) act there; the marks are made whatever the inference, so
``genweave explain`` shows them.

    # emit 'text' ; hole x          -> x.heal_before
    # hole x ; emit 'text'          -> x.heal_after
    # open/close role, if, for, call between them -> no mark (the template or block separates them)
"""

from __future__ import annotations

from dataclasses import replace

from genweave.compiler import ir


def mark_heal_boundaries(program: ir.Program) -> ir.Program:
    return replace(program, ops=_mark(program.ops))


def _mark(ops: tuple[ir.Op, ...]) -> tuple[ir.Op, ...]:
    out: list[ir.Op] = []
    for i, op in enumerate(ops):
        if isinstance(op, ir.Hole):
            before = i > 0 and _ends_with_text(ops[i - 1])
            after = i + 1 < len(ops) and _starts_with_text(ops[i + 1])
            op = replace(op, heal_before=before, heal_after=after)
        elif isinstance(op, ir.If):
            op = replace(op, then=_mark(op.then), orelse=_mark(op.orelse))
        elif isinstance(op, ir.For | ir.Call):
            op = replace(op, body=_mark(op.body))
        out.append(op)
    return tuple(out)


def _ends_with_text(op: ir.Op) -> bool:
    return isinstance(op, ir.Emit) and bool(op.parts) and op.parts[-1] != ""


def _starts_with_text(op: ir.Op) -> bool:
    return isinstance(op, ir.Emit) and bool(op.parts) and op.parts[0] != ""
