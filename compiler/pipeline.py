"""The compiler's passes, in the order they run. Each is ``ir.Program -> ir.Program`` in its own
file under ``compiler/passes/``; ``verify`` states the IR's validity rules and runs after every
pass in tests (``optimize(..., verify_each=True)``) or with ``GENWEAVE_DEBUG=1``, which also prints
the IR after each pass to stderr.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from genweave.compiler import ir
from genweave.compiler.ir_print import print_program
from genweave.compiler.passes.annotate_guarantees import annotate_guarantees
from genweave.compiler.passes.choose_enforcement import choose_enforcement
from genweave.compiler.passes.classify_constraints import classify_constraints
from genweave.compiler.passes.fold_sampler_chains import fold_sampler_chains
from genweave.compiler.passes.mark_heal_boundaries import mark_heal_boundaries
from genweave.compiler.verify import verify

Pass = Callable[[ir.Program], ir.Program]

PASSES: tuple[Pass, ...] = (
    fold_sampler_chains,
    classify_constraints,
    choose_enforcement,
    annotate_guarantees,
    mark_heal_boundaries,
)


def optimize(program: ir.Program, *, trace: list[tuple[str, ir.Program]] | None = None,
             verify_each: bool = False) -> ir.Program:
    """Run every pass in order; ``trace`` (if given) receives the program after each pass."""
    debug = os.environ.get("GENWEAVE_DEBUG") == "1"
    if verify_each or debug:
        verify(program)
    for run_pass in PASSES:
        program = run_pass(program)
        if verify_each or debug:
            verify(program, after=run_pass.__name__)
        if debug:
            print(f"--- after {run_pass.__name__}\n{print_program(program)}", file=sys.stderr)
        if trace is not None:
            trace.append((run_pass.__name__, program))
    return program
