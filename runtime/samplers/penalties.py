"""Repetition, frequency and presence penalties: deterministic logit transforms of the history.

With ``c_i`` the number of occurrences of token ``i`` among the row's tokens in ``scope``
(``"all"`` = prompt + generated, ``"generated"`` = advanced tokens only), optionally only the last
``window`` of them:

* repetition (HF / CTRL): ``z_i <- z_i / theta`` if ``z_i > 0`` else ``z_i * theta``, once per
  token with ``c_i > 0`` (default scope ``all``, as HF);
* frequency: ``z_i <- z_i - f * c_i`` (default scope ``generated``, as OpenAI / vLLM);
* presence: ``z_i <- z_i - r * [c_i > 0]`` (default scope ``generated``).

``-inf`` stays ``-inf``. ``window = 64`` with scope ``all`` reproduces llama.cpp's ``penalty_last_n``
when the prompt is fed to the state.

Cost: the formula is evaluated only at the columns of the row's history (gather, formula, scatter;
the whole-history counts are kept incrementally by the state, windowed counts of up to
``PAIRWISE_WINDOW`` tokens are computed by pairwise comparison), so a step costs O(B * history),
not O(B * V), while the history is shorter than a quarter of the vocabulary.
"""

from __future__ import annotations

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


def _scope(default: str) -> Param:
    return Param("scope", "choice", default, "which tokens count: 'all' (prompt + generated) or 'generated'",
                 choices=("all", "generated"), per_row=False)


WINDOW = Param("window", "int", 0, "count only the last window tokens of the scope; 0 = all of them",
               low=0, per_row=False)


class PenaltyStage(Stage):
    """Shared behaviour of the three penalties (fields ``penalty``, ``scope``, ``window``)."""

    __slots__ = ()
    logit_transform: ClassVar[bool] = True
    stateful: ClassVar[bool] = True
    neutral: ClassVar[float] = 0.0
    kind: ClassVar[str]

    @property
    def is_noop(self) -> bool:
        return self.penalty == self.neutral  # type: ignore[attr-defined]

    @classmethod
    def compile_rows(cls, rows: Sequence[PenaltyStage], ctx: CompileContext) -> CompiledPenalty:
        first = rows[0]
        return CompiledPenalty(cls.kind, row_param([r.penalty for r in rows], ctx.device),  # type: ignore[attr-defined]
                               first.scope, first.window)  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class RepetitionPenalty(PenaltyStage):
    """Divide positive (multiply negative) logits of already-seen tokens by ``penalty``."""

    penalty: float = 1.0
    scope: str = "all"
    window: int = 0
    name: ClassVar[str] = "repetition_penalty"
    params: ClassVar[tuple[Param, ...]] = (
        Param("penalty", "float", 1.0, "> 1 discourages repeats, < 1 encourages them; 1 = off",
              low=0.0, low_open=True),
        _scope("all"),
        WINDOW,
    )
    neutral: ClassVar[float] = 1.0
    kind: ClassVar[str] = "repetition"


@dataclass(frozen=True, slots=True)
class FrequencyPenalty(PenaltyStage):
    """Subtract ``penalty`` times the number of occurrences."""

    penalty: float = 0.0
    scope: str = "generated"
    window: int = 0
    name: ClassVar[str] = "frequency_penalty"
    params: ClassVar[tuple[Param, ...]] = (
        Param("penalty", "float", 0.0, "subtracted from a token's logit once per occurrence; 0 = off"),
        _scope("generated"),
        WINDOW,
    )
    kind: ClassVar[str] = "frequency"


@dataclass(frozen=True, slots=True)
class PresencePenalty(PenaltyStage):
    """Subtract ``penalty`` from every token that occurred at least once."""

    penalty: float = 0.0
    scope: str = "generated"
    window: int = 0
    name: ClassVar[str] = "presence_penalty"
    params: ClassVar[tuple[Param, ...]] = (
        Param("penalty", "float", 0.0, "subtracted from the logit of every token seen before; 0 = off"),
        _scope("generated"),
        WINDOW,
    )
    kind: ClassVar[str] = "presence"


# windows up to this many tokens count occurrences by pairwise comparison ([B, W, W]) instead of a
# dense [B, V] count tensor
PAIRWISE_WINDOW = 256


def _window_counts(tokens: torch.Tensor) -> torch.Tensor:
    """``[B, W]`` int32: entry ``(b, j)`` counts the valid (``>= 0``) entries of ``tokens[b]`` equal
    to ``max(tokens[b, j], 0)`` -- the windowed count of the column position ``j`` writes to."""
    column = tokens.clamp(min=0)
    return (column.unsqueeze(2) == tokens.unsqueeze(1)).sum(-1, dtype=torch.int32)  # -1 matches no column


class CompiledPenalty(CompiledStage):
    __slots__ = ("kind", "penalty", "scope", "window")
    stateful: ClassVar[bool] = True

    def __init__(self, kind: str, penalty: torch.Tensor, scope: str, window: int):
        self.kind, self.penalty, self.scope, self.window = kind, penalty, scope, window

    def apply(self, work: Work, state: SamplerState | None) -> None:
        if state is None:
            raise GenRuntimeError(f"{self.kind} penalty needs a sampler state: pass state=chain.new_state(batch)")
        z = work.z
        if 0 < self.window <= PAIRWISE_WINDOW:
            tokens = state.window_tokens(self.scope, self.window)
            seen, counts = tokens.clamp(min=0), _window_counts(tokens)
        else:
            seen = state.seen_tokens()
            if 4 * seen.shape[1] >= z.shape[1]:
                work.set_logits(self._transform(z, state.counts_for(self.scope, self.window)))
                return
            counts = state.counts_for(self.scope, self.window).gather(1, seen)
        # only the columns in `seen` can have a count: evaluate the elementwise formula there and
        # write it back (repeated columns, and padding read as token 0, write identical values)
        z.scatter_(1, seen, self._transform(z.gather(1, seen), counts))
        work.set_logits(z)

    def _transform(self, z: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        """The penalised logits, elementwise in ``z`` and ``counts`` (``counts = 0``: unchanged)."""
        if self.kind == "repetition":
            penalized = torch.where(z > 0, z / self.penalty, z * self.penalty)
            return torch.where(counts > 0, penalized, z)
        if self.kind == "frequency":
            return z - self.penalty * counts
        return z - self.penalty * (counts > 0)

    def select(self, rows: torch.Tensor) -> CompiledPenalty:
        return CompiledPenalty(self.kind, select_param(self.penalty, rows), self.scope, self.window)
