"""Token Recycling (Luo et al., ACL 2025): a static draft tree filled from an adjacency matrix.

The drafter remembers, for every token, the ``k`` most likely successors the model gave it the last
time it scored that token (``adjacency[V, k]``, zeros at first, updated after every round from the
model's log-probs at every node it scored). A round fills the static tree template (Token
Recycling's "2.2.2": 80 nodes in 6 levels, each node a path of successor indices) from the root --
the last emitted token -- level by level (:mod:`.dynamic_tree`: or grows a tree by estimated
acceptance), scores the whole tree in one forward with tree attention
(:meth:`LanguageModel.extend_tree`), and walks down it with *sample-and-match*: at the current node
draw ``y`` from the program's distribution ``p`` there (chain, state and mask as in plain decoding);
if a child carries ``y`` move there, else emit ``y`` and stop. The tree is a deterministic function
of the history, so every emitted token follows ``p`` exactly (spec 0.2); under ``greedy`` ``y`` is
the argmax and the tokens are the greedy ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from genweave.runtime.samplers import gumbel_argmax

# Token Recycling's static tree "2.2.2" (data from the paper's reference implementation): each node
# is the path of successor indices from the root; 8/21/25/15/8/3 nodes on levels 1..6.
TEMPLATE_222: tuple[tuple[int, ...], ...] = (
    (0,), (1,), (2,), (3,), (4,), (5,), (6,), (7,),
    (0, 0), (0, 1), (0, 2), (0, 3), (0, 4), (0, 5), (0, 6), (0, 7), (1, 0), (1, 1), (1, 2), (1, 3), (2, 0),
    (2, 1), (2, 2), (3, 0), (3, 1), (4, 0), (5, 0), (6, 0), (7, 0),
    (0, 0, 0), (0, 0, 1), (0, 0, 2), (0, 0, 3), (0, 0, 4), (0, 0, 5), (0, 0, 6), (0, 0, 7), (0, 1, 0), (0, 1, 1),
    (0, 1, 2), (0, 2, 0), (0, 2, 1), (0, 3, 0), (0, 4, 0), (0, 5, 0), (0, 6, 0), (0, 7, 0), (1, 0, 0), (1, 0, 1),
    (1, 1, 0), (2, 0, 0), (3, 0, 0), (4, 0, 0), (5, 0, 0),
    (0, 0, 0, 0), (0, 0, 0, 1), (0, 0, 0, 2), (0, 0, 0, 3), (0, 0, 0, 4), (0, 0, 1, 0), (0, 0, 1, 1), (0, 0, 2, 0),
    (0, 0, 3, 0), (0, 0, 4, 0), (0, 1, 0, 0), (0, 2, 0, 0), (1, 0, 0, 0), (2, 0, 0, 0), (3, 0, 0, 0),
    (0, 0, 0, 0, 0), (0, 0, 0, 0, 1), (0, 0, 0, 0, 2), (0, 0, 0, 1, 0), (0, 0, 0, 2, 0), (0, 0, 1, 0, 0),
    (0, 1, 0, 0, 0), (1, 0, 0, 0, 0),
    (0, 0, 0, 0, 0, 0), (0, 0, 0, 0, 0, 1), (0, 0, 0, 1, 0, 0),
)


@dataclass(frozen=True)
class TreeTemplate:
    """A static draft tree: node ``i`` takes successor ``choice[i]`` of its parent ``parents[i]``
    (``-1``: the root); parents come before children.

    >>> t = TreeTemplate.of(TEMPLATE_222, k=2)
    >>> len(t.parents), t.depth
    (28, 6)
    """

    parents: tuple[int, ...]
    choice: tuple[int, ...]
    depth: int

    @classmethod
    def of(cls, paths: Sequence[Sequence[int]], k: int) -> TreeTemplate:
        """The template of the ``paths`` that use only the first ``k`` successors, in order."""
        kept = [tuple(p) for p in paths if max(p) < k]
        index = {p: i for i, p in enumerate(kept)}
        return cls(tuple(index.get(p[:-1], -1) for p in kept), tuple(p[-1] for p in kept),
                   max(len(p) for p in kept))


class RecycleDrafter:
    """The adjacency matrix and the tree template of one run (module docstring)."""

    def __init__(self, vocab_size: int, k: int, device: torch.device | str = "cpu"):
        self.k = k
        self.template = TreeTemplate.of(TEMPLATE_222, k)
        self.adjacency = torch.zeros((vocab_size, k), dtype=torch.long, device=device)
        self.parents = torch.tensor(self.template.parents, dtype=torch.long, device=device)
        self.choice = torch.tensor(self.template.choice, dtype=torch.long, device=device)

    def begin(self, contexts: list[list[int]]) -> None:
        pass  # the adjacency is kept across holes (hot start)

    def draft_tree(self, roots: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
        """The draft tree under each row's root token: node tokens ``[B, N]``, node parents ``[B, N]``
        (``-1``: the root; parents before children) and the tree's depth."""
        return self.tree(roots), self.parents.expand(roots.shape[0], -1), self.template.depth

    def tree(self, roots: torch.Tensor) -> torch.Tensor:
        """``[B, N]`` node tokens of the template under each row's root token."""
        tokens = torch.empty((roots.shape[0], len(self.template.parents)), dtype=torch.long, device=roots.device)
        for i, (parent, choice) in enumerate(zip(self.template.parents, self.template.choice)):
            above = roots if parent < 0 else tokens[:, parent]
            tokens[:, i] = self.adjacency[above, choice]
        return tokens

    def update(self, tokens: torch.Tensor, logprobs: torch.Tensor) -> None:
        """Each token's row becomes the top-``k`` successors the model gave it (the last one scored
        wins when a token was scored several times)."""
        tokens = tokens.reshape(-1)
        order = torch.arange(tokens.shape[0], device=tokens.device)
        last = torch.full((self.adjacency.shape[0],), -1, dtype=torch.long, device=tokens.device)
        last.scatter_reduce_(0, tokens, order, reduce="amax")
        chosen = last[last >= 0]
        self._record(tokens[chosen], logprobs.reshape(-1, logprobs.shape[-1])[chosen])

    def _record(self, tokens: torch.Tensor, logprobs: torch.Tensor) -> None:
        """Row ``tokens[i]`` of the adjacency becomes the top-``k`` of ``logprobs[i]`` (distinct tokens)."""
        self.adjacency[tokens] = logprobs.topk(self.k, dim=-1).indices


def walk_tree(rounds: Any, drafter: RecycleDrafter) -> None:
    """One Token Recycling round of a :class:`~genweave.runtime.inference.speculative.run._HoleRounds`."""
    fill, run, device = rounds.fill, rounds.run_, rounds.device
    batch = len(rounds.rows)
    active = list(fill.active)
    roots = [u[-1] if u else (fill.generated[k] or run.tokens[r])[-1] for k, (u, r) in
             enumerate(zip(rounds.unfed, rounds.rows))]
    nodes, node_parents, depth = drafter.draft_tree(torch.tensor(roots, device=device))
    offsets = [len(u) for u in rounds.unfed]
    width = 1 + nodes.shape[1]
    pieces = torch.zeros((batch, width), dtype=torch.long, device=device)
    parents = torch.full((batch, width), -1, dtype=torch.long, device=device)
    # a finished row only feeds its pending token (if any); its tree is padding
    lengths = torch.tensor([o + (nodes.shape[1] if on else 0) for o, on in zip(offsets, active)], device=device)
    for k, o in enumerate(offsets):
        if o:
            pieces[k, 0] = rounds.unfed[k][0]
        pieces[k, o:o + nodes.shape[1]] = nodes[k]
        above = node_parents[k]
        parents[k, o:o + nodes.shape[1]] = torch.where(above >= 0, above + o, torch.full_like(above, o - 1))
    before = rounds.model.logits(rounds.group.state)
    state, out = rounds.model.extend_tree(rounds.group.state, pieces, parents, lengths)
    run.stats.forwards += 1
    offset = torch.tensor(offsets, device=device)
    rows = torch.arange(batch, device=device)
    root_p = torch.where((offset > 0)[:, None], out[:, 0], before)
    node_p = out[rows[:, None], offset[:, None] + torch.arange(nodes.shape[1], device=device)[None, :]]
    path, drawn = _descend(rounds, root_p, node_p, nodes, node_parents, depth, active)
    kept = [([0] if o else []) + [o + i for i in p] for o, p in zip(offsets, path)]
    after = torch.stack([node_p[k, p[-1]] if p else root_p[k] for k, p in enumerate(path)])
    rounds.group.state = rounds.model.keep_path(state, kept, after)
    live = torch.tensor(active, device=device)
    drafter.update(torch.cat([torch.tensor(roots, device=device)[live], nodes[live].reshape(-1)]),
                   torch.cat([root_p[live], node_p[live].reshape(-1, node_p.shape[-1])]))
    for k, on in enumerate(active):
        if on:
            run.stats.verifications += 1
            run.stats.drafted += nodes.shape[1]
            run.stats.accepted += len(path[k])
            run.stats.emitted += len(drawn[k])


def _descend(rounds: Any, root_p: torch.Tensor, node_p: torch.Tensor, nodes: torch.Tensor,
             parents: torch.Tensor, depth: int, active: list[bool]) -> tuple[list[list[int]], list[list[int]]]:
    """Sample-and-match down each row's tree; commits the tokens like plain decoding. Returns each
    row's accepted node indices and the tokens it drew."""
    fill, chain, device = rounds.fill, rounds.chain, rounds.device
    batch = len(active)
    cur = torch.full((batch,), -1, dtype=torch.long, device=device)
    going = list(active)
    path: list[list[int]] = [[] for _ in range(batch)]
    drawn: list[list[int]] = [[] for _ in range(batch)]
    committed: list[list[int]] = [[] for _ in range(batch)]
    where = f"hole '{rounds.hole.name}' ({rounds.hole.where})"
    for _ in range(depth + 1):
        if not any(going):
            break
        raw = torch.where((cur < 0)[:, None], root_p, node_p[torch.arange(batch, device=device), cur.clamp(min=0)])
        mask = rounds._masks(list(fill.states) if fill.states is not None else None)
        empty = (~mask.any(-1)).tolist()
        for k in range(batch):
            if going[k] and empty[k]:
                fill._dead_end(k)
        mask = mask | ~torch.tensor(going, device=device)[:, None]
        lp = chain.logprobs(raw, rounds.chain_state, mask=mask, context=where)
        y = lp.argmax(-1) if chain.is_greedy else gumbel_argmax(lp, rounds.run_.generator)
        chosen = lp.gather(1, y[:, None])[:, 0].tolist()
        match = (parents == cur[:, None]) & (nodes == y[:, None])
        found, child = match.any(-1).tolist(), match.long().argmax(-1).tolist()
        tokens = y.tolist()
        if rounds.chain_state is not None:
            rounds.chain_state.advance([t if g else -1 for t, g in zip(tokens, going)])
        for k in range(batch):
            if not going[k]:
                continue
            before = len(drawn[k])
            rounds._emit(k, [tokens[k]], [chosen[k]], committed[k], drawn[k])
            if fill.active[k] and found[k] and len(drawn[k]) > before:
                path[k].append(child[k])
                cur[k] = child[k]
            else:
                going[k] = False
    rounds.unfed = [c[len(p):] for c, p in zip(committed, path)]
    return path, drawn
