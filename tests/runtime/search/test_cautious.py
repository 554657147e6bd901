"""``cautious`` (CNTP): the trial-count map, ancestral sampling with one candidate, and the exact
law of the lowest-perplexity segment of ``N`` i.i.d. segments (float64 reference from the spec)."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

import genweave
from genweave.runtime.inference.cautious import Cautious, entropy, trial_counts
from genweave.testing import ToyLM, assert_matches, exact_distribution


def program(infer: str, limit: int = 3):
    return genweave.compile(f'program p() -> str:\n  target:\n    "a"\n    x = gen max {limit} tokens\n'
                            f'    return x\n  infer:\n    {infer}\n').p


def test_the_trial_count_map():
    spec = Cautious(candidates=40, entropy_low=0.01, entropy_high=1.5)
    counts = trial_counts(torch.tensor([0.0, 0.01, 1.5, 0.755, 30.0]), spec).tolist()
    assert counts == [1, 1, 40, math.floor(1 + 39 / 2), 40]
    p = torch.tensor([[0.5, 0.25, 0.25, 0.0]], dtype=torch.float64)
    h = -(0.5 * math.log(0.5 + 1e-10) + 2 * 0.25 * math.log(0.25 + 1e-10))
    assert entropy(p.log()).item() == pytest.approx(h, abs=1e-12)


def test_one_candidate_is_ancestral_sampling():
    lm = ToyLM([b"a", b"b", b"."], seed=2, max_context=3)
    prog = program("cautious candidates 1")
    law = exact_distribution(prog, lm).probs
    results = prog(model=lm, draws=3000, seed=5)
    assert_matches([(r.hole_tokens["x"],) for r in results], law, alpha=1e-4)  # false alarms: 1e-4


def first_segments(lm, prompt, limit, stop):
    """Every first segment (up to its first punctuation token, or ``limit`` tokens) with its
    probability and mean log-probability, in float64."""
    out = {}
    for n in range(1, limit + 1):
        for seq in itertools.product(range(len(lm.vocab)), repeat=n):
            if any(t == stop for t in seq[:-1]) or (n < limit and seq[-1] != stop):
                continue
            logps = [lm.next_token_logprobs(prompt + list(seq[:i]))[t].item() for i, t in enumerate(seq)]
            out[seq] = (math.exp(sum(logps)), sum(logps) / n)
    return out


def selection_law(segments, n):
    """Law of the first index with the best mean log-prob among ``n`` i.i.d. segments."""
    law = {}
    for x, (p, m) in segments.items():
        below = sum(q for q, s in segments.values() if s < m)
        at_most = sum(q for q, s in segments.values() if s <= m)
        law[x] = sum(below ** (i - 1) * p * at_most ** (n - i) for i in range(1, n + 1))
    return law


def test_uncertain_steps_keep_the_lowest_perplexity_of_n_segments():
    lm = ToyLM([b"a", b"b", b"c", b"."], seed=3, eos=False, max_context=4)
    stop = lm.encode(".")[0]
    prog = program("cautious candidates 3 entropy_low 0 entropy_high 0.000001")
    expected = selection_law(first_segments(lm, lm.encode("a"), 3, stop), 3)
    assert sum(expected.values()) == pytest.approx(1.0)
    results = prog(model=lm, draws=3000, seed=9)

    def first(ids):
        return ids[:ids.index(stop) + 1] if stop in ids else ids

    assert_matches([first(r.hole_tokens["x"]) for r in results], expected, alpha=1e-4)  # false alarms: 1e-4


def test_cautious_respects_constraints_and_greedy():
    lm = ToyLM([b"a", b"b", b"."], seed=4)
    prog = genweave.compile('program p() -> str:\n  target:\n    "a"\n    x = gen regex r"(ab\\.)+" max 6 tokens\n'
                            '    return x\n  infer:\n    cautious candidates 4 entropy_low 0\n').p
    results = prog(model=lm, draws=20, seed=1)
    assert all(r.value in ("ab.", "ab.ab.") and r.guarantee == "selection" for r in results)
    greedy = genweave.compile('program p() -> str:\n  target:\n    "a"\n    x = gen max 4 tokens\n    return x\n'
                              '  infer:\n    greedy\n').p(model=lm)
    assert program("greedy\n    cautious entropy_low 0", 4)(model=lm).value == greedy.value
