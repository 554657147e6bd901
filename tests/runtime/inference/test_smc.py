"""SMC on one-hole ToyLM problems, against the exact target of ``exact.py``.

* convergence: the TV distance between the weighted posterior and ``pi / Z`` falls with N and is
  below 0.05 at N = 256 (mean over 16 independent systems);
* unbiasedness: over 2,000 independent systems, the mean of ``exp(log Z-hat)`` is within 3
  standard errors of ``Z``, and the mean of ``exp(log Z-hat) * posterior(text)`` is within 4 of
  ``pi(text)``, for every proposal, estimator, resampling scheme, twist and chain setting;
* local vs global: masked decoding provably differs from ``pi / Z`` on ``finite_choice`` and SMC
  recovers ``pi / Z``;
* bookkeeping: resampling re-indexes the model state and every per-particle state, the prompt is
  prefilled once, a constant twist changes nothing, dead systems report ``log Z = -inf``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from inference_problems import problem, toy

from genweave.runtime.constraints import compile_constraint, regex
from genweave.runtime.inference import (
    AWRSConfig,
    Hole,
    ParticleFilter,
    SMCConfig,
    exact_local,
    exact_target,
    factor,
    smc,
    tv_distance,
)
from genweave.runtime.models.toy import ToyLM
from genweave.runtime.samplers import repetition_penalty, temperature
from genweave.testing import assert_matches


def _global(pr) -> dict[str, float]:
    return exact_target(pr.model, pr.prompt, pr.hole).by_text(pr.model.vocab)


@pytest.mark.parametrize("proposal", ["sample", "awrs"])
@pytest.mark.parametrize("name", ["prefix_factor", "finite_choice"])
def test_posterior_converges_to_the_global_target(name, proposal):
    pr = problem(name)
    target = _global(pr)
    tv = {}
    for n in (4, 32, 256):
        config = SMCConfig(particles=n, proposal=proposal, resampling="systematic")
        run = smc(pr.model, pr.prompt, pr.hole, config, runs=16, seed=n)
        tv[n] = float(np.mean([tv_distance(r.posterior, target) for r in run.results]))
    assert tv[4] > tv[32] > tv[256], tv
    assert tv[256] < 0.05, tv


EVIDENCE_CASES = {
    "masked-multinomial": ("prefix_factor", SMCConfig(4, 1.0, "multinomial", "sample")),
    "masked-stratified-forced-eos": ("budget_condition", SMCConfig(4, 0.9, "stratified", "sample")),
    "awrs-recursive-systematic": ("predicate_factor", SMCConfig(4, 0.9, "systematic", "awrs")),
    "awrs-geometric-residual": ("predicate_factor",
                                SMCConfig(4, 0.9, "residual", "awrs", awrs=AWRSConfig("geometric", 3, 2))),
    "awrs-twisted": ("hard_only", SMCConfig(4, 1.0, "multinomial", "awrs",
                                            twist=factor(lambda s: 0.8 * s.count("a") - 0.3 * len(s), prefix=True),
                                            twist_every=1)),
    "masked-twist-every-2": ("finite_choice", SMCConfig(4, 1.0, "systematic", "sample",
                                                        twist=factor(lambda s: -1.0 * s.count("b"), prefix=True),
                                                        twist_every=2)),
}


@pytest.mark.parametrize("case", list(EVIDENCE_CASES))
def test_evidence_and_unnormalized_posterior_are_unbiased(case):
    name, config = EVIDENCE_CASES[case]
    pr = problem(name)
    _check_unbiased(pr.model, pr.prompt, pr.hole, config, seed=len(case))


def test_chains_in_target_and_proposal_are_unbiased():
    pr = problem("hard_only")
    size = len(pr.model.vocab)
    hole = Hole(pr.hole.constraint, pr.hole.potentials, pr.hole.max_tokens, chain=temperature(0.7).compile(size))
    config = SMCConfig(4, 0.9, "systematic", "sample", proposal_chain=temperature(1.6).compile(size))
    _check_unbiased(pr.model, pr.prompt, hole, config, seed=3)
    awrs_config = SMCConfig(4, 0.9, "multinomial", "awrs", proposal_chain=temperature(1.6).compile(size))
    _check_unbiased(pr.model, pr.prompt, hole, awrs_config, seed=4)


def _check_unbiased(model, prompt, hole, config, seed, runs=2000):
    exact = exact_target(model, prompt, hole)
    z = math.exp(exact.log_z)
    run = smc(model, prompt, hole, config, runs=runs, seed=seed)
    estimates = np.exp(run.log_z)
    se = estimates.std(ddof=1) / math.sqrt(runs)
    assert abs(estimates.mean() - z) <= 3 * se, (estimates.mean(), z, se)
    resampled = sum(r.stats.resamplings for r in run.results)
    assert resampled > 0 or config.ess_threshold == 0
    # texts frequent enough to be seen many times (a never-seen text has no standard error)
    pi = {text: p * z for text, p in exact.by_text(model.vocab).items() if p >= 0.02}
    joint = np.array([[r.posterior.get(text, 0.0) for text in pi] for r in run.results]) * estimates[:, None]
    means, ses = joint.mean(0), joint.std(0, ddof=1) / math.sqrt(runs)
    for (text, value), mean, err in zip(pi.items(), means, ses):
        assert abs(mean - value) <= 4 * err + 1e-12, (text, mean, value, err)


def test_masked_decoding_differs_from_the_global_target_and_smc_recovers_it():
    pr = problem("finite_choice")
    target = _global(pr)
    local = exact_local(pr.model, pr.prompt, pr.hole)
    local_law = local.by_text(pr.model.vocab)
    assert local.failure == 0.0
    assert tv_distance(local_law, target) > 0.3  # exact: the two laws provably differ
    # without resampling, the unweighted particles are masked (local) decoding
    run = smc(pr.model, pr.prompt, pr.hole, SMCConfig(particles=4000, ess_threshold=0.0), seed=7)
    assert_matches(run.results[0].values, local_law, alpha=1e-4)
    # their weights correct them to the global target
    assert tv_distance(run.results[0].posterior, target) < 0.03
    assert tv_distance(run.results[0].posterior, local_law) > 0.25


class CountingToyLM(ToyLM):
    """A ToyLM that records how it is called."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.prefills: list[int] = []
        self.extends: list[tuple[int, ...]] = []

    def prefill(self, token_lists):
        self.prefills.append(len(token_lists))
        return super().prefill(token_lists)

    def extend(self, state, tokens, lengths=None):
        self.extends.append(tuple(tokens.shape))
        return super().extend(state, tokens, lengths)


@pytest.mark.parametrize("proposal", ["sample", "awrs"])
def test_resampling_reindexes_every_particle_state(proposal):
    lm = CountingToyLM([b"a", b"b", b"ab", b"c"], seed=2)
    c = compile_constraint(regex("[abc]+"), lm.vocab, cache=False)
    hole = Hole(c, (factor(lambda s: 0.7 * s.count("a"), prefix=True),
                    factor(lambda s: -0.2 * len(s), prefix=True)), 5)
    twist = factor(lambda s: 0.5 * s.count("b"), prefix=True)
    prompt = [3, 0]
    state = lm.prefill([prompt])
    pf = ParticleFilter(lm, state, hole, SMCConfig(8, 1.0, "multinomial", proposal, twist=twist),
                        runs=3, generator=torch.Generator().manual_seed(0))
    steps = 0
    while pf.step():
        steps += 1
        _check_rows(pf, prompt, hole, twist, lm)
    run = pf.result()
    assert lm.prefills == [1]  # the prompt is computed once, then rows are selected
    assert all(shape == (24, 1) for shape in lm.extends) and len(lm.extends) <= steps + 1
    assert sum(r.stats.resamplings for r in run.results) > 0
    assert run.ancestors.shape == (24,) and set(run.ancestors.tolist()) <= set(range(24))
    for g, result in enumerate(run.results):
        for i, tokens in enumerate(result.tokens):
            assert run.state.contexts[g * 8 + i] == tuple(prompt) + tokens


def _check_rows(pf, prompt, hole, twist, lm):
    p = pf.particles
    for b in range(p.rows):
        tokens = p.tokens[b]
        assert pf.state.contexts[b][:len(prompt) + len(tokens)] == tuple(prompt) + tuple(tokens)
        assert p.texts[b] == lm.vocab.decode(tokens)
        state = hole.constraint.initial()
        for t in tokens:
            state = hole.constraint.advance(state, t)
        assert p.cstates[b] == state
        if p.done[b]:
            continue
        for k, potential in enumerate(hole.potentials):
            assert p.pvalues[b, k] == pytest.approx(potential.prefix(p.texts[b]))
        assert p.tvalues[b] == pytest.approx(twist.prefix(p.texts[b]))


def test_a_constant_twist_changes_nothing():
    # every text of "(a|b)c" has two tokens, so all particles end together and a constant twist
    # cancels in every normalized weight: the same resampling, the same particles, the same weights
    lm = toy(3)
    hole = Hole(compile_constraint(regex("(a|b)c"), lm.vocab, cache=False),
                (factor(lambda s: 0.5 * s.count("b"), prefix=True),), 4)
    base = SMCConfig(6, 0.9, "systematic", "awrs")
    plain = smc(lm, [], hole, base, runs=20, seed=9)
    shifted = smc(lm, [], hole, SMCConfig(6, 0.9, "systematic", "awrs", twist=factor(lambda s: 5.0, prefix=True)),
                  runs=20, seed=9)
    assert sum(r.stats.resamplings for r in plain.results) > 0
    assert [r.texts for r in plain.results] == [r.texts for r in shifted.results]
    assert np.allclose(plain.log_z, shifted.log_z, rtol=0, atol=1e-9)


@pytest.mark.parametrize("proposal", ["sample", "awrs"])
def test_a_system_whose_particles_all_die(proposal):
    lm = toy(0)
    hole = Hole(compile_constraint(regex("ccc"), lm.vocab, cache=False), max_tokens=1)
    run = smc(lm, [], hole, SMCConfig(particles=5, proposal=proposal), seed=0)
    result = run.results[0]
    assert result.log_z == -math.inf and result.posterior == {} and result.ess == 0.0
    assert not result.ended.any()


def test_initial_weights_carry_over_and_dead_rows_stay_dead():
    pr = problem("prefix_factor")
    state = pr.model.select(pr.model.prefill([list(pr.prompt)]), [0] * 6)
    config = SMCConfig(6, 1.0, "multinomial")

    def run(weights):
        return ParticleFilter(pr.model, state, pr.hole, config, log_weights=weights,
                              generator=torch.Generator().manual_seed(1)).run()

    plain, shifted = run(None), run(np.full(6, math.log(2.0)))
    assert shifted.results[0].texts == plain.results[0].texts
    assert shifted.log_z[0] == pytest.approx(plain.log_z[0] + math.log(2.0), abs=1e-12)
    dead = run(np.array([0.0, -math.inf, 0.0, 0.0, -math.inf, 0.0]))
    assert not {1, 4} & set(dead.ancestors.tolist())
    assert dead.results[0].stats.resamplings > 0


def test_same_seed_same_run_and_stateful_chains():
    pr = problem("predicate_factor")
    size = len(pr.model.vocab)
    hole = Hole(pr.hole.constraint, pr.hole.potentials, pr.hole.max_tokens, chain=repetition_penalty(1.5).compile(size))
    config = SMCConfig(5, 1.0, "residual", "awrs")
    a = smc(pr.model, pr.prompt, hole, config, runs=2, seed=4)
    b = smc(pr.model, pr.prompt, hole, config, runs=2, seed=4)
    assert [r.texts for r in a.results] == [r.texts for r in b.results]
    assert np.array_equal(a.log_z, b.log_z)
    for g, result in enumerate(a.results):
        for i, tokens in enumerate(result.tokens):
            assert a.chain_state.tokens(g * 5 + i) == list(pr.prompt) + list(tokens)


def test_awrs_statistics_are_recorded():
    pr = problem("predicate_factor")
    run = smc(pr.model, pr.prompt, pr.hole, SMCConfig(particles=16, proposal="awrs"), seed=0)
    stats = run.results[0].stats
    assert stats.draws == len(stats.calls) > 0 and stats.calls.min() >= 1
    assert 1 <= stats.steps <= pr.hole.max_tokens + 1  # the last step can only be the forced end
    assert len(stats.ess) == stats.steps
