"""The abstract syntax tree of a ``.gen`` module: frozen, slotted dataclasses with spans.

Every node carries the :class:`~genweave.dsl.errors.Span` of the source it came from, so the
checker and the runtime can point at it. Spans do not take part in equality, which makes
``parse(format(ast)) == ast`` a meaningful round-trip law. Parentheses leave no node: the
formatter puts back exactly those that precedence needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from genweave.dsl.errors import Span

NO_SPAN = Span(0, 0, 0, 0)


def _span() -> Span:
    return field(default=NO_SPAN, compare=False, repr=False)


# --- expressions -------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Name:
    id: str
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Number:
    value: int | float
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Bool:
    """``true`` or ``false``."""

    value: bool
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Interpolation:
    """``{expr}`` inside a string literal."""

    expr: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class String:
    """A string literal: plain text pieces and interpolations, in order.

    ``raw`` strings (``r"..."``) have one text piece and no interpolation; ``triple`` records the
    quoting so the formatter can keep it.
    """

    parts: tuple[str | Interpolation, ...]
    raw: bool = False
    triple: bool = False
    span: Span = _span()

    @property
    def is_constant(self) -> bool:
        return all(isinstance(p, str) for p in self.parts)

    @property
    def constant(self) -> str:
        """The text of a literal without interpolations."""
        return "".join(p for p in self.parts if isinstance(p, str))


@dataclass(frozen=True, slots=True)
class ListExpr:
    """``[a, b, c]``."""

    items: tuple[Expr, ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Attribute:
    """``value.attr``: a field of a schema value, or a name of an imported module."""

    value: Expr
    attr: str
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Index:
    """``value[index]``."""

    value: Expr
    index: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Call:
    """``func(arg, ..., key=arg)``: a builtin (``len``, ``range``), a predicate, a potential or a
    program."""

    func: Expr
    args: tuple[Expr, ...] = ()
    kwargs: tuple[tuple[str, Expr], ...] = ()
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Unary:
    """``-x`` or ``not x``."""

    op: str
    operand: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Binary:
    """``left op right`` with ``op`` one of ``BINARY_OPS``."""

    op: str
    left: Expr
    right: Expr
    span: Span = _span()


Expr = Name | Number | Bool | String | ListExpr | Attribute | Index | Call | Unary | Binary

# Binding strength of each operator (higher binds tighter); comparisons do not chain.
BINARY_OPS = {"or": 1, "and": 2, "==": 4, "!=": 4, "<": 4, "<=": 4, ">": 4, ">=": 4, "in": 4,
              "+": 5, "-": 5, "*": 6, "/": 6, "//": 6, "%": 6}
COMPARISONS = frozenset({"==", "!=", "<", "<=", ">", ">=", "in"})


# --- constraint expressions (what a hole may produce) -------------------------------------------

@dataclass(frozen=True, slots=True)
class RegexC:
    """``regex r"..."``: the strings the pattern fully matches."""

    pattern: String
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class ChoiceC:
    """``choice ["a", "b"]``: exactly one of the listed strings."""

    options: tuple[String, ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class LiteralC:
    """A string literal used as a constraint: exactly that text."""

    text: String
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class NamedC:
    """A declared regex, grammar or schema (``email``, ``patterns.email``) or a builtin type
    (``int``, ``float``, ``bool``)."""

    name: str
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class JsonC:
    """``json "{...}"`` (an inline JSON Schema, usually triple-quoted) or ``json NAME`` (a declared
    schema)."""

    schema: String | NamedC
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class LarkC:
    """``lark "..."``: an inline Lark grammar (usually triple-quoted), matched from its ``start`` rule."""

    grammar: String
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class BinaryC:
    """``a & b`` (intersection) or ``a | b`` (union)."""

    op: str
    left: Constraint
    right: Constraint
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class WhereC:
    """``C where cond``: the strings of ``C`` for which ``cond`` (about the hole) holds."""

    constraint: Constraint
    condition: Expr
    span: Span = _span()


Constraint = RegexC | ChoiceC | LiteralC | NamedC | JsonC | LarkC | BinaryC | WhereC


# --- target statements ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class TextStmt:
    """A string literal on its own line: appends its text to the context."""

    text: String
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class GenStmt:
    """``name = gen [constraint] [stop S] [keep stop] [max N tokens]``."""

    target: str
    constraint: Constraint | None
    stop: String | None
    max_tokens: int | None
    keep_stop: bool = False
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class RoleBlock:
    """``system:``/``user:``/``assistant:`` followed by a block (or one inline literal)."""

    role: str
    body: tuple[Stmt, ...]
    inline: bool = False
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class LetStmt:
    """``let name = expr``."""

    name: str
    value: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class IfStmt:
    """``if cond:`` body ``else:`` orelse (``elif`` is an ``else`` holding one ``if``)."""

    condition: Expr
    body: tuple[Stmt, ...]
    orelse: tuple[Stmt, ...] = ()
    span: Span = _span()
    # The line of `else:` (0 when there is none or it is an `elif`), for the formatter's comments.
    else_line: int = field(default=0, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class ForStmt:
    """``for var in iterable:`` body."""

    var: str
    iterable: Expr
    body: tuple[Stmt, ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class CallStmt:
    """A program call on its own line: its target is inlined, its value dropped."""

    call: Call
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class FactorStmt:
    """``factor expr``: adds ``expr`` to the trace's log-weight (a soft constraint)."""

    weight: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class ConditionStmt:
    """``condition expr``: a hard constraint on complete values."""

    condition: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class ReturnStmt:
    value: Expr
    span: Span = _span()


Stmt = (TextStmt | GenStmt | RoleBlock | LetStmt | IfStmt | ForStmt | CallStmt | FactorStmt | ConditionStmt
        | ReturnStmt)


# --- inference statements ------------------------------------------------------------------------

# The value of an option in ``smc particles 8 resample systematic``: a number, a word or a string.
OptionValue = Number | Name | String


@dataclass(frozen=True, slots=True)
class Stage:
    """One sampler of a chain: ``top_p 0.9`` or ``top_h alpha 0.4 top_n 100``.

    ``name`` may also be a declared sampler (a chain), possibly imported (``lib.creative``).
    """

    name: str
    positional: OptionValue | None
    options: tuple[tuple[str, OptionValue], ...] = ()
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Chain:
    stages: tuple[Stage, ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Greedy:
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Sample:
    chain: Chain | None
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Awrs:
    """``awrs``: enforce constraints by adaptive weighted rejection instead of full masks."""

    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Propose:
    """``propose awrs`` or ``propose sample [CHAIN]`` inside ``smc``."""

    method: str
    chain: Chain | None = None
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Twist:
    """``twist POTENTIAL [every k tokens]`` inside ``smc``."""

    potential: str
    every: int | None = None
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Smc:
    """``smc particles N [ess t] [resample KIND]`` with an optional block of propose/twist."""

    positional: OptionValue | None
    options: tuple[tuple[str, OptionValue], ...]
    body: tuple[Propose | Twist, ...] = ()
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Method:
    """A search or sampling method with options: ``rejection``, ``beam``, ``cautious``,
    ``lookahead_tree`` (``kind`` names it)."""

    kind: str
    positional: OptionValue | None
    options: tuple[tuple[str, OptionValue], ...] = ()
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class BestOf:
    """``best_of N by expr``: draw N traces, keep the one with the largest ``expr``."""

    positional: OptionValue | None
    options: tuple[tuple[str, OptionValue], ...]
    by: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Speculate:
    """``speculate VARIANT ...``: lossless acceleration (draft, ngram, recycle, spectr, rsd, self)."""

    variant: str
    positional: OptionValue | None
    options: tuple[tuple[str, OptionValue], ...] = ()
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Enumerate:
    """``enumerate HOLE``: the exact distribution of a finite hole."""

    hole: str
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Heal:
    """``heal``: token healing at literal/hole boundaries."""

    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Boundary:
    """``boundary bytes``: byte-level literal/hole boundaries."""

    kind: str
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Draws:
    count: int
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Seed:
    value: int
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class ForHole:
    """``for HOLE:`` followed by inference statements for that hole only."""

    hole: str
    body: tuple[InferStmt, ...]
    span: Span = _span()


InferStmt = (Greedy | Sample | Awrs | Smc | Method | BestOf | Speculate | Enumerate | Heal | Boundary | Draws
             | Seed | ForHole)


# --- declarations --------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class TypeRef:
    """``str``, ``list[int]``, ``Person``, ``lib.Person``."""

    name: str
    args: tuple[TypeRef, ...] = ()
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    type: TypeRef
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class UseDecl:
    """``use std.NAME [(a, b)]`` or ``use "path.gen" [(a, b)]``.

    ``path`` is a dotted name (a stdlib module) or a :class:`String` (a local file); ``names``
    are the declarations imported unqualified (none: the module is named by its last part).
    """

    path: str | String
    names: tuple[str, ...] = ()
    span: Span = _span()

    @property
    def name(self) -> str:
        """The name the module is bound to: ``std.patterns`` -> ``patterns``, ``"a/b.gen"`` -> ``b``."""
        if isinstance(self.path, String):
            base = self.path.constant.replace("\\", "/").rsplit("/", 1)[-1]
            return base.removesuffix(".gen")
        return self.path.rsplit(".", 1)[-1]


@dataclass(frozen=True, slots=True)
class Ensemble:
    """``ensemble(a, b, weights [..])``: byte-level models combined."""

    models: tuple[str, ...]
    weights: tuple[Number, ...] = ()
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class ModelDecl:
    """``model NAME = "spec" [chat] [bytes]`` or ``model NAME = ensemble(...) [bytes]``."""

    name: str
    spec: String | Ensemble
    chat: bool = False
    bytes: bool = False
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class RegexDecl:
    """``regex NAME = r"..."``."""

    name: str
    pattern: String
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class GrammarDecl:
    """``grammar NAME = lark "..."`` or ``lark file "x.lark"`` (``file``: ``source`` is a path)."""

    name: str
    source: String
    file: bool = False
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class SchemaDecl:
    """``schema NAME = json "..."`` or ``json file "x.json"`` (``file``: ``source`` is a path)."""

    name: str
    source: String
    file: bool = False
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class SamplerDecl:
    """``sampler NAME = CHAIN``."""

    name: str
    chain: Chain
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class ExternDecl:
    """``predicate NAME = extern "module:function" [prefix]`` (``kind`` ``"predicate"``) or the
    same with ``potential``."""

    kind: str
    name: str
    ref: String
    prefix: bool = False
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class ProgramDecl:
    """A program: parameters, the target (what distribution) and the inference (how to draw).

    ``short_form`` records that the source had no ``target:``/``infer:`` headers.
    """

    name: str
    params: tuple[Param, ...]
    returns: TypeRef | None
    target: tuple[Stmt, ...]
    infer: tuple[InferStmt, ...]
    short_form: bool = False
    span: Span = _span()
    # Where the `target:` and `infer:` headers are (the formatter keeps their comments).
    section_lines: tuple[int, int] = field(default=(0, 0), compare=False, repr=False)


Decl = (UseDecl | ModelDecl | RegexDecl | GrammarDecl | SchemaDecl | SamplerDecl | ExternDecl
        | ProgramDecl)


@dataclass(frozen=True, slots=True)
class Module:
    decls: tuple[Decl, ...]
    file: str = field(default="<source>", compare=False)
    source: str = field(default="", compare=False, repr=False)

    def programs(self) -> tuple[ProgramDecl, ...]:
        return tuple(d for d in self.decls if isinstance(d, ProgramDecl))

    def models(self) -> tuple[ModelDecl, ...]:
        return tuple(d for d in self.decls if isinstance(d, ModelDecl))

    def uses(self) -> tuple[UseDecl, ...]:
        return tuple(d for d in self.decls if isinstance(d, UseDecl))
