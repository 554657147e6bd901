"""Search and selection over whole programs: ``beam``, ``best_of``, ``cautious``, ``lookahead_tree``,
and the exact distribution of ``enumerate``-d holes.

Each runs the executor (:mod:`genweave.runtime.execute`) with several rows per draw: row
``g * k + i`` is row ``i`` of draw ``g``. Text, ``let``, branches, loops, calls, ``factor`` run on
every row as in plain decoding (rows may split into groups at data-dependent branches); holes are
filled by the engine of the search, for all rows of a group at once:

* ``beam W`` (:mod:`.beam`): ``k = W`` hypotheses; each draw returns its ``returns`` best
  (deterministic: by normalized score; stochastic: by perturbed value ``G``, an exact sample
  without replacement; with ``returns < W`` their weights are priority-sampling weights
  ``p / q_kappa``, so ``Results.posterior`` estimates the sampling law);
* ``best_of N by expr``: ``k = N`` independent sampled traces (plain decoding); each draw returns the
  one whose ``expr`` (evaluated on that trace's bindings) is largest, the first on ties; traces with
  weight zero (a failed check) are never chosen unless all are;
* ``cautious`` (:mod:`.cautious`): one row per draw; uncertain steps pick the lowest-perplexity of
  several sampled segments;
* ``lookahead_tree`` (:mod:`.lookahead`): ``k = rollouts`` diverse rollouts per draw, all returned;
* ``enumerate x`` (:mod:`.expand`): at hole ``x`` each row becomes one row per text the hole can
  produce, weighted by its exact probability, so ``Results.posterior`` is the exact distribution
  (of the returned value, given everything drawn before the hole).

All but ``enumerate`` return selections, not samples (guarantee ``selection``).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from genweave.runtime.execute import Env, Fill, Plan, _Group, _Run
from genweave.runtime.inference.beam import BeamHole, BeamSearch, decoded, start_segments
from genweave.runtime.inference.cautious import Cautious, cautious_hole
from genweave.runtime.inference.expand import expand_hole
from genweave.runtime.inference.potentials import NEG_INF
from genweave.runtime.inference.stepping import Hyp, Stepper, gumbel
from genweave.runtime.models.base import LanguageModel
from genweave.runtime.result import Result, Results


@dataclass(frozen=True)
class BestOf:
    """``best_of N by expr``: ``score`` evaluates ``expr`` on a trace's bindings."""

    n: int
    score: Any


def run_search(plan: Plan, model: LanguageModel, args: Env, draws: int,
               generator: torch.Generator | None) -> Results:
    """Run ``plan`` (whose ``search`` or ``enumerate`` is set) for ``draws`` draws."""
    from genweave.runtime.inference.lookahead import LookaheadTree  # it builds on this module

    search = plan.search
    if isinstance(search, BestOf):
        return _best_of(plan, model, args, draws, generator, search)
    per_draw = {BeamSearch: lambda s: s.width, LookaheadTree: lambda s: s.rollouts}
    k = per_draw[type(search)](search) if type(search) in per_draw else 1
    run = SearchRun(plan, model, args, draws, k, generator)
    if isinstance(search, BeamSearch) and search.stochastic:
        # The root's perturbed value is a Gumbel draw (not 0), so that every trace's G is an
        # independent Gumbel around its log-prob: priority weights need that, the order does not.
        roots = gumbel((draws,), generator, model.device).tolist()
        for g in range(draws):
            run.key[g * k] = roots[g]
    run.execute(plan.steps, _Group(list(range(draws * k)), None))
    if isinstance(search, BeamSearch):
        return run.ranked(search)
    if isinstance(search, LookaheadTree | Cautious):
        return Results(tuple(run.results()), particles=k)
    return run.expanded()


def _best_of(plan: Plan, model: LanguageModel, args: Env, draws: int, generator: torch.Generator | None,
             spec: BestOf) -> Results:
    n = spec.n
    run = _Run(plan, model, args, draws * n, generator)
    run.execute(plan.steps, _Group(list(range(draws * n)), None))
    results = run.results()
    chosen = []
    for g in range(draws):
        rows = range(g * n, (g + 1) * n)
        live = [r for r in rows if results[r].weight > NEG_INF] or list(rows)
        scores = [_as_score(spec.score(run.env[r])) for r in live]
        chosen.append(results[live[int(np.argmax(scores))]])  # argmax: the first on ties
    return Results(tuple(chosen))


def _as_score(value: Any) -> float:
    score = float(value)
    return NEG_INF if math.isnan(score) else score


class SearchRun(_Run):
    """The executor's run with ``k`` rows per draw and holes filled by the search's engine."""

    def __init__(self, plan: Plan, model: LanguageModel, args: Env, draws: int, k: int,
                 generator: torch.Generator | None):
        super().__init__(plan, model, args, draws * k, generator)
        self.k = k
        self.length = [0] * self.batch      # tokens each row's trace generated in holes
        self.key = [0.0] * self.batch       # stochastic beam: the perturbed value G of each trace
        self.draw = [row // k for row in range(self.batch)]
        self.trees: tuple = ()  # lookahead_tree: each hole's tree (forks, pruned branches)
        for row in range(self.batch):
            if row % k:  # not a hypothesis yet: a free row of its draw
                self.logprob[row] = NEG_INF
                self.key[row] = NEG_INF

    def _fill(self, hole: Fill, group: _Group) -> None:
        from genweave.runtime.inference.lookahead import LookaheadTree, lookahead_hole

        if not group.rows:
            return
        search = self.plan.search
        if hole.name in self.plan.enumerate:
            expand_hole(self, hole, group)
        elif isinstance(search, BeamSearch):
            self._beam(hole, group, search)
        elif isinstance(search, Cautious):
            cautious_hole(self, hole, group, search)
        elif isinstance(search, LookaheadTree):
            lookahead_hole(self, hole, group, search)
        else:
            super()._fill(hole, group)

    # --- pieces the engines share ---------------------------------------------------------------
    def stepper(self, hole: Fill, chain: Any = "plan") -> Stepper:
        """The per-step distributions of ``hole`` under the plan's chain (or ``chain``)."""
        spec = self.plan.chain if chain == "plan" else chain
        compiled = None
        if spec is not None and len(spec):
            compiled = spec.compile(len(self.model.vocab), device=self.model.device, batch=1)
        return Stepper(self.model, hole.constraint, self.allowed, compiled, f"'{hole.name}' ({hole.where})")

    def budget(self, hole: Fill, rows: list[int]) -> int:
        """Steps the hole may take: its token budget, plus the end for a constrained hole."""
        budget = hole.max_tokens if hole.max_tokens is not None else self._context_left(rows)
        return budget + (1 if hole.constraint is not None or hole.max_tokens is None else 0)

    def hypotheses(self, rows: list[int], stepper: Stepper) -> list[Hyp]:
        """Each row as a hypothesis at the hole's start (free rows are not alive)."""
        return [Hyp(k, cstate=stepper.initial(), logprob=self.logprob[r], length=self.length[r], key=self.key[r],
                    alive=self.logprob[r] > NEG_INF and self.weight[r] > NEG_INF, weight=self.weight[r])
                for k, r in enumerate(rows)]

    def settle(self, hole: Fill, group: _Group, state: Any, out: list[Hyp]) -> None:
        """Row ``group.rows[k]`` becomes hypothesis ``out[k]`` (a copy of its origin's row, with the
        hole bound); ``state`` holds the rows after the hole in that order."""
        rows = group.rows
        self.reindex(rows, np.array([h.origin for h in out]))
        for k, row in enumerate(rows):
            self.logprob[row], self.length[row], self.key[row] = out[k].logprob, out[k].length, out[k].key
        group.state = state
        self._finish_hole(hole, decoded(out), rows)

    def grow(self, sources: list[int]) -> list[int]:
        """Append one row per entry of ``sources``, a copy of that row; returns the new rows."""
        per_row = [v for v in vars(self).values() if isinstance(v, list) and len(v) == self.batch]
        start = self.batch
        for data in per_row:
            data.extend(copy.deepcopy(data[s]) for s in sources)
        self.batch += len(sources)
        return list(range(start, self.batch))

    def _beam(self, hole: Fill, group: _Group, spec: BeamSearch) -> None:
        self._flush(group)
        rows = group.rows
        stepper = self.stepper(hole)
        segments = start_segments(segments_of(rows, self.draw), self.hypotheses(rows, stepper))
        engine = BeamHole(spec, stepper, self.model, self.generator, hole.max_tokens, self.budget(hole, rows))
        state, out = engine.run(group.state, segments)
        self.settle(hole, group, state, out)

    # --- results ---------------------------------------------------------------------------------
    def ranked(self, spec: BeamSearch) -> Results:
        """Each draw's ``returns`` best rows: by normalized score, or by ``G`` when stochastic."""
        results = self.results()

        def rank(row: int) -> float:
            if self.logprob[row] == NEG_INF or self.weight[row] == NEG_INF:
                return NEG_INF
            if spec.stochastic:
                return self.key[row]
            return (self.logprob[row] + self.weight[row]) / max(self.length[row], 1) ** spec.length_penalty

        out = []
        for g in range(self.batch // self.k):
            rows = sorted(range(g * self.k, (g + 1) * self.k), key=lambda r: -rank(r))
            kept = [results[r] for r in rows[:spec.returns]]
            if spec.stochastic and spec.returns < self.k:
                kept = [replace(r, weight=_priority_weight(self.logprob[row], rank(rows[spec.returns])))
                        for r, row in zip(kept, rows)]
            out += kept
        return Results(tuple(out), particles=spec.returns)

    def expanded(self) -> Results:
        """Rows grouped by draw, each draw padded to the same count with weight-zero copies."""
        results = self.results()
        by_draw: dict[int, list[Result]] = {}
        for row, result in enumerate(results):
            by_draw.setdefault(self.draw[row], []).append(result)
        size = max(len(v) for v in by_draw.values())
        out: list[Result] = []
        for g in sorted(by_draw):
            members = by_draw[g]
            out += members + [_zero(members[0])] * (size - len(members))
        return Results(tuple(out), particles=size)


def _priority_weight(log_p: float, kappa: float) -> float:
    """``log(p / q)`` with ``q = 1 - exp(-exp(log p - kappa))``, the probability that a trace of
    log-prob ``log p`` is among a stochastic beam's first ``K`` when the ``K + 1``-th perturbed
    value is ``kappa``: ``sum f(y) p(y) / q(y)`` over the ``K`` returned traces estimates the mean
    of ``f`` under the sampling law without bias (priority sampling, Kool et al. 2019)."""
    if kappa == NEG_INF:  # fewer than K + 1 traces exist: every one is returned, q = 1
        return log_p
    return log_p - math.log(-math.expm1(-math.exp(log_p - kappa)))


def _zero(result: Result) -> Result:
    return Result(result.value, result.text, result.holes, result.tokens, result.logprob, result.guarantee,
                  result.hole_tokens, weight=NEG_INF)


def segments_of(rows: list[int], draw: list[int]) -> list[tuple[int, int]]:
    """The runs ``[start, stop)`` of group positions whose rows belong to one draw (``draw[row]``)."""
    out, start = [], 0
    for i in range(1, len(rows) + 1):
        if i == len(rows) or draw[rows[i]] != draw[rows[start]]:
            out.append((start, i))
            start = i
    return out
