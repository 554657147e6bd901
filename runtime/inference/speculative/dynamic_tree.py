"""Token Recycling with a dynamic draft tree (``speculate recycle k K tree dynamic``).

Besides each token's last-seen top-``k`` successors, the adjacency remembers their probabilities
under the model's row that recorded them (``probs[t, j]`` = ``p(successors[t, j] | ...t)``, sorted
decreasing as top-``k`` returns them). A node's *value* is the product of the recorded probabilities
along its path from the root -- DySpec's estimate that the whole path is accepted -- and the tree is
grown greedily from the root (the last emitted token) with a max-heap on that value, up to the
node budget: the size of the static template for the same ``k`` (80 nodes at ``k = 8``), so ``tree
dynamic`` changes the tree's shape, not its cost. Values never grow along a path and the children of
a node come in decreasing value, so the greedy tree is the ancestor-closed set of the ``budget``
highest-value nodes (ties: the node offered first wins).

Verification is the static variant's sample-and-match walk
(:func:`~genweave.runtime.inference.speculative.tree.walk_tree`): the tree is a deterministic
function of the drafter's state and the root, both fixed before the round's draws, so every emitted
token follows the program's distribution exactly, and under ``greedy`` the tokens are the greedy ones.
"""

from __future__ import annotations

import heapq

import numpy as np
import torch

from genweave.runtime.inference.speculative.tree import RecycleDrafter


def grow_tree(root: int, successors: np.ndarray, probs: np.ndarray,
              budget: int) -> tuple[list[int], list[int], list[float]]:
    """The greedy best-first tree under ``root``: node tokens, parents (``-1``: the root; parents come
    before children) and values, in the order the nodes were taken.

    The heap holds, for every node taken (and the root), its next child not taken yet, valued at the
    node's value times that child's recorded probability; ``budget`` times the best entry is taken.

    >>> succ = np.array([[1, 2], [2, 0], [0, 1]]); probs = np.array([[.6, .4], [.9, .1], [.5, .5]])
    >>> grow_tree(0, succ, probs, 3)[:2]
    ([1, 2, 2], [-1, 0, -1])
    """
    width = successors.shape[1]
    tokens: list[int] = []
    parents: list[int] = []
    values: list[float] = []
    offered = 0  # tie-break: the entry pushed first wins among equal values
    heap = [(-float(probs[root, 0]), offered, -1, 0, 1.0)]
    while heap and len(tokens) < budget:
        _, _, parent, j, above = heapq.heappop(heap)
        token_above = root if parent < 0 else tokens[parent]
        value = above * float(probs[token_above, j])
        tokens.append(int(successors[token_above, j]))
        parents.append(parent)
        values.append(value)
        node = len(tokens) - 1
        if j + 1 < width:
            offered += 1
            heapq.heappush(heap, (-above * float(probs[token_above, j + 1]), offered, parent, j + 1, above))
        offered += 1
        heapq.heappush(heap, (-value * float(probs[tokens[node], 0]), offered, node, 0, value))
    return tokens, parents, values


class DynamicRecycleDrafter(RecycleDrafter):
    """Token Recycling's adjacency with recorded probabilities and a greedily grown tree (module
    docstring). The matrices live on the CPU (the heap walks them there); trees go to ``device``."""

    def __init__(self, vocab_size: int, k: int, device: torch.device | str = "cpu"):
        super().__init__(vocab_size, k, "cpu")
        self.device = torch.device(device)
        self.budget = len(self.template.parents)
        self.probs = torch.zeros((vocab_size, k), dtype=torch.float64)
        self._successors, self._probs = self.adjacency.numpy(), self.probs.numpy()  # views, updated in place

    def draft_tree(self, roots: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
        """One grown tree per distinct root token, gathered per row (see :meth:`RecycleDrafter.draft_tree`)."""
        distinct, index = torch.unique(roots.cpu(), return_inverse=True)
        grown = [grow_tree(int(r), self._successors, self._probs, self.budget) for r in distinct.tolist()]
        tokens = torch.tensor([g[0] for g in grown], dtype=torch.long)[index]
        parents = torch.tensor([g[1] for g in grown], dtype=torch.long)[index]
        depth = max(_depth(g[1]) for g in grown)
        return tokens.to(self.device), parents.to(self.device), depth

    def tree(self, roots: torch.Tensor) -> torch.Tensor:
        return self.draft_tree(roots)[0]

    def _record(self, tokens: torch.Tensor, logprobs: torch.Tensor) -> None:
        """Each row keeps its top-``k`` successors and their probabilities (normalised over the row)."""
        top = logprobs.topk(self.k, dim=-1)
        probs = (top.values - logprobs.logsumexp(-1, keepdim=True)).exp()
        rows = tokens.cpu()
        self.adjacency[rows] = top.indices.cpu()
        self.probs[rows] = probs.to("cpu", torch.float64)


def _depth(parents: list[int]) -> int:
    """The number of levels of a tree given by its parents (parents before children)."""
    depths: list[int] = []
    for parent in parents:
        depths.append(1 if parent < 0 else depths[parent] + 1)
    return max(depths, default=0)
