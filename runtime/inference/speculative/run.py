"""Whole programs under ``speculate``: the executor with holes filled by draft-and-verify rounds.

Everything but the holes runs as in :mod:`genweave.runtime.execute`. A hole is decoded in rounds;
in each round every unfinished row of the group

1. gets a draft from the drafter (at most ``k`` tokens, fewer near the hole's token budget);
2. walks a fork of its constraint state along the draft: the mask of every draft position (a
   point-mass draft is cut before its first token the constraint forbids);
3. feeds its pending token and the draft to the target in one batched forward (ragged rows);
4. turns the target's log-probs at the ``len + 1`` positions into the program's distributions
   ``p`` -- the sampler chain, its state advanced along the draft (penalties), and the masks;
5. verifies (:func:`~genweave.runtime.inference.speculative.verify.verify_chain`) and commits the
   kept drafts and the verifier's token exactly as token-by-token decoding commits tokens;
6. rolls the target (and the draft model) back past its rejected tokens, per row.

The verifier's token is not fed at once: it goes in front of the next round's draft, so a round
costs one target forward. Each emitted token follows the same distribution as under ``sample`` /
``greedy`` decoding with the same chain and masks (greedy: the same tokens), so speculation keeps
the guarantee of the decoding it accelerates. ``Results.stats`` is a :class:`SpeculationStats`.

Which holes are speculated, and how: :func:`hole_speculation` (a hole's own ``for HOLE:`` block
replaces the program's ``speculate``); the other holes are decoded token by token by ``_Run``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from genweave.dsl.errors import GenRuntimeError
from genweave.runtime.execute import Branch, Env, Fill, Loop, Plan, _Group, _HoleDecoding, _Run, hole_chain
from genweave.runtime.inference.speculative.drafters import (
    Draft,
    Drafter,
    DraftRound,
    ModelDrafter,
    NgramDrafter,
    check_same_vocabulary,
    padded,
)
from genweave.runtime.inference.speculative.dynamic_tree import DynamicRecycleDrafter
from genweave.runtime.inference.speculative.rsd import RSDDrafter, rsd_round
from genweave.runtime.inference.speculative.spectr import SpecTrDrafter, spectr_round
from genweave.runtime.inference.speculative.tree import RecycleDrafter, walk_tree
from genweave.runtime.inference.speculative.verify import verify_chain
from genweave.runtime.models.base import LanguageModel
from genweave.runtime.result import Results
from genweave.runtime.samplers import unpack_mask

METHODS = ("draft", "ngram", "self", "recycle", "spectr", "rsd")


@dataclass(frozen=True)
class SpeculatePlan:
    """How holes are drafted: ``method`` ``draft`` (the model ``draft``: a registry spec or a loaded
    model, same vocabulary as the target), ``ngram`` (prompt lookup with n-grams of at most ``n``
    tokens), ``self`` (the target's first ``layers`` layers), ``recycle`` (Token Recycling's tree,
    :mod:`.tree`), ``spectr`` (``candidates`` i.i.d. drafts of the model ``draft``, :mod:`.spectr`) or
    ``rsd`` (a tree of ``width`` children per node, ``depth`` levels, from ``draft``, :mod:`.rsd`);
    ``k`` draft tokens per round (``recycle``: successors remembered per token); ``tree`` the shape
    of ``recycle``'s tree: ``static`` (the template) or ``dynamic`` (:mod:`.dynamic_tree`)."""

    method: str
    k: int
    n: int = 2
    layers: int = 0
    draft: str | LanguageModel | None = None
    candidates: int = 4
    width: int = 2
    depth: int = 4
    tree: str = "static"

    def drafter(self, model: LanguageModel) -> Drafter:
        if self.method == "ngram":
            return NgramDrafter(self.n, self.k)
        if self.method == "recycle" and self.tree == "dynamic":
            return DynamicRecycleDrafter(len(model.vocab), self.k, model.device)
        if self.method == "recycle":
            return RecycleDrafter(len(model.vocab), self.k, model.device)
        if self.method == "self":
            return ModelDrafter(model.early_exit(self.layers), self.k)
        if self.method in ("draft", "spectr", "rsd"):
            draft = self.draft
            if not isinstance(draft, LanguageModel):
                from genweave.runtime.models.registry import load_model

                draft = load_model(draft, device=model.device)
            check_same_vocabulary(model, draft)
            if self.method == "spectr":
                return SpecTrDrafter(draft, self.candidates, self.k)
            if self.method == "rsd":
                return RSDDrafter(draft, self.width, self.depth)
            return ModelDrafter(draft, self.k)
        raise GenRuntimeError(f"speculate {self.method} is not supported yet",
                              hint=f"supported: {', '.join(METHODS)}")


@dataclass
class SpeculationStats:
    """What speculation did over a run: ``forwards`` of the target (rounds), ``verifications`` (row
    rounds that carried a draft), ``drafted`` and ``accepted`` draft tokens, ``emitted`` tokens."""

    forwards: int = 0
    verifications: int = 0
    drafted: int = 0
    accepted: int = 0
    emitted: int = 0

    @property
    def mean_accepted(self) -> float:
        """Mean accepted draft tokens per verification (0 when nothing was verified)."""
        return self.accepted / self.verifications if self.verifications else 0.0

    @property
    def acceptance_rate(self) -> float:
        """Accepted over drafted tokens."""
        return self.accepted / self.drafted if self.drafted else 0.0


def hole_speculation(plan: Plan, hole: Fill) -> SpeculatePlan | None:
    """How ``hole`` is speculated: its own ``for HOLE:`` block's ``speculate`` when it has one (a
    block without ``speculate``, ``hole.speculate`` False, turns it off), else the program's."""
    if hole.speculate is None:
        return plan.speculate
    return hole.speculate or None


def speculates(plan: Plan) -> bool:
    """Whether some hole of ``plan`` is speculated (by the program's ``speculate`` or its own)."""
    def any_speculated(steps: tuple) -> bool:
        for step in steps:
            if isinstance(step, Fill) and hole_speculation(plan, step) is not None:
                return True
            if isinstance(step, Branch) and (any_speculated(step.then) or any_speculated(step.orelse)):
                return True
            if isinstance(step, Loop) and any_speculated(step.body):
                return True
        return False

    return any_speculated(plan.steps)


def run_speculative(plan: Plan, model: LanguageModel, args: Env, draws: int,
                    generator: torch.Generator | None) -> Results:
    """Run ``plan`` ``draws`` times as one batch: the speculated holes (:func:`hole_speculation`) in
    draft-and-verify rounds, the others token by token."""
    run = _SpeculativeRun(plan, model, args, draws, generator)
    run.execute(plan.steps, _Group(list(range(draws)), None))
    return Results(tuple(run.results()), stats=run.stats)


class _SpeculativeRun(_Run):
    """The executor's run with holes filled by draft-and-verify rounds (module docstring)."""

    def __init__(self, plan: Plan, model: LanguageModel, args: Env, draws: int,
                 generator: torch.Generator | None):
        super().__init__(plan, model, args, draws, generator)
        self.drafters: dict[SpeculatePlan, Drafter] = {}  # one per speculation, kept across holes
        self.drafter: Drafter | None = None  # the drafter of the hole being filled
        self.stats = SpeculationStats()

    def _drafter(self, speculate: SpeculatePlan) -> Drafter:
        if speculate not in self.drafters:
            self.drafters[speculate] = speculate.drafter(self.model)
        return self.drafters[speculate]

    def _fill(self, hole: Fill, group: _Group) -> None:
        speculate = hole_speculation(self.plan, hole)
        if speculate is None:
            super()._fill(hole, group)
            return
        self.drafter = self._drafter(speculate)
        model, rows = self.model, group.rows
        fill = _HoleDecoding(hole, len(rows), model.vocab)
        if hole.heal:
            self._heal(hole, group, fill)
        self._flush(group)
        chain = hole_chain(self.plan, hole).compile(len(model.vocab), device=model.device, batch=len(rows))
        chain_state = chain.new_state(len(rows), [self.tokens[r] for r in rows]) if chain.stateful else None
        budget = hole.max_tokens if hole.max_tokens is not None else self._context_left(rows)
        if hole.constraint is not None:
            budget += 1  # the end-of-sequence step after the last token
        _HoleRounds(self, hole, group, fill, chain, chain_state, budget).run()
        self._finish_hole(hole, fill, rows)


@dataclass
class _Round:
    """One round's drafts and the target's distributions at their positions."""

    drafts: list[list[int]]
    logq: torch.Tensor | None
    masks: torch.Tensor       # bool [B, T+1, V]
    dead: torch.Tensor        # bool [B, T+1]: the constraint allows nothing there
    raw: torch.Tensor | None = None   # [B, T+1, V] the model's log-probs at each position
    logp: torch.Tensor | None = None  # [B, T+1, V] after the sampler chain and the masks
    lengths: list[int] = field(default_factory=list)


class _HoleRounds:
    """One hole of one group, decoded in draft-and-verify rounds."""

    def __init__(self, run: _SpeculativeRun, hole: Fill, group: _Group, fill: _HoleDecoding, chain: Any,
                 chain_state: Any, budget: int):
        self.run_, self.model, self.hole, self.group, self.fill = run, run.model, hole, group, fill
        self.chain, self.chain_state, self.budget = chain, chain_state, budget
        self.rows = group.rows
        self.drawn = [0] * len(self.rows)        # draws so far (end-of-sequence included)
        self.unfed: list[list[int]] = [[] for _ in self.rows]  # emitted, not yet in the target's state
        self.exhausted: list[int] = []
        self.device = run.model.device

    def run(self) -> None:
        drafter = self.run_.drafter
        drafter.begin([list(self.run_.tokens[r]) for r in self.rows])
        while any(self.fill.active):
            self.round(drafter)
        self._feed_unfed()
        if self.exhausted:
            for k in self.exhausted:
                self.fill.active[k] = True
            self.run_._out_of_budget(self.hole, self.fill, self.rows)
            for k in self.exhausted:
                self.fill.active[k] = False

    # ------------------------------------------------------------------------------ one round
    def round(self, drafter: Drafter) -> None:
        if isinstance(drafter, RecycleDrafter):
            walk_tree(self, drafter)
            return
        if isinstance(drafter, SpecTrDrafter):
            spectr_round(self, drafter)
            return
        if isinstance(drafter, RSDDrafter):
            rsd_round(self, drafter)
            return
        fill = self.fill
        limits = [self.budget - d - 1 if on else 0 for d, on in zip(self.drawn, fill.active)]
        contexts = [list(self.run_.tokens[r]) + fill.generated[k] for k, r in enumerate(self.rows)]
        fork = None if self.chain_state is None else self.chain_state.clone()
        draft = drafter.propose(DraftRound(
            contexts, limits, fill.eos, masks=self._masks, advance=self._advance,
            states=list(fill.states) if fill.states is not None else None, chain=self.chain, chain_state=fork,
            greedy=self.chain.is_greedy, generator=self.run_.generator))
        step = self._walk(draft, limits)
        self._forward(step)
        self._target_logprobs(step)
        grid, lengths = padded(step.drafts, self.device)
        logq = None if step.logq is None else step.logq[:, :grid.shape[1]]
        accepted, token = verify_chain(step.logp, grid, lengths, logq, greedy=self.chain.is_greedy,
                                       generator=self.run_.generator)
        committed, cached = self._commit(step, accepted.tolist(), token.tolist())
        self._roll_back(step, cached)
        drafter.commit(cached, committed, [not on for on in fill.active])

    def _walk(self, draft: Draft, limits: list[int]) -> _Round:
        """The masks along each row's draft (cutting point-mass drafts at a forbidden token)."""
        drafts = [list(d[:n]) if on else [] for d, n, on in zip(draft.tokens, limits, self.fill.active)]
        width = max((len(d) for d in drafts), default=0)
        states = list(self.fill.states) if self.fill.states is not None else None
        masks = []
        for i in range(width + 1):
            mask = self._masks(states)
            masks.append(mask)
            if i == width:
                break
            if draft.logq is None:
                allowed = mask[[k for k, d in enumerate(drafts) if len(d) > i],
                               [d[i] for d in drafts if len(d) > i]].tolist()
                cut = [k for k, d in enumerate(drafts) if len(d) > i]
                for k, ok in zip(cut, allowed):
                    if not ok:
                        drafts[k] = drafts[k][:i]
            eos = self.fill.eos
            states = self._advance(states, [d[i] if len(d) > i and d[i] not in eos else -1 for d in drafts])
        lengths = [len(d) for d in drafts]
        stacked = torch.stack(masks[:max(lengths, default=0) + 1], dim=1)  # vetoes may have cut the longest
        return _Round(drafts, draft.logq, stacked, ~stacked.any(-1), lengths=lengths)

    def _masks(self, states: list[Any] | None) -> torch.Tensor:
        """Bool ``[B, V]``: the text tokens each constraint state allows (all text tokens without one)."""
        allowed = self.run_.allowed
        full = allowed.expand(len(self.rows), allowed.shape[-1])
        if states is None:
            return full.clone()
        packed = self.fill.constraint.mask(states).to(allowed.device)
        return unpack_mask(packed, allowed.shape[-1]) & allowed

    def _walk_path(self, state: Any, tokens: list[int]) -> Any:
        """A constraint state advanced along ``tokens`` (end-of-sequence leaves it as it is)."""
        for token in tokens:
            if token not in self.fill.eos:
                state = self.fill.constraint.advance(state, token)
        return state

    def _advance(self, states: list[Any] | None, tokens: list[int]) -> list[Any] | None:
        if states is None:
            return None
        constraint = self.fill.constraint
        return [s if t < 0 else constraint.advance(s, t) for s, t in zip(states, tokens)]

    def _forward(self, step: _Round) -> None:
        """One target forward over each row's pending token and draft: ``step.raw`` ``[B, T+1, V]``."""
        pieces = [u + d for u, d in zip(self.unfed, step.drafts)]
        offsets = torch.tensor([len(u) for u in self.unfed], dtype=torch.long, device=self.device)
        before = self.model.logits(self.group.state)
        if any(pieces):
            grid, lengths = padded(pieces, self.device)
            self.group.state, out = self.model.extend(self.group.state, grid, lengths)
            full = torch.cat([before[:, None], out], dim=1)
            self.run_.stats.forwards += 1
        else:
            full = before[:, None]
        positions = offsets[:, None] + torch.arange(max(step.lengths, default=0) + 1, device=self.device)[None, :]
        index = positions.clamp(max=full.shape[1] - 1)
        raw = full.gather(1, index[..., None].expand(-1, -1, full.shape[-1]))
        lengths = torch.tensor(step.lengths, dtype=torch.long, device=self.device)
        used = torch.arange(raw.shape[1], device=self.device)[None, :] <= lengths[:, None]
        step.raw = torch.where(used[..., None], raw, before[:, None])  # past a row's draft: a finite stand-in
        self.unfed = [[] for _ in self.rows]

    def _target_logprobs(self, step: _Round) -> None:
        """``step.logp``: the chain's log-probs at every position, its state advanced along the drafts;
        a position where the constraint allows nothing gets a stand-in (the verifier never emits there:
        reaching it is a dead end, raised by :meth:`_commit`)."""
        chain, batch, positions, vocab = self.chain, *step.raw.shape[:2], step.raw.shape[-1]
        masks = step.masks | step.dead[..., None]
        where = f"hole '{self.hole.name}' ({self.hole.where})"
        if self.chain_state is None:
            logp = chain.logprobs(step.raw.reshape(-1, vocab), None, mask=masks.reshape(-1, vocab), context=where)
            step.logp = logp.view(batch, positions, vocab)
            return
        out = []
        for i in range(positions):
            out.append(chain.logprobs(step.raw[:, i], self.chain_state, mask=masks[:, i], context=where))
            if i + 1 < positions:
                self.chain_state.advance([d[i] if len(d) > i else -1 for d in step.drafts])
        self.chain_state.rollback(positions - 1)
        step.logp = torch.stack(out, dim=1)

    # ------------------------------------------------------------------------------ commit
    def _commit(self, step: _Round, accepted: list[int], token: list[int]) -> tuple[list[list[int]], list[int]]:
        """Record each row's kept drafts and token like token-by-token decoding; returns the tokens
        each row committed (text tokens) and how many of them are drafts (in the target's state)."""
        fill, stats = self.fill, self.run_.stats
        emitted = [d[:n] + [y] if on else [] for d, n, y, on in zip(step.drafts, accepted, token, fill.active)]
        picked = padded(emitted, self.device, step.logp.shape[1])[0]
        logp = step.logp.gather(-1, picked[..., None])[..., 0].tolist()
        dead_at = step.dead.gather(1, torch.tensor(accepted, device=self.device)[:, None])[:, 0].tolist()
        committed: list[list[int]] = [[] for _ in self.rows]
        drawn: list[list[int]] = [[] for _ in self.rows]
        for k, tokens in enumerate(emitted):
            if not tokens:
                continue
            if step.lengths[k]:
                stats.verifications += 1
                stats.drafted += step.lengths[k]
                stats.accepted += accepted[k]
            if dead_at[k] and not fill.eos.intersection(tokens[:-1]):
                self._emit(k, tokens[:-1], logp[k], committed[k], drawn[k])
                fill._dead_end(k)
            self._emit(k, tokens, logp[k], committed[k], drawn[k])
            stats.emitted += len(drawn[k])
        self._advance_chain(step, drawn)
        cached = [min(n, len(c)) for n, c in zip(accepted, committed)]
        self.unfed = [c[m:] for c, m in zip(committed, cached)]
        return committed, cached

    def _emit(self, k: int, tokens: list[int], logp: list[float], committed: list[int], drawn: list[int]) -> None:
        """Row ``k`` draws ``tokens`` in order (as ``_HoleDecoding.advance`` would, one per step)."""
        fill, row = self.fill, self.rows[k]
        for j, token in enumerate(tokens):
            if not fill.active[k]:
                return
            self.run_.logprob[row] += logp[j]
            drawn.append(token)
            over = self.drawn[k] == self.hole.max_tokens
            self.drawn[k] += 1
            if not fill.take(k, token, over):
                return
            committed.append(token)
            if self.drawn[k] >= self.budget:
                fill.active[k] = False
                self.exhausted.append(k)
                return

    def _advance_chain(self, step: _Round, drawn: list[list[int]]) -> None:
        """Advance the real sampler state by the tokens drawn (the chain sees each position again, so
        state that depends on the distribution, like mirostat's ``mu``, updates as in plain decoding)."""
        if self.chain_state is None:
            return
        masks = step.masks | step.dead[..., None]
        for j in range(max((len(d) for d in drawn), default=0)):
            self.chain.logprobs(step.raw[:, j], self.chain_state, mask=masks[:, j])
            self.chain_state.advance([d[j] if len(d) > j else -1 for d in drawn])

    def _roll_back(self, step: _Round, cached: list[int]) -> None:
        """Drop the rejected drafts from the target's state, per row."""
        dropped = [n - c for n, c in zip(step.lengths, cached)]
        if not any(dropped):
            return
        rows = torch.arange(len(self.rows), device=self.device)
        after = step.raw[rows, torch.tensor(cached, device=self.device)]
        self.group.state = self.model.rollback(self.group.state, dropped, after)

    def _feed_unfed(self) -> None:
        """Feed the tokens emitted last (not in the target's state yet) so the hole ends fed."""
        if not any(self.unfed):
            return
        grid, lengths = padded(self.unfed, self.device)
        self.group.state, _ = self.model.extend(self.group.state, grid, lengths)
        self.unfed = [[] for _ in self.rows]
