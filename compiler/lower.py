"""AST -> IR: resolve names, inline declared constraints and called programs, flatten roles.

Lowering expects a checked module (it raises :class:`GenCheckError` only for what it cannot
lower at all, e.g. an unchecked recursive call).
"""

from __future__ import annotations

from dataclasses import replace

from genweave.compiler import ir
from genweave.compiler import types as ty
from genweave.compiler.check_expr import BUILTINS
from genweave.compiler.check_infer import stage_params
from genweave.compiler.inference_spec import METHODS, SPECULATE, read_options
from genweave.compiler.json_schema import canonical
from genweave.compiler.modules import ModuleScope, build_scope, read_relative
from genweave.compiler.samplers import explicit_params, stage_of
from genweave.dsl import ast
from genweave.dsl.errors import GenCheckError, GenError, Span

MAX_CALL_DEPTH = 32


def lower(module: ast.Module, scope: ModuleScope | None = None) -> dict[str, ir.Program]:
    """Lower every program of a checked module, keyed by name (in source order)."""
    scope = scope or build_scope(module)
    model = model_ref(scope)
    return {p.name: lower_program(p, model, scope) for p in module.programs()}


def model_ref(scope: ModuleScope) -> ir.ModelRef | None:
    """The module's default model (its first declaration)."""
    models = {m.name: m for m in scope.module.models()}
    first = scope.default_model()
    return _model(first, models) if first is not None else None


def _model(decl: ast.ModelDecl, models: dict[str, ast.ModelDecl], depth: int = 0) -> ir.ModelRef:
    if isinstance(decl.spec, ast.String):
        return ir.ModelRef(decl.name, decl.spec.constant, chat=decl.chat, bytes=decl.bytes, span=decl.span)
    weights = [w.value for w in decl.spec.weights] or [1.0] * len(decl.spec.models)
    members = tuple((_model(models[name], models, depth + 1), float(w))
                    for name, w in zip(decl.spec.models, weights) if name in models and depth < 8)
    return ir.ModelRef(decl.name, "ensemble", chat=decl.chat, bytes=decl.bytes, members=members, span=decl.span)


def lower_program(program: ast.ProgramDecl, model: ir.ModelRef | None, scope: ModuleScope | None = None) -> ir.Program:
    scope = scope or build_scope(ast.Module((program,)))
    lowering = _Lowering(scope)
    params = tuple(ir.Param(p.name, ty.type_name(p.type), span=lowering.span(p.span)) for p in program.params)
    returns = ty.type_name(program.returns) if program.returns else None
    ops = lowering.block(program.target)
    decoding, per_hole = _InferLowering(lowering).decoding(program.infer)
    if per_hole:
        # `for HOLE:` names this program's holes, not those of the programs it calls.
        ops = ir.map_ops(ops, lambda op: replace(op, decoding=per_hole[op.name])
                         if isinstance(op, ir.Hole) and op.name in per_hole else op, into_calls=False)
    return ir.Program(program.name, params, returns, model, ops, decoding, span=lowering.span(program.span))


class _Lowering:
    """Lowers statements, expressions and constraints of one module's programs."""

    def __init__(self, scope: ModuleScope, depth: int = 0, stack: tuple[str, ...] = ()):
        self.scope, self.depth, self.stack = scope, depth, stack
        self.file = scope.module.file
        self.scopes_used: dict[str, int] = {}

    def span(self, span: Span) -> Span:
        return Span(span.line, span.col, span.end_line, span.end_col, self.file)

    # --- statements --------------------------------------------------------------------------
    def block(self, stmts: tuple[ast.Stmt, ...]) -> tuple[ir.Op, ...]:
        return tuple(op for stmt in stmts for op in self.stmt(stmt))

    def stmt(self, stmt: ast.Stmt) -> list[ir.Op]:
        span = self.span(stmt.span)
        match stmt:
            case ast.TextStmt(text):
                return [ir.Emit(self.parts(text), span=span)]
            case ast.RoleBlock(role, body):
                return [ir.OpenRole(role, span=span), *self.block(body), ir.CloseRole(role, span=span)]
            case ast.GenStmt(target, constraint, stop, max_tokens, keep_stop):
                lowered = self.constraint(constraint) if constraint is not None else None
                stop_text = stop.constant if stop is not None else None
                return [ir.Hole(target, lowered, stop_text, max_tokens, span=span, keep_stop=keep_stop)]
            case ast.LetStmt(name, value):
                if self._program_of(value) is not None:
                    return [self.call(value, name, span)]
                return [ir.Let(name, self.expr(value), span=span)]
            case ast.IfStmt(condition, body, orelse):
                return [ir.If(self.expr(condition), self.block(body), self.block(orelse), span=span)]
            case ast.ForStmt(var, iterable, body):
                return [ir.For(var, self.expr(iterable), self.block(body), span=span)]
            case ast.CallStmt(call):
                return [self.call(call, None, span)]
            case ast.FactorStmt(weight):
                return [ir.Factor(self.expr(weight), span=span)]
            case ast.ConditionStmt(condition):
                return [ir.Condition(self.expr(condition), span=span)]
            case ast.ReturnStmt(value):
                return [ir.Return(self.expr(value), span=span)]
        raise TypeError(f"cannot lower statement {stmt!r}")

    def parts(self, text: ast.String) -> tuple[str | ir.Expr, ...]:
        return tuple(p if isinstance(p, str) else self.expr(p.expr) for p in text.parts)

    # --- program calls -------------------------------------------------------------------------
    def _program_of(self, expr: ast.Expr) -> tuple[ModuleScope, ast.ProgramDecl] | None:
        if not isinstance(expr, ast.Call):
            return None
        dotted = _dotted(expr.func)
        found = self.scope.lookup(dotted) if dotted is not None else None
        return found if found is not None and isinstance(found[1], ast.ProgramDecl) else None

    def call(self, expr: ast.Call, binding: str | None, span: Span) -> ir.Call:
        module, program = self._program_of(expr)
        key = f"{module.key}:{program.name}"
        if key in self.stack or self.depth >= MAX_CALL_DEPTH:
            raise GenCheckError(f"program '{program.name}' calls itself; recursive programs cannot be inlined",
                                span=span, source=self.scope.module.source)
        names = [p.name for p in program.params]
        given = {**dict(zip(names, expr.args)), **dict(expr.kwargs)}
        args = tuple((name, self.expr(given[name])) for name in names if name in given)
        inner = _Lowering(module, self.depth + 1, (*self.stack, key))
        body = [op for stmt in program.target if not isinstance(stmt, ast.ReturnStmt) for op in inner.stmt(stmt)]
        returned = next((s.value for s in program.target if isinstance(s, ast.ReturnStmt)), None)
        result = inner.expr(returned) if returned is not None else ir.Const("")
        return ir.Call(binding, program.name, self._scope_name(binding or program.name), args, tuple(body),
                       result, span=span)

    def _scope_name(self, base: str) -> str:
        count = self.scopes_used.get(base, 0) + 1
        self.scopes_used[base] = count
        return base if count == 1 else f"{base}#{count}"

    # --- expressions ---------------------------------------------------------------------------
    def expr(self, expr: ast.Expr) -> ir.Expr:
        span = self.span(expr.span)
        match expr:
            case ast.Name(name):
                return ir.Ref(name, span=span)
            case ast.Number(value) | ast.Bool(value):
                return ir.Const(value, span=span)
            case ast.String():
                if expr.is_constant:
                    return ir.Const(expr.constant, span=span)
                return ir.Format(self.parts(expr), span=span)
            case ast.ListExpr(items):
                return ir.ListValue(tuple(self.expr(i) for i in items), span=span)
            case ast.Attribute(value, attr):
                return ir.Attr(self.expr(value), attr, span=span)
            case ast.Index(value, index):
                return ir.Index(self.expr(value), self.expr(index), span=span)
            case ast.Unary(op, operand):
                return ir.Unary(op, self.expr(operand), span=span)
            case ast.Binary(op, left, right):
                return ir.Binary(op, self.expr(left), self.expr(right), span=span)
            case ast.Call(func, args):
                return self._call_expr(expr, _dotted(func), args, span)
        raise TypeError(f"cannot lower expression {expr!r}")

    def _call_expr(self, expr: ast.Call, dotted: str | None, args, span: Span) -> ir.Expr:
        lowered = tuple(self.expr(a) for a in args)
        if dotted in BUILTINS:
            return ir.BuiltinCall(dotted, lowered, span=span)
        found = self.scope.lookup(dotted) if dotted is not None else None
        if found is not None and isinstance(found[1], ast.ExternDecl):
            return ir.ExternCall(self.extern(found[1]), lowered, span=span)
        raise GenCheckError(f"cannot lower the call of '{dotted}' here", span=span, source=self.scope.module.source)

    def extern(self, decl: ast.ExternDecl) -> ir.Extern:
        return ir.Extern(decl.name, decl.ref.constant, decl.kind, decl.prefix, span=self.span(decl.span))

    # --- constraints ---------------------------------------------------------------------------
    def constraint(self, c: ast.Constraint) -> ir.ConstraintIR:
        span = self.span(c.span)
        match c:
            case ast.RegexC(pattern):
                return ir.Regex(pattern.constant, span=span)
            case ast.ChoiceC(options):
                return ir.Choice(tuple(o.constant for o in options), span=span)
            case ast.LiteralC(text):
                return ir.Literal(text.constant, span=span)
            case ast.NamedC(name):
                return self._named(name, span)
            case ast.JsonC(ast.NamedC(name)):
                return self._named(name, span)
            case ast.JsonC(schema):
                return ir.Json(canonical(schema.constant), span=span)
            case ast.LarkC(grammar):
                return ir.Grammar(grammar.constant, span=span)
            case ast.BinaryC("&", left, right):
                return ir.Intersect(self.constraint(left), self.constraint(right), span=span)
            case ast.BinaryC(_, left, right):
                return ir.Union(self.constraint(left), self.constraint(right), span=span)
            case ast.WhereC(inner, condition):
                return ir.Where(self.constraint(inner), self.expr(condition), span=span)
        raise TypeError(f"cannot lower constraint {c!r}")

    def _named(self, name: str, span: Span) -> ir.ConstraintIR:
        found = self.scope.lookup(name)
        if found is None:
            if name in ("int", "float", "bool"):
                return ir.Builtin(name, span=span)
            raise GenCheckError(f"unknown constraint '{name}'", span=span, source=self.scope.module.source)
        module, decl = found
        match decl:
            case ast.RegexDecl(_, pattern):
                return ir.Regex(pattern.constant, span=span)
            case ast.GrammarDecl(_, source, file):
                return ir.Grammar(_text(module, source, file), span=span)
            case ast.SchemaDecl(_, source, file):
                return ir.Json(canonical(_text(module, source, file)), span=span)
        raise GenCheckError(f"'{name}' is not a constraint", span=span, source=self.scope.module.source)


def _text(module: ModuleScope, source: ast.String, file: bool) -> str:
    if not file:
        return source.constant
    try:
        return read_relative(module, source.constant)[1]
    except (OSError, UnicodeDecodeError) as err:
        raise GenCheckError(f"cannot read {source.constant!r}: {err}", span=source.span) from None


def _dotted(expr: ast.Expr) -> str | None:
    if isinstance(expr, ast.Name):
        return expr.id
    if isinstance(expr, ast.Attribute):
        base = _dotted(expr.value)
        return f"{base}.{expr.attr}" if base is not None else None
    return None


class _InferLowering:
    """Lowers an ``infer:`` block to a :class:`ir.Decoding` plus per-hole overrides."""

    def __init__(self, lowering: _Lowering):
        self.lowering = lowering
        self.scope = lowering.scope
        self.models = {m.name: m for m in self.scope.module.models()}

    def decoding(self, stmts: tuple[ast.InferStmt, ...]) -> tuple[ir.Decoding, dict[str, ir.HoleDecoding]]:
        d = ir.Decoding()
        per_hole: dict[str, ir.HoleDecoding] = {}
        for stmt in stmts:
            span = self.lowering.span(stmt.span)
            match stmt:
                case ast.Greedy():
                    d = replace(d, method="greedy", chain=(), span=span)
                case ast.Sample(chain):
                    d = replace(d, method="sample", chain=self.chain(chain), span=span)
                case ast.Awrs():
                    d = replace(d, awrs=True)
                case ast.Draws(count):
                    d = replace(d, draws=count)
                case ast.Seed(value):
                    d = replace(d, seed=value)
                case ast.Heal():
                    d = replace(d, heal=True)
                case ast.Boundary(kind):
                    d = replace(d, boundary=kind)
                case ast.Enumerate(hole):
                    d = replace(d, enumerate=(*d.enumerate, hole))
                case ast.Speculate():
                    d = replace(d, speculate=self.speculate(stmt))
                case ast.ForHole(hole, body):
                    per_hole[hole] = self.hole_decoding(body, span)
                case _:
                    d = replace(d, search=self.search(stmt))
        return d, per_hole

    def hole_decoding(self, stmts: tuple[ast.InferStmt, ...], span: Span) -> ir.HoleDecoding:
        d = ir.HoleDecoding(span=span)
        for stmt in stmts:
            match stmt:
                case ast.Greedy():
                    d = replace(d, method="greedy", chain=())
                case ast.Sample(chain):
                    d = replace(d, method="sample", chain=self.chain(chain))
                case ast.Awrs():
                    d = replace(d, awrs=True)
                case ast.Speculate():
                    d = replace(d, speculate=self.speculate(stmt))
                case ast.Heal():
                    d = replace(d, heal=True)
                case ast.Boundary(kind):
                    d = replace(d, boundary=kind)
        return d

    def search(self, stmt: ast.InferStmt) -> ir.Search:
        span = self.lowering.span(stmt.span)
        match stmt:
            case ast.Smc(positional, options, body):
                v = self.options(METHODS["smc"], positional, options)
                propose = next((i for i in body if isinstance(i, ast.Propose)), None)
                twists = tuple((self.lowering.extern(self.scope.lookup(t.potential)[1]), t.every or 1)
                               for t in body if isinstance(t, ast.Twist))
                return ir.Smc(v["particles"], v["ess"], v["resample"], propose.method if propose else "sample",
                              self.chain(propose.chain) if propose else (), twists, span=span)
            case ast.BestOf(positional, options, by):
                v = self.options(METHODS["best_of"], positional, options)
                return ir.BestOf(v["n"], self.lowering.expr(by), span=span)
            case ast.Method("rejection", positional, options):
                return ir.Rejection(self.options(METHODS["rejection"], positional, options)["max"], span=span)
            case ast.Method("beam", positional, options):
                v = self.options(METHODS["beam"], positional, options)
                return ir.Beam(v["width"], v["length_penalty"], v["early_stopping"], v["kind"] == "stochastic",
                               v["returns"], span=span)
            case ast.Method("cautious", positional, options):
                v = self.options(METHODS["cautious"], positional, options)
                return ir.Cautious(v["candidates"], v["entropy_low"], v["entropy_high"], v["segment"], span=span)
            case ast.Method("lookahead_tree", positional, options):
                v = self.options(METHODS["lookahead_tree"], positional, options)
                return ir.LookaheadTree(v["width"], v["depth"], v["rollouts"], v["absolute"], v["relative"],
                                        v["edit"], span=span)
        raise TypeError(f"cannot lower inference statement {stmt!r}")

    def speculate(self, stmt: ast.Speculate) -> ir.Speculate:
        values = self.options(SPECULATE[stmt.variant], stmt.positional, stmt.options)
        draft_name = values.pop("model", None) or values.pop("draft", None)
        draft = _model(self.models[draft_name], self.models) if draft_name in self.models else None
        return ir.Speculate(stmt.variant, draft, tuple(values.items()), span=self.lowering.span(stmt.span))

    def options(self, spec, positional, options) -> dict[str, object]:
        values, problems = read_options(spec, positional, options, models=frozenset(self.models))
        if problems:
            message, span = problems[0]
            raise GenCheckError(message, span=span, source=self.scope.module.source)
        return values

    def chain(self, chain: ast.Chain | None, depth: int = 0) -> tuple[ir.SamplerStage, ...]:
        if chain is None:
            return ()
        stages: list[ir.SamplerStage] = []
        for stage in chain.stages:
            found = self.scope.lookup(stage.name)
            if found is not None and isinstance(found[1], ast.SamplerDecl) and depth < 8:
                inner = _InferLowering(_Lowering(found[0]))
                stages += inner.chain(found[1].chain, depth + 1)
            else:
                stages.append(ir.SamplerStage(stage.name, _normalized(stage), span=self.lowering.span(stage.span)))
        return tuple(stages)


def _normalized(stage: ast.Stage) -> tuple[tuple[str, object], ...]:
    """A stage's parameters as the sampler library reads them (types and names normalized)."""
    params = stage_params(stage)
    try:
        return tuple(explicit_params(stage_of(stage.name, params)).items())
    except (GenError, TypeError, ValueError):
        return tuple(params.items())
