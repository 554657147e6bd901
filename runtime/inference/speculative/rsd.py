"""Recursive Speculative Decoding (Jeon et al., 2024), constant branching (RSD-C).

Each row's draft tree is grown level by level with the draft model: every node of the frontier gets
up to ``width`` children drawn *without replacement* from the draft distribution ``q`` at that node
(Gumbel-top-``width`` of ``log q``, so the children come in the order of a sequential draw), down to
``depth`` levels. ``q`` is the draft model's distribution through the program's sampler chain (its
state as at the start of the round) and the constraint mask at the node; children after an
end-of-sequence are not grown. The target scores the whole tree in one forward (tree attention),
then the walk from the root runs recursive rejection sampling
(:func:`~genweave.runtime.inference.speculative.verify.verify_recursive`) over each node's
children against the program's ``p`` there: an accepted child is entered, a full rejection emits a
token of the last residual and ends the round, a leaf emits a token of ``p``. Every emitted token
follows ``p`` exactly; under ``greedy`` the draft distribution is a point mass, so the tree is the
draft's greedy chain, and the walk keeps the target's argmax.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from genweave.runtime.inference.speculative.drafters import padded
from genweave.runtime.inference.speculative.verify import verify_recursive
from genweave.runtime.models.base import LanguageModel
from genweave.runtime.samplers import gumbel_argmax


@dataclass
class DraftTree:
    """One row's draft tree: node tokens and parents (``-1``: the root), the children of every
    node in draw order (key ``-1``: the root's), and ``q`` (probabilities) at every grown node."""

    tokens: list[int] = field(default_factory=list)
    parents: list[int] = field(default_factory=list)
    children: dict[int, list[int]] = field(default_factory=dict)
    q: dict[int, torch.Tensor] = field(default_factory=dict)

    def path(self, node: int) -> list[int]:
        out = []
        while node >= 0:
            out.append(self.tokens[node])
            node = self.parents[node]
        return out[::-1]


class RSDDrafter:
    """Grows :class:`DraftTree` s with ``model`` (``width`` children per node, ``depth`` levels)."""

    def __init__(self, model: LanguageModel, width: int, depth: int):
        self.model, self.width, self.depth = model, width, depth
        self.state: Any = None
        self.unfed: list[list[int]] = []

    def begin(self, contexts: list[list[int]]) -> None:
        self.state = self.model.prefill_shared(contexts)
        self.unfed = [[] for _ in contexts]

    def grow(self, rounds: Any, limits: list[int]) -> list[DraftTree]:
        """Each row's tree, at most ``limits[b]`` levels deep."""
        if any(self.unfed):
            grid, lengths = padded(self.unfed, self.model.device)
            self.state, _ = self.model.extend(self.state, grid, lengths)
        self.unfed = [[] for _ in limits]
        trees = [DraftTree() for _ in limits]
        frontier = [(b, -1) for b, n in enumerate(limits) if n > 0]
        for level in range(self.depth):
            if not frontier:
                break
            raw = self._scores(trees, frontier)
            frontier = self._expand(rounds, trees, frontier, raw, [level + 1 < n for n in limits])
        return trees

    def _scores(self, trees: list[DraftTree], frontier: list[tuple[int, int]]) -> torch.Tensor:
        """The draft's raw log-probs ``[F, V]`` at each frontier node (one tree forward on a copy)."""
        model = self.model
        before = model.logits(self.state)
        if all(node < 0 for _, node in frontier):
            return before[[b for b, _ in frontier]]
        copy = model.select(self.state, list(range(len(trees))))
        grid, lengths = padded([t.tokens for t in trees], model.device)
        ups = padded([t.parents for t in trees], model.device, grid.shape[1])[0]
        ups = torch.where(torch.arange(grid.shape[1], device=model.device)[None, :] < lengths[:, None], ups, -1)
        _, out = model.extend_tree(copy, grid, ups, lengths)
        return torch.stack([before[b] if node < 0 else out[b, node] for b, node in frontier])

    def _expand(self, rounds: Any, trees: list[DraftTree], frontier: list[tuple[int, int]], raw: torch.Tensor,
                deeper: list[bool]) -> list[tuple[int, int]]:
        """Draw the children of every frontier node; returns the next frontier."""
        fill, chain = rounds.fill, rounds.chain
        rows = [b for b, _ in frontier]
        states = None
        if fill.states is not None:
            states = [rounds._walk_path(fill.states[b], trees[b].path(node)) for b, node in frontier]
        mask = rounds._masks(states) if states is not None else None
        if mask is not None:
            mask = mask | ~mask.any(-1, keepdim=True)  # a dead node: any stand-in (its children are never kept)
        fork = None if rounds.chain_state is None else rounds.chain_state.select(rows)
        logq = chain.logprobs(raw, fork, mask=mask)
        if chain.is_greedy:
            keys = logq
        else:
            uniform = torch.rand(logq.shape, generator=rounds.run_.generator, dtype=torch.float32, device=logq.device)
            keys = logq - uniform.clamp(min=1e-30).log().neg().log()
        top = keys.topk(min(self.width, logq.shape[-1]), dim=-1)
        valid = (top.values > -torch.inf).tolist()
        nxt = []
        for f, (b, node) in enumerate(frontier):
            tree = trees[b]
            tree.q[node] = logq[f].exp()
            kids = []
            for token, ok in zip(top.indices[f].tolist(), valid[f]):
                if not ok:
                    break
                tree.tokens.append(token)
                tree.parents.append(node)
                kids.append(len(tree.tokens) - 1)
                if deeper[b] and token not in fill.eos:
                    nxt.append((b, kids[-1]))
            tree.children[node] = kids
        return nxt

    def commit(self, committed: list[list[int]], ended: list[bool]) -> None:
        self.unfed = [[] if done else list(c) for c, done in zip(committed, ended)]


def rsd_round(rounds: Any, drafter: RSDDrafter) -> None:
    """One RSD round of a :class:`~genweave.runtime.inference.speculative.run._HoleRounds`."""
    fill, run, device = rounds.fill, rounds.run_, rounds.device
    active = list(fill.active)
    limits = [min(drafter.depth, rounds.budget - d - 1) if on else 0 for d, on in zip(rounds.drawn, active)]
    trees = drafter.grow(rounds, limits)
    offsets = [len(u) for u in rounds.unfed]
    pieces = [rounds.unfed[b] + t.tokens for b, t in enumerate(trees)]
    ups = [[-1] * o + [u + o if u >= 0 else o - 1 for u in t.parents] for o, t in zip(offsets, trees)]
    grid, lengths = padded(pieces, device)
    parents = padded(ups, device, grid.shape[1])[0]
    parents = torch.where(torch.arange(grid.shape[1], device=device)[None, :] < lengths[:, None], parents, -1)
    before = rounds.model.logits(rounds.group.state)
    state, out = rounds.model.extend_tree(rounds.group.state, grid, parents, lengths)
    run.stats.forwards += 1
    path, drawn, committed = _walk(rounds, before, out, offsets, trees, active)
    kept = [([0] if o else []) + [o + node for node in p] for o, p in zip(offsets, path)]
    after = torch.stack([out[b, k[-1]] if k else before[b] for b, k in enumerate(kept)])
    rounds.group.state = rounds.model.keep_path(state, kept, after)
    drafter.commit(committed, [not on for on in fill.active])
    for b, on in enumerate(active):
        if on:
            run.stats.verifications += 1
            run.stats.drafted += len(trees[b].tokens)
            run.stats.accepted += len(path[b])
            run.stats.emitted += len(drawn[b])


def _walk(rounds: Any, before: torch.Tensor, out: torch.Tensor, offsets: list[int], trees: list[DraftTree],
          active: list[bool]) -> tuple[list[list[int]], list[list[int]], list[list[int]]]:
    """Recursive rejection sampling down each row's tree, committing tokens like plain decoding.
    Returns each row's accepted nodes, drawn tokens and committed (text) tokens."""
    fill, chain, device = rounds.fill, rounds.chain, rounds.device
    batch = len(active)
    cur, going = [-1] * batch, list(active)
    path: list[list[int]] = [[] for _ in range(batch)]
    drawn: list[list[int]] = [[] for _ in range(batch)]
    committed: list[list[int]] = [[] for _ in range(batch)]
    where = f"hole '{rounds.hole.name}' ({rounds.hole.where})"
    width = max((len(k) for t in trees for k in t.children.values()), default=0)
    while any(going):
        raw = torch.stack([out[b, offsets[b] + cur[b]] if cur[b] >= 0 else
                           (out[b, 0] if offsets[b] else before[b]) for b in range(batch)])
        mask = rounds._masks(list(fill.states) if fill.states is not None else None)
        empty = (~mask.any(-1)).tolist()
        for b in range(batch):
            if going[b] and empty[b]:
                fill._dead_end(b)
        mask = mask | ~torch.tensor(going, device=device)[:, None]
        lp = chain.logprobs(raw, rounds.chain_state, mask=mask, context=where)
        kids = [trees[b].children.get(cur[b], []) if going[b] else [] for b in range(batch)]
        token, chosen = _decide(lp, kids, trees, cur, width, chain.is_greedy, rounds.run_.generator)
        picked = lp.gather(1, token[:, None])[:, 0].tolist()
        tokens = token.tolist()
        if rounds.chain_state is not None:
            rounds.chain_state.advance([t if g else -1 for t, g in zip(tokens, going)])
        for b in range(batch):
            if not going[b]:
                continue
            count = len(drawn[b])
            rounds._emit(b, [tokens[b]], [picked[b]], committed[b], drawn[b])
            if fill.active[b] and chosen[b] >= 0 and len(drawn[b]) > count:
                cur[b] = kids[b][chosen[b]]
                path[b].append(cur[b])
            else:
                going[b] = False
    rounds.unfed = [c[len(p):] for c, p in zip(committed, path)]
    return path, drawn, committed


def _decide(lp: torch.Tensor, kids: list[list[int]], trees: list[DraftTree], cur: list[int], width: int,
            greedy: bool, generator: torch.Generator | None) -> tuple[torch.Tensor, list[int]]:
    """Each row's emitted token and the index of the child it enters (``-1``: the round ends)."""
    batch, vocab = lp.shape
    tokens = [[trees[b].tokens[k] for k in ks] for b, ks in enumerate(kids)]
    if greedy:
        token = lp.argmax(-1)
        return token, [t.index(y) if y in t else -1 for t, y in zip(tokens, token.tolist())]
    counts = torch.tensor([len(t) for t in tokens], device=lp.device)
    candidates = padded(tokens, lp.device, max(width, 1))[0]
    q = torch.stack([trees[b].q[cur[b]].to(lp.dtype) if kids[b] else torch.full((vocab,), 1 / vocab, dtype=lp.dtype)
                     for b in range(batch)]).to(lp.device)
    chosen, token = verify_recursive(lp.exp(), q, candidates, counts, generator)
    bonus = gumbel_argmax(lp, generator)
    token = torch.where(counts > 0, token, bonus)
    return token, chosen.tolist()
