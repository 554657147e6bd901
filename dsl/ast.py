"""The abstract syntax tree of a ``.gen`` module: frozen, slotted dataclasses with spans.

Every node carries the :class:`~genweave.dsl.errors.Span` of the source it came from, so the
checker and the runtime can point at it. Spans do not take part in equality, which makes
``parse(format(ast)) == ast`` a meaningful round-trip law.
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


Expr = Name | Number | String


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
    """A declared regex name or a builtin type (``int``, ``float``, ``bool``)."""

    name: str
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class BinaryC:
    """``a & b`` (intersection) or ``a | b`` (union)."""

    op: str
    left: Constraint
    right: Constraint
    span: Span = _span()


Constraint = RegexC | ChoiceC | LiteralC | NamedC | BinaryC


# --- target statements ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class TextStmt:
    """A string literal on its own line: appends its text to the context."""

    text: String
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class GenStmt:
    """``name = gen [constraint] [stop S] [max N tokens]``."""

    target: str
    constraint: Constraint | None
    stop: String | None
    max_tokens: int | None
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class RoleBlock:
    """``system:``/``user:``/``assistant:`` followed by a block (or one inline literal)."""

    role: str
    body: tuple[Stmt, ...]
    inline: bool = False
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class ReturnStmt:
    value: Expr
    span: Span = _span()


Stmt = TextStmt | GenStmt | RoleBlock | ReturnStmt


# --- inference statements ------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Stage:
    """One sampler of a chain: ``top_p 0.9`` or ``top_h alpha 0.4 top_n 100``."""

    name: str
    positional: Number | None
    options: tuple[tuple[str, Number], ...] = ()
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
class Draws:
    count: int
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Seed:
    value: int
    span: Span = _span()


InferStmt = Greedy | Sample | Draws | Seed


# --- declarations --------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class TypeRef:
    name: str
    args: tuple[TypeRef, ...] = ()
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    type: TypeRef
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class ModelDecl:
    """``model NAME = "spec" [chat] [bytes]``."""

    name: str
    spec: String
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
class SamplerDecl:
    """``sampler NAME = CHAIN``."""

    name: str
    chain: Chain
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


Decl = ModelDecl | RegexDecl | SamplerDecl | ProgramDecl


@dataclass(frozen=True, slots=True)
class Module:
    decls: tuple[Decl, ...]
    file: str = field(default="<source>", compare=False)
    source: str = field(default="", compare=False, repr=False)

    def programs(self) -> tuple[ProgramDecl, ...]:
        return tuple(d for d in self.decls if isinstance(d, ProgramDecl))

    def models(self) -> tuple[ModelDecl, ...]:
        return tuple(d for d in self.decls if isinstance(d, ModelDecl))
