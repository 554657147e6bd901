"""Static checks on a parsed module: names (through imports), types, roles, parameter ranges,
embedded regexes/grammars/schemas, and whether the inference can honour each hole's constraint.

``check(module)`` collects every problem it finds and raises one :class:`GenCheckError` carrying
all of them (each with its span), so a user fixes several mistakes per run. Warnings (unused
names) are returned, not raised. ``supported`` says which constructs the runtime executes
(:mod:`genweave.compiler.features`); the others are errors that name the construct.

>>> from genweave.dsl.parser import parse
>>> check(parse('program p(a: str) -> str:\\n    return "x"\\n')).warnings[0].message
"'a' is never used"
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from genweave.compiler.check_expr import ExprChecker, Names
from genweave.compiler.check_infer import InferChecker
from genweave.compiler.check_program import ProgramChecker
from genweave.compiler.embedded import grammar_problems, regex_problems
from genweave.compiler.features import LANGUAGE, RUNTIME, SupportedFeatures
from genweave.compiler.json_schema import schema_notes, schema_problems
from genweave.compiler.modules import ModuleScope, build_scope, read_relative
from genweave.compiler.report import Problems, Report
from genweave.dsl import ast
from genweave.dsl.errors import GenCheckError, GenError

__all__ = ["LANGUAGE", "RUNTIME", "CheckReport", "SupportedFeatures", "check"]

_EXTERN_REF = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")
_WARN_UNUSED = (ast.RegexDecl, ast.GrammarDecl, ast.SchemaDecl, ast.SamplerDecl, ast.ExternDecl)


@dataclass
class CheckReport:
    """Warnings of a successful check (errors are raised)."""

    warnings: list[GenError] = field(default_factory=list)


def check(module: ast.Module, *, supported: SupportedFeatures | None = None) -> CheckReport:
    """Check ``module`` and the modules it uses; raise :class:`GenCheckError` listing every error."""
    problems = Problems()
    scope = build_scope(module, problems.errors)
    _check_module(scope, problems, supported or RUNTIME, seen=set(), warn=True)
    if not problems.errors:
        from genweave.compiler.legality import check_legality  # needs the IR: only for error-free source

        check_legality(scope, Report(module, problems, supported or RUNTIME))
    if problems.errors:
        problems.errors = _distinct(problems.errors)
        first = problems.errors[0]
        raise GenCheckError(first.message, span=first.span, source=first.source, hint=first.hint,
                            errors=problems.errors)
    return CheckReport(problems.warnings)


def _distinct(errors: list[GenError]) -> list[GenError]:
    """Each error once (a declaration used in several places is checked at each use)."""
    seen: set[tuple] = set()
    kept = []
    for err in errors:
        key = (err.message, err.span)
        if key not in seen:
            seen.add(key)
            kept.append(err)
    return kept


def _check_module(scope: ModuleScope, problems: Problems, supported: SupportedFeatures, *,
                  seen: set[str], warn: bool) -> None:
    if scope.key in seen:
        return
    seen.add(scope.key)
    for inner in {id(s): s for s in [*scope.imports.values(), *(m for m, _ in scope.names.values())]}.values():
        # Imported modules are held to the same runtime: their programs are inlined where called.
        _check_module(inner, problems, supported, seen=seen, warn=False)
    report = Report(scope.module, problems, supported)
    referenced = _declarations(report, scope)
    default = scope.default_model()
    # A module without a model (a library) leaves roles to the model of the program calling it.
    chat = None if default is None and not warn else bool(default and default.chat)
    for program in scope.module.programs():
        referenced |= _program(report, scope, program, chat, warn=warn)
    if warn:
        _unused_declarations(report, scope, referenced)


def _declarations(report: Report, scope: ModuleScope) -> set[str]:
    """Check every declaration; returns the module-level names the declarations refer to."""
    exprs = ExprChecker(report, scope, Names())
    seen: dict[str, ast.Decl] = {}
    for decl in scope.module.decls:
        names = list(decl.names) if isinstance(decl, ast.UseDecl) and decl.names else [decl.name]
        for name in names:
            if name in seen:
                report.error(f"'{name}' is declared twice (first on line {seen[name].span.line})", decl.span)
            seen[name] = decl
        match decl:
            case ast.ModelDecl():
                _model(report, scope, decl)
            case ast.RegexDecl(_, pattern):
                report.embedded(pattern, regex_problems(pattern.constant))
            case ast.GrammarDecl(_, source, file):
                _embedded_file(report, scope, source, file, grammar_problems, "grammar")
            case ast.SchemaDecl(_, source, file):
                _embedded_file(report, scope, source, file, schema_problems, "schema", schema_notes)
            case ast.SamplerDecl(_, chain):
                InferChecker(report, scope, {}, exprs).chain(chain)
            case ast.ExternDecl(kind, _, ref):
                if not ref.is_constant or not _EXTERN_REF.fullmatch(ref.constant):
                    report.error(f"an extern {kind} names a Python function as \"module:function\"", ref.span,
                                 hint='e.g. predicate short = extern "mypreds:is_short" prefix')
    return exprs.referenced


def _model(report: Report, scope: ModuleScope, decl: ast.ModelDecl) -> None:
    if decl.bytes:
        report.require("bytes", decl.span)
    if decl.chat and (decl.bytes or not isinstance(decl.spec, ast.String)):
        report.error(f"model '{decl.name}' runs at byte level, which has no chat template", decl.span,
                     hint="drop `chat` and write the conversation as text")
    if isinstance(decl.spec, ast.String):
        if not decl.spec.is_constant:
            report.error("a model spec cannot interpolate values", decl.spec.span)
        return
    report.require("ensemble", decl.spec.span)
    models = {m.name: m for m in scope.module.models()}
    for name in decl.spec.models:
        if name not in models or name == decl.name:
            report.error(f"ensemble member '{name}' is not a declared model", decl.spec.span)
    weights = decl.spec.weights
    if weights and len(weights) != len(decl.spec.models):
        report.error(f"the ensemble has {len(decl.spec.models)} models but {len(weights)} weights", decl.spec.span)
    for weight in weights:
        if not weight.value > 0:
            report.error(f"ensemble weights must be > 0, got {weight.value}", weight.span)


def _embedded_file(report: Report, scope: ModuleScope, source: ast.String, file: bool, problems_of,
                   what: str, notes_of=None) -> None:
    if not file:
        report.embedded(source, problems_of(source.constant))
        if notes_of is not None:
            report.embedded_warnings(source, notes_of(source.constant))
        return
    if not source.is_constant:
        report.error(f"a {what} file name cannot interpolate values", source.span)
        return
    try:
        path, text = read_relative(scope, source.constant)
    except (OSError, UnicodeDecodeError) as err:
        report.error(f"cannot read {what} file {source.constant!r}: {getattr(err, 'strerror', None) or err}",
                     source.span)
        return
    for message, start, _ in problems_of(text):
        report.error(f"{path.name}:{_line_col(text, start)}: {message}", source.span)
    for message, start, _ in notes_of(text) if notes_of is not None else ():
        report.warn(f"{path.name}:{_line_col(text, start)}: {message}", source.span)


def _line_col(text: str, offset: int) -> str:
    line = text.count("\n", 0, offset) + 1
    return f"{line}:{offset - (text.rfind(chr(10), 0, offset) + 1) + 1}"


def _program(report: Report, scope: ModuleScope, program: ast.ProgramDecl, chat: bool | None, *,
             warn: bool) -> set[str]:
    checker = ProgramChecker(report, scope, program, chat=chat)
    checker.run()
    InferChecker(report, scope, checker.holes, checker.exprs).run(program.infer)
    for name, binding in checker.names.defined:
        if warn and name not in checker.names.used:
            report.warn(f"'{name}' is never used", binding.span)
    return checker.exprs.referenced


def _unused_declarations(report: Report, scope: ModuleScope, referenced: set[str]) -> None:
    for decl in scope.module.decls:
        if isinstance(decl, _WARN_UNUSED) and decl.name not in referenced:
            report.warn(f"{_kind(decl)} '{decl.name}' is declared but never used", decl.span)
        elif isinstance(decl, ast.UseDecl):
            names = decl.names or (decl.name,)
            if not any(n in referenced for n in names):
                report.warn(f"module '{decl.name}' is imported but never used", decl.span)


def _kind(decl: ast.Decl) -> str:
    return decl.kind if isinstance(decl, ast.ExternDecl) else type(decl).__name__.removesuffix("Decl").lower()
