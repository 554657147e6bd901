"""What speculation needs from the models, and its drafters.

* ``rollback`` drops a different number of tokens per row: afterwards the model computes what a
  fresh forward over the kept tokens computes (SmolLM2: max abs log-prob difference <= 1e-3 in fp32;
  ToyLM: exactly);
* ``early_exit`` drafts over the same vocabulary;
* tree attention (``extend_tree``/``keep_path``) scores every path like a fresh forward;
* greedy speculation on SmolLM2 emits the greedy tokens, token for token (one short hole);
* Token Recycling's template has 8/21/25/15/8/3 nodes per level; its adjacency update keeps the
  model's top-k successors, the last scored occurrence winning;
* prompt lookup picks the leftmost match of the longest n-gram and stops after end-of-sequence.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from genweave.dsl.errors import GenModelError
from genweave.runtime.execute import Emit, Fill, Plan, Return, run_plan
from genweave.runtime.inference.speculative import DraftRound, NgramDrafter, SpeculatePlan, lookup
from genweave.runtime.inference.speculative.tree import TEMPLATE_222, RecycleDrafter, TreeTemplate
from genweave.runtime.samplers import build_chain
from genweave.testing import ToyLM


def test_hf_rollback_per_row_matches_a_fresh_forward(smollm2):
    a, b = smollm2.encode("The capital of France is Paris. The capital of"), smollm2.encode("def add(x, y):\n    return")
    appended = torch.tensor([smollm2.encode(" Germany is Berlin, of")[:4], smollm2.encode(" x + y\n")[:4]])
    state, out = smollm2.extend(smollm2.prefill([a, b]), appended)
    state = smollm2.rollback(state, [1, 3], out[[0, 1], [2, 0]])
    state, after = smollm2.extend(state, torch.tensor([[11], [12]]))
    for row, kept, token in ((0, a + appended[0, :3].tolist(), 11), (1, b + appended[1, :1].tolist(), 12)):
        fresh = smollm2.logits(smollm2.prefill([kept + [token]]))[0]
        assert (after[row, -1] - fresh).abs().max() <= 1e-3


def test_hf_early_exit_shares_the_vocabulary_and_leaves_the_model_whole(smollm2):
    shallow = smollm2.early_exit(4)
    assert shallow.vocab is smollm2.vocab or shallow.vocab.token_bytes == smollm2.vocab.token_bytes
    assert shallow.model.config.num_hidden_layers == 4
    assert smollm2.model.config.num_hidden_layers == len(smollm2.model.model.layers) == 30
    assert shallow.logits(shallow.prefill([smollm2.encode("Hello")])).shape[-1] == len(smollm2.vocab)
    with pytest.raises(GenModelError, match="layers"):
        smollm2.early_exit(99)


def test_greedy_speculation_on_smollm2_gives_the_greedy_tokens(smollm2):
    prompt = "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib("
    steps = (Emit(lambda env: prompt), Fill("h", 8, None, "t:h"), Return(lambda env: env["h"]))
    plain = Plan(steps, build_chain([("greedy", {})]), chat=False)
    expected = run_plan(plain, smollm2, {})[0].hole_tokens
    for speculate in (SpeculatePlan("ngram", 6, n=2), SpeculatePlan("recycle", 8)):
        results = run_plan(dataclasses.replace(plain, speculate=speculate), smollm2, {})
        assert results[0].hole_tokens == expected
        assert results.stats.verifications > 0


def test_hf_tree_attention_scores_each_path_like_a_fresh_forward(smollm2):
    a, b = smollm2.encode("The capital of France is Paris. The capital of"), smollm2.encode("def add(x, y):\n    return")
    state = smollm2.prefill([a, b[:-1]])
    state, _ = smollm2.extend(state, torch.tensor([[5], [b[-1]]]), torch.tensor([0, 1]))  # padding inside
    tokens = torch.tensor([[100, 200, 300, 400], [500, 600, 700, 800]])
    parents = torch.tensor([[-1, 0, 0, 1], [-1, -1, 1, 2]])
    state, out = smollm2.extend_tree(state, tokens, parents, torch.tensor([4, 3]))
    for row, node, path in ((0, 3, a + [100, 200, 400]), (0, 2, a + [100, 300]), (1, 2, b + [600, 700])):
        assert (out[row, node] - smollm2.logits(smollm2.prefill([path]))[0]).abs().max() <= 1e-3
    state = smollm2.keep_path(state, [[0, 1, 3], [1, 2]], out[[0, 1], [3, 2]])
    _, after = smollm2.extend(state, torch.tensor([[7], [8]]))
    for row, path in ((0, a + [100, 200, 400, 7]), (1, b + [600, 700, 8])):
        assert (after[row, -1] - smollm2.logits(smollm2.prefill([path]))[0]).abs().max() <= 1e-3


def test_toy_tree_scores_paths_and_keeps_one():
    toy = ToyLM([b"a", b"b"], seed=2)
    state, out = toy.extend_tree(toy.prefill([[0]]), torch.tensor([[1, 0, 1]]), torch.tensor([[-1, 0, -1]]),
                                 torch.tensor([3]))
    assert torch.equal(out[0, 1], toy.next_token_logprobs([0, 1, 0]))
    assert torch.equal(out[0, 2], toy.next_token_logprobs([0, 1]))
    assert toy.keep_path(state, [[0, 1]], out[0, 1][None]).contexts == ((0, 1, 0),)


def test_recycling_template_and_adjacency_update():
    template = TreeTemplate.of(TEMPLATE_222, k=8)
    depths = [0] * len(template.parents)
    for i, parent in enumerate(template.parents):
        depths[i] = 1 if parent < 0 else depths[parent] + 1
        assert parent < i
    assert [depths.count(d) for d in range(1, 7)] == [8, 21, 25, 15, 8, 3]
    drafter = RecycleDrafter(5, 2)
    logprobs = torch.log_softmax(torch.tensor([[0., 1, 2, 3, 4], [4., 3, 2, 1, 0], [1., 0, 0, 0, 2]]), -1)
    drafter.update(torch.tensor([3, 1, 3]), logprobs)
    assert drafter.adjacency[3].tolist() == [4, 0] and drafter.adjacency[1].tolist() == [0, 1]  # last write wins
    tree = drafter.tree(torch.tensor([3]))
    assert tree[0, :2].tolist() == [4, 0]


def test_toy_rollback_and_early_exit():
    toy = ToyLM([b"a", b"b"], seed=1)
    state, out = toy.extend(toy.prefill([[0], [1]]), torch.tensor([[0, 1, 1], [1, 1, 0]]))
    state = toy.rollback(state, [2, 0], out[[0, 1], [0, 2]])
    assert state.contexts == ((0, 0), (1, 1, 1, 0))
    assert torch.equal(toy.logits(state)[0], toy.next_token_logprobs([0, 0]))
    shallow = toy.early_exit(1)
    assert shallow.vocab.token_bytes == toy.vocab.token_bytes and shallow.eos_ids == toy.eos_ids
    assert torch.equal(shallow.next_token_logprobs([1, 0]), toy.next_token_logprobs([0]))


def test_lookup_prefers_the_longest_ngram_then_the_leftmost_match():
    assert lookup([1, 2, 9, 3, 2, 8, 1, 2], n=2, k=3) == [9, 3, 2]      # bigram (1, 2) at 0
    assert lookup([7, 2, 9, 3, 2, 8, 5, 2], n=2, k=2) == [9, 3]         # no bigram: leftmost unigram 2
    assert lookup([1, 2, 3], n=2, k=4) == []
    assert lookup([4, 4], n=3, k=5) == [4]                              # the match may run into the end


def test_ngram_drafts_stop_after_end_of_sequence_and_respect_limits():
    drafter = NgramDrafter(n=2, k=5)
    round_ = DraftRound([[1, 2, 0, 3, 9, 1, 2], [1, 2, 3, 4, 1, 2]], [5, 1], eos=frozenset({0}))
    assert drafter.propose(round_).tokens == [[0], [3]]
