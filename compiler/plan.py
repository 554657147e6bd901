"""Bind an IR program to the runtime: closures for text and values, the decoder, the steps."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from genweave.compiler import ir
from genweave.compiler.bind_constraints import bind_hole
from genweave.runtime import execute
from genweave.runtime.samplers import ChainSpec, build_chain, fold
from genweave.runtime.vocab import Vocabulary

# How a hole's text becomes its value when its whole constraint is a builtin type.
_PARSERS: dict[str, Callable[[str], Any]] = {"int": int, "float": float, "bool": lambda text: text == "true"}


def plan(program: ir.Program, vocab: Vocabulary, *, file: str = "<source>",
         source: str | None = None) -> execute.Plan:
    """Bind ``program`` to a model's vocabulary: compiled constraints, closures, the decoder."""
    steps = tuple(_step(op, vocab, file, source) for op in program.ops)
    return execute.Plan(steps, decoding_chain(program.decoding),
                        chat=bool(program.model and program.model.chat))


def decoding_chain(decoding: ir.Decoding) -> ChainSpec:
    """The folded sampler chain of a program's decoding (``greedy()`` for greedy decoding)."""
    if decoding.method == "greedy":
        return build_chain([("greedy", {})])
    return fold(build_chain([(s.name, dict(s.params)) for s in decoding.chain]))


def _step(op: ir.Op, vocab: Vocabulary, file: str, source: str | None) -> execute.Step:
    match op:
        case ir.Emit(parts):
            return execute.Emit(_renderer(parts))
        case ir.OpenRole(role):
            return execute.Role(role, opening=True)
        case ir.CloseRole(role):
            return execute.Role(role, opening=False)
        case ir.Hole(name, constraint, stop, max_tokens):
            where = f"{file}:{op.span.line}:{op.span.col}"
            parse = _PARSERS.get(constraint.name) if isinstance(constraint, ir.Builtin) else None
            return execute.Fill(name, max_tokens, stop, where, bind_hole(op, vocab, file, source), parse)
        case ir.Return(value):
            return execute.Return(_evaluator(value))
    raise TypeError(f"cannot plan {op!r}")


def _renderer(parts: tuple[str | ir.Ref, ...]) -> Callable[[execute.Env], str]:
    if all(isinstance(p, str) for p in parts):
        text = "".join(parts)
        return lambda env: text

    def render(env: execute.Env) -> str:
        return "".join(p if isinstance(p, str) else str(env[p.name]) for p in parts)

    return render


def _evaluator(value: ir.Value) -> Callable[[execute.Env], Any]:
    if isinstance(value, ir.Ref):
        name = value.name
        return lambda env: env[name]
    constant = value.value
    return lambda env: constant
