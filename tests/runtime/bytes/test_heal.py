"""Exact token healing on finite toy LMs: healed decoding reproduces the conditional string distribution."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
from byte_oracles import FiniteToyLM, g_test_pvalue, sequence_distribution, string_distribution

from genweave.dsl.errors import NoValidTokenError
from genweave.runtime.bytes import EOT, ByteLM, heal
from genweave.runtime.bytes.sample import multinomial_counts

ALPHA = 1e-4
DRAWS = 20_000
VOCAB = [b"a", b"b", b"ab", b"ba", b"aab", b"bb", b"abb"]


@pytest.fixture(scope="module")
def lm():
    return FiniteToyLM(VOCAB, seed=9, max_tokens=4)


def decode_on(lm, context: tuple[int, ...], count: int, generator) -> Counter:
    """Token-level sampling from ``context`` to EOS, ``count`` times: {bytes after context: times}."""
    out: Counter = Counter()
    frontier = [(context, count)]
    while frontier:
        grown = []
        for ids, times in frontier:
            for token, k in multinomial_counts(lm.next_token_logprobs(ids), times, generator).items():
                if token in lm.eos_ids:
                    out[lm.vocab.decode(ids[len(context):])] += k
                else:
                    grown.append((ids + (token,), k))
        frontier = grown
    return out


def conditional(strings: dict[bytes, float], prompt: bytes) -> dict[bytes, float]:
    kept = {s[len(prompt):]: p for s, p in strings.items() if s.startswith(prompt)}
    total = sum(kept.values())
    return {s: p / total for s, p in kept.items()}


def healed_continuations(lm, prompt: bytes, generator) -> Counter:
    """Heal, then decode tokens: {text after the prompt: times} over DRAWS draws."""
    healed = heal(ByteLM(lm, settle=False), prompt, n=DRAWS, generator=generator)
    assert len(healed) == DRAWS
    groups = Counter((h.tokens, h.hole) for h in healed)
    out: Counter = Counter()
    for (tokens, hole), times in groups.items():
        assert lm.vocab.decode(tokens) == prompt + hole
        for rest, k in decode_on(lm, tokens, times, generator).items():
            out[hole + rest] += k
    return out


@pytest.mark.parametrize("prompt", [b"a", b"aa", b"ab", b"bab"])
def test_healed_decoding_matches_the_byte_level_conditional(lm, prompt):
    exact = conditional(string_distribution(lm, sequence_distribution(lm, "all")), prompt)
    generator = torch.Generator().manual_seed(len(prompt))
    observed = healed_continuations(lm, prompt, generator)
    assert g_test_pvalue(observed, exact, DRAWS) > ALPHA
    # unhealed decoding (tokenize the prompt, decode on) is biased on the same prompt
    unhealed = decode_on(lm, tuple(lm.encode(prompt.decode())), DRAWS, generator)
    assert g_test_pvalue(unhealed, exact, DRAWS) < ALPHA


def test_first_byte_law_is_next_byte_logprobs(lm):
    """The healed draw's first byte (or end of text) is distributed as next_byte_logprobs(prompt)."""
    byte_lm = ByteLM(lm, settle=False)
    prompt = b"aa"
    healed = heal(byte_lm, prompt, n=DRAWS, generator=torch.Generator().manual_seed(3))
    first: Counter = Counter()
    generator = torch.Generator().manual_seed(4)
    for (hole, state), times in Counter((h.hole, h.state) for h in healed).items():
        if hole:
            first[hole[0]] += times
        else:
            first.update(multinomial_counts(byte_lm.next_byte_logprobs(state), times, generator))
    expected = dict(enumerate(byte_lm.next_byte_logprobs(prompt).exp().tolist()))
    assert g_test_pvalue(first, expected, DRAWS) > ALPHA
    assert 0 < sum(first[b] for b in b"ab") < DRAWS and first[EOT] > 0


def test_healed_state_continues_its_tokens(lm):
    byte_lm = ByteLM(lm, settle=False)
    draws = heal(byte_lm, b"ab", n=200, generator=torch.Generator().manual_seed(0))
    for healed in {id(h.state): h for h in draws}.values():
        assert healed.state.size == 1 and healed.state.nodes == (0,)
        assert healed.state.tokens(0) == healed.tokens
        torch.testing.assert_close(lm.logits(healed.model_state(lm))[0], lm.next_token_logprobs(healed.tokens))


def test_heal_at_a_token_boundary_changes_nothing(lm):
    """A prompt whose canonical beam is one token boundary: the canonical tokens, no bytes drawn,
    and the caller's generator untouched, so decoding on gives identical outputs."""
    byte_lm = ByteLM(lm, mode="canonical", settle=False)
    prompt = b"abb"
    assert byte_lm.prefill(prompt).nodes == (0,)
    generator = torch.Generator().manual_seed(5)
    before = generator.get_state()
    [healed] = heal(byte_lm, prompt, generator=generator)
    assert torch.equal(generator.get_state(), before)
    assert healed.tokens == tuple(lm.encode(prompt.decode())) and healed.hole == b""
    again = torch.Generator().manual_seed(5)
    assert decode_on(lm, healed.tokens, 50, generator) == decode_on(lm, tuple(lm.encode("abb")), 50, again)


def test_heal_constrains_the_hole_bytes(lm):
    byte_lm = ByteLM(lm, settle=False)
    only_b = torch.zeros(EOT + 1, dtype=torch.bool)
    only_b[ord("b")] = True
    healed = heal(byte_lm, b"a", n=500, allowed=lambda hole: only_b, generator=torch.Generator().manual_seed(1))
    start = byte_lm.prefill(b"a")
    partial = byte_lm.select(start, [h for h, node in enumerate(start.nodes) if node != 0])
    log_mass_b = float(byte_lm.next_byte_logprobs(partial)[ord("b")])
    assert any(h.hole for h in healed) and any(not h.hole for h in healed)
    for h in healed:
        assert set(h.hole) <= {ord("b")}
        assert h.log_weight <= 0.0
        if len(h.hole) == 1:
            assert abs(h.log_weight - log_mass_b) < 1e-12
    never = torch.zeros(EOT + 1, dtype=torch.bool)
    with pytest.raises(NoValidTokenError):
        heal(byte_lm, b"a", n=500, allowed=lambda hole: never, generator=torch.Generator().manual_seed(1))
