"""XTC, "exclude top choices" (llama.cpp ``xtc``): a random truncation, i.e. a mixture.

With probability ``probability`` the stage removes every "top choice" ``A = {i : p_i >= threshold}``
except the least probable ones (all tokens tied at ``min_A p``), provided ``|A| >= 2``,
``threshold <= 0.5`` and at least ``min_keep`` tokens remain; otherwise it changes nothing. Its law
is therefore ``(1 - P) * q + P * q_xtc``. The compiled chain computes that mixture exactly (two
branches through the remaining stages) and draws from it, so the coin is part of the one draw of
the step and needs no state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch

from genweave.runtime.samplers.base import (
    CompileContext,
    CompiledStage,
    Param,
    Stage,
    Work,
    row_param,
    select_param,
)
from genweave.runtime.samplers.truncation import MIN_KEEP


@dataclass(frozen=True, slots=True)
class XTC(Stage):
    """Exclude top choices with probability ``probability``."""

    probability: float = 0.5
    threshold: float = 0.1
    min_keep: int = 1
    name: ClassVar[str] = "xtc"
    params: ClassVar[tuple[Param, ...]] = (
        Param("probability", "float", 0.5, "chance per step of excluding the top choices; 0 = off",
              low=0.0, high=1.0),
        Param("threshold", "float", 0.1, "tokens at least this probable are top choices; > 0.5 = off",
              low=0.0, high=1.0),
        MIN_KEEP,
    )

    @property
    def is_noop(self) -> bool:
        return self.probability == 0.0 or self.threshold > 0.5

    @classmethod
    def compile_rows(cls, rows: Sequence[XTC], ctx: CompileContext) -> CompiledXTC:
        return CompiledXTC(row_param([r.probability for r in rows], ctx.device),
                           row_param([r.threshold for r in rows], ctx.device),
                           row_param([r.min_keep for r in rows], ctx.device, torch.long))


class CompiledXTC(CompiledStage):
    __slots__ = ("probability", "threshold", "min_keep")

    def __init__(self, probability: torch.Tensor, threshold: torch.Tensor, min_keep: torch.Tensor):
        self.probability, self.threshold, self.min_keep = probability, threshold, min_keep

    def apply(self, work: Work, state: object) -> None:
        raise TypeError("XTC is a mixture: the chain runs it through split()")

    def split(self, work: Work) -> tuple[torch.Tensor, torch.Tensor, Work]:
        """``(log(1 - P), log P, excluded)``: the two branches' log weights per row (``[B, 1]``) and
        the work of the branch whose top choices are excluded (``work`` itself is the other)."""
        logp = work.z - work.log_normalizer()
        top = logp >= self.threshold.log()
        least = torch.where(top, work.z, float("inf")).amin(dim=-1, keepdim=True)
        remove = top & (work.z > least)
        finite = torch.isfinite(work.z).sum(-1, keepdim=True)
        applies = ((top.sum(-1, keepdim=True) >= 2) & (self.threshold <= 0.5)
                   & (finite - remove.sum(-1, keepdim=True) >= self.min_keep))
        excluded = work.clone()
        excluded.keep(~(remove & applies))
        return torch.log1p(-self.probability), self.probability.log(), excluded

    def select(self, rows: torch.Tensor) -> CompiledXTC:
        return CompiledXTC(select_param(self.probability, rows), select_param(self.threshold, rows),
                           select_param(self.min_keep, rows))
