"""``genweave explain``: the IR of each program after lowering and after each pass, then a table
of its holes (constraint class, method, estimated cost, guarantee, healed boundaries).

>>> from genweave.dsl.parser import parse
>>> text = explain(parse('program p() -> str:\\n    "Pick: "\\n    x = gen choice ["a", "b"]\\n    return x\\n'))
>>> print(text.split("-- holes")[1].strip())
hole  class   method  cost/step  guarantee  boundary
x     finite  mask    2 us       local      before
program guarantee: local
"""

from __future__ import annotations

from genweave.compiler import ir
from genweave.compiler.check import check
from genweave.compiler.features import LANGUAGE, SupportedFeatures
from genweave.compiler.ir_print import print_program
from genweave.compiler.lower import lower
from genweave.compiler.pipeline import optimize
from genweave.compiler.verify import verify
from genweave.dsl import ast


def explain(module: ast.Module, *, program: str | None = None, passes: bool = True,
            supported: SupportedFeatures = LANGUAGE) -> str:
    """Check ``module`` (at the language level by default) and describe how each program compiles."""
    check(module, supported=supported)
    sections = []
    for name, lowered in lower(module).items():
        if program is not None and name != program:
            continue
        sections.append(explain_program(lowered, passes=passes))
    return "\n\n".join(sections) + "\n"


def explain_program(lowered: ir.Program, *, passes: bool = True) -> str:
    trace: list[tuple[str, ir.Program]] = []
    verify(lowered)
    final = optimize(lowered, trace=trace, verify_each=True)
    lines = [f"== program {lowered.name}"]
    if passes:
        lines += ["-- lowered", print_program(lowered)]
        for name, after in trace:
            lines += [f"-- after {name}", print_program(after)]
    lines += ["-- holes", *_table(final)]
    return "\n".join(lines)


def _table(program: ir.Program) -> list[str]:
    rows = [("hole", "class", "method", "cost/step", "guarantee", "boundary")]
    for scope, hole in _holes(program.ops, ""):
        boundary = ",".join(side for side, on in (("before", hole.heal_before), ("after", hole.heal_after)) if on)
        cost = f"{hole.cost:g} us" if hole.cost is not None else "-"
        rows.append((scope + hole.name, hole.constraint_class or "-", hole.method or "-", cost,
                     hole.guarantee or "-", boundary or "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    if len(rows) == 1:
        lines.append("(no holes)")
    lines.append(f"program guarantee: {program.decoding.guarantee or '-'}")
    return lines


def _holes(ops: tuple[ir.Op, ...], prefix: str):
    for op in ops:
        if isinstance(op, ir.Hole):
            yield prefix, op
        elif isinstance(op, ir.If):
            yield from _holes(op.then, prefix)
            yield from _holes(op.orelse, prefix)
        elif isinstance(op, ir.For):
            yield from _holes(op.body, prefix)
        elif isinstance(op, ir.Call):
            yield from _holes(op.body, f"{prefix}{op.scope}.")
