"""`for HOLE:` blocks: a hole's own `sample CHAIN` / `greedy` replace the program's chain for that
hole only, in the executor and in the exact law of genweave.testing (G-tests at alpha 1e-4)."""

from __future__ import annotations

import genweave
from genweave.testing import ToyLM, assert_matches, exact_distribution

VOCAB = [b"a", b"b", b"ab", b"ba", b"1", b"2"]
SOURCE = '''
program p() -> str:
  target:
    "a"
    a = gen regex r"[ab]+" max 2 tokens
    "1"
    b = gen regex r"[12]+" max 2 tokens
    return a + "|" + b
  infer:
    sample temperature 1.5
    for a:
{block}
'''


def _program(block: str):
    return genweave.compile(SOURCE.format(block=block)).p


def test_a_greedy_hole_is_greedy_while_the_others_sample():
    model = ToyLM(VOCAB, seed=3)
    results = _program("        greedy")(model=model, draws=300, seed=1)
    assert len({r.holes["a"] for r in results}) == 1          # the greedy hole never varies
    assert len({r.holes["b"] for r in results}) > 1            # the other one still samples
    law = exact_distribution(_program("        greedy"), model, {}, target="local").value_law()
    assert_matches([r.value for r in results], law, alpha=1e-4)


def test_a_hole_chain_replaces_the_programs_chain_for_that_hole():
    model = ToyLM(VOCAB, seed=5)
    program = _program("        sample temperature 0.3")
    law = exact_distribution(program, model, {}, target="local").value_law()
    hotter = exact_distribution(_program("        sample temperature 1.5"), model, {}, target="local").value_law()
    assert max(abs(law[v] - hotter.get(v, 0.0)) for v in law) > 0.05  # the block changes the law
    results = program(model=model, draws=4000, seed=2)
    assert_matches([r.value for r in results], law, alpha=1e-4)


def test_a_block_without_a_method_keeps_the_programs_chain():
    model = ToyLM(VOCAB, seed=7)
    program = _program("        heal")
    law = exact_distribution(program, model, {}, target="local").value_law()
    plain = exact_distribution(_program("        sample temperature 1.5"), model, {}, target="local").value_law()
    assert all(abs(law[v] - plain[v]) < 1e-12 for v in law)
