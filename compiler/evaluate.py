"""IR expressions -> Python closures over a trace's values (``env``).

Built once per plan, called per draw; no code is generated as text. Semantics follow
:mod:`genweave.compiler.ir`: like Python on JSON-like values, with ``Attr`` as a key lookup.
Host functions (``extern``) come from the ``functions`` mapping the caller passes in; a missing one
is an error at bind time, never a silent import.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any

from genweave.compiler import ir
from genweave.dsl.errors import GenArgumentError, GenRuntimeError

Env = Mapping[str, Any]
Closure = Callable[[Env], Any]

_BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt,
    ">=": operator.ge, "+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
    "//": operator.floordiv, "%": operator.mod, "in": lambda a, b: a in b,
}


class Evaluator:
    """Compiles expressions to closures; ``functions`` maps ``"module:function"`` to callables."""

    def __init__(self, functions: Mapping[str, Callable[..., Any]] | None = None, *, rename=None):
        self.functions = dict(functions or {})
        self.rename = rename or (lambda name: name)

    def compile(self, expr: ir.Expr) -> Closure:
        match expr:
            case ir.Ref(name):
                key = self.rename(name)
                return lambda env: env[key]
            case ir.Const(value):
                return lambda env: value
            case ir.ListValue(items):
                parts = [self.compile(i) for i in items]
                return lambda env: [p(env) for p in parts]
            case ir.Attr(value, name):
                return self._attr(self.compile(value), name, expr)
            case ir.Index(value, index):
                return self._index(self.compile(value), self.compile(index), expr)
            case ir.Unary(op, operand):
                inner = self.compile(operand)
                return (lambda env: not inner(env)) if op == "not" else (lambda env: -inner(env))
            case ir.Binary(op, left, right):
                return self._binary(op, self.compile(left), self.compile(right), expr)
            case ir.BuiltinCall(name, args):
                return self._builtin(name, [self.compile(a) for a in args])
            case ir.ExternCall(extern, args):
                return self._extern(extern, [self.compile(a) for a in args])
            case ir.Format(parts):
                return self.render(parts)
        raise TypeError(f"not an IR expression: {expr!r}")

    def render(self, parts: tuple[str | ir.Expr, ...]) -> Closure:
        """The text of string pieces and rendered expressions (an ``Emit`` or a ``Format``)."""
        compiled = [p if isinstance(p, str) else self.compile(p) for p in parts]
        if all(isinstance(p, str) for p in compiled):
            text = "".join(compiled)
            return lambda env: text
        return lambda env: "".join(p if isinstance(p, str) else _text(p(env)) for p in compiled)

    def function(self, extern: ir.Extern) -> Callable[..., Any]:
        fn = self.functions.get(extern.ref)
        if fn is None:
            raise GenArgumentError(
                f"{extern.kind} '{extern.name}' needs the host function {extern.ref!r}, which was not given",
                hint=f'pass functions={{"{extern.ref}": fn}} to the program, or run the CLI with --allow-python')
        return fn

    def _extern(self, extern: ir.Extern, args: list[Closure]) -> Closure:
        fn = self.function(extern)
        kind = extern.kind

        def call(env: Env) -> Any:
            value = fn(*(a(env) for a in args))
            if kind == "predicate" and not isinstance(value, bool):
                raise GenRuntimeError(f"predicate '{extern.name}' ({extern.ref}) returned {value!r}, not a bool")
            if kind == "potential" and not isinstance(value, int | float):
                raise GenRuntimeError(f"potential '{extern.name}' ({extern.ref}) returned {value!r}, "
                                      "not a number")
            return value

        return call

    @staticmethod
    def _attr(value: Closure, name: str, expr: ir.Attr) -> Closure:
        def attr(env: Env) -> Any:
            obj = value(env)
            if isinstance(obj, dict) and name in obj:
                return obj[name]
            raise GenRuntimeError(f"no field {name!r} in {_short(obj)} ({_place(expr)})")

        return attr

    @staticmethod
    def _index(value: Closure, index: Closure, expr: ir.Index) -> Closure:
        def lookup(env: Env) -> Any:
            obj, key = value(env), index(env)
            try:
                return obj[key]
            except (IndexError, KeyError, TypeError):
                raise GenRuntimeError(f"cannot index {_short(obj)} with {key!r} ({_place(expr)})") from None

        return lookup

    @staticmethod
    def _binary(op: str, left: Closure, right: Closure, expr: ir.Binary) -> Closure:
        if op == "and":
            return lambda env: bool(left(env)) and bool(right(env))
        if op == "or":
            return lambda env: bool(left(env)) or bool(right(env))
        fn = _BINARY[op]

        def apply(env: Env) -> Any:
            a, b = left(env), right(env)
            try:
                return fn(a, b)
            except (TypeError, ZeroDivisionError) as err:
                raise GenRuntimeError(f"cannot compute {_short(a)} {op} {_short(b)}: {err} "
                                      f"({_place(expr)})") from None

        return apply

    @staticmethod
    def _builtin(name: str, args: list[Closure]) -> Closure:
        if name == "len":
            (arg,) = args
            return lambda env: len(arg(env))
        if name == "range":
            return lambda env: list(range(*(int(a(env)) for a in args)))
        raise TypeError(f"unknown builtin {name!r}")


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        import json

        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _place(expr: Any) -> str:
    span = getattr(expr, "span", None)
    return f"line {span.line}, column {span.col}" if span and span.line else "in the program"
