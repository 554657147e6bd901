"""The host-side state of a batch of particles filling one hole, and their importance weights.

Row ``b`` holds a particle's generated tokens and text, its constraint state, one state and the
last ``prefix`` value per potential, its twist state and current twist value, and its log weight.
The weight bookkeeping follows the telescoping of the potentials:

* at the start, ``log w += prefix_k("")`` for every potential;
* after a token ``x``: ``log w += prefix_k(y x) - prefix_k(y)`` for every prefix potential not
  already checked by the proposal (a ``-inf`` kills the particle);
* at the end: ``log w += complete_k(y) - prefix_k(y)``;
* a twist ``psi`` (every ``k`` tokens) is added provisionally, ``log w += psi(y) - psi_prev``, and
  removed at the end, so the final weights target the untwisted distribution.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from genweave.runtime.inference.hole import Hole
from genweave.runtime.inference.potentials import NEG_INF, Potential, log_ratio
from genweave.runtime.vocab import Vocabulary


class ParticleSet:
    """Per-row state of ``rows`` particles (module docstring); rows are re-indexed by :meth:`select`."""

    def __init__(self, hole: Hole, vocab: Vocabulary, rows: int, twist: Potential | None = None,
                 twist_every: int = 1, log_weights: np.ndarray | None = None):
        self.hole, self.vocab = hole, vocab
        self.potentials = hole.potentials
        self.twist, self.twist_every = twist, twist_every
        self.eos_ids = frozenset(vocab.eos_ids)
        self.tokens: list[list[int]] = [[] for _ in range(rows)]
        self.texts: list[bytes] = [b""] * rows
        c = hole.constraint
        self.cstates: list = [c.initial() for _ in range(rows)] if c is not None else [None] * rows
        self.pstates: list[list] = [[p.initial() for p in self.potentials] for _ in range(rows)]
        self.tstates: list = [twist.initial() if twist else None for _ in range(rows)]
        self.pvalues = np.zeros((rows, len(self.potentials)), dtype=np.float64)
        self.tvalues = np.zeros(rows, dtype=np.float64)
        self.log_weights = np.zeros(rows) if log_weights is None else np.array(log_weights, dtype=np.float64)
        self.done = np.zeros(rows, dtype=bool)
        self.ended = np.zeros(rows, dtype=bool)
        self._start()

    def _start(self) -> None:
        """``prefix_k("")`` into every weight (and the first twist, when it applies at length 0)."""
        for k, p in enumerate(self.potentials):
            if p.is_prefix:
                value = p.prefix(self.pstates[0][k]) if self.pstates else 0.0
                self.pvalues[:, k] = value
                self.log_weights += value
        self._kill(np.flatnonzero(self.log_weights == NEG_INF))

    @property
    def rows(self) -> int:
        return len(self.tokens)

    def live(self) -> np.ndarray:
        return np.flatnonzero(~self.done)

    def _kill(self, rows: np.ndarray | Sequence[int]) -> None:
        rows = np.asarray(rows, dtype=np.int64)
        self.log_weights[rows] = NEG_INF
        self.done[rows] = True

    # ---------------------------------------------------------------------------- one step
    def apply(self, rows: np.ndarray, tokens: np.ndarray, log_weights: np.ndarray,
              checked: Sequence[bool]) -> np.ndarray:
        """Record one proposal step for ``rows``: ``tokens[j]`` (``-1``: no token) with incremental
        weight ``log_weights[j]``. ``checked[k]``: potential ``k`` was already enforced by the
        proposal (its weight is 0 for the drawn token). Returns the rows that took a text token."""
        bad = (tokens < 0) | (log_weights == NEG_INF)
        self._kill(rows[bad])
        rows, tokens, log_weights = rows[~bad], tokens[~bad], log_weights[~bad]
        self.log_weights[rows] += log_weights
        ends = np.fromiter((t in self.eos_ids for t in tokens.tolist()), dtype=bool, count=len(tokens))
        self._end(rows[ends], checked)
        grown = rows[~ends]
        self._grow(grown, tokens[~ends], checked)
        return grown[~self.done[grown]]

    def _grow(self, rows: np.ndarray, tokens: np.ndarray, checked: Sequence[bool]) -> None:
        table = self.vocab.token_bytes
        c = self.hole.constraint
        for b, t in zip(rows.tolist(), tokens.tolist()):
            data = table[t]
            self.tokens[b].append(t)
            self.texts[b] += data
            if c is not None:
                self.cstates[b] = c.advance(self.cstates[b], t)
            states = self.pstates[b]
            for k, p in enumerate(self.potentials):
                states[k] = p.advance(states[k], t, data)
            if self.twist is not None:
                self.tstates[b] = self.twist.advance(self.tstates[b], t, data)
        for k, p in enumerate(self.potentials):
            if p.is_prefix and not checked[k] and len(rows):
                self._reweigh(rows, k, p.prefix_many([self.pstates[b][k] for b in rows.tolist()]))
        self._retwist(rows)

    def _reweigh(self, rows: np.ndarray, k: int, values: np.ndarray) -> None:
        old = self.pvalues[rows, k]
        self.pvalues[rows, k] = values
        dead = values == NEG_INF
        self.log_weights[rows[~dead]] += values[~dead] - old[~dead]
        self._kill(rows[dead])

    def _retwist(self, rows: np.ndarray) -> None:
        if self.twist is None or not len(rows):
            return
        due = np.array([len(self.tokens[b]) % self.twist_every == 0 for b in rows.tolist()], dtype=bool)
        rows = rows[due & ~self.done[rows]]
        if not len(rows):
            return
        values = self.twist.prefix_many([self.tstates[b] for b in rows.tolist()])
        dead = values == NEG_INF
        self.log_weights[rows[~dead]] += values[~dead] - self.tvalues[rows[~dead]]
        self.tvalues[rows[~dead]] = values[~dead]
        self._kill(rows[dead])

    def _end(self, rows: np.ndarray, checked: Sequence[bool]) -> None:
        for k, p in enumerate(self.potentials):
            if checked[k] or not len(rows):
                continue
            complete = p.complete_many([self.pstates[b][k] for b in rows.tolist()])
            for b, value in zip(rows.tolist(), complete.tolist()):
                self.log_weights[b] += log_ratio(value, self.pvalues[b, k])
        self.log_weights[rows] -= self.tvalues[rows]  # the twist is provisional: remove it
        self.tvalues[rows] = 0.0
        self.done[rows] = True
        self.ended[rows] = self.log_weights[rows] > NEG_INF

    def force_end(self, rows: np.ndarray, end_log_mass: np.ndarray) -> None:
        """End ``rows`` at the budget: weight ``Q(EOS) * 1[complete]`` times every potential's end."""
        c = self.hole.constraint
        ok = np.array([c is None or c.is_complete(self.cstates[b]) for b in rows.tolist()], dtype=bool)
        weights = np.where(ok, end_log_mass, NEG_INF)
        eos = np.full(len(rows), min(self.eos_ids), dtype=np.int64)
        self.apply(rows, eos, weights, [False] * len(self.potentials))

    # ---------------------------------------------------------------------------- resampling
    def select(self, rows: np.ndarray) -> None:
        """Row ``i`` becomes a copy of row ``rows[i]`` (states are immutable or copied)."""
        idx = rows.tolist()
        self.tokens = [list(self.tokens[i]) for i in idx]
        self.texts = [self.texts[i] for i in idx]
        self.cstates = [self.cstates[i] for i in idx]
        self.pstates = [list(self.pstates[i]) for i in idx]
        self.tstates = [self.tstates[i] for i in idx]
        for name in ("pvalues", "tvalues", "log_weights", "done", "ended"):
            setattr(self, name, getattr(self, name)[rows].copy())
