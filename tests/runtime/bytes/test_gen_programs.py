""".gen programs on byte-level models against brute force.

The oracle is :func:`genweave.testing.exact_distribution` run on :class:`BruteBytes`, a "model" over the
257 byte outcomes whose next-byte distribution is summed directly from the enumerated string law of
finite toy LMs (``byte_oracles``), combined across members for ensembles: no ``ByteLM`` code is
involved. Statistical checks are G-tests at a false-alarm rate of 1e-4 with fixed seeds.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import torch
from byte_oracles import FiniteToyLM, next_byte_probabilities, sequence_distribution, string_distribution

import genweave
from genweave.dsl.errors import BudgetExhaustedError, GenCheckError, GenRuntimeError
from genweave.runtime.bytes import ByteEnsemble, ByteLM
from genweave.runtime.bytes.alphabet import EOT, byte_vocabulary
from genweave.testing import assert_matches, exact_distribution

ALPHA = 1e-4
DRAWS = 3000

PROGRAM = '''model {model}

program two(start: str) -> str:
  target:
    "{{start}}"
    x = gen regex r"[ab]{{1,2}}"
    "b"
    y = gen max 2 tokens
    return x + "|" + y
  infer:
    {infer}
'''
ENSEMBLE = 'duo = ensemble(first, second, weights [1, 3])\nmodel first = "toy-a"\nmodel second = "toy-b"'


class BruteBytes:
    """Next-byte distributions (256 bytes, then end of text) of a mixture/product/power combination
    of string laws, by summation over the enumerated strings."""

    def __init__(self, laws: list[dict[bytes, float]], weights: list[float], kind: str = "mixture",
                 alpha: float = 1.0):
        self.laws, self.weights, self.kind, self.alpha = laws, weights, kind, alpha
        self.vocab, self.bos_ids, self.name = byte_vocabulary(), (), "brute-force bytes"

    def next_token_logprobs(self, ids) -> torch.Tensor:
        rows = [next_byte_probabilities(law, bytes(ids)) for law in self.laws]
        w = torch.tensor(self.weights, dtype=torch.float64)
        stacked = torch.stack(rows)
        if self.kind == "mixture":
            out = (w[:, None] / w.sum() * stacked).sum(0)
        elif self.kind == "product":
            out = (stacked ** w[:, None]).prod(0)
        else:
            out = ((w[:, None] / w.sum() * stacked ** self.alpha).sum(0)) ** (1 / self.alpha)
        return (out / out.sum()).log()

    def encode(self, text: str) -> list[int]:
        return list(text.encode())


@pytest.fixture(scope="module")
def toys():
    first = FiniteToyLM([b"a", b"b", b"ab", b"ba", b"aab"], seed=1, max_tokens=5)
    second = FiniteToyLM([b"a", b"b", b"bb", b"abb", b"ba"], seed=2, max_tokens=5)
    laws = [string_distribution(lm, sequence_distribution(lm, "all")) for lm in (first, second)]
    return (first, second), laws


def outcomes(results) -> list[tuple]:
    return [tuple(r.hole_tokens[name] for name in ("x", "y")) for r in results]


def check_law(results, law, *, logprob_tol: float) -> None:
    """Every draw's log-probability is the oracle's (the oracle walks in float32), and the draws
    follow the oracle (G-test)."""
    seen = {}
    for outcome, result in zip(outcomes(results), results):
        seen.setdefault(outcome, result.logprob)
    for outcome, logprob in seen.items():
        assert outcome in law.probs, outcome
        assert abs(logprob - math.log(law.probs[outcome])) < logprob_tol, outcome
    assert_matches(outcomes(results), law.probs, alpha=ALPHA)


def test_bytes_model_program_follows_the_exact_byte_law(toys):
    (first, _), laws = toys
    module = genweave.compile(PROGRAM.format(model='m = "toy" bytes', infer="sample"))
    law = exact_distribution(module.two, BruteBytes(laws[:1], [1.0]), {"start": "a"})
    results = module.two(model=ByteLM(first, settle=False), start="a", draws=DRAWS, seed=0)
    assert results[0].guarantee == "local" and results[0].tokens[:1] == (97,)
    check_law(results, law, logprob_tol=1e-6)
    # The same program at token level (no `bytes`) conditions on the prompt's tokens and writes the
    # holes' canonical tokenizations: the G-test tells it apart from the byte law.
    tokens = genweave.compile(PROGRAM.format(model='m = "toy"', infer="sample"))
    token_draws = tokens.two(model=first, start="a", draws=DRAWS, seed=0)
    by_bytes = [tuple(tuple(r.holes[name].encode()) for name in ("x", "y")) for r in token_draws]
    with pytest.raises(AssertionError, match="do not match"):
        assert_matches(by_bytes, law.probs, alpha=ALPHA)


def test_sampler_chain_applies_to_the_257_outcomes(toys):
    (first, _), laws = toys
    module = genweave.compile(PROGRAM.format(model='m = "toy" bytes', infer="sample temperature 0.5"))
    law = exact_distribution(module.two, BruteBytes(laws[:1], [1.0]), {"start": "ab"})
    results = module.two(model=ByteLM(first, settle=False), start="ab", draws=DRAWS, seed=1)
    check_law(results, law, logprob_tol=1e-4)  # the chain runs in float32
    greedy = genweave.compile(PROGRAM.format(model='m = "toy" bytes', infer="greedy"))
    [(mode, _)] = exact_distribution(greedy.two, BruteBytes(laws[:1], [1.0]), {"start": "ab"}).probs.items()
    assert outcomes([greedy.two(model=ByteLM(first, settle=False), start="ab")]) == [mode]


def test_gen_ensemble_of_two_vocabularies_is_the_mixture_of_byte_laws(toys):
    models, laws = toys
    module = genweave.compile(PROGRAM.format(model=ENSEMBLE, infer="sample"))
    law = exact_distribution(module.two, BruteBytes(laws, [1.0, 3.0]), {"start": "a"})
    members = {"first": ByteLM(models[0], settle=False), "second": ByteLM(models[1], settle=False)}
    results = module.two(model=members, start="a", draws=DRAWS, seed=2)
    check_law(results, law, logprob_tol=1e-6)


@pytest.mark.parametrize(("kind", "alpha"), [("product", 1.0), ("power", 0.5)])
def test_other_combinations_through_a_python_ensemble(toys, kind, alpha):
    models, laws = toys
    module = genweave.compile(PROGRAM.format(model=ENSEMBLE, infer="sample"))
    law = exact_distribution(module.two, BruteBytes(laws, [1.0, 2.0], kind, alpha), {"start": "a"})
    duo = ByteEnsemble([ByteLM(lm, settle=False) for lm in models], [1.0, 2.0], kind=kind, alpha=alpha)
    results = module.two(model=duo, start="a", draws=1500, seed=3)
    check_law(results, law, logprob_tol=1e-6)


def test_bytes_model_boundary_bytes_and_heal_change_nothing(toys):
    """A byte-level model reads every boundary as bytes already: `boundary bytes` (and `heal`) give
    the same draws."""
    (first, _), _ = toys
    draws = []
    for infer in ("sample", "sample\n    boundary bytes", "sample\n    heal"):
        module = genweave.compile(PROGRAM.format(model='m = "toy" bytes', infer=infer))
        draws.append(outcomes(module.two(model=ByteLM(first, settle=False), start="a", draws=50, seed=4)))
    assert draws[0] == draws[1] == draws[2]


def test_max_tokens_counts_bytes_and_never_truncates(toys):
    (first, _), _ = toys
    source = 'model m = "toy" bytes\nprogram p() -> str:\n    "a"\n    x = gen {c} max {n} tokens\n    return x\n'
    plain = genweave.compile(source.format(c="", n=2)).p(model=ByteLM(first, settle=False), draws=200, seed=5)
    assert max(len(r.value) for r in plain) == 2
    tight = genweave.compile(source.format(c='regex r"a{3}b?"', n=2))
    with pytest.raises(GenCheckError, match="needs at least 3 tokens but max 2 tokens"):  # tokens: bytes
        tight.p(model=ByteLM(first, settle=False), seed=5)
    windowed = FiniteToyLM([b"a", b"b", b"ab"], seed=1, max_tokens=9)
    windowed.context_window = 4  # 3 bytes left after the prompt: too few for the 5 the regex needs
    long = genweave.compile(source.replace(" max {n} tokens", "").format(c='regex r"[ab]{5}"'))
    with pytest.raises(BudgetExhaustedError, match="context window"):
        long.p(model=ByteLM(windowed, settle=False), seed=5)


def test_pruned_default_view_says_so_and_unsupported_inference_is_named(toys):
    (first, _), _ = toys
    module = genweave.compile(PROGRAM.format(model='m = "toy" bytes', infer="sample"))
    result = module.two(model=first, start="a", seed=6)  # a token model: the default byte view
    assert "approximate" in result.guarantee and set(result.value) <= set("ab|")
    smc = genweave.compile(PROGRAM.format(model='m = "toy" bytes', infer="smc particles 2"))
    with pytest.raises(GenRuntimeError, match="byte-level"):
        smc.two(model=ByteLM(first), start="a")
    with pytest.raises(GenCheckError, match="no chat template"):
        genweave.compile('model m = "toy" bytes chat\nprogram p() -> str:\n    "a"\n    return "a"\n')


def test_end_of_text_is_the_last_outcome():
    assert EOT == 256 and len(byte_vocabulary()) == EOT + 1


def test_docs_toy_example_runs():
    """The toy-model Python example of docs/bytes.md runs as written."""
    docs = Path(__file__).resolve().parents[3] / "docs" / "bytes.md"
    blocks = [b for b in re.findall(r"```python\n(.*?)```", docs.read_text(), flags=re.S) if "ToyLM" in b]
    assert blocks
    for block in blocks:
        exec(compile(block, "docs/bytes.md", "exec"), {"__name__": "docs_example"})


def test_prefill_many_equals_one_prefill_per_prompt(toys):
    models, _ = toys
    prompts = [b"aab", b"a", b"aab", b"babab", b""]
    for byte_lm in (ByteLM(models[0]), ByteLM(models[1], mode="canonical"), ByteLM(models[0], beam=2)):
        states = byte_lm.prefill_many(prompts)
        assert states[0] is states[2]
        for prompt, state in zip(prompts, states):
            assert state.text == prompt
            torch.testing.assert_close(byte_lm.next_byte_logprobs(state), byte_lm.next_byte_logprobs(prompt),
                                       atol=1e-12, rtol=0)
