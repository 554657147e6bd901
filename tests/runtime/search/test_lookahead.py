"""``lookahead_tree`` (LATR) on scripted and random toy models: branching thresholds (strict),
capacity order, pruning by edit distance, and the tree's structural invariants."""

from __future__ import annotations

import math

import pytest
import torch

import genweave
from genweave.compiler.plan import plan as bind
from genweave.runtime.execute import _Group
from genweave.runtime.inference.lookahead import levenshtein
from genweave.runtime.inference.search import SearchRun
from genweave.testing import ToyLM

DEFAULT = [0.7, 0.1, 0.1, 0.05, 0.05]  # a, b, c, d, <eos>: never branches at the default thresholds


class Scripted(ToyLM):
    """Next-token probabilities by whole context (the prompt "a" is id 0); ``DEFAULT`` elsewhere."""

    def __init__(self, table: dict[tuple[int, ...], list[float]]):
        super().__init__([b"a", b"b", b"c", b"d"], seed=0)
        self.table = table

    def next_token_logprobs(self, ids):
        probs = self.table.get(tuple(ids), DEFAULT)
        return torch.tensor(probs, dtype=torch.float64).log()


def grow(lm, options: str, limit: int = 4, draws: int = 1):
    """Run a one-hole program under ``lookahead_tree options`` with greedy completion; returns the
    run (its tree) and each row's hole tokens."""
    prog = genweave.compile(f'program p() -> str:\n  target:\n    "a"\n    x = gen max {limit} tokens\n'
                            f'    return x\n  infer:\n    greedy\n    lookahead_tree {options}\n').p
    bound = bind(prog.ir, lm.vocab)
    k = bound.search.rollouts
    run = SearchRun(bound, lm, {}, draws, k, torch.Generator().manual_seed(0))
    run.execute(bound.steps, _Group(list(range(draws * k)), None))
    return run, [run.hole_tokens[row]["x"] for row in range(draws * k)]


@pytest.mark.parametrize(("absolute", "relative", "forks"), [
    (0.25, 0.15, 0),                 # 0.5 - 0.3 = 0.2 is not < 0.15
    (0.25, 0.25, 1),
    (0.3 + 1e-9, 0.25, 0),           # p(b) = 0.3 must exceed `absolute` strictly
    (0.3 - 1e-9, 0.25, 1),
    (0.25, 0.2 - 1e-9, 0),           # p(a) - p(b) = 0.2 must be below `relative` strictly
    (0.25, 0.2 + 1e-9, 1),
])
def test_a_fork_needs_both_thresholds_strictly(absolute, relative, forks):
    lm = Scripted({(0,): [0.5, 0.3, 0.1, 0.05, 0.05]})
    run, holes = grow(lm, f"rollouts 2 width 2 depth 3 absolute {absolute} relative {relative} edit 0")
    (tree,) = run.trees
    assert len(tree.forks) == forks
    if forks:
        assert sorted(h[0] for h in holes) == [0, 1]  # the root took a, the fork b
    else:
        assert holes[0] == holes[1] == (0, 0, 0, 0)  # no fork: the free slot copies the greedy branch


def test_forks_beyond_capacity_are_taken_by_rank_then_row():
    table = {(0,): [0.3, 0.28, 0.27, 0.1, 0.05]}
    run, holes = grow(Scripted(table), "rollouts 2 width 3 depth 3 absolute 0.25 relative 0.15 edit 0")
    assert [f.token for f in run.trees[0].forks] == [1]  # one free slot: rank 2 (b) before rank 3 (c)
    run, holes = grow(Scripted(table), "rollouts 3 width 3 depth 3 absolute 0.25 relative 0.15 edit 0")
    assert [f.token for f in run.trees[0].forks] == [1, 2]
    # Two branches, each with a qualifying rank-2 token, one free slot: the first row's fork wins.
    table = {(0,): [0.4, 0.35, 0.1, 0.1, 0.05], (0, 0): [0.4, 0.1, 0.35, 0.1, 0.05],
             (0, 1): [0.4, 0.1, 0.1, 0.35, 0.05]}
    run, holes = grow(Scripted(table), "rollouts 3 width 2 depth 3 absolute 0.25 relative 0.15 edit 0")
    assert [(f.step, f.token) for f in run.trees[0].forks] == [(0, 1), (1, 2)]


@pytest.mark.parametrize(("edit", "pruned"), [(0.4, True), (0.3, False)])
def test_a_branch_that_does_not_diverge_is_pruned_after_depth_tokens(edit, pruned):
    # The fork (b) then follows the parent (a a): edit distance 1 over 3 tokens, ratio 1/3.
    lm = Scripted({(0,): [0.5, 0.4, 0.05, 0.03, 0.02]})
    run, holes = grow(lm, f"rollouts 2 width 2 depth 3 absolute 0.25 relative 0.15 edit {edit}", limit=5)
    (tree,) = run.trees
    assert bool(tree.pruned) == pruned
    assert (holes[0] == holes[1]) == pruned  # a pruned branch's slot is refilled by a copy


def test_levenshtein():
    assert levenshtein([1, 2, 3], [1, 2, 3]) == 0
    assert levenshtein([1, 2, 3], [2, 3]) == 1
    assert levenshtein([1, 2, 3], [3, 2, 1]) == 2
    assert levenshtein([], [4, 5]) == 2


@pytest.mark.parametrize("seed", range(4))
def test_tree_invariants_on_random_models(seed):
    lm = ToyLM([b"a", b"b", b"c"], seed=seed, sharpness=0.3, max_context=3)
    run, holes = grow(lm, "rollouts 4 width 3 depth 2 absolute 0.2 relative 0.3 edit 0.6", limit=6, draws=2)
    for tree in run.trees:
        assert all(f.p_token > 0.2 and f.p_top - f.p_token < 0.3 for f in tree.forks)
        tokens = {tree.ids[k]: holes[k] for k in range(len(holes)) if tree.ids[k] is not None}
        for f in tree.forks:
            if f.child in tokens and f.parent in tokens:
                child, parent = tokens[f.child], tokens[f.parent]
                assert child[:f.position] == parent[:f.position]
                if f.token in lm.eos_ids:  # the fork ended its branch
                    assert len(child) == f.position
                else:
                    assert child[f.position] == f.token
                assert len(parent) <= f.position or parent[f.position] != f.token
    assert any(tree.forks for tree in run.trees)
    assert len(holes) == 8 and all(len(h) <= 6 for h in holes)
    assert math.isfinite(sum(run.logprob))


def reference_tree(lm, prompt, n, m, depth, absolute, relative, edit, limit):
    """LATR for one root, greedy, from the rule's description (samplers spec §15), in float64:
    the hole tokens of each of the ``n`` slots at the end."""
    eos = set(lm.eos_ids)
    slots: list[dict | None] = [dict(id=0, parent=None, tokens=[], birth=0, checked=True, done=False)]
    slots += [None] * (n - 1)
    next_id, step = 1, 0

    def top(tokens):
        p = lm.next_token_logprobs(prompt + tokens).exp()
        values, index = p.topk(m)
        return values.tolist(), index.tolist()

    def child(tokens, token, **kw):
        done = token in eos or len(tokens) + 1 >= limit
        return dict(tokens=tokens + ([] if token in eos else [token]), done=done, **kw)

    while step < limit and any(s and not s["done"] for s in slots) and (
            None in slots or any(s and not s["checked"] and not s["done"] for s in slots)):
        live = [k for k, s in enumerate(slots) if s and not s["done"]]
        tops = {k: top(slots[k]["tokens"]) for k in live}
        old = {k: list(slots[k]["tokens"]) for k in live}
        for k in live:
            s = slots[k]
            slots[k] = {**s, **child(old[k], tops[k][1][0])}
        wanted = [(j, k) for j in range(1, m) for k in live
                  if tops[k][0][j] > absolute and tops[k][0][0] - tops[k][0][j] < relative]
        free = [k for k, s in enumerate(slots) if s is None]
        for (j, k), f in zip(wanted, free):
            slots[f] = child(old[k], tops[k][1][j], id=next_id, parent=slots[k]["id"], birth=len(old[k]),
                             checked=False)
            next_id += 1
        for k, s in enumerate(slots):
            if s is None or s["checked"] or s["parent"] is None:
                continue
            parent = next((p for p in slots if p and p["id"] == s["parent"]), None)
            at = s["birth"]
            if parent is None or (s["done"] and len(s["tokens"]) < at + depth):
                s["checked"] = True
                continue
            if len(s["tokens"]) < at + depth:
                continue
            s["checked"] = True
            theirs = parent["tokens"][at:at + depth]
            if len(theirs) == depth and levenshtein(s["tokens"][at:at + depth], theirs) / depth < edit:
                slots[k] = None
        step += 1
    first = next(s for s in slots if s)
    slots = [s if s else {**first, "tokens": list(first["tokens"])} for s in slots]
    while step < limit and any(not s["done"] for s in slots):
        for s in slots:
            if not s["done"]:
                s.update(child(s["tokens"], int(lm.next_token_logprobs(prompt + s["tokens"]).argmax())))
        step += 1
    return [tuple(s["tokens"]) for s in slots]


@pytest.mark.parametrize("seed", range(6))
def test_the_tree_equals_a_float64_reference_of_the_rule(seed):
    lm = ToyLM([b"a", b"b", b"c"], seed=seed, sharpness=0.5, max_context=3)
    options = dict(n=4, m=3, depth=2, absolute=0.22, relative=0.2, edit=0.6, limit=7)
    run, holes = grow(lm, "rollouts 4 width 3 depth 2 absolute 0.22 relative 0.2 edit 0.6", limit=7)
    assert holes == reference_tree(lm, lm.encode("a"), **options)
