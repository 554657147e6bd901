"""`infer: heal` end to end: exact first bytes after a prompt that ends inside a token.

The hole's first byte (or its end) must follow the byte-level conditional of the prompt's bytes,
``ByteLM(model).next_byte_logprobs(prompt)``, computed exactly (G-test, false-alarm rate 1e-4,
fixed seed); without healing the same check fails, which shows the tokenization bias it removes.
"""

import re

import pytest

import genweave
from genweave.runtime.bytes import EOT, ByteLM
from genweave.testing import ToyLM, assert_matches

VOCAB = [b"a", b"b", b"ab", b"ba", b"aab", b"bb", b"abb"]
SOURCE = 'program p() -> str:\n  target:\n    "aa"\n    x = gen max 3 tokens\n    return x\n  infer:\n{infer}'


@pytest.fixture(scope="module")
def toy():
    return ToyLM(VOCAB, seed=2)


def first_bytes(results):
    return [r.holes["x"].encode()[0] if r.holes["x"] else EOT for r in results]


def exact_first_byte(toy):
    logp = ByteLM(toy).next_byte_logprobs(b"aa")
    return {i: float(p) for i, p in enumerate(logp.exp().tolist()) if p > 0}


def test_healed_first_byte_follows_the_byte_level_conditional(toy):
    module = genweave.compile(SOURCE.format(infer="    heal\n"))
    results = module.p(model=toy, draws=6000, seed=4)
    for r in results:
        assert r.text == "aa" + r.holes["x"]
        assert toy.decode(r.tokens) == r.text.encode()
    assert_matches(first_bytes(results), exact_first_byte(toy), alpha=1e-4)


def test_without_healing_the_prompt_tokenization_biases_the_first_byte(toy):
    module = genweave.compile(SOURCE.format(infer="    sample\n"))
    results = module.p(model=toy, draws=6000, seed=4)
    with pytest.raises(AssertionError, match="do not match"):
        assert_matches(first_bytes(results), exact_first_byte(toy), alpha=1e-4)


def test_healing_respects_the_holes_constraint(toy):
    source = ('program p() -> str:\n  target:\n    "aa"\n    x = gen regex r"b[ab]*" max 3 tokens\n'
              '    return x\n  infer:\n    heal\n')
    for r in genweave.compile(source).p(model=toy, draws=200, seed=1):
        assert re.fullmatch(r"b[ab]*", r.holes["x"]), r.holes


@pytest.mark.model
def test_healing_at_a_token_boundary_changes_nothing(smollm2):
    source = ('program p() -> str:\n  target:\n    "The capital of France is"\n    x = gen max 6 tokens\n'
              '    return x\n  infer:\n    sample temperature 0.8\n{heal}')
    plain = genweave.compile(source.format(heal="")).p(model=smollm2, draws=3, seed=7)
    healed = genweave.compile(source.format(heal="    heal\n")).p(model=smollm2, draws=3, seed=7)
    assert [r.tokens for r in plain] == [r.tokens for r in healed]
    assert [r.value for r in plain] == [r.value for r in healed]
