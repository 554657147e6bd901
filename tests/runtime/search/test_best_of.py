"""``best_of N by expr``: N sampled traces per draw (rows of one batch), the best by ``expr``."""

from __future__ import annotations

import genweave
from genweave.testing import ToyLM

BODY = '    "a"\n    x = gen max 4 tokens\n    let n = len(x)\n    return x\n'


def compiled(infer: str):
    return genweave.compile(f'program p() -> str:\n  target:\n{BODY}  infer:\n    {infer}\n').p


def test_best_of_keeps_the_first_trace_with_the_largest_score():
    lm = ToyLM([b"a", b"b", b"."], seed=6)
    # The same seed draws the same rows: best_of 5 over 3 draws sees the 15 plain draws.
    plain = compiled("sample")(model=lm, draws=15, seed=2)
    best = compiled("best_of 5 by n")(model=lm, draws=3, seed=2)
    for g in range(3):
        group = [r.value for r in plain[5 * g:5 * g + 5]]
        top = max(len(v) for v in group)
        assert best[g].value == next(v for v in group if len(v) == top)
        assert best[g].guarantee == "selection"


def test_the_score_may_be_any_float_expression():
    lm = ToyLM([b"a", b"b", b"."], seed=6)
    plain = compiled("sample")(model=lm, draws=4, seed=8)
    best = compiled("best_of 4 by 0.0 - n")(model=lm, seed=8)
    assert len(best.value) == min(len(r.value) for r in plain)
