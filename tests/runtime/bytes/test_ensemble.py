"""ByteEnsemble of two toy LMs with different vocabularies against the brute-force combination."""

from __future__ import annotations

import pytest
import torch
from byte_oracles import (
    FiniteToyLM,
    next_byte_probabilities,
    sequence_distribution,
    string_distribution,
    walk_prefixes,
)

from genweave.dsl.errors import GenArgumentError, GenRuntimeError
from genweave.runtime.bytes import ByteEnsemble, ByteLM

TOL = 1e-9


@pytest.fixture(scope="module")
def members():
    first = FiniteToyLM([b"a", b"b", b"ab", b"ba", b"aab"], seed=1, max_tokens=3)
    second = FiniteToyLM([b"a", b"b", b"bb", b"abb", b"ba", b"aa"], seed=2, max_tokens=3)
    return first, second


def combine(kind: str, rows: list[torch.Tensor], weights: list[float], alpha: float) -> torch.Tensor:
    """The combined next-byte distribution, written directly from the definitions."""
    if kind == "mixture":
        out = sum(w / sum(weights) * p for w, p in zip(weights, rows))
    elif kind == "product":
        out = torch.ones_like(rows[0])
        for w, p in zip(weights, rows):
            out = out * p ** w
    else:
        out = sum(w / sum(weights) * p ** alpha for w, p in zip(weights, rows)) ** (1 / alpha)
    return out / out.sum()


@pytest.mark.parametrize(("kind", "weights", "alpha"), [
    ("mixture", [0.3, 0.7], 1.0), ("product", [1.0, 1.0], 1.0), ("product", [0.5, 2.0], 1.0),
    ("power", [1.0, 1.0], 0.5), ("power", [2.0, 1.0], -1.0),
])
def test_ensemble_equals_brute_force_combination(members, kind, weights, alpha):
    modes = ("all", "canonical")
    strings = [string_distribution(lm, sequence_distribution(lm, mode)) for lm, mode in zip(members, modes)]
    duo = ByteEnsemble([ByteLM(lm, mode=mode, settle=False) for lm, mode in zip(members, modes)], weights,
                       kind=kind, alpha=alpha)
    states = walk_prefixes(duo.prefill(b""), duo.advance, b"ab", 4)
    impossible = 0
    for prefix, state in states.items():
        rows = [next_byte_probabilities(s, prefix) for s in strings]
        if not all(float(row.sum()) > 0 for row in rows):  # e.g. "bbbb" needs 4 tokens of the first
            impossible += 1
            if kind == "product" or alpha < 0:
                with pytest.raises(GenRuntimeError):
                    duo.next_byte_logprobs(state)
                continue
        expected = combine(kind, rows, weights, alpha)
        torch.testing.assert_close(duo.next_byte_logprobs(state).exp(), expected, atol=TOL, rtol=0)
    assert 0 < impossible < len(states) // 2


def test_mixture_survives_a_member_that_cannot_continue(members):
    """"cc" is impossible for one member: the mixture uses the other, the product has nothing left."""
    first = FiniteToyLM([b"a", b"c"], seed=3, max_tokens=3)
    second = members[1]
    mixture = ByteEnsemble([ByteLM(first, settle=False), ByteLM(second, settle=False)], kind="mixture")
    probs = mixture.next_byte_logprobs(b"ab").exp()
    expected = next_byte_probabilities(string_distribution(second, sequence_distribution(second, "all")), b"ab")
    torch.testing.assert_close(probs, expected, atol=TOL, rtol=0)
    product = ByteEnsemble([ByteLM(first, settle=False), ByteLM(second, settle=False)], kind="product")
    with pytest.raises(GenRuntimeError):
        product.next_byte_logprobs(b"ab")


def test_ensemble_sampling_and_options(members):
    duo = ByteEnsemble([ByteLM(lm, beam=4) for lm in members], [1.0, 1.0], kind="mixture")
    samples = duo.sample_bytes(b"a", n=200, max_bytes=10, generator=torch.Generator().manual_seed(0))
    assert len(samples.texts) == 200 and all(set(t) <= set(b"ab") for t in samples.texts)
    with pytest.raises(GenArgumentError):
        ByteEnsemble([ByteLM(members[0])], [1.0, 2.0])
    with pytest.raises(GenArgumentError):
        ByteEnsemble([ByteLM(members[0])], kind="median")
    with pytest.raises(GenArgumentError):
        ByteEnsemble([ByteLM(members[0])], kind="power", alpha=0.0)
