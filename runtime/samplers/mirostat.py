"""Mirostat v2 (Basu et al., 2021; llama.cpp ``mirostat_v2``): a surprise-targeting truncation.

Given the row's state ``mu`` (bits), keep ``{i : p_i >= 2^-mu}`` plus the argmax, with
``p = softmax(z)``. After a token ``x`` is drawn from the renormalised ``p'``, the state moves:
``mu <- mu - eta * (-log2 p'(x) - tau)`` (:meth:`SamplerState.advance` does it). ``mu`` starts at
``mu0`` (default ``2 * tau``). Mirostat must be the last stage of its chain, so ``p'`` is the
distribution the chain draws from.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch

from genweave.dsl.errors import GenRuntimeError
from genweave.runtime.samplers.base import (
    CompileContext,
    CompiledStage,
    Param,
    Stage,
    Work,
    row_param,
    select_param,
)
from genweave.runtime.samplers.state import SamplerState


@dataclass(frozen=True, slots=True)
class Mirostat(Stage):
    """Mirostat v2 with target surprise ``tau`` bits and learning rate ``eta``."""

    tau: float = 5.0
    eta: float = 0.1
    mu0: float | None = None
    name: ClassVar[str] = "mirostat"
    params: ClassVar[tuple[Param, ...]] = (
        Param("tau", "float", 5.0, "target surprise per token, in bits", low=0.0),
        Param("eta", "float", 0.1, "learning rate of the mu update", low=0.0),
        Param("mu0", "optional_float", None, "initial mu in bits (default 2 * tau)"),
    )
    upper_set: ClassVar[bool] = True
    stateful: ClassVar[bool] = True

    @property
    def initial_mu(self) -> float:
        return 2.0 * self.tau if self.mu0 is None else self.mu0

    @classmethod
    def compile_rows(cls, rows: Sequence[Mirostat], ctx: CompileContext) -> CompiledMirostat:
        return CompiledMirostat((row_param([r.tau for r in rows], ctx.device),
                                 row_param([r.eta for r in rows], ctx.device),
                                 row_param([r.initial_mu for r in rows], ctx.device)))


class CompiledMirostat(CompiledStage):
    __slots__ = ("params",)
    stateful: ClassVar[bool] = True

    def __init__(self, params: tuple[torch.Tensor, torch.Tensor, torch.Tensor]):
        self.params = params  # tau, eta, mu0 as [R, 1]; the state keeps its own copy per row

    def apply(self, work: Work, state: SamplerState | None) -> None:
        if state is None or state.mu is None:
            raise GenRuntimeError("mirostat needs a sampler state: pass state=chain.new_state(batch)")
        thr = work.log_normalizer() - state.mu * math.log(2.0)  # p_i >= 2^-mu  <=>  z_i >= log Z - mu ln 2
        work.threshold(torch.minimum(thr, work.z.amax(dim=-1, keepdim=True)))

    def select(self, rows: torch.Tensor) -> CompiledMirostat:
        return CompiledMirostat(tuple(select_param(p, rows) for p in self.params))
