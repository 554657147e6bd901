"""``beam W``: equal to brute force and to a float64 reference of transformers' rule on ToyLMs,
token-equal to ``generate(num_beams=W)`` on SmolLM2; stochastic beam's law without replacement."""

from __future__ import annotations

import math
from collections import Counter

import pytest
import torch

import genweave
from genweave.runtime.inference.beam import shift_gumbel
from genweave.testing import ToyLM, assert_matches, exact_distribution


def program(hole: str, infer: str, text: str = "a"):
    source = f'program p() -> str:\n  target:\n    "{text}"\n    x = gen {hole}\n    return x\n  infer:\n    {infer}\n'
    return genweave.compile(source).p


def normalized_scores(law, limit: int, alpha: float, eos_end=True) -> dict[tuple, float]:
    """Score of each sequence of a one-hole program: log p / length ** alpha (its end counts one)."""
    out = {}
    for outcome, p in law.probs.items():
        (ids,) = outcome
        length = len(ids) + 1 if len(ids) < limit else limit
        out[ids] = math.log(p) / length ** alpha
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("alpha", [1.0, 0.0])
def test_a_wide_beam_returns_the_exact_best_sequences(seed, alpha):
    lm = ToyLM([b"a", b"b", b"c"], seed=seed)
    prog = program("max 3 tokens", f"beam 40 length_penalty {alpha} returns 5")
    results = prog(model=lm)
    scores = normalized_scores(exact_distribution(prog, lm), 3, alpha)
    best = sorted(scores, key=lambda ids: -scores[ids])[:5]
    assert [r.hole_tokens["x"] for r in results] == best
    for r in results:
        length = len(r.hole_tokens["x"]) + (1 if len(r.hole_tokens["x"]) < 3 else 0)
        assert r.logprob / length ** alpha == pytest.approx(scores[r.hole_tokens["x"]], abs=1e-6)
        assert r.guarantee == "selection"


def test_a_constrained_wide_beam_ranks_the_masked_law():
    lm = ToyLM([b"a", b"b", b"c"], seed=4)
    prog = program('regex r"(ab|c)+" max 4 tokens', "beam 64 length_penalty 0 early_stopping never returns 3")
    results = prog(model=lm)
    law = exact_distribution(prog, lm)  # the law `sample` draws from: masks renormalize each step
    best = sorted(law.probs, key=lambda o: -law.probs[o])[:3]
    assert [(r.hole_tokens["x"],) for r in results] == best
    assert all(r.logprob == pytest.approx(math.log(law.probs[(r.hole_tokens["x"],)]), abs=1e-6) for r in results)


def test_beam_over_two_holes_ranks_whole_traces():
    lm = ToyLM([b"a", b"b"], seed=5, max_context=3)
    source = ('program p() -> str:\n  target:\n    "a"\n    x = gen max 2 tokens\n    "b"\n'
              '    y = gen max 2 tokens\n    return x + y\n  infer:\n    beam 64 length_penalty 0 returns 4\n')
    prog = genweave.compile(source).p
    results = prog(model=lm)
    law = exact_distribution(prog, lm)
    best = sorted(law.probs, key=lambda o: -law.probs[o])[:4]
    assert [(r.hole_tokens["x"], r.hole_tokens["y"]) for r in results] == best


def reference_beam(lm, prompt, width, limit, alpha, early):
    """Transformers' beam search for one unconstrained hole of ``limit`` tokens, in float64, from
    the rule's description (samplers spec §17)."""
    eos, vocab = set(lm.eos_ids), len(lm.vocab)
    running = [((), 0.0)]
    finished: list[tuple[float, tuple]] = []
    for step in range(limit):
        candidates = []
        for seq, score in running:
            logp = lm.next_token_logprobs(prompt + list(seq)).tolist()
            candidates += [(score + logp[t], seq, t) for t in range(vocab)]
        candidates.sort(key=lambda c: -c[0])
        new_running, ends_all = [], []
        full = len(finished) == width and early == "true"
        for j, (score, seq, t) in enumerate(candidates[:2 * width]):
            ends = t in eos or len(seq) + 1 == limit
            ends_all.append(ends)
            if ends and j < width and not full:
                finished.append((score / (len(seq) + 1) ** alpha, seq + (() if t in eos else (t,))))
            elif not ends and len(new_running) < width:
                new_running.append((seq + (t,), score))
        finished = sorted(finished, key=lambda f: -f[0])[:width]
        running = new_running
        if all(ends_all) or not running:
            break
        if len(finished) == width:
            if early == "true":
                break
            length = limit if early == "never" and alpha > 0 else step + 1
            if not max(s for _, s in running) / length ** alpha > min(f[0] for f in finished):
                break
    return finished


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize(("alpha", "early"), [(1.0, "false"), (2.0, "never"), (0.5, "true"), (-1.0, "false")])
def test_a_narrow_beam_follows_transformers_rule(seed, alpha, early):
    lm = ToyLM([b"a", b"b", b"c", b"d"], seed=seed, sharpness=2.0)
    prog = program("max 5 tokens", f"beam 2 length_penalty {alpha} early_stopping {early} returns 2")
    results = prog(model=lm)
    expected = reference_beam(lm, lm.encode("a"), 2, 5, alpha, early)
    assert [r.hole_tokens["x"] for r in results] == [seq for _, seq in expected]


def test_factors_add_to_the_beam_score():
    source = ('program p() -> str:\n  target:\n    "a"\n    x = gen choice ["a", "bb"]\n'
              '    factor {w} * (len(x) - 1)\n    return x\n  infer:\n    beam 2 length_penalty 0\n')
    lm = ToyLM([b"a", b"b"], seed=3)
    plain = genweave.compile(source.format(w=0.0)).p(model=lm)
    other = "bb" if plain.value == "a" else "a"
    weight = 40.0 if other == "bb" else -40.0
    assert genweave.compile(source.format(w=weight)).p(model=lm).value == other


def test_stochastic_beam_draws_without_replacement_from_the_sampling_law():
    lm = ToyLM([b"a", b"b"], seed=7)
    prog = program("max 2 tokens", "beam 2 kind stochastic returns 2")
    law = exact_distribution(prog, lm).probs
    p = {outcome[0]: q for outcome, q in law.items()}
    expected = {(i, j): p[i] * p[j] / (1 - p[i]) for i in p for j in p if i != j}
    results = prog(model=lm, draws=3000, seed=11)
    pairs = [(results[2 * g].hole_tokens["x"], results[2 * g + 1].hole_tokens["x"]) for g in range(3000)]
    assert all(a != b for a, b in pairs)
    assert_matches(pairs, expected, alpha=1e-4)  # false alarms: 1 in 10^4 (fixed seed: deterministic)


def test_the_gumbel_shift_conditions_the_maximum_on_the_parent():
    children = torch.tensor([[0.3, -1.2, 2.0, float("-inf")], [float("-inf")] * 4], dtype=torch.float64)
    parent = torch.tensor([1.5, 0.0], dtype=torch.float64)
    shifted = shift_gumbel(parent, children)
    assert shifted[0].max().item() == pytest.approx(1.5)
    z = children[0, :3]
    exact = -torch.log(math.exp(-1.5) - torch.exp(-z.max()) + torch.exp(-z))
    assert torch.allclose(shifted[0, :3], exact)
    assert shifted[0, 3].item() == float("-inf") and bool((shifted[1] == float("-inf")).all())


def test_a_budget_without_a_completion_is_an_error_before_the_search():
    lm = ToyLM([b"a", b"b"], seed=1)
    prog = program('regex r"aaaa" max 2 tokens', "beam 2")
    with pytest.raises(genweave.GenCheckError, match="needs at least 4 tokens but max 2 tokens"):
        prog(model=lm)


@pytest.mark.model
def test_beam_equals_transformers_generate_on_smollm2(smollm2):
    prompt = "The capital of France is"
    prog = program("max 6 tokens", "beam 3 length_penalty 1.0 early_stopping false", text=prompt)
    result = prog(model=smollm2)
    ids = torch.tensor([smollm2.encode(prompt)])
    out = smollm2.model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False, num_beams=3,
                                 max_new_tokens=6, length_penalty=1.0, early_stopping=False, pad_token_id=0)
    expected = [t for t in out[0, ids.shape[1]:].tolist() if t not in smollm2.vocab.eos_ids]
    assert list(result.hole_tokens["x"]) == expected[:len(result.hole_tokens["x"])]
    assert len(result.hole_tokens["x"]) == len(expected)
    assert Counter(result.hole_tokens["x"])  # a non-empty continuation


def test_stochastic_beam_priority_weights_estimate_expectations_without_bias():
    lm = ToyLM([b"a", b"b"], seed=7)
    prog = program("max 2 tokens", "beam 3 kind stochastic returns 2")
    law = {outcome[0]: q for outcome, q in exact_distribution(prog, lm).probs.items()}
    draws = 4000
    results = prog(model=lm, draws=draws, seed=5)
    for target, p in law.items():
        estimates = torch.zeros(draws, dtype=torch.float64)
        for g in range(draws):
            estimates[g] = sum(math.exp(r.weight) for r in results[2 * g:2 * g + 2] if r.hole_tokens["x"] == target)
        error = abs(estimates.mean().item() - p)
        assert error < 5 * estimates.std().item() / math.sqrt(draws) + 1e-12  # 5 s.e.: false alarm < 1e-6
    # f = 1: the estimates of the total mass (a root fixed at G = 0 instead of a Gumbel draw biases
    # this by about -0.035, six standard errors here).
    total = torch.tensor([sum(math.exp(r.weight) for r in results[2 * g:2 * g + 2]) for g in range(draws)],
                         dtype=torch.float64)
    assert abs(total.mean().item() - 1.0) < 4 * total.std().item() / math.sqrt(draws)  # false alarm ~6e-5
