"""What the inference engines return: weighted particles, the evidence estimate and statistics."""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

import numpy as np

from genweave.runtime.inference.potentials import complete_text


@dataclass(frozen=True, eq=False)
class SMCStats:
    """``steps``: proposal steps run; ``draws``: proposed tokens (forced EOS excluded);
    ``calls``: condition calls of each AWRS draw (empty for masked proposals); ``resamplings``:
    how many times the particles were resampled; ``ess``: the ESS after each step (before
    resampling)."""

    steps: int
    draws: int
    calls: np.ndarray
    resamplings: int
    ess: tuple[float, ...]


@dataclass(frozen=True, eq=False)
class SMCResult:
    """One particle system's answer for one hole.

    ``tokens[i]``/``texts[i]``: particle ``i``'s generated ids (EOS excluded) and bytes;
    ``log_weights[i]``: its final log weight (``-inf``: dead); ``ended[i]``: it reached EOS alive;
    ``log_z``: ``log(mean(exp(log_weights)))``, whose exponential is an unbiased estimate of the
    target's normalizer ``Z``.
    """

    tokens: tuple[tuple[int, ...], ...]
    texts: tuple[bytes, ...]
    log_weights: np.ndarray
    ended: np.ndarray
    log_z: float
    stats: SMCStats

    @property
    def particles(self) -> int:
        return len(self.tokens)

    @property
    def normalized_weights(self) -> np.ndarray:
        """Weights summing to 1 (all zero when every particle died)."""
        w = self.log_weights
        if not np.isfinite(w).any():
            return np.zeros_like(w)
        e = np.exp(w - w.max())
        return e / e.sum()

    @property
    def ess(self) -> float:
        """Effective sample size of the final weights, ``1 / sum(w_i^2)`` (0 if all died)."""
        w = self.normalized_weights
        s = float((w * w).sum())
        return 1.0 / s if s > 0 else 0.0

    @property
    def values(self) -> list[str]:
        """Each particle's text, decoded (invalid UTF-8 replaced)."""
        return [complete_text(t) for t in self.texts]

    @property
    def posterior(self) -> dict[str, float]:
        """Text -> normalized weight (duplicates summed; dead particles left out), heaviest first."""
        return self.posterior_by(complete_text)

    def posterior_by(self, key: Callable[[bytes], Hashable]) -> dict[Hashable, float]:
        """The posterior over ``key(text)``."""
        out: dict[Hashable, float] = {}
        for text, w in zip(self.texts, self.normalized_weights.tolist()):
            if w > 0:
                k = key(text)
                out[k] = out.get(k, 0.0) + w
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))


@dataclass(frozen=True, eq=False)
class SMCRun:
    """Independent particle systems run as one batch.

    ``results[g]``: system ``g``; ``state``: the model state after the hole, row ``g * N + i``
    holding particle ``i`` of system ``g`` (its tokens fed, EOS not); ``ancestors[r]``: the input
    row final row ``r`` descends from (to re-index per-row data kept outside the engine);
    ``chain_state``: the target chain's sampler state for those rows (None for stateless chains).
    """

    results: tuple[SMCResult, ...]
    state: Any
    ancestors: np.ndarray
    chain_state: Any = None

    @property
    def log_z(self) -> np.ndarray:
        return np.array([r.log_z for r in self.results], dtype=np.float64)


def log_mean_exp(values: np.ndarray) -> float:
    """``log(mean(exp(values)))``, ``-inf`` when every value is ``-inf``."""
    values = np.asarray(values, dtype=np.float64)
    top = values.max() if len(values) else -math.inf
    if not math.isfinite(top):
        return -math.inf
    return float(top + math.log(np.exp(values - top).sum()) - math.log(len(values)))

