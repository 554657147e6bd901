"""``lookahead_tree``: Lookahead Tree-Based Rollouts (LATR; Xing et al., 2025), diverse rollouts.

A draw holds ``rollouts`` rows. At a hole, the draw's rows that are still one sequence (at the first
hole: all of them) form a tree: its one live branch is the root and the other rows are free slots.
Each step of the *tree phase*, every running branch looks at ``p``, the model's next-token
distribution restricted to the tokens the hole's constraint allows (no sampler chain: branching
uses the raw model), and its ``width`` most probable tokens ``c_1 .. c_m``:

* the branch appends ``c_1`` (the tree phase is greedy);
* for ranks ``j >= 2``, ``c_j`` forks a new branch (a copy of the parent's rows plus ``c_j``) iff
  ``p(c_j) > absolute`` and ``p(c_1) - p(c_j) < relative`` (both strict); when a draw has fewer free
  slots than qualifying forks they are taken in order of (rank, branch row);
* a branch born ``depth`` tokens ago is compared with its parent over those ``depth`` positions and
  removed (its slot freed) when ``levenshtein / depth < edit``: it has not diverged enough. The
  comparison is skipped when either ended inside the window or the parent was removed.

The tree phase ends when no slot of any draw is free and no branch is inside its pruning window (or
when the hole's budget is spent); free slots are then filled by copies of the draw's first branch,
and every branch still running is completed by ordinary decoding through the program's chain.
Guarantee: none distributional (a selection). Structural invariants: a branch equals its parent up
to its birth position and differs there; a draw never holds more than ``rollouts`` branches.
Not implemented from the reference: the mixing schedule with plain samples, the suffix-match and
ROUGE-L pruning rules, the math-symbol exemption and the cumulative-probability filter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from genweave.dsl.errors import BudgetExhaustedError, NoValidTokenError
from genweave.runtime.inference.potentials import NEG_INF
from genweave.runtime.inference.stepping import Hyp, Stepper, dead, regroup
from genweave.runtime.samplers import gumbel_argmax


@dataclass(frozen=True)
class LookaheadTree:
    """``lookahead_tree [rollouts n] [width m] [depth r] [absolute a] [relative b] [edit e]``."""

    rollouts: int = 8
    width: int = 2
    depth: int = 20
    absolute: float = 0.25
    relative: float = 0.15
    edit: float = 0.4


@dataclass(frozen=True)
class Fork:
    """A branch's birth: at tree step ``step`` branch ``child`` forked from ``parent`` with ``token``
    at hole position ``position``; ``p_top``/``p_token``: the probabilities of ``c_1`` and the token."""

    step: int
    parent: int
    child: int
    token: int
    position: int
    p_top: float
    p_token: float


@dataclass
class _Tree:
    """Per group position: the branch id (None: a free slot), its parent's id, birth position and
    whether its pruning check is done."""

    ids: list[int | None]
    parents: list[int | None]
    births: list[int]
    checked: list[bool]
    segments: list[tuple[int, int]]
    forks: list[Fork] = field(default_factory=list)
    pruned: list[int] = field(default_factory=list)
    next_id: int = 0

    def slot_of(self, branch: int) -> int | None:
        return self.ids.index(branch) if branch in self.ids else None


def levenshtein(a: list[int], b: list[int]) -> int:
    """Edit distance between two short token lists."""
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return row[-1]


class LookaheadHole:
    """Fills one hole for a group's rows (module docstring)."""

    def __init__(self, spec: LookaheadTree, raw: Stepper, sampler: Stepper, model: Any,
                 generator: torch.Generator | None, greedy: bool, max_tokens: int | None):
        self.spec, self.raw, self.sampler, self.model = spec, raw, sampler, model
        self.generator, self.greedy = generator, greedy
        self.limit = max_tokens if raw.constraint is None else None

    def run(self, state: Any, hyps: list[Hyp], segments: list[tuple[int, int]],
            budget: int) -> tuple[Any, list[Hyp], _Tree]:
        tree = self._plant(hyps, segments)
        steps = 0
        while steps < budget and self._growing(tree, hyps):
            state, hyps = self._grow(state, hyps, tree, steps)
            steps += 1
        state, hyps = self._fill_free(state, hyps, tree)
        while steps < budget and any(h.running for h in hyps):
            state, hyps = self._sample(state, hyps)
            steps += 1
        if any(h.running for h in hyps) and self.raw.constraint is not None:
            raise BudgetExhaustedError(f"lookahead_tree over hole {self.raw.where} used its whole token budget "
                                       "before the text was complete", hint="raise `max N tokens`")
        return state, hyps, tree

    def _plant(self, hyps: list[Hyp], segments: list[tuple[int, int]]) -> _Tree:
        tree = _Tree([None] * len(hyps), [None] * len(hyps), [0] * len(hyps), [True] * len(hyps), segments)
        for k, h in enumerate(hyps):
            if h.alive:
                tree.ids[k], tree.next_id = tree.next_id, tree.next_id + 1
        return tree

    def _growing(self, tree: _Tree, hyps: list[Hyp]) -> bool:
        if not any(h.running and tree.ids[k] is not None for k, h in enumerate(hyps)):
            return False
        free = any(i is None for i in tree.ids)
        window = any(not c and p is not None and hyps[k].running
                     for k, (c, p) in enumerate(zip(tree.checked, tree.parents)))
        return free or window

    def _grow(self, state: Any, hyps: list[Hyp], tree: _Tree, step: int) -> tuple[Any, list[Hyp]]:
        """One tree step: every running branch appends its top token; qualifying forks fill free slots."""
        logits = self.model.logits(state)
        live = [k for k, h in enumerate(hyps) if tree.ids[k] is not None and h.running]
        lp = self.raw.logprobs(logits.index_select(0, torch.as_tensor(live, device=logits.device)),
                               [hyps[k].cstate for k in live])
        for k, stuck in zip(live, (lp.amax(dim=-1) == NEG_INF).tolist()):
            if stuck:  # a dead end: the branch is dropped
                tree.ids[k], hyps[k] = None, dead(hyps[k].origin)
        p_top, c_top = lp.exp().topk(min(self.spec.width, lp.shape[1]), dim=-1)
        sources, feed, new = list(range(len(hyps))), [-1] * len(hyps), list(hyps)
        for row, k in enumerate(live):
            if tree.ids[k] is not None:
                new[k] = self._append(hyps[k], int(c_top[row, 0]), float(lp[row, c_top[row, 0]]), feed, k)
        for row, k, j in self._forks(tree, live, p_top):
            f = next(i for i in range(*self._segment(tree, k)) if tree.ids[i] is None)
            token = int(c_top[row, j])
            sources[f] = k
            new[f] = self._append(hyps[k], token, float(lp[row, token]), feed, f)
            tree.ids[f], tree.parents[f], tree.next_id = tree.next_id, tree.ids[k], tree.next_id + 1
            tree.births[f], tree.checked[f] = len(hyps[k].tokens), False
            tree.forks.append(Fork(step, tree.ids[k], tree.ids[f], token, len(hyps[k].tokens),
                                   float(p_top[row, 0]), float(p_top[row, j])))
        state = regroup(self.model, state, sources, feed)
        self._prune(tree, new)
        return state, new

    def _append(self, h: Hyp, token: int, logprob: float, feed: list[int], slot: int) -> Hyp:
        child = self.raw.advance(h, token, logprob)
        if child.running:
            feed[slot] = token
        if self.limit is not None and len(child.tokens) >= self.limit:
            child.running = False
        return child

    def _segment(self, tree: _Tree, k: int) -> tuple[int, int]:
        return next((a, b) for a, b in tree.segments if a <= k < b)

    def _forks(self, tree: _Tree, live: list[int], p_top: torch.Tensor) -> list[tuple[int, int, int]]:
        """The forks taken: ``(row of live, slot, rank)`` in order of (rank, branch row), per draw
        at most its free slots (module docstring)."""
        s = self.spec
        qualifies = (p_top > s.absolute) & ((p_top[:, :1] - p_top) < s.relative)
        out = []
        for a, b in tree.segments:
            free = sum(tree.ids[i] is None for i in range(a, b))
            wanted = [(j, row, k) for j in range(1, p_top.shape[1]) for row, k in enumerate(live)
                      if a <= k < b and tree.ids[k] is not None and bool(qualifies[row, j])]
            out += [(row, k, j) for j, row, k in wanted[:free]]
        return out

    def _prune(self, tree: _Tree, hyps: list[Hyp]) -> None:
        r = self.spec.depth
        for k, h in enumerate(hyps):
            if tree.checked[k] or tree.parents[k] is None or tree.ids[k] is None:
                continue
            at = tree.births[k]
            parent = tree.slot_of(tree.parents[k])
            if parent is None or (not h.running and len(h.tokens) < at + r):
                tree.checked[k] = True  # parent removed, or the child ended inside its window
                continue
            if len(h.tokens) < at + r:
                continue
            mine, theirs = h.tokens[at:at + r], hyps[parent].tokens[at:at + r]
            tree.checked[k] = True
            if len(theirs) < r:
                continue  # the parent ended inside the window
            if levenshtein(mine, theirs) / r < self.spec.edit:
                tree.pruned.append(tree.ids[k])
                tree.ids[k], hyps[k] = None, dead(h.origin)

    def _fill_free(self, state: Any, hyps: list[Hyp], tree: _Tree) -> tuple[Any, list[Hyp]]:
        """Free slots become copies of their draw's first branch."""
        sources = list(range(len(hyps)))
        for a, b in tree.segments:
            first = next((i for i in range(a, b) if tree.ids[i] is not None), None)
            if first is None:
                raise NoValidTokenError(f"lookahead_tree over hole {self.raw.where}: every branch of a draw "
                                        "reached a dead end")
            for i in range(a, b):
                if tree.ids[i] is None:
                    sources[i], hyps[i] = first, _copy(hyps[first])
        return regroup(self.model, state, sources, [-1] * len(hyps)), hyps

    def _sample(self, state: Any, hyps: list[Hyp]) -> tuple[Any, list[Hyp]]:
        """One ordinary decoding step of the running branches (the completion phase)."""
        logits = self.model.logits(state)
        live = [k for k, h in enumerate(hyps) if h.running]
        lp = self.sampler.logprobs(logits.index_select(0, torch.as_tensor(live, device=logits.device)),
                                   [hyps[k].cstate for k in live])
        if bool((lp.amax(dim=-1) == NEG_INF).any()):
            raise NoValidTokenError(f"hole {self.raw.where}: no token can continue a rollout")
        tokens = lp.argmax(dim=-1) if self.greedy else gumbel_argmax(lp.float(), self.generator)
        feed, new = [-1] * len(hyps), list(hyps)
        for row, (k, token) in enumerate(zip(live, tokens.tolist())):
            new[k] = self._append(hyps[k], token, float(lp[row, token]), feed, k)
        return regroup(self.model, state, list(range(len(hyps))), feed), new


def _copy(h: Hyp) -> Hyp:
    return Hyp(h.origin, list(h.tokens), h.text, h.cstate, h.logprob, h.length, h.key, h.running, h.alive, h.weight)


def lookahead_hole(run: Any, hole: Any, group: Any, spec: LookaheadTree) -> _Tree:
    """Fill ``hole`` for ``group`` of a :class:`~genweave.runtime.inference.search.SearchRun`."""
    from genweave.runtime.inference.search import segments_of

    run._flush(group)
    rows = group.rows
    sampler = run.stepper(hole)
    raw = run.stepper(hole, chain=None)
    greedy = sampler.chain is not None and sampler.chain.is_greedy
    engine = LookaheadHole(spec, raw, sampler, run.model, run.generator, greedy, hole.max_tokens)
    state, out, tree = engine.run(group.state, run.hypotheses(rows, raw), segments_of(rows, run.draw),
                                  run.budget(hole, rows))
    run.settle(hole, group, state, out)
    run.trees = (*run.trees, tree)
    return tree
