"""Can the inference honour each hole's constraint? Checked on the IR of a checked module.

* ``smc`` and ``awrs`` sample: not with ``greedy``; ``smc`` takes one ``twist``; ``awrs`` goes
  alone or with ``smc``;

* a complete-only predicate (``where`` on a complete value) cannot be masked: it needs ``smc``
  or ``rejection``; so does a ``condition``;
* ``factor`` reweights the target, which token-by-token sampling ignores: it needs ``smc`` (or a
  selection by weight: ``beam``, ``best_of``);
* ``enumerate x`` needs a finite hole;
* ``boundary bytes`` needs a byte-level model.
"""

from __future__ import annotations

from genweave.compiler import ir
from genweave.compiler.lower import lower_program, model_ref
from genweave.compiler.modules import ModuleScope
from genweave.compiler.passes.classify_constraints import classify_constraints
from genweave.compiler.report import Report
from genweave.dsl import ast
from genweave.dsl.errors import GenCheckError

_ENFORCING = (ir.Smc, ir.Rejection)
_WEIGHING = (ir.Smc, ir.Beam, ir.BestOf)


def check_legality(scope: ModuleScope, report: Report) -> None:
    """Report every hole, factor and condition the chosen inference cannot honour."""
    model = model_ref(scope)
    for decl in scope.module.programs():
        try:
            program = classify_constraints(lower_program(decl, model, scope))
        except GenCheckError as err:  # e.g. a recursive call, found when inlining
            report.error(err.message, err.span, hint=err.hint)
            continue
        _program(program, report, decl)


def _program(program: ir.Program, report: Report, decl: ast.ProgramDecl) -> None:
    decoding = program.decoding
    method = _describe(decoding)
    _particle_inference(decoding, report)
    for hole in program.holes():
        if hole.constraint_class == "complete-only predicate" and not isinstance(decoding.search, _ENFORCING):
            report.error(f"{method} cannot enforce the condition on hole '{hole.name}': it holds only for "
                         "complete texts, so it cannot be masked", _where_span(hole),
                         hint="use `smc` or `rejection`, or a `prefix` predicate")
    for op in _weights(program.ops):
        if isinstance(op, ir.Condition) and not isinstance(decoding.search, _ENFORCING):
            report.error(f"{method} cannot enforce `condition`: it is a hard constraint on complete traces",
                         op.span, hint="use `smc` or `rejection`")
        if isinstance(op, ir.Factor) and not isinstance(decoding.search, _WEIGHING):
            report.error(f"{method} ignores `factor`: it reweights whole traces", op.span,
                         hint="use `smc` (or select by weight with `beam` or `best_of`)")
    classes = {h.name: h.constraint_class for h in program.holes()}
    for stmt in _infer_statements(decl.infer):
        if isinstance(stmt, ast.Enumerate) and classes.get(stmt.hole) != "finite":
            report.error(f"`enumerate {stmt.hole}` needs a finite hole, but '{stmt.hole}' is "
                         f"{classes.get(stmt.hole)}", stmt.span,
                         hint="enumerate holes constrained by choice, literals, bool or a bounded regex")
        if isinstance(stmt, ast.Boundary) and not (program.model is not None and program.model.bytes):
            report.error("`boundary bytes` needs a byte-level model", stmt.span,
                         hint="declare the model with `bytes`")


def _particle_inference(decoding: ir.Decoding, report: Report) -> None:
    """``smc`` and ``awrs`` sample; they need a distribution to sample from, one twist at most."""
    search = decoding.search
    particles = isinstance(search, ir.Smc) or decoding.awrs
    if particles and decoding.method == "greedy":
        name = "smc" if isinstance(search, ir.Smc) else "awrs"
        report.error(f"`{name}` samples, but `greedy` is not a distribution to sample from",
                     search.span if isinstance(search, ir.Smc) else decoding.span,
                     hint="use `sample [CHAIN]` (e.g. `sample temperature 0.5`) for a sharper target")
    if isinstance(search, ir.Smc) and len(search.twists) > 1:
        report.error("`smc` takes one `twist`", search.span, hint="combine the potentials into one extern")
    if decoding.awrs and search is not None and not isinstance(search, ir.Smc):
        report.error(f"`awrs` has no effect under `{type(search).__name__.lower()}`", search.span,
                     hint="use `awrs` alone or with `smc`")


def _infer_statements(stmts):
    for stmt in stmts:
        yield stmt
        if isinstance(stmt, ast.ForHole):
            yield from _infer_statements(stmt.body)


def _describe(decoding: ir.Decoding) -> str:
    if decoding.search is not None:
        return f"`{type(decoding.search).__name__.lower()}`"
    return f"`{decoding.method}`"


def _where_span(hole: ir.Hole):
    found = _first_where(hole.constraint)
    return found.span if found is not None else hole.span


def _first_where(c: ir.ConstraintIR | None) -> ir.Where | None:
    if isinstance(c, ir.Where):
        return c
    if isinstance(c, ir.Intersect | ir.Union):
        return _first_where(c.left) or _first_where(c.right)
    return None


def _weights(ops: tuple[ir.Op, ...]):
    for op in ops:
        if isinstance(op, ir.Factor | ir.Condition):
            yield op
        elif isinstance(op, ir.If):
            yield from _weights(op.then)
            yield from _weights(op.orelse)
        elif isinstance(op, ir.For | ir.Call):
            yield from _weights(op.body)
