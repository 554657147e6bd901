"""Brute-force oracles for the byte-level tests: exact string distributions of finite token LMs.

``FiniteToyLM`` is a ``ToyLM`` that must end (EOS) after ``max_tokens`` tokens, so its strings can be
enumerated: every token sequence of at most ``max_tokens`` text tokens followed by EOS. From the
enumeration, prefix probabilities and next-byte distributions follow by summation, independently of
the beam code under test.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Callable, Sequence

import torch
from scipy.stats import chi2

from genweave.runtime.models import ToyLM

EOT = 256


class FiniteToyLM(ToyLM):
    """A ``ToyLM`` whose every text has at most ``max_tokens`` tokens (then EOS has probability 1)."""

    def __init__(self, vocab: Sequence[bytes], seed: int, max_tokens: int, **options):
        super().__init__(vocab, seed=seed, **options)
        self.max_tokens = max_tokens
        self._forced = torch.full((len(self.vocab),), float("-inf"), dtype=torch.float64)
        self._forced[self.eos_ids[0]] = 0.0

    def next_token_logprobs(self, ids: Sequence[int]) -> torch.Tensor:
        if len(ids) >= self.max_tokens:
            return self._forced
        return super().next_token_logprobs(ids)


def canonical(lm: ToyLM, ids: Sequence[int]) -> bool:
    """The tokenizer's own encoding of the bytes of ``ids`` is ``ids`` (longest match)."""
    return lm.encode(lm.vocab.decode(ids).decode("utf-8")) == list(ids)


def sequence_distribution(lm: FiniteToyLM, mode: str, start: Sequence[int] = ()) -> dict[tuple[int, ...], float]:
    """``P(token sequence, then EOS)`` for every sequence that starts with ``start``.

    ``mode="canonical"``: the LM restricted at each step to tokens that keep the sequence canonical
    (checked with the ToyLM's own ``encode``), renormalized with EOS.
    """
    eos = lm.eos_ids[0]
    text_ids = [i for i in range(len(lm.vocab)) if i != eos]
    out: dict[tuple[int, ...], float] = {}

    def visit(ids: tuple[int, ...], prob: float) -> None:
        probs = lm.next_token_logprobs(ids).exp()
        allowed = [t for t in text_ids if mode == "all" or canonical(lm, ids + (t,))]
        total = float(probs[allowed].sum()) + float(probs[eos])
        out[ids] = prob * float(probs[eos]) / total
        if len(ids) < lm.max_tokens:
            for t in allowed:
                visit(ids + (t,), prob * float(probs[t]) / total)

    def start_prob() -> float:
        prob = 1.0
        for i, t in enumerate(start):
            probs = lm.next_token_logprobs(tuple(start[:i])).exp()
            allowed = [u for u in text_ids if mode == "all" or canonical(lm, tuple(start[:i]) + (u,))]
            prob *= float(probs[t]) / (float(probs[allowed].sum()) + float(probs[eos]))
        return prob

    visit(tuple(start), start_prob())
    return out


def string_distribution(lm: ToyLM, sequences: dict[tuple[int, ...], float]) -> dict[bytes, float]:
    strings: dict[bytes, float] = defaultdict(float)
    for ids, prob in sequences.items():
        strings[lm.vocab.decode(ids)] += prob
    return dict(strings)


def prefix_probability(strings: dict[bytes, float], prefix: bytes) -> float:
    return sum(p for s, p in strings.items() if s.startswith(prefix))


def next_byte_probabilities(strings: dict[bytes, float], prefix: bytes) -> torch.Tensor:
    """``[257]`` exact next-byte probabilities (end of text last), normalized (zeros when the
    prefix is impossible)."""
    out = torch.zeros(EOT + 1, dtype=torch.float64)
    for s, p in strings.items():
        if s.startswith(prefix):
            out[s[len(prefix)] if len(s) > len(prefix) else EOT] += p
    total = out.sum()
    return out / total if total > 0 else out


def prefixes(alphabet: bytes, max_length: int) -> list[bytes]:
    """Every byte string over ``alphabet`` of length 0..max_length, shortest first."""
    return [bytes(t) for n in range(max_length + 1) for t in itertools.product(alphabet, repeat=n)]


def walk_prefixes(start, advance: Callable, alphabet: bytes, max_length: int) -> dict[bytes, object]:
    """``{prefix: state}`` for every prefix, each state advanced once from its parent's."""
    states = {b"": start}
    for prefix in prefixes(alphabet, max_length)[1:]:
        states[prefix] = advance(states[prefix[:-1]], prefix[-1])
    return states


def g_test_pvalue(observed: dict, expected: dict[object, float], n: int, min_expected: float = 5.0) -> float:
    """G-test of observed counts against expected probabilities; cells with expected count below
    ``min_expected`` are pooled into one (observations outside ``expected`` count there too)."""
    big = [k for k, p in expected.items() if p * n >= min_expected]
    obs = [observed.get(k, 0) for k in big]
    exp = [expected[k] * n for k in big]
    rest_obs, rest_exp = n - sum(obs), n - sum(exp)
    if rest_exp > 1e-9 * n:
        obs.append(rest_obs)
        exp.append(rest_exp)
    elif rest_obs > 0:
        return 0.0
    g = 2.0 * sum(o * math.log(o / e) for o, e in zip(obs, exp) if o > 0)
    return float(chi2.sf(g, max(len(obs) - 1, 1)))
