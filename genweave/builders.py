"""Python builders: constraints, samplers, inference and whole programs, written in Python.

The builders create the same syntax tree the ``.gen`` parser does, so a program built here is
checked, lowered and optimized by the same compiler and yields the same IR as its ``.gen``
twin (a tested law). :func:`to_source` prints it as ``.gen`` text.

>>> p = Program("haiku", {"topic": str}, returns=str)
>>> p.text("A haiku about {topic}:\\n")
>>> poem = p.gen("poem", regex(r"([^\\n]{5,40}\\n){3}"))
>>> p.ret(poem)
>>> p.infer(sample(temperature(0.7) | min_p(0.05)), draws(4))
>>> print(to_source(p), end="")
program haiku(topic: str) -> str:
  target:
    "A haiku about {topic}:\\n"
    poem = gen regex r"([^\\n]{5,40}\\n){3}"
    return poem
  infer:
    sample temperature 0.7 | min_p 0.05
    draws 4
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, get_args, get_origin

from genweave.dsl import ast
from genweave.dsl.errors import GenArgumentError
from genweave.dsl.format import format_module
from genweave.dsl.parser import parse_expression
from genweave.dsl.strings import make_string
from genweave.runtime.samplers import (  # re-exported: chains compose with `|`, temperature(0.7) | top_p(0.9)
    dry,
    epsilon,
    eta,
    frequency_penalty,
    logit_bias,
    min_p,
    mirostat,
    presence_penalty,
    repetition_penalty,
    temperature,
    top_h,
    top_k,
    top_n_sigma,
    top_p,
    typical,
    xtc,
)
from genweave.runtime.samplers.base import ChainSpec, Stage

__all__ = [
    "BOOL", "FLOAT", "INT", "Constraint", "Expr", "Extern", "Program", "awrs", "beam", "best_of", "boundary_bytes",
    "cautious", "choice", "compile_module", "declare", "draws", "dry", "enumerate_hole", "epsilon", "eta", "expr",
    "for_hole", "frequency_penalty", "gen", "grammar", "greedy", "heal", "json_schema", "len_", "literal", "logit_bias",
    "lookahead_tree", "min_p", "mirostat", "model", "module", "named", "potential", "predicate", "presence_penalty",
    "range_", "regex", "rejection", "repetition_penalty", "sample", "seed", "smc", "speculate", "temperature",
    "to_source", "top_h", "top_k", "top_n_sigma", "top_p", "twist", "typical", "use", "value", "var", "where",
    "xtc",
]


# --- expressions -------------------------------------------------------------------------------

class Expr:
    """An expression; Python operators build ``.gen`` ones (``&`` is ``and``, ``|`` is ``or``,
    ``~`` is ``not``; use ``.eq``/``.ne`` for ``==``/``!=``)."""

    __slots__ = ("node",)

    def __init__(self, node: ast.Expr):
        self.node = node

    def _bin(self, op: str, other: object, *, swap: bool = False) -> Expr:
        left, right = (value(other).node, self.node) if swap else (self.node, value(other).node)
        return Expr(ast.Binary(op, left, right))

    def __add__(self, o): return self._bin("+", o)
    def __radd__(self, o): return self._bin("+", o, swap=True)
    def __sub__(self, o): return self._bin("-", o)
    def __rsub__(self, o): return self._bin("-", o, swap=True)
    def __mul__(self, o): return self._bin("*", o)
    def __rmul__(self, o): return self._bin("*", o, swap=True)
    def __truediv__(self, o): return self._bin("/", o)
    def __floordiv__(self, o): return self._bin("//", o)
    def __mod__(self, o): return self._bin("%", o)
    def __lt__(self, o): return self._bin("<", o)
    def __le__(self, o): return self._bin("<=", o)
    def __gt__(self, o): return self._bin(">", o)
    def __ge__(self, o): return self._bin(">=", o)
    def __and__(self, o): return self._bin("and", o)
    def __or__(self, o): return self._bin("or", o)
    def __neg__(self): return Expr(ast.Unary("-", self.node))
    def __invert__(self): return Expr(ast.Unary("not", self.node))
    def __getitem__(self, index): return Expr(ast.Index(self.node, value(index).node))

    def eq(self, other: object) -> Expr:
        return self._bin("==", other)

    def ne(self, other: object) -> Expr:
        return self._bin("!=", other)

    def contains(self, item: object) -> Expr:
        """``item in self``."""
        return Expr(ast.Binary("in", value(item).node, self.node))

    def field(self, name: str) -> Expr:
        """``self.name`` (a field of a schema value)."""
        return Expr(ast.Attribute(self.node, name))

    def __bool__(self) -> bool:
        raise GenArgumentError("a builder expression has no truth value here; use p.if_(cond) for a branch")


def value(x: object) -> Expr:
    """A Python value (str, int, float, bool, list, or an :class:`Expr`) as an expression."""
    match x:
        case Expr():
            return x
        case bool():
            return Expr(ast.Bool(x))
        case int() | float() if x < 0:
            return Expr(ast.Unary("-", ast.Number(-x)))
        case int() | float():
            return Expr(ast.Number(x))
        case str():
            return Expr(make_string(x))
        case list() | tuple():
            return Expr(ast.ListExpr(tuple(value(i).node for i in x)))
    raise GenArgumentError(f"cannot use {x!r} in a program (expected str, int, float, bool, list or Expr)")


def var(name: str) -> Expr:
    return Expr(ast.Name(name))


def expr(source: str) -> Expr:
    """An expression written in ``.gen`` syntax: ``expr("len(text) < 10")``."""
    return Expr(parse_expression(source))


def len_(x: object) -> Expr:
    return Expr(ast.Call(ast.Name("len"), (value(x).node,)))


def range_(*args: object) -> Expr:
    return Expr(ast.Call(ast.Name("range"), tuple(value(a).node for a in args)))


def _text(text: str) -> ast.String:
    """A text with ``{expr}`` interpolations and ``{{``/``}}`` braces, as the ``.gen`` parser reads it."""
    parts: list[str | ast.Interpolation] = []
    piece: list[str] = []
    i = 0
    while i < len(text):
        if text.startswith(("{{", "}}"), i):
            piece.append(text[i])
            i += 2
        elif text[i] == "{":
            close = text.find("}", i)
            if close < 0:
                raise GenArgumentError(f"unclosed '{{' in {text!r}; write '{{{{' for a brace")
            if piece:
                parts.append("".join(piece))
                piece = []
            parts.append(ast.Interpolation(parse_expression(text[i + 1:close])))
            i = close + 1
        else:
            piece.append(text[i])
            i += 1
    if piece:
        parts.append("".join(piece))
    return ast.String(tuple(parts))


# --- constraints ---------------------------------------------------------------------------------

class Constraint:
    """A hole's language; ``a & b`` intersects, ``a | b`` unites, ``.where(cond)`` filters."""

    __slots__ = ("node",)

    def __init__(self, node: ast.Constraint):
        self.node = node

    def __and__(self, other: Constraint) -> Constraint:
        return Constraint(ast.BinaryC("&", self.node, _constraint(other).node))

    def __or__(self, other: Constraint) -> Constraint:
        return Constraint(ast.BinaryC("|", self.node, _constraint(other).node))

    def where(self, condition: Expr | str) -> Constraint:
        return where(self, condition)


def _constraint(c: Constraint | str) -> Constraint:
    return literal(c) if isinstance(c, str) else c


def regex(pattern: str) -> Constraint:
    # A final quote cannot end a raw triple-quoted literal; an empty group after it changes nothing.
    return Constraint(ast.RegexC(make_string(pattern + "(?:)" if pattern.endswith('"') else pattern,
                                             verbatim=True)))


def grammar(text: str) -> Constraint:
    """A Lark grammar (its ``start`` rule)."""
    # A final quote cannot end a raw triple-quoted literal; Lark ignores a trailing newline.
    return Constraint(ast.LarkC(make_string(text + "\n" if text.endswith('"') else text, verbatim=True)))


def json_schema(schema: dict | bool | str) -> Constraint:
    """JSON text valid for ``schema`` (a dict, or JSON text)."""
    text = schema if isinstance(schema, str) else json.dumps(schema)
    return Constraint(ast.JsonC(make_string(text, verbatim=True)))


def choice(options: Sequence[str]) -> Constraint:
    return Constraint(ast.ChoiceC(tuple(make_string(o) for o in options)))


def literal(text: str) -> Constraint:
    return Constraint(ast.LiteralC(make_string(text)))


def named(name: str) -> Constraint:
    """A declared regex, grammar or schema (``"email"``, ``"patterns.email"``)."""
    return Constraint(ast.NamedC(name))


def where(constraint: Constraint, condition: Expr | str) -> Constraint:
    cond = expr(condition) if isinstance(condition, str) else condition
    return Constraint(ast.WhereC(constraint.node, cond.node))


INT, FLOAT, BOOL = named("int"), named("float"), named("bool")


# --- declarations ----------------------------------------------------------------------------------

class Extern:
    """A declared predicate or potential; calling it builds a call expression."""

    def __init__(self, kind: str, name: str, ref: str, prefix: bool):
        self.decl = ast.ExternDecl(kind, name, make_string(ref), prefix)

    def __call__(self, *args: object) -> Expr:
        return Expr(ast.Call(ast.Name(self.decl.name), tuple(value(a).node for a in args)))


def predicate(name: str, ref: str, *, prefix: bool = False) -> Extern:
    """``predicate NAME = extern "module:function" [prefix]``."""
    return Extern("predicate", name, ref, prefix)


def potential(name: str, ref: str, *, prefix: bool = False) -> Extern:
    return Extern("potential", name, ref, prefix)


def model(name: str, spec: str, *, chat: bool = False, is_bytes: bool = False) -> ast.ModelDecl:
    return ast.ModelDecl(name, make_string(spec), chat=chat, bytes=is_bytes)


def use(path: str, *names: str) -> ast.UseDecl:
    """``use std.NAME`` (a dotted name) or ``use "file.gen"`` (a path ending in .gen)."""
    target = make_string(path) if path.endswith(".gen") else path
    return ast.UseDecl(target, names)


def declare(name: str, item: Constraint | ChainSpec | Stage) -> ast.Decl:
    """A named declaration: a regex, grammar or schema constraint, or a sampler chain."""
    if isinstance(item, ChainSpec | Stage):
        return ast.SamplerDecl(name, _chain(item))
    match item.node:
        case ast.RegexC(pattern):
            return ast.RegexDecl(name, pattern)
        case ast.LarkC(text):
            return ast.GrammarDecl(name, text)
        case ast.JsonC(ast.String() as text):
            return ast.SchemaDecl(name, text)
    raise GenArgumentError("declare() takes a regex, grammar or json_schema constraint, or a sampler chain")


# --- samplers and inference --------------------------------------------------------------------------

def _chain(chain: ChainSpec | Stage) -> ast.Chain:
    stages = chain.stages if isinstance(chain, ChainSpec) else (chain,)
    return ast.Chain(tuple(_stage(s) for s in stages))


def _stage(stage: Stage) -> ast.Stage:
    positional, options = None, []
    for i, param in enumerate(stage.params):
        current = getattr(stage, param.name)
        if i == 0:
            positional = _option(current, stage.name)
        elif current != param.default:
            options.append((param.name, _option(current, stage.name)))
    return ast.Stage(stage.name, positional, tuple(options))


def _option(x: object, owner: str) -> ast.OptionValue:
    if isinstance(x, bool) or not isinstance(x, int | float | str):
        raise GenArgumentError(f"{owner}: {x!r} cannot be written in a .gen chain")
    if isinstance(x, str):
        return ast.Name(x) if x.isidentifier() else make_string(x)
    return ast.Number(x)


def _options(**options: object) -> tuple[tuple[str, ast.OptionValue], ...]:
    return tuple((k, _option(v, k)) for k, v in options.items() if v is not None)


def sample(chain: ChainSpec | Stage | None = None) -> ast.Sample:
    return ast.Sample(_chain(chain) if chain is not None else None)


def greedy() -> ast.Greedy:
    return ast.Greedy()


def awrs() -> ast.Awrs:
    return ast.Awrs()


def twist(potential_: Extern, every: int | None = None) -> ast.Twist:
    return ast.Twist(potential_.decl.name, every)


def smc(particles: int, *, ess: float | None = None, resample: str | None = None,
        propose: ast.Sample | ast.Awrs | None = None, twists: Sequence[ast.Twist] = ()) -> ast.Smc:
    """``smc particles N [ess t] [resample KIND]`` with ``propose`` (``awrs()`` or ``sample(chain)``)."""
    body: list[ast.Propose | ast.Twist] = []
    if isinstance(propose, ast.Awrs):
        body.append(ast.Propose("awrs"))
    elif isinstance(propose, ast.Sample):
        body.append(ast.Propose("sample", propose.chain))
    return ast.Smc(None, _options(particles=particles, ess=ess, resample=resample), (*body, *twists))


def rejection(max_tries: int | None = None) -> ast.Method:
    return ast.Method("rejection", None, _options(max=max_tries))


def beam(width: int, *, length_penalty: float | None = None, early_stopping: str | bool | None = None,
         kind: str | None = None, returns: int | None = None) -> ast.Method:
    """``beam W [length_penalty a] [early_stopping false|true|never] [kind deterministic|stochastic]
    [returns K]`` (``early_stopping`` also takes a bool)."""
    if isinstance(early_stopping, bool):
        early_stopping = "true" if early_stopping else "false"
    return ast.Method("beam", None, _options(width=width, length_penalty=length_penalty,
                                             early_stopping=early_stopping, kind=kind, returns=returns))


def best_of(n: int, by: Expr | str) -> ast.BestOf:
    score = expr(by) if isinstance(by, str) else by
    return ast.BestOf(None, _options(n=n), score.node)


def cautious(*, candidates: int | None = None, entropy_low: float | None = None,
             entropy_high: float | None = None, segment: int | None = None) -> ast.Method:
    """``cautious [candidates N] [entropy_low a] [entropy_high b] [segment L]``."""
    return ast.Method("cautious", None, _options(candidates=candidates, entropy_low=entropy_low,
                                                 entropy_high=entropy_high, segment=segment))


def lookahead_tree(*, width: int | None = None, depth: int | None = None, rollouts: int | None = None,
                   absolute: float | None = None, relative: float | None = None,
                   edit: float | None = None) -> ast.Method:
    """``lookahead_tree [width m] [depth r] [rollouts n] [absolute a] [relative b] [edit e]``."""
    return ast.Method("lookahead_tree", None, _options(width=width, depth=depth, rollouts=rollouts,
                                                       absolute=absolute, relative=relative, edit=edit))


def speculate(variant: str, **options: object) -> ast.Speculate:
    """``speculate VARIANT ...``: e.g. ``speculate("draft", model="small", k=4)``,
    ``speculate("recycle", k=8, tree="dynamic")``."""
    return ast.Speculate(variant, None, _options(**options))


def enumerate_hole(hole: str) -> ast.Enumerate:
    return ast.Enumerate(hole)


def heal() -> ast.Heal:
    return ast.Heal()


def boundary_bytes() -> ast.Boundary:
    return ast.Boundary("bytes")


def draws(n: int) -> ast.Draws:
    return ast.Draws(n)


def seed(s: int) -> ast.Seed:
    return ast.Seed(s)


def for_hole(hole: str, *stmts: ast.InferStmt) -> ast.ForHole:
    return ast.ForHole(hole, tuple(stmts))


# --- programs ----------------------------------------------------------------------------------------

class Hole:
    """What ``gen(...)`` describes; assigning it to a program attribute adds the hole:
    ``p.poem = gen(regex(...), max_tokens=60)`` is ``poem = gen regex ... max 60 tokens``."""

    __slots__ = ("constraint", "stop", "max_tokens", "keep_stop")

    def __init__(self, constraint, stop, max_tokens, keep_stop):
        self.constraint, self.stop, self.max_tokens, self.keep_stop = constraint, stop, max_tokens, keep_stop


def gen(constraint: Constraint | str | None = None, *, stop: str | None = None, max_tokens: int | None = None,
        keep_stop: bool = False) -> Hole:
    return Hole(constraint, stop, max_tokens, keep_stop)


def _type(t: object) -> ast.TypeRef:
    if isinstance(t, str):
        return ast.TypeRef(t)
    if get_origin(t) is list:
        (inner,) = get_args(t)
        return ast.TypeRef("list", (_type(inner),))
    if t in (str, int, float, bool):
        return ast.TypeRef(t.__name__)
    raise GenArgumentError(f"unknown parameter type {t!r} (use str, int, float, bool, list[T] or a schema name)")


class Program:
    """A program built statement by statement (each method appends one, in order)."""

    def __init__(self, name: str, params: dict[str, object] | None = None, *, returns: object = None):
        self.name = name
        self.params = tuple(ast.Param(n, _type(t)) for n, t in (params or {}).items())
        self.returns = _type(returns) if returns is not None else None
        self._blocks: list[list[ast.Stmt]] = [[]]
        self._infer: list[ast.InferStmt] = []
        self.externs: dict[str, Extern] = {}

    def __getitem__(self, name: str) -> Expr:
        """A parameter or earlier name as an expression: ``p["topic"]``."""
        return var(name)

    def __setattr__(self, name: str, item: object) -> None:
        if isinstance(item, Hole):
            self.gen(name, item.constraint, stop=item.stop, max_tokens=item.max_tokens, keep_stop=item.keep_stop)
        else:
            object.__setattr__(self, name, item)

    def _add(self, stmt: ast.Stmt) -> None:
        self._blocks[-1].append(stmt)

    @contextmanager
    def _block(self) -> Iterator[list[ast.Stmt]]:
        self._blocks.append([])
        try:
            yield self._blocks[-1]
        finally:
            self._blocks.pop()

    def text(self, text: str) -> None:
        """Append text; ``{expr}`` interpolates, ``{{`` is a brace."""
        self._add(ast.TextStmt(_text(text)))

    def gen(self, name: str, constraint: Constraint | str | None = None, *, stop: str | None = None,
            max_tokens: int | None = None, keep_stop: bool = False) -> Expr:
        c = _constraint(constraint).node if constraint is not None else None
        self._add(ast.GenStmt(name, c, make_string(stop) if stop is not None else None, max_tokens, keep_stop))
        return var(name)

    @contextmanager
    def role(self, role: str) -> Iterator[None]:
        with self._block() as body:
            yield
        self._add(ast.RoleBlock(role, tuple(body)))

    def say(self, role: str, text: str) -> None:
        """A role with one line of text: ``user: "..."``."""
        self._add(ast.RoleBlock(role, (ast.TextStmt(_text(text)),), inline=True))

    def let(self, name: str, value_: object) -> Expr:
        self._add(ast.LetStmt(name, value(value_).node))
        return var(name)

    @contextmanager
    def if_(self, condition: Expr | str) -> Iterator[None]:
        cond = expr(condition) if isinstance(condition, str) else condition
        with self._block() as body:
            yield
        self._add(ast.IfStmt(cond.node, tuple(body)))

    @contextmanager
    def else_(self) -> Iterator[None]:
        """The ``else:`` of the ``if_`` just closed."""
        last = self._blocks[-1][-1] if self._blocks[-1] else None
        if not isinstance(last, ast.IfStmt) or last.orelse:
            raise GenArgumentError("else_() must follow an if_() block")
        with self._block() as body:
            yield
        self._blocks[-1][-1] = ast.IfStmt(last.condition, last.body, tuple(body))

    @contextmanager
    def for_(self, var_name: str, iterable: object) -> Iterator[Expr]:
        with self._block() as body:
            yield var(var_name)
        self._add(ast.ForStmt(var_name, value(iterable).node, tuple(body)))

    def call(self, program: Program | str, *args: object, **kwargs: object) -> Expr:
        """A call of another program (inlined); use it as a statement or as the value of ``let``."""
        name = program.name if isinstance(program, Program) else program
        node = ast.Call(_dotted(name), tuple(value(a).node for a in args),
                        tuple((k, value(v).node) for k, v in kwargs.items()))
        return Expr(node)

    def do(self, call: Expr) -> None:
        """A program call as a statement of its own."""
        if not isinstance(call.node, ast.Call):
            raise GenArgumentError("do() takes a call, e.g. p.do(p.call(intro, topic))")
        self._add(ast.CallStmt(call.node))

    def factor(self, weight: Expr | str) -> None:
        self._add(ast.FactorStmt((expr(weight) if isinstance(weight, str) else value(weight)).node))

    def condition(self, cond: Expr | str) -> None:
        self._add(ast.ConditionStmt((expr(cond) if isinstance(cond, str) else cond).node))

    def ret(self, result: object) -> None:
        self._add(ast.ReturnStmt(value(result).node))

    def infer(self, *stmts: ast.InferStmt) -> None:
        self._infer.extend(stmts)

    def decl(self) -> ast.ProgramDecl:
        if len(self._blocks) != 1:
            raise GenArgumentError(f"program {self.name!r} has an unclosed block")
        return ast.ProgramDecl(self.name, self.params, self.returns, tuple(self._blocks[0]), tuple(self._infer),
                               short_form=not self._infer)


def _dotted(name: str) -> ast.Expr:
    head, *rest = name.split(".")
    node: ast.Expr = ast.Name(head)
    for part in rest:
        node = ast.Attribute(node, part)
    return node


Item = Program | Extern | ast.Decl


def module(*items: Item) -> ast.Module:
    """A module of declarations and programs, in order (externs become declarations)."""
    decls: list[ast.Decl] = []
    for item in items:
        if isinstance(item, Program):
            decls.append(item.decl())
        elif isinstance(item, Extern):
            decls.append(item.decl)
        else:
            decls.append(item)
    return ast.Module(tuple(decls), file="<python>")


def to_source(*items: Item) -> str:
    """The ``.gen`` source of a module built from ``items``."""
    return format_module(module(*items), comments=False)


def compile_module(*items: Item) -> Any:
    """Compile the module built from ``items`` into a runnable :class:`genweave.Module` (through its
    ``.gen`` source, so errors point at that source)."""
    from genweave.api import compile as compile_source

    return compile_source(to_source(*items))

