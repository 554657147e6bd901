"""The intermediate representation: a program as a flat list of operations plus its decoding.

The IR is small, immutable and printable. ``lower`` builds it from the AST, passes rewrite it, and
``plan`` binds it to a model for the runtime. ``print_program`` is the deterministic printer that
fixtures and ``genweave explain`` use.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from genweave.dsl.errors import Span

NO_SPAN = Span(0, 0, 0, 0)


def _span() -> Span:
    return field(default=NO_SPAN, compare=False, repr=False)


# --- values ------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Ref:
    """The value of a parameter or an earlier hole."""

    name: str
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Const:
    value: str | int | float | bool
    span: Span = _span()


Value = Ref | Const


# --- constraints ---------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Regex:
    pattern: str
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Choice:
    options: tuple[str, ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Literal:
    text: str
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Builtin:
    """``int``, ``float`` or ``bool``: a hole whose value is parsed into that type."""

    name: str
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Intersect:
    left: ConstraintIR
    right: ConstraintIR
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Union:
    left: ConstraintIR
    right: ConstraintIR
    span: Span = _span()


ConstraintIR = Regex | Choice | Literal | Builtin | Intersect | Union


# --- operations ------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Emit:
    """Append text to the context; ``Ref`` parts are interpolated per draw."""

    parts: tuple[str | Ref, ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class OpenRole:
    role: str
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class CloseRole:
    role: str
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Hole:
    """Fill ``name`` with text from ``constraint`` (None: any text ending at end-of-sequence).

    ``stop``: the text ends with this string, which the value excludes. ``max_tokens``: a hard
    bound on the hole's token count (None: the model's context window).
    """

    name: str
    constraint: ConstraintIR | None
    stop: str | None
    max_tokens: int | None
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Return:
    value: Value
    span: Span = _span()


Op = Emit | OpenRole | CloseRole | Hole | Return


# --- decoding --------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class SamplerStage:
    """One sampler of a chain, with its parameters by name."""

    name: str
    params: tuple[tuple[str, float | int], ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Decoding:
    """How holes are filled: ``greedy`` or ``sample`` through a sampler chain."""

    method: str = "sample"
    chain: tuple[SamplerStage, ...] = ()
    draws: int = 1
    seed: int | None = None
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class ModelRef:
    name: str
    spec: str
    chat: bool = False
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    type: str
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Program:
    name: str
    params: tuple[Param, ...]
    returns: str | None
    model: ModelRef | None
    ops: tuple[Op, ...]
    decoding: Decoding
    span: Span = _span()

    def holes(self) -> tuple[Hole, ...]:
        return tuple(op for op in self.ops if isinstance(op, Hole))


# --- printing ----------------------------------------------------------------------------------

def print_program(program: Program) -> str:
    """A deterministic, line-per-operation text form (golden fixtures, ``genweave explain``)."""
    params = ", ".join(f"{p.name}: {p.type}" for p in program.params)
    returns = f" -> {program.returns}" if program.returns else ""
    model = f" on {program.model.name}{' chat' if program.model and program.model.chat else ''}" \
        if program.model else ""
    lines = [f"program {program.name}({params}){returns}{model}"]
    lines += [f"  {_print_op(op)}" for op in program.ops]
    lines.append(f"  decode {_print_decoding(program.decoding)}")
    return "\n".join(lines)


def _print_op(op: Op) -> str:
    match op:
        case Emit(parts):
            return "emit " + " ".join(repr(p) if isinstance(p, str) else f"${p.name}" for p in parts)
        case OpenRole(role):
            return f"open {role}"
        case CloseRole(role):
            return f"close {role}"
        case Hole(name, constraint, stop, max_tokens):
            text = f"hole {name}"
            if constraint is not None:
                text += f" in {print_constraint(constraint)}"
            if stop is not None:
                text += f" stop {stop!r}"
            if max_tokens is not None:
                text += f" max {max_tokens}"
            return text
        case Return(value):
            return f"return {_print_value(value)}"
    raise TypeError(f"not an IR operation: {op!r}")


def _print_value(value: Value) -> str:
    return f"${value.name}" if isinstance(value, Ref) else repr(value.value)


def print_constraint(c: ConstraintIR) -> str:
    match c:
        case Regex(pattern):
            return f"regex({pattern!r})"
        case Choice(options):
            return f"choice({', '.join(map(repr, options))})"
        case Literal(text):
            return f"literal({text!r})"
        case Builtin(name):
            return name
        case Intersect(left, right):
            return f"({print_constraint(left)} & {print_constraint(right)})"
        case Union(left, right):
            return f"({print_constraint(left)} | {print_constraint(right)})"
    raise TypeError(f"not an IR constraint: {c!r}")


def _print_decoding(d: Decoding) -> str:
    chain = " | ".join(s.name + "".join(f" {k}={v}" for k, v in s.params) for s in d.chain)
    text = d.method + (f" {chain}" if chain else "")
    text += f" draws={d.draws}"
    if d.seed is not None:
        text += f" seed={d.seed}"
    return text
