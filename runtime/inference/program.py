"""Whole programs under particle inference: ``infer: smc ...`` and ``awrs``.

The batch holds ``draws x particles`` rows: row ``g * N + i`` is particle ``i`` of the particle
system of draw ``g``; systems are independent (plain ``awrs`` is one particle per draw). Text,
``let``, branches, loops, calls, ``factor`` and ``condition`` run on every row exactly as in
:mod:`genweave.runtime.execute` (rows split into groups at data-dependent branches); each hole is
filled for all the rows of a group at once by a :class:`ParticleFilter`:

* its target is the hole's part of the program's target ``pi`` (see :mod:`.hole`): the model after
  the program's sampler chain, restricted to the hole's language (``max N tokens`` forces EOS, with
  the importance correction), times the hole's ``where`` predicate. A ``prefix`` predicate on the
  hole's text is a potential checked token by token (AWRS folds it into its walk); any other
  ``where`` condition is checked on the finished value, with the row's bindings;
* rows enter with their log-weights so far (earlier holes, ``factor``, ``condition``) and leave
  with those times the hole's incremental weights, so a row's weight is always ``pi / q`` of its
  trace so far;
* resampling is per *segment*: the rows of one system inside the group (all of it, unless
  branches split the system). A segment whose ESS falls below ``ess x size`` is resampled and its
  weights set to their mean, which keeps ``sum_i w_i f(x_i)`` unbiased for every segment, so split
  systems keep resampling on their own;
* after the hole every per-row datum of the executor is re-indexed by the particles' ancestors.
  A row whose weight became 0 in the hole is replaced by resampling its segment (when resampling
  is on and the segment has a live row) or leaves the batch (its result keeps weight 0).

``Result.weight`` is a particle's final log-weight; ``exp`` of the mean weight of a system is its
``Z``-hat, an unbiased estimate of ``Z = sum pi``, and the weighted particles converge to
``pi / Z`` as ``N`` grows (the guarantee is *consistent*). Under plain ``awrs`` each draw is one
particle: its tokens follow the locally constrained law and its weight is an unbiased estimate of
``pi / q`` of its trace.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from genweave.runtime.execute import Env, Fill, Plan, _Group, _Run, hole_chain
from genweave.runtime.inference.awrs import AWRSConfig
from genweave.runtime.inference.hole import Hole
from genweave.runtime.inference.potentials import NEG_INF, Potential, predicate
from genweave.runtime.inference.resampling import effective_sample_size, normalized, resample
from genweave.runtime.inference.results import SMCStats, log_mean_exp
from genweave.runtime.inference.smc import ParticleFilter, SMCConfig
from genweave.runtime.models.base import LanguageModel
from genweave.runtime.result import InferenceStats, Results
from genweave.runtime.samplers import ChainSpec

Segment = tuple[int, int]  # [start, stop) of one system's rows inside a group


@dataclass(frozen=True)
class ParticlePlan:
    """How a program's holes are filled by particles.

    ``particles`` per draw; resample a segment when its ESS < ``ess_threshold x size`` with
    ``resampling``; ``proposal`` is ``"sample"`` (masked, through ``proposal_chain``, or the
    target's chain when None) or ``"awrs"``; ``twist``: a prefix potential on each hole's text,
    added every ``twist_every`` tokens and removed when the hole ends.
    """

    particles: int
    ess_threshold: float = 0.5
    resampling: str = "systematic"
    proposal: str = "sample"
    proposal_chain: ChainSpec | None = None
    twist: Potential | None = None
    twist_every: int = 1
    awrs: AWRSConfig = AWRSConfig()

    def config(self, rows: int, proposal_chain: Any) -> SMCConfig:
        """The engine's configuration for one group of ``rows`` rows (resampling is per segment)."""
        return SMCConfig(rows, self.ess_threshold, self.resampling, self.proposal, proposal_chain, self.awrs,
                         self.twist, self.twist_every)


def run_particles(plan: Plan, model: LanguageModel, args: Env, draws: int,
                  generator: torch.Generator | None) -> Results:
    """Run ``plan`` (whose ``particles`` is set) as ``draws`` independent particle systems."""
    n = plan.particles.particles
    run = _ParticleRun(plan, model, args, draws * n, generator)
    run.execute(plan.steps, _Group(list(range(draws * n)), None))
    return Results(tuple(run.results()), particles=n, stats=run.stats())


class _ParticleRun(_Run):
    """The executor's run with holes filled by particle filters (module docstring)."""

    def __init__(self, plan: Plan, model: LanguageModel, args: Env, rows: int,
                 generator: torch.Generator | None):
        super().__init__(plan, model, args, rows, generator)
        self.particles: ParticlePlan = plan.particles
        self.logprob = [math.nan] * rows  # particles carry weights, not the law they were drawn from
        self.tally = _Tally()

    def _fill(self, hole: Fill, group: _Group) -> None:
        if not group.rows:
            return
        self._flush(group)
        rows = group.rows
        segments = segments_of(rows, self.particles.particles)
        run = _SegmentFilter(self.model, group.state, self._problem(hole, rows), self._config(len(rows)),
                             segments, generator=self.generator,
                             log_weights=np.array([self.weight[r] for r in rows], dtype=np.float64),
                             histories=[self.tokens[r] for r in rows]).run()
        system = run.results[0]
        self.tally.add(system.stats)
        self.reindex(rows, run.ancestors)
        weights = system.log_weights.copy()
        for k, row in enumerate(rows):
            weights[k] = self._finish(hole, row, system.texts[k], system.tokens[k], weights[k])
        self._replace_dead(group, run.state, segments, weights)

    def _problem(self, hole: Fill, rows: list[int]) -> Hole:
        """The engine's view of ``hole``: its constraint, prefix predicate, budget and target chain."""
        potentials = ()
        if hole.prefix is not None and (hole.stop is None or hole.keep_stop):
            # The predicate reads the raw text; with a cut stop string the value differs, so it is
            # then only checked on the value (complete-only), which is still exact.
            potentials = (predicate(hole.prefix, prefix=True, name=f"where on {hole.name}"),)
        budget = hole.max_tokens if hole.max_tokens is not None else self._context_left(rows)
        return Hole(hole.constraint, potentials, budget, self._compiled(hole_chain(self.plan, hole), len(rows)))

    def _config(self, rows: int) -> SMCConfig:
        return self.particles.config(rows, self._compiled(self.particles.proposal_chain, rows))

    def _compiled(self, chain: ChainSpec | None, rows: int) -> Any:
        if chain is None or not len(chain):
            return None
        return chain.compile(len(self.model.vocab), device=self.model.device, batch=rows)

    def _finish(self, hole: Fill, row: int, data: bytes, tokens: Sequence[int], weight: float) -> float:
        """Bind the hole's value in ``row``; returns the row's weight (0 when ``where`` fails)."""
        text = data.decode("utf-8", errors="replace")
        value = text
        if hole.stop is not None and value.endswith(hole.stop) and not hole.keep_stop:
            value = value[: len(value) - len(hole.stop)]
        if weight > NEG_INF and hole.check is not None and not hole.check(self.env[row], value):
            weight = NEG_INF
        if weight > NEG_INF and hole.parse is not None:
            value = hole.parse(value)
        self.env[row][hole.name] = value
        self.tokens[row] += tokens
        self.hole_tokens[row][hole.name] = tuple(tokens)
        self.emitted[row] += text
        if self.messages[row]:
            self.messages[row][-1]["content"] += text
        self.weight[row] = float(weight)
        return weight

    def _replace_dead(self, group: _Group, state: Any, segments: list[Segment], weights: np.ndarray) -> None:
        """Revive rows that died in the hole by resampling their segment, or drop them (module
        docstring); ``state`` is the model state of ``group.rows`` after the hole."""
        rows = group.rows
        dead = weights == NEG_INF
        if self.particles.ess_threshold > 0 and dead.any():
            mixed = [s for s, (a, b) in enumerate(segments) if dead[a:b].any() and not dead[a:b].all()]
            if mixed:
                ancestors, weights = resample_segments(weights, segments, mixed, self.particles.resampling,
                                                       _host_generator(self.generator))
                self.reindex(rows, ancestors)
                for k, row in enumerate(rows):
                    self.weight[row] = float(weights[k])
                state = self.model.select(state, torch.as_tensor(ancestors, device=self.model.device))
                self.tally.resamplings += len(mixed)
                dead = weights == NEG_INF
        if not dead.any():
            group.state = state
            return
        alive = np.flatnonzero(~dead)
        group.rows = [rows[k] for k in alive.tolist()]
        group.state = self.model.select(state, alive.tolist()) if len(alive) else None

    def stats(self) -> InferenceStats:
        t = self.tally
        calls = np.concatenate(t.calls) if t.calls else np.zeros(0, dtype=np.int64)
        return InferenceStats(t.steps, t.draws, calls, t.resamplings)


@dataclass
class _Tally:
    """What the filters of one run did, summed over holes (see :class:`InferenceStats`)."""

    steps: int = 0
    draws: int = 0
    resamplings: int = 0
    calls: tuple[np.ndarray, ...] = ()

    def add(self, stats: SMCStats) -> None:
        self.steps += stats.steps
        self.draws += stats.draws
        self.resamplings += stats.resamplings
        self.calls += (stats.calls,)


class _SegmentFilter(ParticleFilter):
    """A :class:`ParticleFilter` over one group's rows, resampling each segment on its own."""

    def __init__(self, model: LanguageModel, state: Any, hole: Hole, config: SMCConfig,
                 segments: list[Segment], generator: torch.Generator | None, log_weights: np.ndarray,
                 histories: Sequence[Sequence[int]]):
        super().__init__(model, state, hole, config, runs=1, generator=generator, log_weights=log_weights,
                         histories=histories)
        self.segments = segments

    def _resample(self) -> None:
        weights = self.particles.log_weights
        ess = segment_ess(weights, self.segments)
        self.ess.append(np.array([ess.min() if len(ess) else 0.0]))
        done = self.particles.done
        need = [s for s, (a, b) in enumerate(self.segments)
                if 0 < ess[s] < self.config.ess_threshold * (b - a) and not done[a:b].all()]
        if not need:
            return
        rows, new_weights = resample_segments(weights, self.segments, need, self.config.resampling,
                                              self.cpu_generator)
        self.particles.select(rows)
        self.particles.log_weights[:] = new_weights
        self.resamplings[0] += len(need)
        self.origin = self.origin[rows]
        self.state = self.model.select(self.state, torch.as_tensor(rows, dtype=torch.long, device=self.model.device))
        self.chain_state = None if self.chain_state is None else self.chain_state.select(rows)
        self.proposal_state = None if self.proposal_state is None else self.proposal_state.select(rows)


# ------------------------------------------------------------------------------------ segments
def segments_of(rows: Sequence[int], particles: int) -> list[Segment]:
    """The runs of ``rows`` (sorted) that belong to one system (``row // particles``)."""
    out, start = [], 0
    for k in range(1, len(rows) + 1):
        if k == len(rows) or rows[k] // particles != rows[start] // particles:
            out.append((start, k))
            start = k
    return out


def _by_size(segments: Sequence[Segment], chosen: Sequence[int]) -> dict[int, np.ndarray]:
    """Row indices ``[G, size]`` of the chosen segments, grouped by size (one batched op each)."""
    starts: dict[int, list[int]] = defaultdict(list)
    for s in chosen:
        a, b = segments[s]
        starts[b - a].append(a)
    return {size: np.array(a)[:, None] + np.arange(size) for size, a in starts.items()}


def segment_ess(log_weights: np.ndarray, segments: Sequence[Segment]) -> np.ndarray:
    """The effective sample size of each segment's weights (0 when all are 0)."""
    ess = np.zeros(len(segments))
    index = {seg: s for s, seg in enumerate(segments)}
    for size, rows in _by_size(segments, range(len(segments))).items():
        values = effective_sample_size(torch.from_numpy(log_weights[rows])).numpy()
        for row, value in zip(rows[:, 0].tolist(), values.tolist()):
            ess[index[(row, row + size)]] = value
    return ess


def resample_segments(log_weights: np.ndarray, segments: Sequence[Segment], chosen: Sequence[int],
                      scheme: str, generator: torch.Generator | None) -> tuple[np.ndarray, np.ndarray]:
    """Resample the ``chosen`` segments: ``(ancestors, weights)`` where row ``k`` continues row
    ``ancestors[k]`` (itself outside the chosen segments) with log-weight ``weights[k]``, the mean
    weight of its segment when resampled (so the segment's total weight is unchanged)."""
    ancestors = np.arange(len(log_weights))
    weights = log_weights.copy()
    for rows in _by_size(segments, chosen).values():
        w = torch.from_numpy(log_weights[rows])
        picked = resample(normalized(w), scheme, generator).numpy()
        ancestors[rows] = rows[:, :1] + picked
        for r in rows:
            weights[r] = log_mean_exp(log_weights[r])
    return ancestors, weights


def _host_generator(generator: torch.Generator | None) -> torch.Generator | None:
    """A CPU generator for host-side resampling, seeded from ``generator``."""
    if generator is None:
        return None
    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device).item())
    return torch.Generator().manual_seed(seed)
