"""Top-H decoding (Baghaei Potraghloo et al., 2025): an entropy-bounded most-probable prefix.

Official rule (``variant="official"``, the authors' ``TopH_LogitsProcessor``): with
``p = softmax(z)`` and ``p_(1) >= ... >= p_(N)`` its ``N = top_n`` largest entries (not renormalised),
``h_j = -p_(j) log2 p_(j)``, ``S_m = sum_{j<=m} h_j`` and ``tau = alpha * S_N``, keep the first
``m = max(1, #{m : S_m <= tau})`` tokens, closed under ties. Put a temperature stage before
``top_h`` to reproduce the authors' ``temperature=T`` setting (their processor sees
``softmax(z / T)`` and the final law is ``softmax(z / T)`` on the kept set).

``variant="hf"`` reproduces transformers' ``TopHLogitsWarper``: renormalise the top-N
probabilities to ``q``, ``tau = alpha * H(q)`` in nats, keep ``cumsum(-q ln q) <= tau`` plus the
first token. The two rules keep different sets on some rows.
"""

from __future__ import annotations

import math
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
    rows_of,
    select_param,
)


@dataclass(frozen=True, slots=True)
class TopH(Stage):
    """Keep the greedy entropy-bounded prefix of the ``top_n`` most probable tokens."""

    alpha: float = 0.4
    top_n: int = 100
    variant: str = "official"
    name: ClassVar[str] = "top_h"
    params: ClassVar[tuple[Param, ...]] = (
        Param("alpha", "float", 0.4, "entropy bound as a fraction of the top-n entropy",
              low=0.0, high=1.0, low_open=True),
        Param("top_n", "int", 100, "how many most probable tokens the rule considers", low=1),
        Param("variant", "choice", "official", "'official' (the paper's code) or 'hf' (transformers)",
              choices=("official", "hf"), per_row=False),
    )
    upper_set: ClassVar[bool] = True

    @classmethod
    def compile_rows(cls, rows: Sequence[TopH], ctx: CompileContext) -> CompiledTopH:
        top_n = [min(r.top_n, ctx.vocab_size) for r in rows]
        return CompiledTopH(row_param([r.alpha for r in rows], ctx.device),
                            row_param(top_n, ctx.device, torch.long), max(top_n), rows[0].variant == "hf")


class CompiledTopH(CompiledStage):
    __slots__ = ("alpha", "top_n", "n_max", "hf")

    def __init__(self, alpha: torch.Tensor, top_n: torch.Tensor, n_max: int, hf: bool):
        self.alpha, self.top_n, self.n_max, self.hf = alpha, top_n, n_max, hf

    def apply(self, work: Work, state: object) -> None:
        batch = work.z.shape[0]
        values = work.view(self.n_max).values[:, : self.n_max]
        top_n = rows_of(self.top_n, batch)
        inside = torch.arange(self.n_max, device=values.device) < top_n
        if self.hf:
            kept = self._count_hf(values.double(), inside)
        else:
            kept = self._count_official(values, _log_normalizer64(work.z, values[:, :1]), top_n, inside)
        work.threshold(values.gather(1, kept.clamp(min=1) - 1))

    def _count_official(self, values: torch.Tensor, log_z: torch.Tensor, top_n: torch.Tensor,
                        inside: torch.Tensor) -> torch.Tensor:
        # float64 on the top-n slice: near-deterministic rows have entropies of order 1e-7, below
        # float32 resolution of p near 1
        probs = (values.double() - log_z).exp()
        partial = (torch.special.entr(probs) / math.log(2.0)).cumsum(-1)
        tau = self.alpha.double() * partial.gather(1, top_n - 1)
        return ((partial <= tau) & inside).sum(-1, keepdim=True)

    def _count_hf(self, values: torch.Tensor, inside: torch.Tensor) -> torch.Tensor:
        q = torch.softmax(values.masked_fill(~inside, float("-inf")), dim=-1)
        terms = torch.special.entr(q)
        tau = self.alpha.double() * terms.sum(-1, keepdim=True)
        return ((terms.cumsum(-1) <= tau) & inside).sum(-1, keepdim=True)

    def select(self, rows: torch.Tensor) -> CompiledTopH:
        return CompiledTopH(select_param(self.alpha, rows), select_param(self.top_n, rows), self.n_max,
                            self.hf)


def _log_normalizer64(z: torch.Tensor, top: torch.Tensor) -> torch.Tensor:
    """``log sum exp z`` in float64 from float32 pieces, accurate where one token holds almost all
    the mass: ``top + log(#maxima + sum_{z_j < top} e^(z_j - top))``."""
    shifted = z - top
    at_top = shifted == 0
    rest = shifted.exp().masked_fill(at_top, 0.0).sum(-1, keepdim=True)
    return top.double() + (at_top.sum(-1, keepdim=True).double() + rest.double()).log()
