"""``enumerate x`` in programs: ``Results.posterior`` is the hole's exact distribution
(``genweave.testing.exact_distribution`` of the program's target)."""

from __future__ import annotations

import math

import pytest

import genweave
from genweave.testing import ToyLM, exact_distribution


def compiled(body: str, infer: str):
    return genweave.compile(f'program p() -> str:\n  target:\n{body}  infer:\n    {infer}\n').p


def assert_same_law(posterior: dict, law: dict) -> None:
    assert set(posterior) == {v for v, p in law.items() if p > 0}
    for value, p in law.items():
        assert posterior[value] == pytest.approx(p, abs=1e-6)  # the oracle runs the chain in float32


@pytest.mark.parametrize("seed", [0, 1])
def test_enumerate_gives_the_exact_distribution_of_an_unconstrained_hole(seed):
    lm = ToyLM([b"a", b"b", b"."], seed=seed)
    prog = compiled('    "a"\n    x = gen max 3 tokens\n    return x\n', "enumerate x")
    results = prog(model=lm)
    assert_same_law(results.posterior, exact_distribution(prog, lm, target="global").value_law())
    assert {r.guarantee for r in results} == {"exact"}
    assert sum(math.exp(r.weight) for r in results) == pytest.approx(1.0)


def test_enumerate_of_a_constrained_hole_with_text_around_it():
    lm = ToyLM([b"a", b"b", b"c", b" "], seed=4)
    body = '    "a b "\n    x = gen regex r"(ab|c)+" max 4 tokens\n    " c"\n    return x + "!"\n'
    prog = compiled(body, "enumerate x\n    sample temperature 0.7")
    assert_same_law(prog(model=lm).posterior, exact_distribution(prog, lm, target="global").value_law())


def test_each_draw_is_a_system_of_weighted_outcomes():
    # The hole's law given its prefix: a later hole is sampled as usual, and draws are padded with
    # weight-zero copies to the same number of outcomes.
    lm = ToyLM([b"a", b"b", b"c", b" "], seed=4)
    body = ('    "a"\n    y = gen choice ["a", "b c"]\n    " "\n    x = gen regex r"(ab|c)+" max 3 tokens\n'
            '    z = gen choice ["a", "bc"]\n    return y + x + z\n')
    results = compiled(body, "enumerate x")(model=lm, draws=4, seed=3)
    assert len(results) == 4 * results.particles
    for system in results.systems():
        assert sum(system.weights) == pytest.approx(1.0)
        assert len({r.holes["y"] for r in system}) == 1  # drawn before the hole: one value per draw
        live = [r for r in system if r.weight > -math.inf]
        assert len({r.holes["x"] for r in live}) == len(live)


def test_enumerate_is_an_error_for_an_infinite_hole():
    with pytest.raises(genweave.GenCheckError, match="needs a finite hole"):
        compiled('    "a"\n    x = gen regex r"a+"\n    return x\n', "enumerate x")
    with pytest.raises(genweave.GenCheckError, match="does not combine with `beam`"):
        compiled('    "a"\n    x = gen max 2 tokens\n    return x\n', "enumerate x\n    beam 2")
