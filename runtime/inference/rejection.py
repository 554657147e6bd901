"""``rejection``: draw whole texts from the model until the hard constraints hold (exact).

Each attempt samples the hole's text from ``Q`` (the target's next-token distribution, no masks)
until EOS; it is accepted when the text is in the constraint's language, within the budget, and
every boolean potential holds. Accepted texts are exact samples of ``pi / Z``. An attempt stops
as soon as its fate is known: the constraint's state is dead, a prefix predicate fails, or the
budget is spent without EOS (prefix-monotonicity makes this early rejection exact). Attempts run
``batch`` at a time as the rows of one model batch sharing the prompt's prefill.

Soft potentials (``factor``) have no rejection sampler without a bound on their weight: use smc.

>>> from genweave.runtime.models.toy import ToyLM
>>> from genweave.runtime.inference.potentials import predicate
>>> lm = ToyLM([b"a", b"b"], seed=0)
>>> hole = Hole(potentials=(predicate(lambda s: "b" not in s),), max_tokens=3)
>>> r = rejection(lm, [], hole, draws=5, seed=0)
>>> len(r.texts), all(b"b" not in t for t in r.texts)
(5, True)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from genweave.dsl.errors import GenArgumentError, GenRuntimeError
from genweave.runtime.inference.awrs import gumbel_keys
from genweave.runtime.inference.hole import Condition, Hole, excluded_tokens, target_rows
from genweave.runtime.inference.potentials import complete_text
from genweave.runtime.models.base import LanguageModel


@dataclass(frozen=True, eq=False)
class RejectionResult:
    """The first ``draws`` accepted texts (token ids without EOS, and bytes), how many attempts
    were made and how many of them were accepted in all."""

    tokens: tuple[tuple[int, ...], ...]
    texts: tuple[bytes, ...]
    attempts: int
    accepted: int

    @property
    def values(self) -> list[str]:
        return [complete_text(t) for t in self.texts]

    @property
    def acceptance_rate(self) -> float:
        """Accepted / attempted: an estimate of ``Z``, the probability that an attempt succeeds."""
        return self.accepted / self.attempts if self.attempts else 0.0

    @property
    def log_z(self) -> float:
        rate = self.acceptance_rate
        return math.log(rate) if rate > 0 else -math.inf


def rejection(model: LanguageModel, prompt: Sequence[int], hole: Hole, *, draws: int = 1, batch: int = 64,
              max_attempts: int = 100_000, seed: int | None = None, state: Any = None) -> RejectionResult:
    """``draws`` exact samples of ``hole`` after ``prompt`` (or after the one-row ``state``)."""
    if hole.has_soft_potentials():
        raise GenArgumentError("rejection sampling needs hard constraints only; the hole has a factor",
                               hint="use smc for holes with soft potentials")
    if getattr(hole.chain, "stateful", False):
        raise GenArgumentError("rejection does not support stateful sampler chains (penalties, DRY, mirostat)")
    generator = None if seed is None else torch.Generator(device=model.device).manual_seed(seed)
    state = model.prefill([list(prompt)]) if state is None else state
    accepted: list[tuple[int, ...]] = []
    attempts = 0
    while len(accepted) < draws:
        if attempts >= max_attempts:
            raise GenRuntimeError(f"rejection: only {len(accepted)} of {draws} texts accepted in {attempts} "
                                  "attempts", hint="the constraints are rarely met by the model: use smc")
        size = min(batch, max_attempts - attempts)
        accepted += _round(model, model.select(state, [0] * size), hole, generator)
        attempts += size
    total = len(accepted)
    kept = accepted[:draws]
    return RejectionResult(tuple(kept), tuple(model.vocab.decode(ids) for ids in kept), attempts, total)


def _round(model: LanguageModel, state: Any, hole: Hole, generator: torch.Generator | None
           ) -> list[tuple[int, ...]]:
    """One batch of attempts; the accepted ones in row order."""
    vocab, c = model.vocab, hole.constraint
    rows = model.logits(state).shape[0]
    excluded = excluded_tokens(vocab, model.device)
    condition = Condition(hole, vocab)
    final = [(k, p) for k, p in enumerate(hole.potentials) if p.boolean and not p.is_prefix]
    tokens: list[list[int]] = [[] for _ in range(rows)]
    cstates = [c.initial() if c is not None else None for _ in range(rows)]
    pstates = [[p.initial() for p in hole.potentials] for _ in range(rows)]
    live = np.ones(rows, dtype=bool)
    won: list[int] = []
    while live.any():
        draws = gumbel_keys(target_rows(model.logits(state), excluded, hole.chain), generator).argmax(-1)
        draws = draws.cpu().numpy()
        feed = np.zeros(rows, dtype=bool)
        for b in np.flatnonzero(live).tolist():
            t = int(draws[b])
            if t in condition.eos_ids:
                live[b] = False
                if condition.allows_end(cstates[b], pstates[b]) and all(
                        p.complete(pstates[b][k]) == 0.0 for k, p in final):
                    won.append(b)
            elif (hole.limit is not None and len(tokens[b]) >= hole.limit) or not condition.allows(
                    cstates[b], pstates[b], t):
                live[b] = False
            else:
                _advance(hole, tokens[b], cstates, pstates, b, t, vocab.token_bytes[t])
                feed[b] = True
        if feed.any():
            grid = torch.as_tensor(np.where(feed, draws, 0), device=model.device).unsqueeze(1)
            lengths = None if feed.all() else torch.as_tensor(feed.astype(np.int64), device=model.device)
            state, _ = model.extend(state, grid, lengths)
    return [tuple(tokens[b]) for b in sorted(won)]


def _advance(hole: Hole, tokens: list[int], cstates: list, pstates: list, b: int, t: int, data: bytes) -> None:
    tokens.append(t)
    if hole.constraint is not None:
        cstates[b] = hole.constraint.advance(cstates[b], t)
    pstates[b] = [p.advance(s, t, data) for p, s in zip(hole.potentials, pstates[b])]
