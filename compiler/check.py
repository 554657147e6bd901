"""Static checks on a parsed module: names, types, roles, parameter ranges.

``check(module)`` collects every problem it finds and raises one :class:`GenCheckError` carrying
all of them (each with its span), so a user fixes several mistakes per run. Warnings (unused
names) are returned, not raised.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from genweave.dsl import ast
from genweave.dsl.errors import GenCheckError, GenError, Span

ROLES = ("system", "user", "assistant")
PARAM_TYPES = ("str", "int", "float", "bool")
BUILTIN_CONSTRAINTS = ("int", "float", "bool")


@dataclass
class CheckReport:
    """Warnings of a successful check (errors are raised)."""

    warnings: list[GenError] = field(default_factory=list)


@dataclass
class _Checker:
    module: ast.Module
    errors: list[GenError] = field(default_factory=list)
    warnings: list[GenError] = field(default_factory=list)

    def error(self, message: str, span: Span, hint: str | None = None) -> None:
        self.errors.append(GenCheckError(message, span=self._file_span(span), source=self.module.source,
                                         hint=hint))

    def warn(self, message: str, span: Span) -> None:
        self.warnings.append(GenError(message, span=self._file_span(span), source=self.module.source))

    def _file_span(self, span: Span) -> Span:
        return Span(span.line, span.col, span.end_line, span.end_col, self.module.file)


def check(module: ast.Module, *, supported: SupportedFeatures | None = None) -> CheckReport:
    """Check ``module``; raise :class:`GenCheckError` listing every error found."""
    supported = supported or SupportedFeatures()
    checker = _Checker(module)
    _check_declarations(checker, module)
    models = {d.name: d for d in module.models()}
    for program in module.programs():
        _check_program(checker, program, models, supported)
    if checker.errors:
        first = checker.errors[0]
        raise GenCheckError(first.message, span=first.span, source=first.source, hint=first.hint,
                            errors=checker.errors)
    return CheckReport(checker.warnings)


@dataclass(frozen=True)
class SupportedFeatures:
    """What the runtime can execute today: samplers by name and whether constraints are wired."""

    samplers: frozenset[str] = frozenset({"temperature"})
    constraints: bool = False


def _check_declarations(checker: _Checker, module: ast.Module) -> None:
    seen: dict[str, ast.Decl] = {}
    for decl in module.decls:
        if decl.name in seen:
            checker.error(f"'{decl.name}' is declared twice (first on line {seen[decl.name].span.line})",
                          decl.span)
        seen[decl.name] = decl
        if isinstance(decl, ast.ModelDecl):
            if not decl.spec.is_constant:
                checker.error("a model spec cannot interpolate values", decl.spec.span)
            if decl.bytes:
                checker.error("byte-level models (`bytes`) are not supported yet", decl.span)
        elif isinstance(decl, ast.RegexDecl | ast.SamplerDecl):
            checker.error(f"`{type(decl).__name__.removesuffix('Decl').lower()}` declarations are not "
                          "supported yet", decl.span)


def _check_program(checker: _Checker, program: ast.ProgramDecl, models: dict[str, ast.ModelDecl],
                   supported: SupportedFeatures) -> None:
    chat = bool(models) and next(iter(models.values())).chat
    names: dict[str, Span] = {}
    for param in program.params:
        if param.name in names:
            checker.error(f"parameter '{param.name}' is declared twice", param.span)
        names[param.name] = param.span
        if param.type.name not in PARAM_TYPES or param.type.args:
            checker.error(f"unknown parameter type '{param.type.name}'", param.type.span,
                          hint=f"parameters are one of: {', '.join(PARAM_TYPES)}")
    if program.returns is not None and (program.returns.name != "str" or program.returns.args):
        checker.error(f"return type '{program.returns.name}' is not supported yet", program.returns.span,
                      hint="programs return `str` for now")
    used: set[str] = set()
    _check_body(checker, program.target, names, used, chat=chat, role=None, supported=supported)
    if not any(isinstance(s, ast.ReturnStmt) for s in program.target):
        checker.error(f"program '{program.name}' has no `return`", program.span,
                      hint="end the target with `return NAME`")
    _check_infer(checker, program.infer, supported)
    for name, span in names.items():
        if name not in used:
            checker.warn(f"'{name}' is never used", span)


def _check_body(checker: _Checker, body: Iterable[ast.Stmt], names: dict[str, Span], used: set[str], *,
                chat: bool, role: str | None, supported: SupportedFeatures) -> None:
    returned = False
    for stmt in body:
        if returned:
            checker.error("statement after `return` is never reached", stmt.span)
            break
        match stmt:
            case ast.TextStmt(text):
                if chat and role is None:
                    checker.error("text outside a role block in a program on a chat model", stmt.span,
                                  hint="put it inside `system:`, `user:` or `assistant:`")
                _check_refs(checker, text, names, used)
            case ast.RoleBlock(role=inner):
                if not chat:
                    checker.error(f"`{inner}:` needs a chat model", stmt.span,
                                  hint='declare the model with `chat`, e.g. model lm = "smollm2-135m" chat')
                elif role is not None:
                    checker.error(f"`{inner}:` inside `{role}:`: role blocks do not nest", stmt.span)
                _check_body(checker, stmt.body, names, used, chat=chat, role=inner, supported=supported)
            case ast.GenStmt():
                if chat and role is None:
                    checker.error("a hole outside a role block in a program on a chat model", stmt.span,
                                  hint="put it inside `assistant:`")
                _check_gen(checker, stmt, names, supported)
            case ast.ReturnStmt(value):
                if role is not None:
                    checker.error("`return` inside a role block", stmt.span,
                                  hint="return after the block, at the program's top level")
                _check_refs(checker, value, names, used)
                returned = True


def _check_gen(checker: _Checker, stmt: ast.GenStmt, names: dict[str, Span],
               supported: SupportedFeatures) -> None:
    if stmt.target in names:
        checker.error(f"'{stmt.target}' is already defined (line {names[stmt.target].line})", stmt.span)
    names[stmt.target] = stmt.span
    if stmt.constraint is not None and not supported.constraints:
        checker.error("constrained holes (`gen C`) are not supported yet", stmt.constraint.span,
                      hint="use `gen [stop S] [max N tokens]`")
    if stmt.max_tokens is not None and stmt.max_tokens < 1:
        checker.error("`max N tokens` needs N >= 1", stmt.span)
    if stmt.stop is not None:
        if not stmt.stop.is_constant:
            checker.error("a stop string cannot interpolate values", stmt.stop.span)
        elif not stmt.stop.constant:
            checker.error("the stop string is empty", stmt.stop.span)


def _check_refs(checker: _Checker, node: ast.Expr, names: dict[str, Span], used: set[str]) -> None:
    refs = [node] if isinstance(node, ast.Name) else [
        p.expr for p in getattr(node, "parts", ()) if isinstance(p, ast.Interpolation)]
    for ref in refs:
        if ref.id not in names:
            known = ", ".join(sorted(names)) or "none"
            checker.error(f"unknown name '{ref.id}'", ref.span, hint=f"names defined here: {known}")
        used.add(ref.id)


def _check_infer(checker: _Checker, infer: Iterable[ast.InferStmt], supported: SupportedFeatures) -> None:
    seen: dict[type, Span] = {}
    for stmt in infer:
        kind = ast.Sample if isinstance(stmt, ast.Greedy | ast.Sample) else type(stmt)
        if kind in seen:
            checker.error(f"`{_infer_keyword(stmt)}` conflicts with the statement on line {seen[kind].line}",
                          stmt.span)
        seen[kind] = stmt.span
        match stmt:
            case ast.Sample(chain) if chain is not None:
                for stage in chain.stages:
                    _check_stage(checker, stage, supported)
            case ast.Draws(count) if count < 1:
                checker.error("`draws N` needs N >= 1", stmt.span)


def _check_stage(checker: _Checker, stage: ast.Stage, supported: SupportedFeatures) -> None:
    if stage.name not in supported.samplers:
        checker.error(f"unknown sampler '{stage.name}'", stage.span,
                      hint=f"available samplers: {', '.join(sorted(supported.samplers))}")
        return
    if stage.name == "temperature":
        value = stage.positional.value if stage.positional is not None else None
        if value is None or stage.options:
            checker.error("`temperature` takes one number, e.g. `temperature 0.7`", stage.span)
        elif value < 0:
            checker.error(f"temperature must be >= 0, got {value}", stage.positional.span)


def _infer_keyword(stmt: ast.InferStmt) -> str:
    return {ast.Greedy: "greedy", ast.Sample: "sample", ast.Draws: "draws", ast.Seed: "seed"}[type(stmt)]
