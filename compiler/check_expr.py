"""Types of expressions, and the names they use, inside one program.

:class:`Names` is the stack of local scopes (parameters, holes, ``let``, loop variables);
:class:`ExprChecker` computes an expression's type, reporting each problem with its span.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from genweave.compiler import types as ty
from genweave.compiler.modules import ModuleScope
from genweave.compiler.report import Report
from genweave.dsl import ast
from genweave.dsl.errors import Span

BUILTINS = ("len", "range")


@dataclass
class Binding:
    kind: str  # "parameter", "hole", "let", "loop variable"
    type: str
    span: Span


@dataclass
class Names:
    """Nested scopes of local names; ``hidden`` remembers names that went out of scope and why."""

    frames: list[dict[str, Binding]] = field(default_factory=lambda: [{}])
    hidden: dict[str, str] = field(default_factory=dict)
    defined: list[tuple[str, Binding]] = field(default_factory=list)
    used: set[str] = field(default_factory=set)

    def lookup(self, name: str) -> Binding | None:
        for frame in reversed(self.frames):
            if name in frame:
                return frame[name]
        return None

    def define(self, name: str, binding: Binding) -> None:
        self.frames[-1][name] = binding
        self.defined.append((name, binding))

    def visible(self) -> list[str]:
        return sorted({n for frame in self.frames for n in frame})


class ExprChecker:
    """Types expressions of a program; ``calls`` counts program calls where they are allowed."""

    def __init__(self, report: Report, scope: ModuleScope, names: Names):
        self.report, self.scope, self.names = report, scope, names
        self.referenced: set[str] = set()  # module-level names used (for unused-declaration warnings)
        self.program_calls: list[tuple[ast.Call, ast.ProgramDecl, ModuleScope]] = []

    def check(self, expr: ast.Expr, *, calls_allowed: bool = False) -> str:
        match expr:
            case ast.Name(name):
                return self._name(expr, name)
            case ast.Number(value):
                return "int" if isinstance(value, int) else "float"
            case ast.Bool():
                return "bool"
            case ast.String():
                self.string(expr)
                return "str"
            case ast.ListExpr(items):
                return self._list(expr, items)
            case ast.Attribute(value, attr):
                return self._attribute(expr, value, attr)
            case ast.Index(value, index):
                return self._index(expr, value, index)
            case ast.Call():
                return self._call(expr, calls_allowed)
            case ast.Unary(op, operand):
                return self._unary(expr, op, operand)
            case ast.Binary(op, left, right):
                return self._binary(expr, op, left, right)
        raise TypeError(f"not an expression: {expr!r}")

    def expect(self, expr: ast.Expr, wanted: str, what: str) -> str:
        actual = self.check(expr)
        if not ty.compatible(wanted, actual):
            self.report.error(f"{what} must be {wanted}, not {actual}", expr.span)
        return actual

    def string(self, string: ast.String) -> None:
        for part in string.parts:
            if isinstance(part, ast.Interpolation):
                if not isinstance(part.expr, ast.Name):
                    self.report.require("expressions", part.span)
                self.check(part.expr)

    # --- names ---------------------------------------------------------------------------------
    def _name(self, expr: ast.Name, name: str) -> str:
        binding = self.names.lookup(name)
        if binding is not None:
            self.names.used.add(name)
            return binding.type
        found = self.scope.lookup(name)
        if found is not None and not isinstance(found[1], ast.ProgramDecl | ast.ExternDecl):
            kind = type(found[1]).__name__.removesuffix("Decl").lower()
            self.report.error(f"'{name}' is a {kind} declaration, not a value", expr.span,
                              hint=f"use it as a constraint: x = gen {name}" if kind in ("regex", "grammar", "schema")
                              else None)
        elif found is not None:
            self.report.error(f"'{name}' is a {_kind(found[1])}; call it, e.g. {name}(...)", expr.span)
        elif name in self.names.hidden:
            self.report.error(f"'{name}' is not visible here: {self.names.hidden[name]}", expr.span)
        else:
            known = ", ".join(self.names.visible()) or "none"
            self.report.error(f"unknown name '{name}'", expr.span, hint=f"names defined here: {known}")
        return ty.ANY

    # --- containers ----------------------------------------------------------------------------
    def _list(self, expr: ast.ListExpr, items: tuple[ast.Expr, ...]) -> str:
        result = ty.ANY
        for item in items:
            item_type = self.check(item)
            merged = ty.unify(result, item_type)
            if merged is None:
                self.report.error(f"list items have different types: {result} and {item_type}", item.span)
            else:
                result = merged
        return ty.list_of(result)

    def _attribute(self, expr: ast.Attribute, value: ast.Expr, attr: str) -> str:
        dotted = _dotted(expr)
        if dotted is not None and self.names.lookup(dotted.split(".")[0]) is None and \
                dotted.split(".")[0] in self.scope.imports:
            found = self.scope.lookup(dotted)
            self.referenced.add(dotted.split(".")[0])
            if found is None:
                self.report.error(f"module '{dotted.split('.')[0]}' has no declaration '{attr}'", expr.span)
            else:
                self.report.error(f"'{dotted}' is a {_kind(found[1])}, not a value", expr.span)
            return ty.ANY
        base = self.check(value)
        if ty.dynamic(base):
            return ty.ANY
        self.report.error(f"a {base} value has no field '{attr}'", expr.span,
                          hint="fields exist on values of holes constrained by a JSON schema")
        return ty.ANY

    def _index(self, expr: ast.Index, value: ast.Expr, index: ast.Expr) -> str:
        base = self.check(value)
        index_type = self.check(index)
        if ty.dynamic(base):
            return ty.ANY
        if ty.is_list(base) or base == "str":
            if not ty.compatible("int", index_type):
                self.report.error(f"an index must be int, not {index_type}", index.span)
            return ty.element(base) if ty.is_list(base) else "str"
        self.report.error(f"a {base} value cannot be indexed", expr.span)
        return ty.ANY

    # --- operators -----------------------------------------------------------------------------
    def _unary(self, expr: ast.Unary, op: str, operand: ast.Expr) -> str:
        inner = self.check(operand)
        if op == "not":
            if not ty.compatible("bool", inner):
                self.report.error(f"`not` needs a bool, not {inner}", operand.span)
            return "bool"
        if not ty.is_numeric(inner):
            self.report.error(f"`-` needs a number, not {inner}", operand.span)
            return ty.ANY
        return inner

    def _binary(self, expr: ast.Binary, op: str, left: ast.Expr, right: ast.Expr) -> str:
        a, b = self.check(left), self.check(right)
        if op in ("and", "or"):
            for side, t in ((left, a), (right, b)):
                if not ty.compatible("bool", t):
                    self.report.error(f"`{op}` needs bool operands, not {t}", side.span)
            return "bool"
        if op == "in":
            if not (ty.dynamic(b) or ty.is_list(b) or b == "str"):
                self.report.error(f"`in` needs a list or a str on its right, not {b}", right.span)
            return "bool"
        if op in ("==", "!=", "<", "<=", ">", ">="):
            if ty.unify(a, b) is None or (op not in ("==", "!=") and not (ty.is_numeric(ty.unify(a, b))
                                                                        or ty.unify(a, b) == "str")):
                self.report.error(f"cannot compare {a} with {b} using `{op}`", expr.span)
            return "bool"
        return self._arithmetic(expr, op, a, b)

    def _arithmetic(self, expr: ast.Binary, op: str, a: str, b: str) -> str:
        if ty.dynamic(a) or ty.dynamic(b):
            known = b if ty.dynamic(a) else a
            if op == "+" and (known == "str" or ty.is_list(known) or ty.is_numeric(known)):
                return known if not ty.dynamic(known) else ty.ANY
            if ty.is_numeric(known):
                return "float" if op == "/" else known if known != ty.ANY else ty.ANY
            self.report.error(f"`{op}` cannot combine {a} and {b}", expr.span)
            return ty.ANY
        if op == "+" and (a == b == "str" or (ty.is_list(a) and ty.is_list(b))):
            merged = ty.unify(a, b)
            if merged is None:
                self.report.error(f"cannot add {a} and {b}", expr.span)
            return merged or ty.ANY
        if not (ty.is_numeric(a) and ty.is_numeric(b)):
            self.report.error(f"`{op}` needs numbers, not {a} and {b}", expr.span,
                              hint="`+` also joins two strings or two lists" if op == "+" else None)
            return ty.ANY
        if op == "/":
            return "float"
        return ty.unify(a, b) or ty.ANY

    # --- calls ---------------------------------------------------------------------------------
    def _call(self, expr: ast.Call, calls_allowed: bool) -> str:
        dotted = _dotted(expr.func)
        if dotted in BUILTINS and self.names.lookup(dotted) is None:
            return self._builtin(expr, dotted)
        found = self.scope.lookup(dotted) if dotted is not None else None
        if found is None:
            for arg in (*expr.args, *(v for _, v in expr.kwargs)):
                self.check(arg)
            shown = dotted or "this expression"
            self.report.error(f"unknown function '{shown}'", expr.func.span,
                              hint="call len, range, a declared predicate or potential, or a program")
            return ty.ANY
        self.referenced.add(dotted.split(".")[0])
        module, decl = found
        if isinstance(decl, ast.ExternDecl):
            return self._extern(expr, decl)
        if isinstance(decl, ast.ProgramDecl):
            return self._program(expr, decl, module, calls_allowed)
        self.report.error(f"'{dotted}' is a {_kind(decl)}, not a function", expr.func.span)
        return ty.ANY

    def _builtin(self, expr: ast.Call, name: str) -> str:
        arity = (1,) if name == "len" else (1, 2)
        if expr.kwargs or len(expr.args) not in arity:
            self.report.error(f"{name}() takes {' or '.join(map(str, arity))} positional argument(s)", expr.span)
        types = [self.check(a) for a in (*expr.args, *(v for _, v in expr.kwargs))]
        if name == "len":
            if types and not (types[0] == "str" or ty.is_list(types[0]) or ty.dynamic(types[0])):
                self.report.error(f"len() needs a str or a list, not {types[0]}", expr.args[0].span)
            return "int"
        for arg, t in zip(expr.args, types):
            if not ty.compatible("int", t):
                self.report.error(f"range() needs int arguments, not {t}", arg.span)
        return ty.list_of("int")

    def _extern(self, expr: ast.Call, decl: ast.ExternDecl) -> str:
        self.report.require("extern", expr.span)
        if expr.kwargs or len(expr.args) != 1:
            self.report.error(f"{decl.kind} '{decl.name}' takes one argument (a text)", expr.span)
        for arg in (*expr.args, *(v for _, v in expr.kwargs)):
            self.check(arg)
        return "bool" if decl.kind == "predicate" else "float"

    def _program(self, expr: ast.Call, decl: ast.ProgramDecl, module: ModuleScope, calls_allowed: bool) -> str:
        if not calls_allowed:
            self.report.error(f"a call of program '{decl.name}' must be a statement of its own or the value "
                              "of a `let`", expr.span, hint="its target is inlined where it is called")
        self.report.require("call", expr.span)
        params = {p.name: p for p in decl.params}
        if len(expr.args) > len(decl.params):
            self.report.error(f"program '{decl.name}' takes {len(decl.params)} argument(s), "
                              f"got {len(expr.args)}", expr.span)
        given = {p.name: a for p, a in zip(decl.params, expr.args)}
        for key, value in expr.kwargs:
            if key not in params:
                self.report.error(f"program '{decl.name}' has no parameter '{key}'", value.span)
            elif key in given:
                self.report.error(f"argument '{key}' of '{decl.name}' given twice", value.span)
            given[key] = value
        for name, value in given.items():
            actual = self.check(value)
            if name in params and not ty.compatible(ty.type_name(params[name].type), actual):
                self.report.error(f"argument '{name}' of '{decl.name}' must be {ty.type_name(params[name].type)}, "
                                  f"not {actual}", value.span)
        missing = [p.name for p in decl.params if p.name not in given]
        if missing:
            self.report.error(f"program '{decl.name}' needs argument '{missing[0]}'", expr.span)
        self.program_calls.append((expr, decl, module))
        return ty.type_name(decl.returns) if decl.returns is not None else ty.ANY


def _dotted(expr: ast.Expr) -> str | None:
    """``a.b.c`` for a chain of names and attributes, else None."""
    if isinstance(expr, ast.Name):
        return expr.id
    if isinstance(expr, ast.Attribute):
        base = _dotted(expr.value)
        return f"{base}.{expr.attr}" if base is not None else None
    return None


def _kind(decl: ast.Decl) -> str:
    if isinstance(decl, ast.ExternDecl):
        return decl.kind
    return type(decl).__name__.removesuffix("Decl").lower()
