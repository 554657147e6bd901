"""The pieces every sampler stage shares: parameter specs, the stage base class, the chain of stages,
and the working tensors one pipeline call threads through its stages.

A *stage* is a frozen description of one sampler (``TopP(p=0.9)``). Stages compose with ``|`` into a
:class:`ChainSpec`; ``ChainSpec.compile`` turns it into one fused per-step function
(:mod:`genweave.runtime.samplers.compiled`).

Every truncation rule here is a keep-mask of the *current* logits ``z`` (``-inf`` = excluded). Most
rules keep an *upper set* ``{i : z_i >= thr}`` for a per-row threshold ``thr``; those are applied with
:meth:`Work.threshold`, which also keeps a cached descending ranking of ``z`` valid, so that a chain
sorts (or runs ``topk``) at most once per step.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, ClassVar

import torch

from genweave.dsl.errors import GenCheckError
from genweave.runtime.samplers.select import mask_below, usable

if TYPE_CHECKING:
    from genweave.runtime.samplers.compiled import CompiledChain
    from genweave.runtime.samplers.state import SamplerState

NEG_INF = float("-inf")


@dataclass(frozen=True, slots=True)
class Param:
    """One parameter of a sampler: its kind, default and allowed range.

    ``kind`` is ``"float"``, ``"int"``, ``"choice"`` (one of ``choices``), ``"strings"`` (a tuple of
    strings), ``"bias"`` (token id -> additive logit bias) or ``"optional_float"`` (a float or None).
    Bounds are inclusive unless ``low_open``/``high_open``. ``per_row`` parameters may differ between
    rows of one batch; the others are *structural* and must agree across rows.
    """

    name: str
    kind: str
    default: object
    doc: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[str, ...] = ()
    per_row: bool = True
    allow_neg_inf: bool = False

    def describe_range(self) -> str:
        """The allowed values in words, e.g. ``[0, 1]``, ``(0, inf)``, ``one of 'all', 'generated'``."""
        if self.kind == "choice":
            return "one of " + ", ".join(repr(c) for c in self.choices)
        if self.kind == "strings":
            return "a list of strings"
        if self.kind == "bias":
            return "a mapping token id -> finite bias or -inf"
        low = "-inf" if self.low is None else _num(self.low)
        high = "inf" if self.high is None else _num(self.high)
        left = "(" if self.low_open or self.low is None else "["
        right = ")" if self.high_open or self.high is None else "]"
        text = f"{left}{low}, {high}{right}"
        if self.kind == "int":
            text = "an integer in " + text
        if self.kind == "optional_float":
            text = "none or a number in " + text
        return text

    def coerce(self, sampler: str, value: object) -> object:
        """``value`` normalised to this parameter's type; GenCheckError when it is out of range."""
        if self.kind == "optional_float" and value is None:
            return None
        if self.kind in ("float", "optional_float", "int"):
            return self._coerce_number(sampler, value)
        if self.kind == "choice":
            if value not in self.choices:
                raise self.error(sampler, value)
            return value
        if self.kind == "strings":
            if isinstance(value, str) or not all(isinstance(s, str) for s in _iterable(value)):
                raise self.error(sampler, value)
            return tuple(value)
        return self._coerce_bias(sampler, value)

    def _coerce_number(self, sampler: str, value: object) -> float | int:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(sampler, value)
        number = float(value)
        if math.isnan(number) or (math.isinf(number) and not (self.allow_neg_inf and number < 0)):
            raise self.error(sampler, value)
        if self.kind == "int":
            if number != int(number):
                raise self.error(sampler, value)
            number = int(number)
        if self.low is not None and (number < self.low or (self.low_open and number == self.low)):
            raise self.error(sampler, value)
        if self.high is not None and (number > self.high or (self.high_open and number == self.high)):
            raise self.error(sampler, value)
        return number

    def _coerce_bias(self, sampler: str, value: object) -> tuple[tuple[int, float], ...]:
        items = value.items() if hasattr(value, "items") else _iterable(value)
        merged: dict[int, float] = {}
        for item in items:
            if not (isinstance(item, tuple) and len(item) == 2):
                raise self.error(sampler, value)
            token, bias = item
            if isinstance(token, bool) or not isinstance(token, int) or token < 0:
                raise self.error(sampler, value)
            if isinstance(bias, bool) or not isinstance(bias, int | float) or math.isnan(bias) or bias == math.inf:
                raise self.error(sampler, value)
            merged[token] = merged.get(token, 0.0) + float(bias)
        return tuple(sorted(merged.items()))

    def error(self, sampler: str, value: object) -> GenCheckError:
        return GenCheckError(f"{sampler}: parameter {self.name} must be {self.describe_range()}, got {value!r}",
                             hint=f"{self.name}: {self.doc}")


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)


def _iterable(value: object) -> tuple:
    try:
        return tuple(value)  # type: ignore[arg-type]
    except TypeError:
        return (value,)


class Stage:
    """Base of every sampler stage: a frozen dataclass whose fields are the sampler's parameters.

    Class attributes: ``name`` (the registry and DSL name), ``params`` (one :class:`Param` per field,
    the first is the positional one), ``upper_set`` (the stage keeps ``{z >= thr}``, so it never
    drops a token more probable than one it keeps), ``logit_transform`` (an elementwise map of the
    logits, no truncation) and ``stateful`` (reads per-row state: counts, history or mu).
    """

    __slots__ = ()
    name: ClassVar[str]
    params: ClassVar[tuple[Param, ...]]
    upper_set: ClassVar[bool] = False
    logit_transform: ClassVar[bool] = False
    stateful: ClassVar[bool] = False

    def __post_init__(self) -> None:
        for param in self.params:
            object.__setattr__(self, param.name, param.coerce(self.name, getattr(self, param.name)))
        self.check()

    def check(self) -> None:
        """Cross-parameter validation (GenCheckError); single parameters are checked by their Param."""

    @property
    def is_noop(self) -> bool:
        """True when the stage leaves every distribution unchanged (folded away by ``fold``)."""
        return False

    def is_elementwise(self) -> bool:
        """True when the stage maps each logit on its own (so it commutes with any mask)."""
        return self.logit_transform

    def structure(self) -> tuple:
        """The structural (not per-row) parameter values: rows of one batch must agree on them."""
        return tuple(getattr(self, p.name) for p in self.params if not p.per_row)

    def values(self) -> dict[str, object]:
        return {f.name: getattr(self, f.name) for f in fields(self)}  # type: ignore[arg-type]

    @classmethod
    def compile_rows(cls, rows: Sequence[Stage], ctx: CompileContext) -> CompiledStage:
        """The per-step kernel for ``rows`` (one stage per batch row, or one shared by all rows)."""
        raise NotImplementedError(cls.__name__)

    def __or__(self, other: Stage | ChainSpec) -> ChainSpec:
        return ChainSpec((self,)) | other

    def compile(self, vocab_size: int, **options) -> CompiledChain:
        """The one-stage chain compiled (see :meth:`ChainSpec.compile`)."""
        return ChainSpec((self,)).compile(vocab_size, **options)

    def __str__(self) -> str:
        shown = []
        for i, param in enumerate(self.params):
            value = getattr(self, param.name)
            if i > 0 and value == param.default:
                continue
            value = dict(value) if param.kind == "bias" else value
            shown.append(repr(value) if i == 0 else f"{param.name}={value!r}")
        return f"{self.name}({', '.join(shown)})"


@dataclass(frozen=True, slots=True)
class ChainSpec:
    """A sampler chain: stages applied in this order to the logits, then one draw.

    >>> from genweave.runtime.samplers import temperature, top_p, min_p
    >>> str(temperature(0.7) | top_p(0.9) | min_p(0.05))
    'temperature(0.7) | top_p(0.9) | min_p(0.05)'
    """

    stages: tuple[Stage, ...] = ()

    def __or__(self, other: Stage | ChainSpec) -> ChainSpec:
        if isinstance(other, ChainSpec):
            return ChainSpec(self.stages + other.stages)
        if isinstance(other, Stage):
            return ChainSpec(self.stages + (other,))
        return NotImplemented

    def __len__(self) -> int:
        return len(self.stages)

    def __str__(self) -> str:
        return " | ".join(str(s) for s in self.stages) if self.stages else "sample()"

    @property
    def stateful(self) -> bool:
        return any(s.stateful for s in self.stages)

    @property
    def commutes_with_mask(self) -> bool:
        """True when masking before or after the chain gives the same distribution: every stage is
        an elementwise logit transform (so AWRS and mask-first sampling target the same law)."""
        return all(s.is_elementwise() for s in self.stages)

    def shape(self) -> tuple:
        """What rows of one batch must share: the stage types and their structural parameters."""
        return tuple((type(s), s.structure()) for s in self.stages)

    def compile(self, vocab_size: int, *, device: str | torch.device = "cpu", batch: int = 1,
                vocab: object | None = None, mask_last: bool = False) -> CompiledChain:
        """Compile for one vocabulary size and device; every row uses these parameters."""
        from genweave.runtime.samplers.compiled import compile_batch

        return compile_batch([self], vocab_size, device=device, batch=batch, vocab=vocab,
                             mask_last=mask_last)


def as_chain(chain: Stage | ChainSpec) -> ChainSpec:
    """A chain from a chain or a single stage."""
    return ChainSpec((chain,)) if isinstance(chain, Stage) else chain


@dataclass(frozen=True, slots=True)
class CompileContext:
    """What stages may need at compile time: vocabulary size, device, and optionally the token
    bytes (DRY tokenises its sequence breakers with them)."""

    vocab_size: int
    device: torch.device
    vocab: object | None = None


class CompiledStage:
    """A stage bound to a vocabulary size, a device and per-row parameter tensors.

    Parameter tensors have shape ``[R, 1]`` with ``R`` either 1 (shared by every row, broadcast) or
    the batch size. ``apply`` edits the :class:`Work` in place.
    """

    __slots__ = ()
    stateful: ClassVar[bool] = False

    def apply(self, work: Work, state: SamplerState | None) -> None:
        raise NotImplementedError

    def select(self, rows: torch.Tensor) -> CompiledStage:
        """The same stage for the rows ``rows`` of the batch (parameters follow their rows)."""
        return self


def row_param(values: Sequence[float | int], device: torch.device, dtype=torch.float32) -> torch.Tensor:
    """A ``[R, 1]`` tensor of one parameter's per-row values (``R = 1`` when all rows agree)."""
    distinct = values if any(v != values[0] for v in values) else values[:1]
    return torch.tensor(list(distinct), dtype=dtype, device=device).reshape(-1, 1)


def select_param(param: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Index a ``[R, 1]`` parameter by batch rows; shared (``R = 1``) parameters stay shared."""
    return param if param.shape[0] == 1 else param.index_select(0, rows.to(param.device))


def rows_of(param: torch.Tensor, batch: int) -> torch.Tensor:
    """A ``[R, 1]`` parameter expanded to ``[batch, 1]`` (for ``gather`` indices)."""
    return param.expand(batch, 1)


@dataclass(slots=True)
class Ranked:
    """The ``size`` largest entries of each row of ``z``, in descending order, with their indices."""

    values: torch.Tensor
    index: torch.Tensor

    @property
    def size(self) -> int:
        return self.values.shape[-1]


class Work:
    """The logits of one pipeline call as they go through the stages (a working copy, edited in
    place), plus a cached descending ranking of them.

    The ranking stays valid under positive scaling and under upper-set masks ``keep z >= thr``
    (masked entries move to the tail as ``-inf``); any other edit drops it.
    """

    __slots__ = ("z", "ranked")

    # below this many columns a full sort is cheaper than topk followed by a possible re-sort
    SORT_BELOW = 2048

    def __init__(self, z: torch.Tensor):
        self.z = z
        self.ranked: Ranked | None = None

    def clone(self) -> Work:
        copy = Work(self.z.clone())
        if self.ranked is not None:
            copy.ranked = Ranked(self.ranked.values.clone(), self.ranked.index)
        return copy

    def threshold(self, thr: torch.Tensor) -> None:
        """Keep ``{i : z_i >= thr}`` per row (``thr`` is ``[B, 1]``; ``-inf`` keeps everything)."""
        if thr.dtype == torch.float32 and usable(self.z):
            mask_below(self.z, thr)  # one pass, no [B, V] temporaries
        else:
            self.z.masked_fill_(self.z < thr, NEG_INF)
        if self.ranked is not None:
            self.ranked.values.masked_fill_(self.ranked.values < thr, NEG_INF)

    def keep(self, mask: torch.Tensor) -> None:
        """Keep the entries where ``mask`` is True (any shape of mask; drops the ranking)."""
        self.z.masked_fill_(~mask, NEG_INF)
        self.ranked = None

    def set_logits(self, z: torch.Tensor) -> None:
        """Replace the logits by a non-monotone transform of them (drops the ranking)."""
        self.z = z
        self.ranked = None

    def view(self, size: int) -> Ranked:
        """A ranking with at least ``min(size, V)`` entries, reusing the cached one when it is enough."""
        vocab = self.z.shape[-1]
        size = min(size, vocab)
        if self.ranked is not None and self.ranked.size >= size:
            return self.ranked
        if size >= vocab or vocab < self.SORT_BELOW or 4 * size >= vocab:
            values, index = torch.sort(self.z, dim=-1, descending=True)
        else:
            values, index = torch.topk(self.z, size, dim=-1, largest=True, sorted=True)
        self.ranked = Ranked(values, index)
        return self.ranked

    def kth_largest(self, k: torch.Tensor | None, k_max: int) -> torch.Tensor:
        """The ``k``-th largest logit of each row (``k`` is ``[R, 1]``, 1-based; None: 1), as ``[B, 1]``."""
        if k is None or k_max <= 1:
            return self.z.amax(dim=-1, keepdim=True)
        ranked = self.view(k_max)
        index = rows_of(k, self.z.shape[0]).clamp(max=ranked.size) - 1
        return ranked.values.gather(1, index)

    def log_normalizer(self) -> torch.Tensor:
        """``log sum exp z`` per row, ``[B, 1]``."""
        return torch.logsumexp(self.z, dim=-1, keepdim=True)
