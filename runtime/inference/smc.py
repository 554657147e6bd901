"""Sequential Monte Carlo for one hole: particles as the rows of one model batch.

The particles of ``runs`` independent systems of ``N`` share one :class:`LanguageModel` state
(row ``g * N + i`` is particle ``i`` of system ``g``), duplicated from one prefill with
``select``: the prompt is computed once. Each :meth:`ParticleFilter.step` makes one forward pass
for every row and, for every live particle:

1. proposes a token and its incremental weight, properly weighted for the local target
   ``phi(x) = Q(x | y) * c(x)`` (``Q`` the target's next-token distribution, ``c`` the hard
   constraints):

   * ``proposal="sample"``: ``x`` from the proposal restricted to the constraint's mask; weight
     ``log sum_{allowed} q`` (the local normalizer), times ``Q(x)/q(x)`` when the proposal chain
     differs from the target;
   * ``proposal="awrs"``: adaptive weighted rejection sampling (:mod:`.awrs`), the constraint and
     the boolean prefix potentials checked only on drawn tokens;
   * after ``max N tokens``: EOS is forced, with weight ``Q(EOS) * 1[text complete]`` (its
     proposal probability is 1);

2. multiplies in the potentials and the twist (:mod:`.particles`);
3. resamples a system whose ESS fell below ``ess_threshold * N`` (``select`` re-indexes the model
   state and every per-particle state; nothing is recomputed), setting its weights to their mean.

``exp(log_z)`` is an unbiased estimate of ``Z = sum_y pi(y)`` and the weighted particles converge
to ``pi / Z`` (see :mod:`.hole`) as ``N`` grows: the engine is *consistent*.

>>> from genweave.runtime.models.toy import ToyLM
>>> from genweave.runtime.inference.potentials import factor
>>> lm = ToyLM([b"a", b"b"], seed=0)
>>> hole = Hole(potentials=(factor(lambda s: s.count("a")),), max_tokens=3)
>>> run = smc(lm, [], hole, SMCConfig(particles=8), seed=1)
>>> result = run.results[0]
>>> len(result.texts), round(sum(result.posterior.values()), 6)
(8, 1.0)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from genweave.dsl.errors import GenArgumentError, NaNLogitsError
from genweave.runtime.inference.awrs import AWRSConfig, awrs, gumbel_keys
from genweave.runtime.inference.hole import (
    Condition,
    Hole,
    end_log_mass,
    excluded_tokens,
    forbid_,
    target_rows,
)
from genweave.runtime.inference.particles import ParticleSet
from genweave.runtime.inference.potentials import NEG_INF, Potential
from genweave.runtime.inference.resampling import SCHEMES, effective_sample_size, normalized, resample
from genweave.runtime.inference.results import SMCResult, SMCRun, SMCStats, log_mean_exp
from genweave.runtime.models.base import LanguageModel


@dataclass(frozen=True)
class SMCConfig:
    """``particles`` per system; resample when ESS < ``ess_threshold * particles`` with
    ``resampling`` (multinomial, stratified, systematic, residual); ``proposal``: ``"sample"``
    (masked) or ``"awrs"``; ``proposal_chain``: the compiled chain of ``propose sample CHAIN`` (None:
    propose from the target's own distribution); ``twist``: a prefix potential added every
    ``twist_every`` tokens and removed at the end (it guides resampling, not the target)."""

    particles: int = 16
    ess_threshold: float = 0.5
    resampling: str = "multinomial"
    proposal: str = "sample"
    proposal_chain: Any = None
    awrs: AWRSConfig = AWRSConfig()
    twist: Potential | None = None
    twist_every: int = 1

    def __post_init__(self) -> None:
        if self.particles < 1:
            raise GenArgumentError(f"smc needs at least one particle, not {self.particles}")
        if not 0.0 <= self.ess_threshold <= 1.0:
            raise GenArgumentError(f"the ESS threshold is a fraction in [0, 1], not {self.ess_threshold}")
        if self.resampling not in SCHEMES:
            raise GenArgumentError(f"unknown resampling scheme {self.resampling!r}",
                                   hint=f"use one of {', '.join(SCHEMES)}")
        if self.proposal not in ("sample", "awrs"):
            raise GenArgumentError(f"an smc proposal is 'sample' or 'awrs', not {self.proposal!r}")
        if self.twist is not None and not self.twist.is_prefix:
            raise GenArgumentError(f"cannot twist with {self.twist.name!r}: it is complete-only",
                                   hint="twist with a potential declared `prefix`")
        if self.twist_every < 1:
            raise GenArgumentError(f"twist every k tokens needs k >= 1, not {self.twist_every}")


class ParticleFilter:
    """SMC on one hole (module docstring). ``state`` has one row (duplicated here) or
    ``runs * particles`` rows; ``log_weights`` are the rows' weights so far (earlier holes);
    ``histories`` the rows' token ids so far, for stateful sampler chains."""

    def __init__(self, model: LanguageModel, state: Any, hole: Hole, config: SMCConfig = SMCConfig(), *,
                 runs: int = 1, generator: torch.Generator | None = None,
                 log_weights: np.ndarray | None = None, histories: Sequence[Sequence[int]] | None = None):
        self.model, self.hole, self.config = model, hole, config
        self.runs, self.n = runs, config.particles
        rows = runs * config.particles
        have = model.logits(state).shape[0]
        if have == 1 and rows > 1:
            state = model.select(state, [0] * rows)
            histories = None if histories is None else [histories[0]] * rows
        elif have != rows:
            raise GenArgumentError(f"smc got a state of {have} rows for {runs} x {config.particles} particles")
        self.state, self.generator = state, generator
        self.cpu_generator = _cpu_generator(generator)
        self.excluded = excluded_tokens(model.vocab, model.device)
        self.eos = list(model.vocab.eos_ids)
        self.limit = hole.limit
        self.particles = ParticleSet(hole, model.vocab, rows, config.twist, config.twist_every, log_weights)
        self.chain_state = _new_state(hole.chain, rows, histories)
        self.proposal_state = _new_state(config.proposal_chain, rows, histories)
        # Constraints with cached per-state masks (regular and finite languages) are masked before
        # AWRS, which then checks only what cannot be masked cheaply (prefix predicates).
        self.premask = config.proposal == "awrs" and getattr(hole.constraint, "cached_masks", False)
        self.condition = Condition(hole, model.vocab, with_constraint=not self.premask)
        self.origin = np.arange(rows)
        self.steps = 0
        self.draws = np.zeros(runs, dtype=np.int64)
        self.calls: list[list[np.ndarray]] = [[] for _ in range(runs)]
        self.resamplings = np.zeros(runs, dtype=np.int64)
        self.ess: list[np.ndarray] = []

    # ------------------------------------------------------------------------------ stepping
    def run(self) -> SMCRun:
        """Step until every particle has ended or died; the result."""
        while self.step():
            pass
        return self.result()

    def step(self) -> bool:
        """One token for every live particle, then resampling; False once every particle is done."""
        live = self.particles.live()
        if not len(live):
            return False
        logits = self.model.logits(self.state)
        target = target_rows(logits, self.excluded, self.hole.chain, self.chain_state)
        proposal = target
        if self.config.proposal_chain is not None:
            proposal = target_rows(logits, self.excluded, self.config.proposal_chain, self.proposal_state)
        index = torch.as_tensor(live, dtype=torch.long, device=logits.device)
        if self.limit is not None and self.steps >= self.limit:
            mass = end_log_mass(target.index_select(0, index), self.eos).cpu().numpy()
            self.particles.force_end(live, mass)
            grown = live[:0]
        else:
            np.add.at(self.draws, live // self.n, 1)
            draw = self._awrs if self.config.proposal == "awrs" else self._masked
            grown = draw(live, index, target, proposal)
        self._feed(grown)
        self.steps += 1
        self._resample()
        return bool((~self.particles.done).any())

    def _masked(self, live: np.ndarray, index: torch.Tensor, target: torch.Tensor,
                proposal: torch.Tensor) -> np.ndarray:
        rows = forbid_(proposal.index_select(0, index), self.hole.constraint,
                       [self.particles.cstates[b] for b in live.tolist()])
        log_mass = torch.logsumexp(rows, dim=-1)
        tokens = gumbel_keys(rows, self.generator).argmax(dim=-1)
        log_w = log_mass + self._correction(index, tokens, target, proposal)
        tokens, log_w, log_mass = (t.cpu().numpy() for t in (tokens, log_w, log_mass))
        if np.isnan(log_mass).any():
            raise NaNLogitsError("NaN next-token log-probs in an SMC step",
                                 hint="the model or a logits processor produced NaN; check the model's dtype")
        tokens = np.where(log_mass == NEG_INF, -1, tokens)
        return self.particles.apply(live, tokens, log_w, [False] * len(self.hole.potentials))

    def _awrs(self, live: np.ndarray, index: torch.Tensor, target: torch.Tensor,
              proposal: torch.Tensor) -> np.ndarray:
        particles, allows = self.particles, self.condition.allows
        rows = live.tolist()

        def condition(j: int, token: int) -> bool:
            b = rows[j]
            return allows(particles.cstates[b], particles.pstates[b], token)

        logw = proposal.index_select(0, index)
        if self.premask:
            forbid_(logw, self.hole.constraint, [particles.cstates[b] for b in rows])
        draw = awrs(logw, condition, self.generator, self.config.awrs)
        log_w = draw.log_weights
        if self.config.proposal_chain is not None:
            tokens = torch.as_tensor(np.maximum(draw.tokens, 0), device=index.device)
            log_w = log_w + self._correction(index, tokens, target, proposal).cpu().numpy()
        for g in range(self.runs):
            self.calls[g].append(draw.calls[live // self.n == g])
        return particles.apply(live, draw.tokens, log_w, self.hole.foldable)

    def _correction(self, index: torch.Tensor, tokens: torch.Tensor, target: torch.Tensor,
                    proposal: torch.Tensor) -> torch.Tensor:
        """``log Q(x) - log q(x)`` of the drawn tokens (0 when the proposal is the target)."""
        if proposal is target:
            return torch.zeros(tokens.shape, dtype=torch.float64, device=tokens.device)
        picked = tokens.unsqueeze(1)
        return (target.index_select(0, index).gather(1, picked) - proposal.index_select(0, index).gather(1, picked)
                ).squeeze(1)

    def _feed(self, grown: np.ndarray) -> None:
        """Append the new tokens of ``grown`` rows to the model state and the chain states."""
        rows = self.particles.rows
        tokens = np.full(rows, -1, dtype=np.int64)
        tokens[grown] = [self.particles.tokens[b][-1] for b in grown.tolist()]
        for state in (self.chain_state, self.proposal_state):
            if state is not None:
                state.advance(torch.as_tensor(tokens))
        if not len(grown):
            return
        device = self.model.device
        grid = torch.as_tensor(np.maximum(tokens, 0), device=device).unsqueeze(1)
        lengths = None if len(grown) == rows else torch.as_tensor((tokens >= 0).astype(np.int64), device=device)
        self.state, _ = self.model.extend(self.state, grid, lengths)

    # ------------------------------------------------------------------------------ resampling
    def _resample(self) -> None:
        n, weights = self.n, self.particles.log_weights
        log_w = torch.from_numpy(weights).view(self.runs, n)
        ess = effective_sample_size(log_w)
        self.ess.append(ess.numpy())
        live = torch.from_numpy(~self.particles.done).view(self.runs, n).any(dim=1)
        need = (ess < self.config.ess_threshold * n) & live & (ess > 0)
        if not bool(need.any()):
            return
        groups = need.nonzero().flatten()
        ancestors = resample(normalized(log_w[groups]), self.config.resampling, self.cpu_generator)
        rows = np.arange(self.particles.rows)
        means = [log_mean_exp(weights[g * n:(g + 1) * n]) for g in groups.tolist()]
        for j, g in enumerate(groups.tolist()):
            rows[g * n:(g + 1) * n] = g * n + ancestors[j].numpy()
        self.particles.select(rows)
        for j, g in enumerate(groups.tolist()):
            self.particles.log_weights[g * n:(g + 1) * n] = np.where(
                self.particles.log_weights[g * n:(g + 1) * n] > NEG_INF, means[j], NEG_INF)
        self.resamplings[groups.numpy()] += 1
        self.origin = self.origin[rows]
        index = torch.as_tensor(rows, dtype=torch.long, device=self.model.device)
        self.state = self.model.select(self.state, index)
        self.chain_state = None if self.chain_state is None else self.chain_state.select(rows)
        self.proposal_state = None if self.proposal_state is None else self.proposal_state.select(rows)

    # ------------------------------------------------------------------------------ results
    def result(self) -> SMCRun:
        p, n = self.particles, self.n
        results = []
        for g in range(self.runs):
            part = slice(g * n, (g + 1) * n)
            calls = np.concatenate(self.calls[g]) if self.calls[g] else np.zeros(0, dtype=np.int64)
            stats = SMCStats(self.steps, int(self.draws[g]), calls, int(self.resamplings[g]),
                             tuple(float(e[g]) for e in self.ess))
            weights = p.log_weights[part].copy()
            results.append(SMCResult(tuple(tuple(t) for t in p.tokens[part]), tuple(p.texts[part]), weights,
                                     p.ended[part].copy(), log_mean_exp(weights), stats))
        return SMCRun(tuple(results), self.state, self.origin.copy(), self.chain_state)


def smc(model: LanguageModel, prompt: Sequence[int], hole: Hole, config: SMCConfig = SMCConfig(), *,
        runs: int = 1, seed: int | None = None) -> SMCRun:
    """Run SMC on ``hole`` after the token ids ``prompt`` (one prefill, shared by every particle)."""
    generator = None if seed is None else torch.Generator(device=model.device).manual_seed(seed)
    state = model.prefill([list(prompt)])
    return ParticleFilter(model, state, hole, config, runs=runs, generator=generator,
                          histories=[list(prompt)]).run()


def _new_state(chain: Any, rows: int, histories: Sequence[Sequence[int]] | None) -> Any:
    if chain is None or not getattr(chain, "stateful", False):
        return None
    return chain.new_state(rows, None if histories is None else [list(h) for h in histories])


def _cpu_generator(generator: torch.Generator | None) -> torch.Generator | None:
    """A CPU generator for host-side draws (resampling), seeded from ``generator``."""
    if generator is None:
        return None
    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device).item())
    return torch.Generator().manual_seed(seed)
