"""Elementwise stages and greedy: temperature, logit bias, greedy.

* ``temperature(t)``: ``z / t``; ``t = 0`` is greedy (the argmax, lowest id on ties), never a
  division. Temperature is monotone, so it keeps the cached ranking valid.
* ``logit_bias({id: b})``: ``z_id += b`` (``b = -inf`` bans the token).
* ``greedy()``: a point mass on the argmax, ties broken towards the lowest token id.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch

from genweave.dsl.errors import GenCheckError
from genweave.runtime.samplers.base import (
    CompileContext,
    CompiledStage,
    Param,
    Stage,
    Work,
    row_param,
    select_param,
)


def greedy_mask(z: torch.Tensor) -> torch.Tensor:
    """One True per row, at the argmax (first occurrence, i.e. the lowest id among ties)."""
    keep = torch.zeros_like(z, dtype=torch.bool)
    return keep.scatter_(1, z.argmax(dim=-1, keepdim=True), True)


@dataclass(frozen=True, slots=True)
class Temperature(Stage):
    """``softmax(z / t)``; ``t = 0`` means greedy."""

    t: float = 1.0
    name: ClassVar[str] = "temperature"
    params: ClassVar[tuple[Param, ...]] = (
        Param("t", "float", 1.0, "divides the logits; 0 means greedy (argmax)", low=0.0),
    )
    upper_set: ClassVar[bool] = True
    logit_transform: ClassVar[bool] = True

    @property
    def is_noop(self) -> bool:
        return self.t == 1.0

    def is_elementwise(self) -> bool:
        return self.t > 0

    @classmethod
    def compile_rows(cls, rows: Sequence[Temperature], ctx: CompileContext) -> CompiledTemperature:
        values = [r.t for r in rows]
        return CompiledTemperature(row_param(values, ctx.device), any(v == 0 for v in values),
                                   all(v == 0 for v in values))


class CompiledTemperature(CompiledStage):
    __slots__ = ("t", "any_zero", "all_zero")

    def __init__(self, t: torch.Tensor, any_zero: bool, all_zero: bool):
        self.t, self.any_zero, self.all_zero = t, any_zero, all_zero

    def apply(self, work: Work, state: object) -> None:
        if self.all_zero:
            work.keep(greedy_mask(work.z))
            return
        zero = self.t == 0
        t = self.t.masked_fill(zero, 1.0) if self.any_zero else self.t
        work.z.div_(t)  # the working copy belongs to this pipeline call
        if work.ranked is not None:
            work.ranked.values = work.ranked.values / t
        if self.any_zero:
            work.keep(greedy_mask(work.z) | ~zero)

    def select(self, rows: torch.Tensor) -> CompiledTemperature:
        t = select_param(self.t, rows)
        return CompiledTemperature(t, bool((t == 0).any()), bool((t == 0).all()))


@dataclass(frozen=True, slots=True)
class Greedy(Stage):
    """A point mass on the argmax of the current logits (lowest token id on ties)."""

    name: ClassVar[str] = "greedy"
    params: ClassVar[tuple[Param, ...]] = ()

    @classmethod
    def compile_rows(cls, rows: Sequence[Greedy], ctx: CompileContext) -> CompiledGreedy:
        return CompiledGreedy()


class CompiledGreedy(CompiledStage):
    __slots__ = ()

    def apply(self, work: Work, state: object) -> None:
        work.keep(greedy_mask(work.z))


@dataclass(frozen=True, slots=True)
class LogitBias(Stage):
    """``z_id += bias[id]`` for each listed token (``-inf`` bans a token)."""

    bias: tuple[tuple[int, float], ...] = ()
    name: ClassVar[str] = "logit_bias"
    params: ClassVar[tuple[Param, ...]] = (
        Param("bias", "bias", (), "token id -> value added to its logit (-inf bans it)"),
    )
    logit_transform: ClassVar[bool] = True

    @property
    def is_noop(self) -> bool:
        return all(b == 0.0 for _, b in self.bias)

    @classmethod
    def compile_rows(cls, rows: Sequence[LogitBias], ctx: CompileContext) -> CompiledLogitBias:
        dense = torch.zeros(len(rows), ctx.vocab_size, dtype=torch.float32)
        for r, row in enumerate(rows):
            for token, value in row.bias:
                if token >= ctx.vocab_size:
                    raise GenCheckError(f"logit_bias: token id {token} is outside the vocabulary "
                                        f"(ids 0..{ctx.vocab_size - 1})")
                dense[r, token] = value
        if all(row.bias == rows[0].bias for row in rows):
            dense = dense[:1]
        return CompiledLogitBias(dense.to(ctx.device))


class CompiledLogitBias(CompiledStage):
    __slots__ = ("bias",)

    def __init__(self, bias: torch.Tensor):
        self.bias = bias

    def apply(self, work: Work, state: object) -> None:
        work.set_logits(work.z + self.bias)  # a -inf bias bans the token: -inf + finite = -inf

    def select(self, rows: torch.Tensor) -> CompiledLogitBias:
        return CompiledLogitBias(select_param(self.bias, rows))
