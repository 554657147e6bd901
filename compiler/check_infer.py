"""Check a program's ``infer:`` block: statements, sampler chains, option ranges, hole names.

Whether the inference can enforce each hole's constraint class is checked later, on the IR
(:mod:`genweave.compiler.legality`).
"""

from __future__ import annotations

from genweave.compiler import samplers
from genweave.compiler.check_expr import ExprChecker
from genweave.compiler.inference_spec import METHODS, SPECULATE, read_options
from genweave.compiler.modules import ModuleScope
from genweave.compiler.report import Report
from genweave.dsl import ast
from genweave.dsl.errors import Span

# Statements that choose how tokens are drawn / which search runs: one of each group at most.
_GROUPS = {ast.Greedy: "decode", ast.Sample: "decode", ast.Smc: "search", ast.Method: "search",
           ast.BestOf: "search"}
# What `for HOLE:` may set for one hole.
_PER_HOLE = (ast.Greedy, ast.Sample, ast.Awrs, ast.Speculate, ast.Heal, ast.Boundary)
_FEATURE = {ast.Awrs: "awrs", ast.Smc: "smc", ast.BestOf: "best_of", ast.Enumerate: "enumerate",
            ast.Speculate: "speculate", ast.Heal: "heal", ast.Boundary: "boundary", ast.ForHole: "for hole"}


def infer_keyword(stmt: ast.InferStmt) -> str:
    """The statement's keyword as written (``sample``, ``beam``, ``speculate draft``)."""
    match stmt:
        case ast.Method(kind):
            return kind
        case ast.Speculate(variant):
            return f"speculate {variant}"
        case ast.ForHole(hole):
            return f"for {hole}"
    return {ast.Greedy: "greedy", ast.Sample: "sample", ast.Awrs: "awrs", ast.Smc: "smc", ast.BestOf: "best_of",
            ast.Enumerate: "enumerate", ast.Heal: "heal", ast.Boundary: "boundary", ast.Draws: "draws",
            ast.Seed: "seed"}[type(stmt)]


class InferChecker:
    def __init__(self, report: Report, scope: ModuleScope, holes: dict[str, str], exprs: ExprChecker):
        self.report, self.scope, self.holes, self.exprs = report, scope, holes, exprs
        self.models = frozenset(d.name for d in scope.module.models())

    def run(self, stmts: tuple[ast.InferStmt, ...]) -> None:
        self._block(stmts, hole=None)

    def _block(self, stmts: tuple[ast.InferStmt, ...], hole: str | None) -> None:
        seen: dict[str, ast.InferStmt] = {}
        for stmt in stmts:
            key = _GROUPS.get(type(stmt), infer_keyword(stmt).split()[0])
            if isinstance(stmt, ast.Enumerate | ast.ForHole):
                key = infer_keyword(stmt)
            if key in seen:
                self.report.error(f"`{infer_keyword(stmt)}` conflicts with `{infer_keyword(seen[key])}` on line "
                                  f"{seen[key].span.line}", stmt.span, hint="keep one of them")
            seen[key] = stmt
            if hole is not None and not isinstance(stmt, _PER_HOLE):
                self.report.error(f"`{infer_keyword(stmt).split()[0]}` applies to the whole program; it cannot go "
                                  f"inside `for {hole}:`", stmt.span,
                                  hint="per hole: sample, greedy, awrs, speculate, heal, boundary")
                continue
            speculate_here = hole is not None and isinstance(stmt, ast.Speculate)
            if speculate_here and not self.report.require("for hole speculate", stmt.span):
                continue
            self._stmt(stmt)

    def _stmt(self, stmt: ast.InferStmt) -> None:
        feature = _FEATURE.get(type(stmt)) or (stmt.kind if isinstance(stmt, ast.Method) else None)
        if feature is not None:
            self.report.require(feature, stmt.span)
        match stmt:
            case ast.Sample(chain) if chain is not None:
                self.chain(chain)
            case ast.Smc():
                self._smc(stmt)
            case ast.Method(kind, positional, options):
                self._options(METHODS[kind], positional, options, stmt.span)
            case ast.BestOf(positional, options, by):
                self._options(METHODS["best_of"], positional, options, stmt.span)
                self.exprs.expect(by, "float", "the score of `best_of`")
            case ast.Speculate(variant, positional, options):
                self._speculate(stmt, variant, positional, options)
            case ast.Enumerate(hole):
                self._hole(hole, stmt.span)
            case ast.Boundary(kind) if kind != "bytes":
                self.report.error(f"unknown boundary '{kind}'", stmt.span, hint="write `boundary bytes`")
            case ast.Draws(count) if count < 1:
                self.report.error("`draws N` needs N >= 1", stmt.span)
            case ast.ForHole(hole, body):
                self._hole(hole, stmt.span)
                self._block(body, hole=hole)

    def _hole(self, hole: str, span: Span) -> None:
        if hole in self.holes:
            self.exprs.names.used.add(hole)
        else:
            known = ", ".join(sorted(self.holes)) or "none"
            self.report.error(f"unknown hole '{hole}'", span, hint=f"holes of this program: {known}")

    def _options(self, spec, positional, options, span: Span) -> dict[str, object]:
        values, problems = read_options(spec, positional, options, span, self.models)
        for message, where in problems:
            self.report.error(message, where if where.line else span)
        return values

    def _speculate(self, stmt: ast.Speculate, variant: str, positional, options) -> None:
        spec = SPECULATE.get(variant)
        if spec is None:
            self.report.error(f"unknown speculative method '{variant}'", stmt.span,
                              hint=f"methods: {', '.join(SPECULATE)}")
            return
        if self.report.supported.allows("speculate"):
            self.report.require(f"speculate {variant}", stmt.span)
        values = self._options(spec, positional, options, stmt.span)
        if variant == "recycle" and values.get("tree") == "dynamic":
            self.report.require("speculate recycle dynamic", stmt.span)

    def _smc(self, stmt: ast.Smc) -> None:
        self._options(METHODS["smc"], stmt.positional, stmt.options, stmt.span)
        proposals = [item for item in stmt.body if isinstance(item, ast.Propose)]
        for extra in proposals[1:]:
            self.report.error("`smc` takes one `propose`", extra.span)
        for item in stmt.body:
            if isinstance(item, ast.Propose) and item.chain is not None:
                self._proposal_chain(item.chain)
            elif isinstance(item, ast.Twist):
                self._twist(item)

    def _proposal_chain(self, chain: ast.Chain) -> None:
        for name, params, span in self.chain(chain):
            if samplers.check_stage(name, params) is None and samplers.is_truncating(name, params):
                self.report.error(f"`{name}` truncates the distribution, so it cannot be an SMC proposal",
                                  span, hint="a proposal must keep every token the target allows; use temperature")

    def _twist(self, twist: ast.Twist) -> None:
        found = self.scope.lookup(twist.potential)
        if found is None or not (isinstance(found[1], ast.ExternDecl) and found[1].kind == "potential"):
            self.report.error(f"`twist` needs a declared potential; '{twist.potential}' is not one", twist.span,
                              hint='declare it: potential NAME = extern "module:function" prefix')
            return
        self.exprs.referenced.add(twist.potential.split(".")[0])
        self.report.require("extern", twist.span)
        if not found[1].prefix:
            self.report.error(f"potential '{twist.potential}' is not declared `prefix`, so it cannot twist",
                              twist.span, hint="twisting scores prefixes: declare the potential with `prefix`")
        if twist.every is not None and twist.every < 1:
            self.report.error("`every k tokens` needs k >= 1", twist.span)

    # --- sampler chains --------------------------------------------------------------------------
    def chain(self, chain: ast.Chain, depth: int = 0) -> list[tuple[str, dict, Span]]:
        """Check a chain; returns its stages as ``(sampler, params, span)`` with declared samplers
        expanded."""
        stages: list[tuple[str, dict, Span]] = []
        for stage in chain.stages:
            stages += self._stage(stage, depth)
        valid = [(n, p) for n, p, _ in stages if samplers.check_stage(n, p) is None]
        if len(valid) == len(stages) and stages:
            problem = samplers.check_stages(tuple(valid))
            if problem is not None:
                self.report.error(problem[0], chain.span, hint=problem[1])
        return stages

    def _stage(self, stage: ast.Stage, depth: int) -> list[tuple[str, dict, Span]]:
        found = self.scope.lookup(stage.name)
        if found is not None and isinstance(found[1], ast.SamplerDecl):
            self.exprs.referenced.add(stage.name.split(".")[0])
            if stage.positional is not None or stage.options:
                self.report.error(f"sampler '{stage.name}' is a declared chain; it takes no values", stage.span)
            if depth > 8:
                self.report.error(f"sampler '{stage.name}' refers to itself", stage.span)
                return []
            inner = InferChecker(self.report, found[0], self.holes, self.exprs)
            return inner.chain(found[1].chain, depth + 1)
        if stage.name not in samplers.sampler_names():
            problem = samplers.check_stage(stage.name, {})
            self.report.error(problem[0] if problem else f"unknown sampler '{stage.name}'", stage.span,
                              hint=problem[1] if problem else None)
            return []
        if stage.name not in self.report.supported.samplers:
            self.report.error(f"sampler `{stage.name}` is not supported yet", stage.span,
                              hint=f"the runtime runs: {', '.join(sorted(self.report.supported.samplers))}")
        params = stage_params(stage)
        problem = samplers.check_stage(stage.name, params)
        if problem is not None:
            self.report.error(problem[0], stage.positional.span if stage.positional is not None and not stage.options
                              else stage.span, hint=problem[1])
        return [(stage.name, params, stage.span)]


def stage_params(stage: ast.Stage) -> dict[str, object]:
    """A written stage's parameters by name (the bare value names the positional parameter)."""
    params: dict[str, object] = {}
    if stage.positional is not None:
        params[samplers.positional_name(stage.name) or "value"] = _value(stage.positional)
    for key, value in stage.options:
        params[key] = _value(value)
    return params


def _value(value: ast.OptionValue) -> object:
    if isinstance(value, ast.Number):
        return value.value
    if isinstance(value, ast.Name):
        return value.id
    return value.constant
