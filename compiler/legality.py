"""Can the inference honour each hole's constraint? Checked on the IR of a checked module.

* ``smc`` and ``awrs`` sample: not with ``greedy``; ``smc`` takes one ``twist``; ``awrs`` goes
  alone or with ``smc``;

* a complete-only predicate (``where`` on a complete value) cannot be masked: it needs ``smc``
  or ``rejection``; so does a ``condition``;
* ``factor`` reweights the target, which token-by-token sampling ignores: it needs ``smc`` (or a
  selection by weight: a deterministic ``beam``); ``best_of`` selects by its own score and a
  stochastic beam samples the model's law, so both would ignore it;
* ``enumerate x`` needs a finite hole (a finite language or ``max N tokens``) and goes with plain
  ``sample``/``greedy`` decoding of the other holes;
* search options: ``beam`` scores by the sampler chain's log-probs (not under ``greedy``) and
  returns at most ``width`` hypotheses; ``cautious`` needs ``entropy_low < entropy_high``;
  ``beam``, ``cautious``, ``lookahead_tree`` and ``enumerate`` decode holes themselves, so not
  with ``heal`` or ``for HOLE:`` overrides;
* ``boundary bytes`` needs a byte-level model.
* ``speculate`` accelerates ``sample``/``greedy`` decoding of a token-level model: the runtime
  does not run it with ``smc``, ``awrs``, ``rejection``, a search or a byte-level model yet.
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
_WEIGHING = (ir.Smc, ir.Beam)


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
    _speculation(program, report)
    _search(decoding, program.holes(), report)
    for hole in program.holes():
        if hole.constraint_class == "complete-only predicate" and not isinstance(decoding.search, _ENFORCING):
            report.error(f"{method} cannot enforce the condition on hole '{hole.name}': it holds only for "
                         "complete texts, so it cannot be masked", _where_span(hole),
                         hint="use `smc` or `rejection`, or a `prefix` predicate")
    for op in _weights(program.ops):
        if isinstance(op, ir.Condition) and not isinstance(decoding.search, _ENFORCING):
            report.error(f"{method} cannot enforce `condition`: it is a hard constraint on complete traces",
                         op.span, hint="use `smc` or `rejection`")
        weighing = isinstance(decoding.search, _WEIGHING) and not getattr(decoding.search, "stochastic", False)
        if isinstance(op, ir.Factor) and not weighing:
            report.error(f"{_factor_method(decoding, method)} ignores `factor`: it reweights whole traces",
                         op.span, hint="use `smc` (or select by weight with a deterministic `beam`)")
    classes = {h.name: h.constraint_class for h in program.holes()}
    budgets = {h.name for h in program.holes() if h.max_tokens is not None}
    for stmt in _infer_statements(decl.infer):
        if isinstance(stmt, ast.Enumerate) and classes.get(stmt.hole) != "finite" and stmt.hole not in budgets:
            report.error(f"`enumerate {stmt.hole}` needs a finite hole, but '{stmt.hole}' is "
                         f"{classes.get(stmt.hole)}", stmt.span,
                         hint="enumerate holes constrained by choice, literals, bool or a bounded regex, "
                              "or give the hole `max N tokens`")
        if isinstance(stmt, ast.Boundary) and not (program.model is not None
                                                    and (program.model.bytes or program.model.members)):
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


def _speculation(program: ir.Program, report: Report) -> None:
    """``speculate`` accelerates token-by-token decoding (``sample``/``greedy``) of a token-level model."""
    decoding = program.decoding
    speculated = [(decoding.speculate, decoding.awrs)]
    speculated += [(h.decoding.speculate, h.decoding.awrs) for h in program.holes()
                   if h.decoding is not None]  # a hole's own `speculate` (`for HOLE:`)
    for spec, awrs in speculated:
        if spec is not None:
            _speculation_with(program, spec, decoding.awrs or awrs, report)


def _speculation_with(program: ir.Program, spec: ir.Speculate, awrs: bool, report: Report) -> None:
    decoding = program.decoding
    if report.supported.allows("speculate with others"):
        return
    other = (type(decoding.search).__name__.lower() if decoding.search is not None
             else "awrs" if awrs else None)
    if other is not None:
        report.error(f"`speculate` together with `{other}` is not supported yet", spec.span,
                     hint=f"`speculate` accelerates `sample`/`greedy` decoding: drop `speculate`, or `{other}`")
    if program.model is not None and (program.model.bytes or program.model.members):
        report.error("`speculate` on a byte-level model is not supported yet", spec.span,
                     hint="drop `bytes` from the model declaration, or drop `speculate`")


def _search(decoding: ir.Decoding, holes: tuple[ir.Hole, ...], report: Report) -> None:
    """Options of a search that only make sense together, and what ``enumerate`` combines with."""
    search = decoding.search
    if isinstance(search, ir.Beam):
        if decoding.method == "greedy":
            report.error("`beam` ranks continuations by the sampler chain's log-probs, but `greedy` has none",
                         search.span, hint="drop `greedy` (beam search is already deterministic), or use "
                                           "`sample CHAIN` to score through a chain")
        if search.returns > search.width:
            report.error(f"`beam` returns {search.returns} hypotheses but keeps only {search.width}", search.span,
                         hint=f"use `returns` at most {search.width}, or a wider beam")
    if isinstance(search, ir.Cautious) and search.entropy_high <= search.entropy_low:
        report.error(f"`cautious` needs entropy_low < entropy_high, got {search.entropy_low} and "
                     f"{search.entropy_high}", search.span)
    engine = (type(search).__name__.lower() if isinstance(search, ir.Beam | ir.Cautious | ir.LookaheadTree)
              else "enumerate" if decoding.enumerate else None)
    tuned = [h for h in holes if h.decoding is not None]
    if engine is not None and (decoding.heal or tuned):
        what = "`heal`" if decoding.heal else f"per-hole inference (`for {tuned[0].name}:`)"
        report.error(f"{what} does not combine with `{engine}`, which decodes every hole itself",
                     search.span if search is not None else decoding.span,
                     hint="drop one of them")
    other = (type(search).__name__.lower() if search is not None else "awrs" if decoding.awrs
             else "speculate" if decoding.speculate is not None else None)
    if decoding.enumerate and other is not None:
        report.error(f"`enumerate` does not combine with `{other}`", search.span if search is not None
                     else decoding.span, hint="enumerate with plain `sample`/`greedy` decoding of the other holes")


def _factor_method(decoding: ir.Decoding, method: str) -> str:
    if isinstance(decoding.search, ir.BestOf):
        return "`best_of` (which selects by its `by` score)"
    if isinstance(decoding.search, ir.Beam):
        return "stochastic `beam` (which samples the model's law)"
    return method


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
