"""The compiler's passes, in the order they run."""

from __future__ import annotations

from collections.abc import Callable

from genweave.compiler import ir
from genweave.compiler.passes.fold_sampler_chains import fold_sampler_chains

Pass = Callable[[ir.Program], ir.Program]

PASSES: tuple[Pass, ...] = (
    fold_sampler_chains,
)


def optimize(program: ir.Program, *, trace: list[tuple[str, ir.Program]] | None = None) -> ir.Program:
    """Run every pass in order; ``trace`` (if given) receives the program after each pass."""
    for run_pass in PASSES:
        program = run_pass(program)
        if trace is not None:
            trace.append((run_pass.__name__, program))
    return program
