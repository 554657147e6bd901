"""AST -> IR: flatten role blocks into open/close operations, turn strings into emit parts."""

from __future__ import annotations

from genweave.compiler import ir
from genweave.dsl import ast


def lower(module: ast.Module) -> dict[str, ir.Program]:
    """Lower every program of a checked module, keyed by name (in source order)."""
    models = module.models()
    model = None
    if models:
        first = models[0]
        model = ir.ModelRef(first.name, first.spec.constant, chat=first.chat, span=first.span)
    return {p.name: lower_program(p, model) for p in module.programs()}


def lower_program(program: ast.ProgramDecl, model: ir.ModelRef | None) -> ir.Program:
    params = tuple(ir.Param(p.name, p.type.name, span=p.span) for p in program.params)
    returns = program.returns.name if program.returns else None
    ops = tuple(_lower_body(program.target))
    return ir.Program(program.name, params, returns, model, ops, _lower_infer(program.infer),
                      span=program.span)


def _lower_body(body: tuple[ast.Stmt, ...]):
    for stmt in body:
        match stmt:
            case ast.TextStmt(text):
                yield ir.Emit(_lower_parts(text), span=stmt.span)
            case ast.RoleBlock(role, inner):
                yield ir.OpenRole(role, span=stmt.span)
                yield from _lower_body(inner)
                yield ir.CloseRole(role, span=stmt.span)
            case ast.GenStmt(target, constraint, stop, max_tokens):
                yield ir.Hole(target, lower_constraint(constraint) if constraint else None,
                              stop.constant if stop is not None else None, max_tokens, span=stmt.span)
            case ast.ReturnStmt(value):
                yield ir.Return(_lower_value(value), span=stmt.span)


def _lower_parts(text: ast.String) -> tuple[str | ir.Ref, ...]:
    return tuple(p if isinstance(p, str) else ir.Ref(p.expr.id, span=p.span) for p in text.parts)


def _lower_value(value: ast.Expr) -> ir.Value:
    match value:
        case ast.Name(name):
            return ir.Ref(name, span=value.span)
        case ast.Number(number):
            return ir.Const(number, span=value.span)
        case ast.String() if value.is_constant:
            return ir.Const(value.constant, span=value.span)
    raise ValueError(f"cannot lower value {value!r}")


def lower_constraint(c: ast.Constraint) -> ir.ConstraintIR:
    match c:
        case ast.RegexC(pattern):
            return ir.Regex(pattern.constant, span=c.span)
        case ast.ChoiceC(options):
            return ir.Choice(tuple(o.constant for o in options), span=c.span)
        case ast.LiteralC(text):
            return ir.Literal(text.constant, span=c.span)
        case ast.NamedC(name):
            return ir.Builtin(name, span=c.span)
        case ast.BinaryC("&", left, right):
            return ir.Intersect(lower_constraint(left), lower_constraint(right), span=c.span)
        case ast.BinaryC("|", left, right):
            return ir.Union(lower_constraint(left), lower_constraint(right), span=c.span)
    raise ValueError(f"cannot lower constraint {c!r}")


def _lower_infer(infer: tuple[ast.InferStmt, ...]) -> ir.Decoding:
    method, chain, draws, seed, span = "sample", (), 1, None, ir.NO_SPAN
    for stmt in infer:
        match stmt:
            case ast.Greedy():
                method, span = "greedy", stmt.span
            case ast.Sample(stage_chain):
                method, span = "sample", stmt.span
                chain = tuple(_lower_stage(s) for s in stage_chain.stages) if stage_chain else ()
            case ast.Draws(count):
                draws = count
            case ast.Seed(value):
                seed = value
    return ir.Decoding(method, chain, draws, seed, span=span)


# Name of each sampler's positional parameter (`top_p 0.9` is top_p with p=0.9).
POSITIONAL = {"temperature": "t"}


def _lower_stage(stage: ast.Stage) -> ir.SamplerStage:
    params = []
    if stage.positional is not None:
        params.append((POSITIONAL.get(stage.name, "value"), stage.positional.value))
    params += [(key, number.value) for key, number in stage.options]
    return ir.SamplerStage(stage.name, tuple(params), span=stage.span)
