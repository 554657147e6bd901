"""What a program run returns."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Result:
    """One draw of a program.

    * ``value``: the returned value.
    * ``text``: the whole text of the draw: prompt, chat templates, holes (with the stop strings
      they generated) and any text after the last hole.
    * ``holes``: each hole's value by name (a ``stop`` string is excluded from the value).
    * ``tokens``: every token id the model saw or produced (text after the last hole is never
      tokenized, so it has no tokens).
    * ``logprob``: log-probability of the draw's generated tokens (end-of-sequence choices
      included) under the distribution each was drawn from (after masks and the sampler chain);
      0 for greedy decoding, which is deterministic; NaN under ``smc`` and ``awrs``, whose
      particles carry importance weights instead.
    * ``guarantee``: what the inference promises about this draw (see LANGUAGE.md).
    * ``weight``: the draw's log-weight: the sum of its ``factor`` values, ``-inf`` when a
      ``condition`` or check failed (rejection sampling discards those draws). Under ``smc`` and
      ``awrs``: the particle's importance log-weight for the program's target ``pi``.
    """

    value: Any
    text: str
    holes: dict[str, Any]
    tokens: tuple[int, ...]
    logprob: float
    guarantee: str = "local"
    hole_tokens: dict[str, tuple[int, ...]] = field(default_factory=dict, repr=False)
    weight: float = 0.0

    def __str__(self) -> str:
        return str(self.value)


@dataclass(frozen=True, eq=False)
class InferenceStats:
    """What particle inference did: ``steps`` (forward passes of the filters), ``draws`` (tokens
    proposed, forced ends excluded), ``calls`` (constraint calls of each AWRS draw; empty for
    masked proposals), ``resamplings`` (segments resampled)."""

    steps: int
    draws: int
    calls: np.ndarray
    resamplings: int


@dataclass(frozen=True)
class Results(Sequence[Result]):
    """Several draws of one program, in draw order.

    Under ``smc`` every draw is a particle system of ``particles`` results (result
    ``g * particles + i`` is particle ``i`` of draw ``g``); otherwise ``particles`` is 1.

    >>> import math
    >>> a, b = Result("x", "x", {}, (), 0.0, weight=math.log(3)), Result("y", "y", {}, (), 0.0)
    >>> r = Results((a, b, b, Result("x", "x", {}, (), 0.0, weight=-math.inf)), particles=2)
    >>> {v: round(p, 6) for v, p in r.posterior.items()}, r.weights.tolist(), r.ess.round(2).tolist()
    ({'x': 0.6, 'y': 0.4}, [0.75, 0.25, 1.0, 0.0], [1.6, 1.0])
    """

    draws: tuple[Result, ...]
    particles: int = 1
    stats: InferenceStats | None = None

    def __getitem__(self, index):
        return self.draws[index]

    def __len__(self) -> int:
        return len(self.draws)

    def __iter__(self) -> Iterator[Result]:
        return iter(self.draws)

    @property
    def values(self) -> list[Any]:
        return [r.value for r in self.draws]

    def systems(self) -> tuple[Results, ...]:
        """One :class:`Results` per draw: its particle system."""
        n = self.particles
        return tuple(Results(self.draws[g:g + n], n) for g in range(0, len(self.draws), n))

    def _log_weights(self) -> np.ndarray:
        """``[draws, particles]`` log-weights."""
        return np.array([r.weight for r in self.draws], dtype=np.float64).reshape(-1, self.particles)

    @property
    def weights(self) -> np.ndarray:
        """Each result's weight normalized within its particle system (a system sums to 1; all 0
        when every particle of it has weight 0)."""
        return _normalize(self._log_weights()).reshape(-1)

    @property
    def log_z(self) -> np.ndarray:
        """Per draw: ``log`` of the mean weight of its particles, ``log Z``-hat (``exp`` of it is an
        unbiased estimate of the target's normalizer under ``smc`` and ``awrs``)."""
        w = self._log_weights()
        top = w.max(axis=1, keepdims=True)
        safe = np.where(np.isfinite(top), top, 0.0)
        with np.errstate(divide="ignore"):
            return (safe + np.log(np.exp(w - safe).mean(axis=1, keepdims=True))).reshape(-1)

    @property
    def ess(self) -> np.ndarray:
        """Per draw: the effective sample size ``1 / sum w_i^2`` of its normalized weights."""
        squares = (_normalize(self._log_weights()) ** 2).sum(axis=1)
        with np.errstate(divide="ignore"):
            return np.where(squares > 0, 1.0 / np.maximum(squares, 1e-300), 0.0)

    @property
    def posterior(self) -> dict[Any, float]:
        """Returned value -> normalized weight, pooled over every particle of every draw (each
        system counts in proportion to its ``Z``-hat); heaviest first, zero weights left out.
        Unhashable values (JSON objects, lists) are keyed by their canonical JSON text."""
        w = _normalize(self._log_weights().reshape(1, -1)).reshape(-1)
        out: dict[Any, float] = {}
        for result, p in zip(self.draws, w.tolist()):
            if p > 0:
                key = _key(result.value)
                out[key] = out.get(key, 0.0) + p
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def _normalize(log_weights: np.ndarray) -> np.ndarray:
    """Rows of ``log_weights`` exponentiated and normalized (all-zero rows stay zero)."""
    top = log_weights.max(axis=1, keepdims=True)
    safe = np.where(np.isfinite(top), top, 0.0)
    w = np.exp(log_weights - safe)
    total = w.sum(axis=1, keepdims=True)
    return np.where(total > 0, w / np.maximum(total, 1e-300), 0.0)


def _key(value: Any) -> Any:
    try:
        hash(value)
    except TypeError:
        return json.dumps(value, sort_keys=True)
    return value
