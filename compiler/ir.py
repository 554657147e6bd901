"""The intermediate representation: a program as a list of operations plus its inference.

The IR is small, immutable and printable. ``lower`` builds it from the AST (names resolved:
declared regexes, grammars, schemas and samplers are inlined; called programs are inlined as
:class:`Call` operations), passes rewrite it, and ``plan`` binds it to a model for the runtime.
``print_program`` (in :mod:`genweave.compiler.ir_print`) is the deterministic printer that
fixtures and ``genweave explain`` use; :mod:`genweave.compiler.verify` states the validity rules.

Run-time meaning (the contract between compiler and runtime)
------------------------------------------------------------
Operations run in order on each draw (a *trace*); ``env`` maps names to values: the program's
arguments, then holes, ``Let`` and loop variables as they are bound.

* :class:`Emit` appends the text of its parts (``str`` pieces, expressions rendered with ``str()``).
* :class:`OpenRole`/:class:`CloseRole` bracket a chat turn (the model's template around it).
  Outside any role on a chat model, text goes to the context as is.
* :class:`Hole` decodes text in the hole's language (``constraint``; with ``stop`` the text ends
  at the first occurrence of ``stop``, which the value excludes unless ``keep_stop``; ``max_tokens``
  bounds the token count hard) and binds ``env[name]`` to the value: the text, parsed for
  ``int``/``float``/``bool``/``Json`` constraints. The annotations set by the passes say how:
  ``constraint_class``, ``method`` (``mask``/``awrs``/``check``/``none``), ``cost``, ``guarantee``,
  ``heal_before``/``heal_after`` (the text before/after the hole touches it: token healing or
  byte-level boundaries apply there when the inference asks for them), and ``decoding`` (the
  hole's own inference from ``for HOLE:``, overriding the program's for this hole).
* :class:`Let` binds ``env[name]`` to the value of an expression.
* :class:`If` runs ``then`` when the condition is true, else ``orelse``; names bound inside a
  branch stay bound after it (the checker only lets code use names bound in both branches).
* :class:`For` runs ``body`` once per item of ``iterable`` (a list; ``range(n)`` is 0..n-1) with
  ``env[var]`` bound to the item; holes in the body are decoded once per iteration and rebound.
* :class:`Call` runs another program's target inline: ``args`` are evaluated in the caller's env,
  ``body`` runs in a fresh env holding only them (its text and holes go to the same context; hole
  values are reported as ``scope.name``), then ``result`` (evaluated in the callee's env) is bound
  to ``env[binding]`` (when ``binding`` is not None). The callee's own inference is ignored.
* :class:`Factor` adds the value of ``weight`` (a log-weight) to the trace's weight: a soft
  constraint, part of the target. :class:`Condition` is a hard constraint on the complete trace:
  a trace where it is false has weight zero (sampled methods must not return it).
* :class:`Return` ends the target; its value is the program's value (``Result.value``).

Expressions (``Ref``, ``Const``, ``ListValue``, ``Attr``, ``Index``, ``Unary``, ``Binary``,
``Builtin``, ``ExternCall``, ``Format``) evaluate like Python on the env: ``Attr``/``Index`` on JSON
values (dicts, lists), ``Binary`` ops as in Python (``and``/``or`` on bools, ``+`` joins strings and
lists, ``/`` is true division), ``Builtin`` is ``len`` or ``range``, ``ExternCall`` calls a host
function (a predicate returns bool, a potential a float log-weight), ``Format`` builds a string.

:class:`Decoding` is the inference: ``method`` (``sample``/``greedy``) through ``chain`` (sampler
stages, applied in order), ``awrs`` (enforce constraints by adaptive weighted rejection rather than
masks), ``search`` (``Smc``, ``Rejection``, ``Beam``, ``BestOf``, ``Cautious``, ``LookaheadTree`` or
None for plain decoding), ``speculate``, ``heal`` / ``boundary`` (``"bytes"``), ``enumerate``
(holes whose exact distribution is wanted), ``draws``, ``seed``, and ``guarantee`` (annotated).
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
    """The value of a parameter, hole, ``let`` or loop variable."""

    name: str
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Const:
    value: str | int | float | bool
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class ListValue:
    items: tuple[Expr, ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Attr:
    """``value[name]`` of a JSON object (written ``value.name``)."""

    value: Expr
    name: str
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Index:
    value: Expr
    index: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Unary:
    op: str  # "-" or "not"
    operand: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Binary:
    op: str  # or and == != < <= > >= in + - * / // %
    left: Expr
    right: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Builtin:
    """``int``, ``float`` or ``bool`` as a constraint: a hole whose value is parsed into that type."""

    name: str
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class BuiltinCall:
    """``len(x)`` or ``range(n)`` / ``range(a, b)``."""

    name: str
    args: tuple[Expr, ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Extern:
    """A host function: ``ref`` is ``"module:function"``; ``kind`` is ``predicate`` (str -> bool)
    or ``potential`` (str -> float log-weight); ``prefix``: meaningful on prefixes (a predicate
    false on a prefix stays false on its extensions)."""

    name: str
    ref: str
    kind: str
    prefix: bool = False
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class ExternCall:
    extern: Extern
    args: tuple[Expr, ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Format:
    """A string with interpolations, as a value."""

    parts: tuple[str | Expr, ...]
    span: Span = _span()


Value = Ref | Const
Expr = Ref | Const | ListValue | Attr | Index | Unary | Binary | BuiltinCall | ExternCall | Format


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
class Grammar:
    """A Lark grammar (its ``start`` rule): the texts it derives."""

    text: str
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Json:
    """JSON texts valid for ``schema`` (canonical JSON: sorted keys, no spaces); the value is parsed."""

    schema: str
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


@dataclass(frozen=True, slots=True)
class Where:
    """The texts of ``constraint`` for which ``condition`` holds; ``Ref(hole)`` in the condition is
    the hole's (partial, for prefix predicates) text."""

    constraint: ConstraintIR
    condition: Expr
    span: Span = _span()


ConstraintIR = Regex | Choice | Literal | Builtin | Grammar | Json | Intersect | Union | Where


# --- inference -----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class SamplerStage:
    """One sampler of a chain, with its parameters by name."""

    name: str
    params: tuple[tuple[str, object], ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class ModelRef:
    name: str
    spec: str
    chat: bool = False
    bytes: bool = False
    members: tuple[tuple[ModelRef, float], ...] = ()  # an ensemble: (model, weight) pairs
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Smc:
    """Sequential Monte Carlo with ``particles``; resample (``resample`` scheme) when ESS/N < ``ess``.

    ``propose``: ``"sample"`` through ``chain`` or ``"awrs"``; ``twists``: (potential, every k
    tokens) pairs whose prefix scores steer resampling (added at each step, removed at the next).
    """

    particles: int
    ess: float
    resample: str
    propose: str = "sample"
    chain: tuple[SamplerStage, ...] = ()
    twists: tuple[tuple[Extern, int], ...] = ()
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Rejection:
    """Draw whole traces until every constraint and condition holds (at most ``max_tries``)."""

    max_tries: int
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Beam:
    """Beam search over the trace: ``width`` hypotheses, finished scores divided by
    ``length ** length_penalty``, transformers' ``early_stopping`` rule, ``stochastic`` for
    Gumbel-top-k (a sample without replacement); each draw returns its ``returns`` best."""

    width: int
    length_penalty: float = 1.0
    early_stopping: str = "false"
    stochastic: bool = False
    returns: int = 1
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class BestOf:
    """Draw ``n`` traces and keep the one with the largest ``score``."""

    n: int
    score: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Cautious:
    """Cautious next-token prediction: up to ``candidates`` segments (of at most ``segment``
    tokens) at steps whose entropy lies between ``entropy_low`` and ``entropy_high``."""

    candidates: int
    entropy_low: float = 0.01
    entropy_high: float = 1.5
    segment: int = 64
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class LookaheadTree:
    """Lookahead tree rollouts: ``rollouts`` branches per draw, forks among the ``width`` top tokens
    (``absolute``/``relative`` thresholds), pruning ``depth`` tokens after a birth (``edit``)."""

    width: int
    depth: int
    rollouts: int = 8
    absolute: float = 0.25
    relative: float = 0.15
    edit: float = 0.4
    span: Span = _span()


Search = Smc | Rejection | Beam | BestOf | Cautious | LookaheadTree


@dataclass(frozen=True, slots=True)
class Speculate:
    """Lossless speculative decoding: ``variant`` (draft, ngram, recycle, spectr, rsd, self), its
    draft model if any, and its other options by name."""

    variant: str
    draft: ModelRef | None
    params: tuple[tuple[str, object], ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class HoleDecoding:
    """Inference for one hole (``for HOLE:``): replaces the program's method/chain/awrs/speculation/
    healing for that hole only. ``method`` None: the block names no `sample`/`greedy`, so the hole
    draws through the program's method and chain."""

    method: str | None = None
    chain: tuple[SamplerStage, ...] = ()
    awrs: bool = False
    speculate: Speculate | None = None
    heal: bool = False
    boundary: str | None = None
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Decoding:
    """How holes are filled (see the module docstring)."""

    method: str = "sample"
    chain: tuple[SamplerStage, ...] = ()
    draws: int = 1
    seed: int | None = None
    span: Span = _span()
    awrs: bool = False
    search: Search | None = None
    speculate: Speculate | None = None
    heal: bool = False
    boundary: str | None = None
    enumerate: tuple[str, ...] = ()
    guarantee: str | None = None


# --- operations ------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Emit:
    """Append text to the context; ``Ref`` (and other expression) parts are rendered per draw."""

    parts: tuple[str | Expr, ...]
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

    ``stop``: the text ends with this string, which the value excludes (unless ``keep_stop``).
    ``max_tokens``: a hard bound on the hole's token count (None: the model's context window).
    The other fields are annotations of the passes (None/False until they run).
    """

    name: str
    constraint: ConstraintIR | None
    stop: str | None
    max_tokens: int | None
    span: Span = _span()
    keep_stop: bool = False
    decoding: HoleDecoding | None = None
    constraint_class: str | None = None
    method: str | None = None
    cost: float | None = None
    guarantee: str | None = None
    heal_before: bool = False
    heal_after: bool = False


@dataclass(frozen=True, slots=True)
class Let:
    name: str
    value: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class If:
    condition: Expr
    then: tuple[Op, ...]
    orelse: tuple[Op, ...] = ()
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class For:
    var: str
    iterable: Expr
    body: tuple[Op, ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Call:
    """Another program's target, inlined (see the module docstring)."""

    binding: str | None
    program: str
    scope: str
    args: tuple[tuple[str, Expr], ...]
    body: tuple[Op, ...]
    result: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Factor:
    weight: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Condition:
    condition: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Return:
    value: Expr
    span: Span = _span()


Op = Emit | OpenRole | CloseRole | Hole | Let | If | For | Call | Factor | Condition | Return


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
        """Every hole, in order, including those inside blocks and inlined calls."""
        return tuple(walk_holes(self.ops))


def walk_holes(ops: tuple[Op, ...]):
    for op in ops:
        if isinstance(op, Hole):
            yield op
        elif isinstance(op, If):
            yield from walk_holes(op.then)
            yield from walk_holes(op.orelse)
        elif isinstance(op, For | Call):
            yield from walk_holes(op.body)


def map_ops(ops: tuple[Op, ...], rewrite, *, into_calls: bool = True) -> tuple[Op, ...]:
    """``ops`` with every operation (at any depth; inside inlined calls too unless ``into_calls``
    is false) replaced by ``rewrite(op)``, blocks first."""
    out = []
    for op in ops:
        if isinstance(op, If):
            op = If(op.condition, map_ops(op.then, rewrite, into_calls=into_calls),
                    map_ops(op.orelse, rewrite, into_calls=into_calls), span=op.span)
        elif isinstance(op, For):
            op = For(op.var, op.iterable, map_ops(op.body, rewrite, into_calls=into_calls), span=op.span)
        elif isinstance(op, Call) and into_calls:
            op = Call(op.binding, op.program, op.scope, op.args, map_ops(op.body, rewrite), op.result, span=op.span)
        out.append(rewrite(op))
    return tuple(out)


def print_program(program: Program) -> str:
    """The deterministic text form of a program (see :mod:`genweave.compiler.ir_print`)."""
    from genweave.compiler.ir_print import print_program as printer

    return printer(program)


def print_constraint(c: ConstraintIR) -> str:
    from genweave.compiler.ir_print import print_constraint as printer

    return printer(c)
