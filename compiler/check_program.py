"""Check one program's target: statements, holes and their constraints, names, types, roles."""

from __future__ import annotations

from genweave.compiler import types as ty
from genweave.compiler.check_expr import Binding, ExprChecker, Names
from genweave.compiler.embedded import grammar_problems, regex_problems
from genweave.compiler.json_schema import schema_notes, schema_problems
from genweave.compiler.modules import ModuleScope
from genweave.compiler.report import Report
from genweave.dsl import ast

BUILTIN_CONSTRAINTS = ("int", "float", "bool")
ROLES = ("system", "user", "assistant")


class ProgramChecker:
    """Walks a program's target once; ``names`` afterwards holds every name it defined."""

    def __init__(self, report: Report, scope: ModuleScope, program: ast.ProgramDecl, *, chat: bool | None):
        self.report, self.scope, self.program, self.chat = report, scope, program, chat
        self.names = Names()
        self.exprs = ExprChecker(report, scope, self.names)
        self.holes: dict[str, str] = {}  # every hole of the program -> its type

    def run(self) -> None:
        self._params()
        self._block(self.program.target, role=None, top=True)
        if not any(isinstance(s, ast.ReturnStmt) for s in self.program.target):
            self.report.error(f"program '{self.program.name}' has no `return`", self.program.span,
                              hint="end the target with `return NAME`")

    def _params(self) -> None:
        for param in self.program.params:
            if self.names.lookup(param.name) is not None:
                self.report.error(f"parameter '{param.name}' is declared twice", param.span)
            known = self._check_type(param.type, parameter=True)
            written = ty.type_name(param.type) if known else ty.ANY
            self.names.define(param.name, Binding("parameter", written, param.span))
        if self.program.returns is not None:
            self._check_type(self.program.returns, parameter=False)

    def _check_type(self, ref: ast.TypeRef, *, parameter: bool) -> bool:
        """Report an unknown type; True when ``ref`` names a type."""
        if ref.name == "list" and len(ref.args) == 1:
            if parameter:
                self.report.require("list parameters", ref.span)
            return self._check_type(ref.args[0], parameter=False)
        if ref.name in ty.SCALARS and not ref.args:
            return True
        found = self.scope.lookup(ref.name)
        if found is not None and isinstance(found[1], ast.SchemaDecl) and not ref.args:
            self.exprs.referenced.add(ref.name.split(".")[0])
            if parameter:
                self.report.require("schema parameters", ref.span)
            return True
        what = "parameter" if parameter else "return"
        self.report.error(f"unknown {what} type '{ty.type_name(ref)}'", ref.span,
                          hint="types are str, int, float, bool, list[T] and declared schema names")
        return False

    # --- statements --------------------------------------------------------------------------------
    def _block(self, stmts: tuple[ast.Stmt, ...], *, role: str | None, top: bool) -> None:
        returned = False
        for stmt in stmts:
            if returned:
                self.report.error("statement after `return` is never reached", stmt.span)
                break
            self._stmt(stmt, role, top)
            returned = isinstance(stmt, ast.ReturnStmt)

    def _stmt(self, stmt: ast.Stmt, role: str | None, top: bool) -> None:
        match stmt:
            case ast.TextStmt(text):
                self._outside_role(stmt, role)
                self.exprs.string(text)
            case ast.RoleBlock(inner, body):
                self._role(stmt, inner, role)
                self._block(body, role=inner, top=False)
            case ast.GenStmt():
                self._outside_role(stmt, role)
                self._gen(stmt)
            case ast.LetStmt(name, value):
                self.report.require("let", stmt.span)
                value_type = self.exprs.check(value, calls_allowed=True)
                self._define(name, Binding("let", value_type, stmt.span), stmt)
            case ast.IfStmt():
                self._if(stmt, role)
            case ast.ForStmt():
                self._for(stmt, role)
            case ast.CallStmt(call):
                self.exprs.check(call, calls_allowed=True)
            case ast.FactorStmt(weight):
                self.report.require("factor", stmt.span)
                self.exprs.expect(weight, "float", "a factor")
            case ast.ConditionStmt(condition):
                self.report.require("condition", stmt.span)
                self.exprs.expect(condition, "bool", "a condition")
            case ast.ReturnStmt(value):
                self._return(stmt, value, role, top)

    def _outside_role(self, stmt: ast.Stmt, role: str | None) -> None:
        if self.chat and role is None:
            self.report.require("raw chat text", stmt.span)

    def _role(self, stmt: ast.RoleBlock, inner: str, role: str | None) -> None:
        if self.chat is False:
            self.report.error(f"`{inner}:` needs a chat model", stmt.span,
                              hint='declare the model with `chat`, e.g. model lm = "smollm2-135m" chat')
        elif role is not None:
            self.report.error(f"`{inner}:` inside `{role}:`: role blocks do not nest", stmt.span)

    def _return(self, stmt: ast.ReturnStmt, value: ast.Expr, role: str | None, top: bool) -> None:
        if role is not None:
            self.report.error("`return` inside a role block", stmt.span,
                              hint="return after the block, at the program's top level")
        elif not top:
            self.report.error("`return` must be the last statement of the target, outside `if` and `for`",
                              stmt.span, hint="set a name in each branch (`let`, or a hole) and return it after")
        if not isinstance(value, ast.Name | ast.Number | ast.Bool) and not (
                isinstance(value, ast.String) and value.is_constant):
            self.report.require("expressions", value.span)
        actual = self.exprs.check(value)
        returns = self.program.returns
        if returns is not None and self._known(returns) and not ty.compatible(ty.type_name(returns), actual):
            self.report.error(f"program '{self.program.name}' returns {ty.type_name(returns)}, "
                              f"but this value is {actual}", value.span)

    def _known(self, ref: ast.TypeRef) -> bool:
        if ref.name == "list" and len(ref.args) == 1:
            return self._known(ref.args[0])
        found = self.scope.lookup(ref.name)
        return (ref.name in ty.SCALARS and not ref.args) or (found is not None and isinstance(found[1], ast.SchemaDecl))

    def _define(self, name: str, binding: Binding, stmt: ast.Stmt) -> None:
        existing = self.names.lookup(name)
        if existing is not None:
            self.report.error(f"'{name}' is already defined (line {existing.span.line})", stmt.span,
                              hint="names are bound once; choose another name")
            return
        self.names.hidden.pop(name, None)
        self.names.define(name, binding)

    def _if(self, stmt: ast.IfStmt, role: str | None) -> None:
        self.report.require("if", stmt.span)
        self.exprs.expect(stmt.condition, "bool", "an `if` condition")
        branches = []
        for body in (stmt.body, stmt.orelse):
            self.names.frames.append({})
            self._block(body, role=role, top=False)
            branches.append(self.names.frames.pop())
        then, orelse = branches
        for name, binding in then.items():
            other = orelse.get(name)
            merged = ty.unify(binding.type, other.type) if other is not None else None
            if merged is not None:
                self.names.frames[-1][name] = Binding(binding.kind, merged, binding.span)
            elif other is not None:
                self.names.hidden[name] = (f"its branches of the `if` on line {stmt.span.line} give it different "
                                           f"types ({binding.type} and {other.type})")
            else:
                self.names.hidden[name] = f"it is defined in only one branch of the `if` on line {stmt.span.line}"
        for name in orelse.keys() - then.keys():
            self.names.hidden[name] = f"it is defined in only one branch of the `if` on line {stmt.span.line}"

    def _for(self, stmt: ast.ForStmt, role: str | None) -> None:
        self.report.require("for", stmt.span)
        iterable = self.exprs.check(stmt.iterable)
        if not (ty.is_list(iterable) or ty.dynamic(iterable)):
            self.report.error(f"`for` needs a list (or range(n)), not {iterable}", stmt.iterable.span)
        self.names.frames.append({})
        self._define(stmt.var, Binding("loop variable", ty.element(iterable), stmt.span), stmt)
        self._block(stmt.body, role=role, top=False)
        inner = self.names.frames.pop()
        for name in inner:
            self.names.hidden[name] = f"it is defined inside the `for` loop on line {stmt.span.line}"

    # --- holes ---------------------------------------------------------------------------------------
    def _gen(self, stmt: ast.GenStmt) -> None:
        value_type = "str"
        if stmt.constraint is not None:
            value_type = self.constraint(stmt.constraint, stmt.target) or ty.ANY
            if stmt.stop is not None:
                self.report.require("constraint and stop", stmt.span)
        if stmt.max_tokens is not None and stmt.max_tokens < 1:
            self.report.error("`max N tokens` needs N >= 1", stmt.span)
        if stmt.stop is not None:
            if not stmt.stop.is_constant:
                self.report.error("a stop string cannot interpolate values", stmt.stop.span)
            elif not stmt.stop.constant:
                self.report.error("the stop string is empty", stmt.stop.span)
        if stmt.keep_stop:
            if stmt.stop is None:
                self.report.error("`keep stop` needs a `stop` string", stmt.span)
            self.report.require("keep stop", stmt.span)
        self._define(stmt.target, Binding("hole", value_type, stmt.span), stmt)
        self.holes.setdefault(stmt.target, value_type)

    def constraint(self, c: ast.Constraint, hole: str) -> str | None:
        """The type of the values of constraint ``c`` (None after an error)."""
        match c:
            case ast.RegexC(pattern):
                self._regular(c)
                self.report.embedded(pattern, regex_problems(pattern.constant))
                return "str"
            case ast.ChoiceC(options):
                self._regular(c)
                if not options:
                    self.report.error("`choice` needs at least one option", c.span)
                for option in options:
                    self._constant(option, "a choice")
                return "str"
            case ast.LiteralC(text):
                self._regular(c)
                self._constant(text, "a literal constraint")
                return "str"
            case ast.NamedC(name):
                return self._named(c, name)
            case ast.JsonC(schema):
                self.report.require("json", c.span)
                if isinstance(schema, ast.NamedC):
                    return self._named(schema, schema.name, json=True)
                self.report.embedded(schema, schema_problems(schema.constant))
                self.report.embedded_warnings(schema, schema_notes(schema.constant))
                return ty.ANY
            case ast.LarkC(grammar):
                self.report.require("lark", c.span)
                self.report.embedded(grammar, grammar_problems(grammar.constant))
                return "str"
            case ast.BinaryC(op, left, right):
                return self._binary(c, op, left, right, hole)
            case ast.WhereC(inner, condition):
                return self._where(c, inner, condition, hole)
        raise TypeError(f"not a constraint: {c!r}")

    def _regular(self, c: ast.Constraint) -> None:
        if not self.report.supported.constraints:
            self.report.error("constrained holes (`gen C`) are not supported yet", c.span,
                              hint="use `gen [stop S] [max N tokens]`")

    def _constant(self, string: ast.String, what: str) -> None:
        if not string.is_constant:
            self.report.error(f"{what} cannot interpolate values", string.span)

    def _named(self, c: ast.NamedC, name: str, *, json: bool = False) -> str | None:
        if name in BUILTIN_CONSTRAINTS and not json:
            self._regular(c)
            return name
        found = self.scope.lookup(name)
        if found is None:
            self.report.error(f"unknown constraint '{name}'", c.span,
                              hint="declare it with `regex`, `grammar` or `schema`, or use int, float, bool")
            return None
        self.exprs.referenced.add(name.split(".")[0])
        decl = found[1]
        if json and not isinstance(decl, ast.SchemaDecl):
            self.report.error(f"`json {name}` needs a schema, but '{name}' is not one", c.span)
            return None
        if isinstance(decl, ast.RegexDecl):
            self._regular(c)
            return "str"
        if isinstance(decl, ast.GrammarDecl):
            self.report.require("lark", c.span)
            return "str"
        if isinstance(decl, ast.SchemaDecl):
            if not json:
                self.report.require("json", c.span)
            return name
        self.report.error(f"'{name}' is not a constraint (declare a regex, grammar or schema)", c.span)
        return None

    def _binary(self, c: ast.BinaryC, op: str, left: ast.Constraint, right: ast.Constraint, hole: str) -> str | None:
        self._regular(c)
        a, b = self.constraint(left, hole), self.constraint(right, hole)
        if a is None or b is None:
            return None
        if op == "&":
            typed = [t for t in (a, b) if t != "str"]
            if len(typed) == 2 and ty.unify(*typed) is None:
                self.report.error(f"cannot intersect {typed[0]} and {typed[1]} values", c.span)
                return None
            return ty.unify(*typed) if len(typed) == 2 else (typed[0] if typed else "str")
        merged = ty.unify(a, b)
        if merged is None:
            self.report.error(f"the two sides of `|` give different types ({a} and {b})", c.span,
                              hint="make both sides strings, e.g. with regex, or both the same type")
        return merged

    def _where(self, c: ast.WhereC, inner: ast.Constraint, condition: ast.Expr, hole: str) -> str | None:
        self.report.require("where", c.span)
        value_type = self.constraint(inner, hole)
        self.names.frames.append({hole: Binding("hole", value_type or ty.ANY, c.span)})
        used_before = hole in self.names.used
        self.exprs.expect(condition, "bool", "a `where` condition")
        if not used_before:
            self.names.used.discard(hole)  # the hole naming itself is not a use of its value
        self.names.frames.pop()
        return value_type
