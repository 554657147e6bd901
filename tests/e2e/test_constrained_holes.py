"""Constrained holes end to end: every draw is in its language, and draws follow the exact law.

Statistical tests: G-test at false-alarm rate 1e-4, fixed seeds, against laws enumerated by
``genweave.testing.exact_distribution``.
"""

import re

import pytest

import genweave
from genweave.testing import ToyLM, assert_matches, exact_distribution

VOCAB = [b"a", b"b", b"ab", b"ba", b"1", b"2", b"12", b"-", b" ", b"."]


@pytest.fixture(scope="module")
def toy():
    return ToyLM(VOCAB, seed=7)


def program(hole: str, infer: str = "sample") -> genweave.Module:
    return genweave.compile(f'program p():\n  target:\n    "a"\n    y = gen {hole}\n    return y\n'
                            f'  infer:\n    {infer}\n')


CASES = [
    ('regex r"(ab|b)+1?" max 6 tokens', r"(ab|b)+1?"),
    ('regex r"[ab]{2,4}\\." max 6 tokens', r"[ab]{2,4}\."),
    ('choice ["ab", "ba", "b.a"]', r"ab|ba|b\.a"),
    ('"ab-12"', r"ab\-12"),
    ("int max 4 tokens", r"-?(0|[1-9][0-9]*)"),
    ('regex r"[ab]+" & regex r"a.*" max 5 tokens', r"a[ab]*"),
    ('regex r"a+" | choice ["12", "b"] max 4 tokens', r"a+|12|b"),
    ('stop "." max 8 tokens', r"[^.]*\."),
]


@pytest.mark.parametrize(("hole", "pattern"), CASES)
def test_every_draw_is_in_the_language(toy, hole, pattern):
    results = program(hole).p(model=toy, draws=200, seed=3)
    for r in results:
        text = toy.decode(r.hole_tokens["y"]).decode()
        assert re.fullmatch(pattern, text), (hole, text)


def test_int_holes_yield_ints_and_stop_is_cut(toy):
    assert all(isinstance(r.value, int) for r in program("int max 4 tokens").p(model=toy, draws=20, seed=0))
    for r in program('stop "." max 8 tokens').p(model=toy, draws=20, seed=0):
        assert not r.value.endswith(".") and toy.decode(r.hole_tokens["y"]).decode() == r.value + "."


@pytest.mark.parametrize("infer", ["sample", "sample temperature 0.6"])
def test_masked_sampling_follows_the_exact_local_law(toy, infer):
    source = ('program p() -> str:\n  target:\n    "a"\n    y = gen regex r"(ab|b)+1?" max 3 tokens\n'
              '    " "\n    z = gen choice ["1", "12", "2"]\n    return z\n'
              f'  infer:\n    {infer}\n')
    module = genweave.compile(source)
    law = exact_distribution(module.p, toy, target="local")
    assert sum(law.probs.values()) == pytest.approx(1.0, abs=1e-12)
    results = module.p(model=toy, draws=20_000, seed=5)
    samples = [(r.hole_tokens["y"], r.hole_tokens["z"]) for r in results]
    assert_matches(samples, law.probs, alpha=1e-4)


def test_local_and_global_laws_differ_when_the_mask_prunes(toy):
    # Masking renormalizes each step; the global target weighs whole texts. With a constraint that
    # cuts mass unevenly they disagree, which is what SMC is for.
    module = program('regex r"(a|b)(1|2)|ab12" max 3 tokens')
    local = exact_distribution(module.p, toy, target="local").value_law()
    glob = exact_distribution(module.p, toy, target="global").value_law()
    assert set(local) == set(glob)
    assert max(abs(local[v] - glob[v]) for v in local) > 0.01


def test_greedy_takes_the_best_allowed_token(toy):
    module = program('choice ["ab", "ba", "b.a"]', "greedy")
    result = module.p(model=toy)
    law = exact_distribution(module.p, toy)
    assert law.probs == {(result.hole_tokens["y"],): 1.0}


def test_unfinishable_budget_is_an_error_not_a_truncation():
    # found when the hole is bound, before any decoding, at the hole's place
    toy = ToyLM([b"a", b"b"], seed=0)
    with pytest.raises(genweave.GenCheckError, match="needs at least 5 tokens but max 2 tokens allows 2") as info:
        program('regex r"a{5}" max 2 tokens').p(model=toy, seed=0)
    assert info.value.span is not None and info.value.span.line == 4


def test_constraint_compile_errors_point_at_the_hole():
    with pytest.raises(genweave.GenCheckError) as info:
        program('regex r"(a)\\1" max 3 tokens').p(model=ToyLM([b"a"], seed=0))
    assert "backreference" in info.value.message.lower()
    assert info.value.span is not None and info.value.span.line == 4


@pytest.mark.model
def test_constrained_holes_on_smollm2(smollm2):
    source = ('model lm = "smollm2-135m" chat\nprogram p() -> str:\n  target:\n'
              '    user: "Give a phone number and say if it is valid."\n    assistant:\n'
              '        "Number: "\n        n = gen regex r"[0-9]{3}-[0-9]{4}" max 12 tokens\n'
              '        ". Valid: "\n        v = gen choice ["yes", "no"]\n        ", count: "\n'
              '        c = gen int max 4 tokens\n    return n\n  infer:\n    sample temperature 0.8\n')
    results = genweave.compile(source).p(model=smollm2, draws=16, seed=0)
    for r in results:
        assert re.fullmatch(r"[0-9]{3}-[0-9]{4}", r.holes["n"])
        assert r.holes["v"] in ("yes", "no")
        assert isinstance(r.holes["c"], int)
