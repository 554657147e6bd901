"""The public testing toolkit, used on genweave itself: strategies, law checkers, exact laws."""

import math
import re

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings

import genweave
from genweave.runtime.inference.potentials import predicate
from genweave.testing import (
    ToyLM,
    assert_matches,
    assert_potential_laws,
    exact_distribution,
    g_test,
    logits,
    potential_law_violations,
    regexes,
    sampler_chains,
    toy_lms,
    tv_distance,
)

FAST = settings(max_examples=40, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(logits(vocab_size=10, batch=3), sampler_chains())
def test_chains_give_distributions_on_the_finite_support(rows, chain):
    logp = chain.compile(10, batch=3).logprobs(rows)
    assert torch.allclose(logp.exp().sum(-1), torch.ones(3), atol=1e-5)
    assert not (torch.isfinite(logp) & ~torch.isfinite(rows)).any()  # never revives a masked token
    alone = chain.compile(10, batch=1).logprobs(rows[1:2])
    assert torch.allclose(alone, logp[1:2], atol=1e-6)  # batch == single


@settings(max_examples=15, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(toy_lms(), regexes())
def test_constrained_draws_are_in_the_language(toy, pattern):
    source = f'program p():\n  target:\n    "a"\n    x = gen regex r"{pattern}" max 12 tokens\n    return x\n'
    try:
        module = genweave.compile(source)
        results = module.p(model=toy, draws=8, seed=0)
    except genweave.GenCheckError as err:  # the empty language is refused at compile time
        assume("empty" not in err.message)
        raise
    for r in results:
        assert re.fullmatch(pattern, r.holes["x"], flags=re.S | re.A), (pattern, r.holes["x"])


def test_prefix_predicate_laws_hold_and_violations_are_found():
    vocab = [b"a", b"b", b"ab"]
    assert_potential_laws(predicate(lambda s: "bb" not in s, prefix=True), vocab, depth=3)
    # "ends with a" is not prefix-monotone: the checker must say so
    violations = potential_law_violations(predicate(lambda s: s.endswith("a") or not s, prefix=True), vocab,
                                          depth=3)
    assert violations


def test_exact_laws_tv_and_g_test_agree():
    toy = ToyLM([b"a", b"b", b"ab"], seed=1)
    module = genweave.compile('program p():\n  target:\n    "a"\n    x = gen regex r"(a|b)b?" max 2 tokens\n'
                              '    return x\n')
    local = exact_distribution(module.p, toy).value_law()
    target = exact_distribution(module.p, toy, target="global").value_law()
    assert math.isclose(sum(local.values()), 1.0) and math.isclose(sum(target.values()), 1.0)
    assert tv_distance(local, local) == 0.0
    values = [r.value for r in module.p(model=toy, draws=5000, seed=3)]
    assert_matches(values, local, alpha=1e-4)
    assert g_test(values, local).p_value >= 1e-4
    if tv_distance(local, target) > 0.05:
        with pytest.raises(AssertionError):
            assert_matches(values, target, alpha=1e-4)
