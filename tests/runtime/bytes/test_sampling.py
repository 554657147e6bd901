"""No tokenization bias: byte-by-byte sampling through ByteLM reproduces token-level sampling's
string distribution, while the naive "tokenize the prefix, read the next token's first byte" does not."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
from byte_oracles import FiniteToyLM, g_test_pvalue, sequence_distribution, string_distribution

from genweave.runtime.bytes import EOT, ByteLM, sample_bytes

ALPHA = 1e-4
DRAWS = 20_000


@pytest.fixture(scope="module")
def lm():
    return FiniteToyLM([b"a", b"b", b"ab", b"ba", b"aab", b"bb", b"abb"], seed=4, max_tokens=3)


class NaiveBytes:
    """The biased baseline: the next byte is the first byte of the next token after encode(prefix)."""

    def __init__(self, lm):
        self.lm = lm
        self.first_byte = torch.zeros((EOT + 1, len(lm.vocab)), dtype=torch.float64)
        for token, data in enumerate(lm.vocab.token_bytes):
            self.first_byte[EOT if token in lm.eos_ids else data[0], token] = 1.0

    def prefill(self, prompt: bytes = b"") -> bytes:
        return bytes(prompt)

    def advance_many(self, steps: list[tuple[bytes, int]]) -> list[bytes]:
        return [state + bytes([byte]) for state, byte in steps]

    def next_byte_logprobs(self, state: bytes) -> torch.Tensor:
        probs = self.lm.next_token_logprobs(self.lm.encode(state.decode())).exp()
        return (self.first_byte @ probs).log()


def _counts(samples) -> Counter:
    assert all(samples.ended)
    return Counter(samples.texts)


def test_byte_sampling_matches_token_sampling(lm):
    exact = string_distribution(lm, sequence_distribution(lm, "all"))
    generator = torch.Generator().manual_seed(2024)
    samples = ByteLM(lm, settle=False).sample_bytes(b"", n=DRAWS, max_bytes=16, generator=generator)
    assert len(samples.texts) == DRAWS
    assert g_test_pvalue(_counts(samples), exact, DRAWS) > ALPHA


def test_naive_byte_sampling_is_biased(lm):
    exact = string_distribution(lm, sequence_distribution(lm, "all"))
    naive = sample_bytes(NaiveBytes(lm), b"", n=DRAWS, max_bytes=16, generator=torch.Generator().manual_seed(7))
    assert g_test_pvalue(_counts(naive), exact, DRAWS) < ALPHA
    # the bias is large, not a statistical accident: after "a" the naive rule misses "ab..." tokens
    byte_lm = ByteLM(lm, settle=False)
    gap = (byte_lm.next_byte_logprobs(b"a").exp() - NaiveBytes(lm).next_byte_logprobs(b"a").exp()).abs()
    assert float(gap.sum()) / 2 > 0.1


def test_samples_are_seeded_and_cut_at_max_bytes(lm):
    byte_lm = ByteLM(lm, beam=4)
    first = byte_lm.sample_bytes(b"ab", n=50, max_bytes=3, generator=torch.Generator().manual_seed(1))
    second = byte_lm.sample_bytes(b"ab", n=50, max_bytes=3, generator=torch.Generator().manual_seed(1))
    assert first == second
    assert all(len(text) <= 3 for text in first.texts)
    assert all(ended or len(text) == 3 for text, ended in zip(first.texts, first.ended))
    assert not all(first.ended)
