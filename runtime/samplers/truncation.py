"""Truncation stages: top-k, top-p, min-p, locally typical, epsilon, eta, top-n-sigma.

Each keeps a set ``M`` of tokens of the distribution it receives, ``p = softmax(z)``, and sets the
others to ``-inf`` (the result renormalises to ``p_i [i in M] / sum_{j in M} p_j``). Sets are tie
closed (a token is kept iff every token with the same ranking key is), never empty for a row that
has a finite logit, and contain at least the ``min_keep`` most probable tokens (with their ties).

All rules but ``typical`` keep an upper set ``{i : z_i >= thr}`` and are applied through
``Work.threshold``; top-k reads the shared ranking (``topk``), and so does top-p when a ranking is
already cached and holds mass >= p. Otherwise top-p and typical find their cut without sorting on
CPU tensors (:mod:`genweave.runtime.samplers.select`, a radix select on the float32 keys with
float64 mass sums) and with ``topk`` / one ``sort`` on other devices; both give the same sets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch

from genweave.runtime.samplers.base import (
    NEG_INF,
    CompileContext,
    CompiledStage,
    Param,
    Stage,
    Work,
    row_param,
    rows_of,
    select_param,
)
from genweave.runtime.samplers.select import crossing_key, mask_above, usable

MIN_KEEP = Param("min_keep", "int", 1, "always keep at least this many most probable tokens", low=1)

# off CPU, top-p first tries the top TOP_P_PREFIX tokens (one topk); rows whose kept mass lies
# beyond fall back to a full sort, so the result is exact either way.
TOP_P_PREFIX = 256


class CompiledThreshold(CompiledStage):
    """An upper-set rule: ``cut(work)`` gives the ``[B, 1]`` threshold from the ``[R, 1]`` parameter;
    ``min_keep`` is ``[R, 1]``, or None when every row keeps at least 1."""

    __slots__ = ("param", "min_keep", "min_keep_max")

    def __init__(self, param: torch.Tensor, min_keep: torch.Tensor | None, min_keep_max: int):
        self.param, self.min_keep, self.min_keep_max = param, min_keep, min_keep_max

    def cut(self, work: Work) -> torch.Tensor:
        raise NotImplementedError

    def apply(self, work: Work, state: object) -> None:
        # the min_keep most probable tokens (with their ties) always stay; None means min_keep = 1
        floor = work.kth_largest(self.min_keep, self.min_keep_max)
        work.threshold(torch.minimum(self.cut(work), floor))

    def select(self, rows: torch.Tensor) -> CompiledThreshold:
        min_keep = None if self.min_keep is None else select_param(self.min_keep, rows)
        return type(self)(select_param(self.param, rows), min_keep, self.min_keep_max)


def _threshold_rows(cls: type[CompiledThreshold], rows: Sequence[Stage], field: str,
                    ctx: CompileContext) -> CompiledThreshold:
    keeps = [getattr(r, "min_keep", 1) for r in rows]
    min_keep = row_param(keeps, ctx.device, torch.long) if max(keeps) > 1 else None
    return cls(row_param([getattr(r, field) for r in rows], ctx.device), min_keep, max(keeps))


# --------------------------------------------------------------------------------------- top-k
@dataclass(frozen=True, slots=True)
class TopK(Stage):
    """Keep ``{i : z_i >= z_(k)}`` (the k largest and every tie of the k-th); ``k = 0`` is off."""

    k: int = 0
    min_keep: int = 1
    name: ClassVar[str] = "top_k"
    params: ClassVar[tuple[Param, ...]] = (
        Param("k", "int", 0, "keep the k most probable tokens (and ties of the k-th); 0 = off", low=0),
        MIN_KEEP,
    )
    upper_set: ClassVar[bool] = True

    @property
    def is_noop(self) -> bool:
        return self.k == 0

    @classmethod
    def compile_rows(cls, rows: Sequence[TopK], ctx: CompileContext) -> CompiledTopK:
        vocab = ctx.vocab_size
        # k = 0 (off) and k >= V keep every token: encoded as k = V (threshold -inf below)
        ks = [vocab if r.k == 0 else min(max(r.k, r.min_keep), vocab) for r in rows]
        return CompiledTopK(row_param(ks, ctx.device, torch.long), vocab)


class CompiledTopK(CompiledStage):
    __slots__ = ("k", "vocab", "k_max")

    def __init__(self, k: torch.Tensor, vocab: int):
        self.k, self.vocab = k, vocab
        cut = k[k < vocab]
        self.k_max = int(cut.max()) if cut.numel() else 0

    def apply(self, work: Work, state: object) -> None:
        if self.k_max == 0:
            return
        batch = work.z.shape[0]
        k = rows_of(self.k, batch)
        ranked = work.view(self.k_max)
        thr = ranked.values.gather(1, k.clamp(max=ranked.size) - 1)
        work.threshold(torch.where(k >= self.vocab, NEG_INF, thr))

    def select(self, rows: torch.Tensor) -> CompiledTopK:
        return CompiledTopK(select_param(self.k, rows), self.vocab)


# --------------------------------------------------------------------------------------- top-p
@dataclass(frozen=True, slots=True)
class TopP(Stage):
    """Nucleus: the minimal most-probable prefix with mass >= p, closed under ties; ``p = 1`` is off.

    Token i is kept iff the mass of tokens strictly more probable than i is < p.
    """

    p: float = 1.0
    min_keep: int = 1
    name: ClassVar[str] = "top_p"
    params: ClassVar[tuple[Param, ...]] = (
        Param("p", "float", 1.0, "keep the smallest most-probable set with total mass >= p; 1 = off",
              low=0.0, high=1.0),
        MIN_KEEP,
    )
    upper_set: ClassVar[bool] = True

    @property
    def is_noop(self) -> bool:
        return self.p >= 1.0

    @classmethod
    def compile_rows(cls, rows: Sequence[TopP], ctx: CompileContext) -> CompiledTopP:
        return _threshold_rows(CompiledTopP, rows, "p", ctx)


class CompiledTopP(CompiledThreshold):
    __slots__ = ()

    def apply(self, work: Work, state: object) -> None:
        vocab = work.z.shape[-1]
        log_z = work.log_normalizer()
        ranked = work.ranked
        if ranked is not None and ranked.size >= self.min_keep_max:
            thr, reached = self._cut(ranked.values, log_z)
            if ranked.size == vocab or bool(reached.all()):
                work.threshold(thr)
                return
        if usable(work.z):
            work.threshold(self._cut_unsorted(work, log_z))
            return
        ranked = work.view(max(TOP_P_PREFIX, self.min_keep_max))
        thr, reached = self._cut(ranked.values, log_z)
        if ranked.size < vocab and not bool(reached.all()):
            thr, _ = self._cut(work.view(vocab).values, log_z)
        work.threshold(thr)

    def _cut(self, values: torch.Tensor, log_z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The cut on a descending prefix of the logits, and whether the prefix held mass >= p."""
        batch, size = values.shape
        probs = (values - log_z).exp()
        cum = probs.cumsum(-1, dtype=torch.float64)  # head first, in float64
        exclusive = cum - probs
        p = self.param.to(cum.dtype)
        count = (exclusive < p).sum(-1, keepdim=True)
        keep_n = count.clamp(max=size)
        if self.min_keep is not None:
            keep_n = torch.maximum(keep_n, rows_of(self.min_keep, batch))
        thr = values.gather(1, keep_n.clamp(min=1, max=size) - 1)
        off = rows_of(self.param >= 1.0, batch)
        return torch.where(off, NEG_INF, thr), (cum[:, -1:] >= p) | off

    def _cut_unsorted(self, work: Work, log_z: torch.Tensor) -> torch.Tensor:
        """The same cut without sorting (CPU): the logit at which the descending cumulative mass
        reaches p (:func:`crossing_key`), lowered to the ``min_keep``-th largest logit."""
        batch = work.z.shape[0]
        probs = torch.sub(work.z, log_z).exp_()
        off = rows_of(self.param >= 1.0, batch)
        cut = crossing_key(work.z, probs, self.param, ~off, descending=True)
        cut = torch.where(off, NEG_INF, cut)
        return torch.minimum(cut, work.kth_largest(self.min_keep, self.min_keep_max))


# --------------------------------------------------------------------------------------- min-p
@dataclass(frozen=True, slots=True)
class MinP(Stage):
    """Keep ``{i : p_i >= min_p * max_j p_j}``, computed in logit space ``z_i - z_max >= ln min_p``."""

    p: float = 0.0
    min_keep: int = 1
    name: ClassVar[str] = "min_p"
    params: ClassVar[tuple[Param, ...]] = (
        Param("p", "float", 0.0, "keep tokens at least p times as probable as the most probable; 0 = off",
              low=0.0, high=1.0),
        MIN_KEEP,
    )
    upper_set: ClassVar[bool] = True

    @property
    def is_noop(self) -> bool:
        return self.p == 0.0

    @classmethod
    def compile_rows(cls, rows: Sequence[MinP], ctx: CompileContext) -> CompiledMinP:
        stage = _threshold_rows(CompiledMinP, rows, "p", ctx)
        stage.param = stage.param.log()  # ln 0 = -inf: keeps everything
        return stage


class CompiledMinP(CompiledThreshold):
    __slots__ = ()

    def cut(self, work: Work) -> torch.Tensor:
        return work.z.amax(dim=-1, keepdim=True) + self.param


# -------------------------------------------------------------------------------------- typical
@dataclass(frozen=True, slots=True)
class Typical(Stage):
    """Locally typical sampling: sort tokens by ``s_i = |-log p_i - H(p)|`` ascending and keep the
    minimal prefix with mass >= ``mass``, closed under ties of ``s``; ``mass = 1`` is off."""

    mass: float = 1.0
    min_keep: int = 1
    name: ClassVar[str] = "typical"
    params: ClassVar[tuple[Param, ...]] = (
        Param("mass", "float", 1.0, "probability mass of the most typical tokens to keep; 1 = off",
              low=0.0, high=1.0, low_open=True),
        MIN_KEEP,
    )

    @property
    def is_noop(self) -> bool:
        return self.mass >= 1.0

    @classmethod
    def compile_rows(cls, rows: Sequence[Typical], ctx: CompileContext) -> CompiledTypical:
        return _threshold_rows(CompiledTypical, rows, "mass", ctx)


class CompiledTypical(CompiledThreshold):
    __slots__ = ()

    def apply(self, work: Work, state: object) -> None:
        batch = work.z.shape[0]
        logp = torch.log_softmax(work.z, dim=-1)
        probs = logp.exp()
        entropy = torch.special.entr(probs).sum(-1, keepdim=True)
        score = logp.neg_().sub_(entropy).abs_()  # |-log p - H|; -inf logits score +inf and rank last
        off = rows_of(self.param >= 1.0, batch)
        if usable(work.z, score, probs):
            bound = crossing_key(score, probs, self.param, ~off, descending=False)
            if self.min_keep is not None:  # the min_keep most typical tokens always stay
                bound = torch.maximum(bound, self._kth_smallest(score))
            mask_above(work.z, score, bound, ~off)
            work.ranked = None
            return
        work.keep((score <= self._bound_sorted(score, probs)) | off)

    def _bound_sorted(self, score: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
        """The score of the first token (ascending score) at which the cumulative mass reaches
        ``mass``, raised to the ``min_keep``-th smallest score: one sort."""
        batch, vocab = score.shape
        sorted_score, order = torch.sort(score, dim=-1)
        cum = probs.gather(1, order).cumsum(-1, dtype=torch.float64)
        last = (cum < self.param.to(cum.dtype)).sum(-1, keepdim=True).clamp(max=vocab - 1)
        if self.min_keep is not None:
            last = torch.maximum(last, rows_of(self.min_keep, batch).clamp(max=vocab) - 1)
        return sorted_score.gather(1, last)

    def _kth_smallest(self, score: torch.Tensor) -> torch.Tensor:
        batch, vocab = score.shape
        smallest = torch.topk(score, min(self.min_keep_max, vocab), dim=-1, largest=False, sorted=True).values
        return smallest.gather(1, rows_of(self.min_keep, batch).clamp(max=smallest.shape[1]) - 1)


# ------------------------------------------------------------------------------- epsilon / eta
@dataclass(frozen=True, slots=True)
class Epsilon(Stage):
    """Keep ``{i : p_i >= epsilon}`` plus the ``min_keep`` most probable tokens; 0 = off."""

    epsilon: float = 0.0
    min_keep: int = 1
    name: ClassVar[str] = "epsilon"
    params: ClassVar[tuple[Param, ...]] = (
        Param("epsilon", "float", 0.0, "drop tokens less probable than epsilon; 0 = off",
              low=0.0, high=1.0, high_open=True),
        MIN_KEEP,
    )
    upper_set: ClassVar[bool] = True

    @property
    def is_noop(self) -> bool:
        return self.epsilon == 0.0

    @classmethod
    def compile_rows(cls, rows: Sequence[Epsilon], ctx: CompileContext) -> CompiledEpsilon:
        stage = _threshold_rows(CompiledEpsilon, rows, "epsilon", ctx)
        stage.param = stage.param.log()
        return stage


class CompiledEpsilon(CompiledThreshold):
    __slots__ = ()

    def cut(self, work: Work) -> torch.Tensor:
        return work.log_normalizer() + self.param  # p_i >= eps  <=>  z_i >= log Z + ln eps


@dataclass(frozen=True, slots=True)
class Eta(Stage):
    """Keep ``{i : p_i >= eta}`` with ``eta = min(epsilon, sqrt(epsilon) * exp(-H(p)))`` plus the
    ``min_keep`` most probable tokens; 0 = off."""

    epsilon: float = 0.0
    min_keep: int = 1
    name: ClassVar[str] = "eta"
    params: ClassVar[tuple[Param, ...]] = (
        Param("epsilon", "float", 0.0, "entropy-adaptive cutoff scale (paper: 3e-4 .. 4e-3); 0 = off",
              low=0.0, high=1.0, high_open=True),
        MIN_KEEP,
    )
    upper_set: ClassVar[bool] = True

    @property
    def is_noop(self) -> bool:
        return self.epsilon == 0.0

    @classmethod
    def compile_rows(cls, rows: Sequence[Eta], ctx: CompileContext) -> CompiledEta:
        return _threshold_rows(CompiledEta, rows, "epsilon", ctx)


class CompiledEta(CompiledThreshold):
    __slots__ = ()

    def cut(self, work: Work) -> torch.Tensor:
        log_z = work.log_normalizer()
        entropy = torch.special.entr((work.z - log_z).exp()).sum(-1, keepdim=True)
        log_eta = torch.minimum(self.param.log(), 0.5 * self.param.log() - entropy)
        return log_z + log_eta


# --------------------------------------------------------------------------------- top-n-sigma
@dataclass(frozen=True, slots=True)
class TopNSigma(Stage):
    """Keep ``{i : z_i >= max z - n * sigma}``, sigma the population standard deviation of the
    finite logits (Tang et al. 2024; llama.cpp ``top_n_sigma``). Invariant under temperature."""

    n: float = 1.0
    name: ClassVar[str] = "top_n_sigma"
    params: ClassVar[tuple[Param, ...]] = (
        Param("n", "float", 1.0, "keep logits within n standard deviations of the maximum", low=0.0),
    )
    upper_set: ClassVar[bool] = True

    @classmethod
    def compile_rows(cls, rows: Sequence[TopNSigma], ctx: CompileContext) -> CompiledTopNSigma:
        return _threshold_rows(CompiledTopNSigma, rows, "n", ctx)


class CompiledTopNSigma(CompiledThreshold):
    __slots__ = ()

    def cut(self, work: Work) -> torch.Tensor:
        finite = torch.isfinite(work.z)
        count = finite.sum(-1, keepdim=True).clamp(min=1)
        values = work.z.masked_fill(~finite, 0.0)
        mean = values.sum(-1, keepdim=True) / count
        spread = ((values - mean).square() * finite).sum(-1, keepdim=True) / count
        return work.z.amax(dim=-1, keepdim=True) - self.param * spread.sqrt()
