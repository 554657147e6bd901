"""The IR's validity rules, as code. Tests run :func:`verify` after every pass.

A violation is a compiler bug, not a user error: it raises :class:`IRError` naming the rule and
the pass after which it broke.

Rules: every name is bound before it is read (parameters, holes, ``let``, loop variables, call
bindings; a call's body sees only its arguments); a program ends with its only top-level
``return`` and inlined bodies have none; role blocks open and close in order and do not nest;
holes have a non-empty stop string, ``max_tokens >= 1`` and annotations from the known sets;
choices are non-empty; the decoding's method, chain, draws, seed and search are well formed.
"""

from __future__ import annotations

import json

from genweave.compiler import ir
from genweave.compiler.passes.annotate_guarantees import STRENGTH
from genweave.compiler.passes.classify_constraints import CLASSES

METHODS = frozenset({"none", "mask", "awrs", "check", "mask+check", "awrs+check"})


class IRError(AssertionError):
    """The IR broke one of its validity rules (a compiler bug)."""


def verify(program: ir.Program, *, after: str = "lowering") -> None:
    """Raise :class:`IRError` if ``program`` breaks a rule."""
    try:
        _Verifier().program(program)
    except IRError as err:
        raise IRError(f"{program.name}: after {after}: {err}") from None


class _Verifier:
    def program(self, program: ir.Program) -> None:
        bound = {p.name for p in program.params}
        if len(bound) != len(program.params):
            raise IRError("duplicate parameter names")
        returns = [i for i, op in enumerate(program.ops) if isinstance(op, ir.Return)]
        if returns != [len(program.ops) - 1]:
            raise IRError("a program must end with its only top-level return")
        holes = {h.name for h in program.holes()}
        final = self.block(program.ops, set(bound), top=True)
        self.decoding(program.decoding, holes, final | holes)

    def block(self, ops: tuple[ir.Op, ...], bound: set[str], *, top: bool = False) -> set[str]:
        role: str | None = None
        for op in ops:
            match op:
                case ir.OpenRole(name):
                    if role is not None:
                        raise IRError(f"role {name} opened inside role {role}")
                    role = name
                case ir.CloseRole(name):
                    if role != name:
                        raise IRError(f"close {name} without a matching open")
                    role = None
                case ir.Return(value):
                    if not top:
                        raise IRError("return inside a block or an inlined call")
                    self.expr(value, bound)
                case _:
                    self.op(op, bound)
        if role is not None:
            raise IRError(f"role {role} is never closed")
        return bound

    def op(self, op: ir.Op, bound: set[str]) -> None:
        match op:
            case ir.Emit(parts):
                for part in parts:
                    if not isinstance(part, str):
                        self.expr(part, bound)
            case ir.Hole():
                self.hole(op, bound)
                bound.add(op.name)
            case ir.Let(name, value):
                self.expr(value, bound)
                bound.add(name)
            case ir.If(condition, then, orelse):
                self.expr(condition, bound)
                bound |= self.block(then, set(bound)) & self.block(orelse, set(bound))
            case ir.For(var, iterable, body):
                self.expr(iterable, bound)
                self.block(body, bound | {var})
            case ir.Call(binding, _, _, args, body, result):
                for _, value in args:
                    self.expr(value, bound)
                inner = self.block(body, {name for name, _ in args})
                self.expr(result, inner)
                if binding is not None:
                    bound.add(binding)
            case ir.Factor(weight):
                self.expr(weight, bound)
            case ir.Condition(condition):
                self.expr(condition, bound)
            case _:
                raise IRError(f"not an operation: {op!r}")

    def hole(self, hole: ir.Hole, bound: set[str]) -> None:
        if hole.max_tokens is not None and hole.max_tokens < 1:
            raise IRError(f"hole {hole.name}: max_tokens {hole.max_tokens} < 1")
        if hole.stop is not None and not hole.stop:
            raise IRError(f"hole {hole.name}: empty stop string")
        if hole.keep_stop and hole.stop is None:
            raise IRError(f"hole {hole.name}: keep_stop without a stop string")
        if hole.constraint is not None:
            self.constraint(hole.constraint, bound | {hole.name})
        if hole.constraint_class is not None and hole.constraint_class not in CLASSES:
            raise IRError(f"hole {hole.name}: unknown constraint class {hole.constraint_class!r}")
        if hole.method is not None and hole.method not in METHODS:
            raise IRError(f"hole {hole.name}: unknown method {hole.method!r}")
        if hole.cost is not None and not hole.cost >= 0:
            raise IRError(f"hole {hole.name}: negative cost")
        if hole.guarantee is not None and hole.guarantee not in STRENGTH:
            raise IRError(f"hole {hole.name}: unknown guarantee {hole.guarantee!r}")
        if hole.decoding is not None and (hole.decoding.method is not None or hole.decoding.chain):
            self.chain(hole.decoding.method, hole.decoding.chain)

    def constraint(self, c: ir.ConstraintIR, bound: set[str]) -> None:
        match c:
            case ir.Regex(pattern) | ir.Literal(pattern) | ir.Grammar(pattern):
                if not isinstance(pattern, str):
                    raise IRError(f"{type(c).__name__} text must be a str")
            case ir.Choice(options):
                if not options or not all(isinstance(o, str) for o in options):
                    raise IRError("a choice needs one or more string options")
            case ir.Builtin(name):
                if name not in ("int", "float", "bool"):
                    raise IRError(f"unknown builtin constraint {name!r}")
            case ir.Json(schema):
                json.loads(schema)
            case ir.Intersect(left, right) | ir.Union(left, right):
                self.constraint(left, bound)
                self.constraint(right, bound)
            case ir.Where(inner, condition):
                self.constraint(inner, bound)
                self.expr(condition, bound)
            case _:
                raise IRError(f"not a constraint: {c!r}")

    def expr(self, expr: ir.Expr, bound: set[str]) -> None:
        match expr:
            case ir.Ref(name):
                if name not in bound:
                    raise IRError(f"${name} is read before it is bound")
            case ir.Const(value):
                if not isinstance(value, str | int | float | bool):
                    raise IRError(f"constant of type {type(value).__name__}")
            case ir.ListValue(items) | ir.BuiltinCall(_, items) | ir.ExternCall(_, items):
                for item in items:
                    self.expr(item, bound)
            case ir.Attr(value, _) | ir.Unary(_, value):
                self.expr(value, bound)
            case ir.Index(left, right) | ir.Binary(_, left, right):
                self.expr(left, bound)
                self.expr(right, bound)
            case ir.Format(parts):
                for part in parts:
                    if not isinstance(part, str):
                        self.expr(part, bound)
            case _:
                raise IRError(f"not an expression: {expr!r}")

    def chain(self, method: str, chain: tuple[ir.SamplerStage, ...]) -> None:
        if method not in ("sample", "greedy"):
            raise IRError(f"unknown decoding method {method!r}")
        if method == "greedy" and chain:
            raise IRError("greedy decoding with a sampler chain")

    def decoding(self, d: ir.Decoding, holes: set[str], names: set[str]) -> None:
        self.chain(d.method, d.chain)
        if d.draws < 1 or (d.seed is not None and d.seed < 0):
            raise IRError(f"draws {d.draws} / seed {d.seed} out of range")
        if not set(d.enumerate) <= holes:
            raise IRError(f"enumerate names unknown holes {sorted(set(d.enumerate) - holes)}")
        if d.guarantee is not None and d.guarantee not in STRENGTH:
            raise IRError(f"unknown program guarantee {d.guarantee!r}")
        match d.search:
            case ir.Smc(particles, ess, resample, propose):
                if particles < 1 or not 0 <= ess <= 1 or propose not in ("sample", "awrs") or not resample:
                    raise IRError("smc options out of range")
            case ir.Rejection(n) | ir.Beam(n) | ir.LookaheadTree(n, _):
                if n < 1:
                    raise IRError(f"{type(d.search).__name__} option {n} < 1")
            case ir.BestOf(n, score):
                if n < 1:
                    raise IRError("best_of n < 1")
                self.expr(score, names)
