"""Byte-level probabilities and healing on the embedded SmolLM2 model (short prompts)."""

from __future__ import annotations

import random
from collections import Counter

import pytest
import torch
from byte_oracles import g_test_pvalue

from genweave.dsl.errors import GenModelError
from genweave.runtime.bytes import ByteLM, HFTokenization, heal
from genweave.runtime.bytes.sample import multinomial_counts

pytestmark = pytest.mark.model

MID_TOKEN = b"https://github.com/guid"
AT_BOUNDARY = b"The capital of France is"
CORPUS = ("The quick brown fox jumps over the lazy dog. We're sure it's fine, isn't it? "
          "def main():\n    return {'key': [1, 2, 3]}  # done\n\n"
          "https://github.com/guidance-ai/guidance  x = 12345 + 6.78e-3;  caf\u00e9 cr\u00e8me "
          "\u6570\u636e\u6a21\u578b  'quoted' \"double\" I'll we've they'd   spaced\ttabs\n")


@pytest.fixture(scope="module")
def byte_lm(smollm2):
    return ByteLM(smollm2)


def test_settled_head_is_stable_on_smollm2(smollm2):
    """encode(x + y) starts with the tokens of x's settled head, for random texts and continuations."""
    tok = HFTokenization(smollm2)
    rng = random.Random(0)
    for _ in range(300):
        i = rng.randrange(len(CORPUS))
        x = CORPUS[i:i + rng.randint(1, 40)].encode()
        settled = tok.settled_length(x)
        head = tok.encode(x[:settled])
        tail = x[settled:].decode("utf-8", errors="ignore")
        assert len(tail.split()) <= 2, (x, settled)
        for _ in range(4):
            j = rng.randrange(len(CORPUS))
            y = CORPUS[j:j + rng.randint(1, 12)].encode()
            assert tok.encode(x + y)[:len(head)] == head, (x, y)


def test_next_byte_distribution_mid_token(byte_lm):
    state = byte_lm.prefill(MID_TOKEN)
    assert state.head == b"https://github.com/" and state.data == b"guid"
    logprobs = byte_lm.next_byte_logprobs(state)
    assert abs(float(logprobs.exp().sum()) - 1.0) < 1e-9
    # "guid" is a word start: "guide", "guides", "guidance" ... make "e" and "a" likely
    assert float(logprobs[ord("e")].exp()) > 0.3 and float(logprobs[ord("a")].exp()) > 0.01
    # a pruned beam agrees closely with the exact one
    pruned = ByteLM(byte_lm.model, beam=4).next_byte_logprobs(MID_TOKEN)
    assert float((pruned.exp() - logprobs.exp()).abs().sum()) / 2 < 5e-3


def test_a_model_without_bos_needs_a_context(byte_lm, smollm2):
    """SmolLM2 has no BOS: a one-word prompt settles nothing, so it needs context tokens."""
    with pytest.raises(GenModelError):
        byte_lm.prefill(b"guid")
    state = byte_lm.prefill(b"guid", context=smollm2.encode("Look at "))
    assert state.head == b"" and state.data == b"guid" and state.size > 1


def test_heal_first_byte_law_mid_token(byte_lm):
    """Healed generation's first byte (or end of text) follows next_byte_logprobs(prompt)."""
    draws = 1500
    healed = heal(byte_lm, MID_TOKEN, n=draws, generator=torch.Generator().manual_seed(0))
    first: Counter = Counter()
    generator = torch.Generator().manual_seed(1)
    for (hole, state), times in Counter((h.hole, h.state) for h in healed).items():
        assert byte_lm.model.decode(state.tokens(0)) == MID_TOKEN + hole
        if hole:
            first[hole[0]] += times
        else:  # the next token's first byte, drawn from the healed state's row
            first.update(multinomial_counts(byte_lm.next_byte_logprobs(state), times, generator))
    expected = byte_lm.next_byte_logprobs(MID_TOKEN).exp()
    assert g_test_pvalue(first, dict(enumerate(expected.tolist())), draws) > 1e-4
    assert sum(1 for h in healed if h.hole) > draws // 10  # the prompt really ends inside tokens
    # the law is a mixture: stop at a boundary, or continue inside an open token
    start = byte_lm.prefill(MID_TOKEN)
    weights = byte_lm.weights(start)
    roots = [h for h, node in enumerate(start.nodes) if node == 0]
    partial = [h for h, node in enumerate(start.nodes) if node != 0]
    stop = float((torch.logsumexp(weights[roots], 0) - torch.logsumexp(weights, 0)).exp())
    mixture = (stop * byte_lm.next_byte_logprobs(byte_lm.select(start, roots)).exp()
               + (1 - stop) * byte_lm.next_byte_logprobs(byte_lm.select(start, partial)).exp())
    torch.testing.assert_close(mixture, expected, atol=1e-9, rtol=0)
    assert 0.05 < stop < 0.95


def test_heal_at_a_token_boundary_changes_nothing(byte_lm, smollm2):
    """At a boundary the healed tokens are the prompt's own, nothing is drawn from the caller's
    generator, and decoding on gives identical outputs for the same seed."""
    generator = torch.Generator().manual_seed(11)
    before = generator.get_state()
    [healed] = heal(byte_lm, AT_BOUNDARY, generator=generator)
    assert torch.equal(generator.get_state(), before)
    assert healed.tokens == tuple(smollm2.encode(AT_BOUNDARY.decode())) and healed.hole == b""
    healed_run = _decode(smollm2, healed.model_state(smollm2), generator)
    plain_run = _decode(smollm2, smollm2.prefill([smollm2.encode(AT_BOUNDARY.decode())]),
                        torch.Generator().manual_seed(11))
    assert healed_run == plain_run


def _decode(model, state, generator, steps: int = 6) -> list[int]:
    tokens = []
    for _ in range(steps):
        token = torch.multinomial(model.logits(state)[0].exp(), 1, generator=generator)
        tokens.append(int(token))
        state, _ = model.extend(state, token[None, :])
    return tokens


def test_canonical_mode_on_smollm2(smollm2):
    """The bigram test keeps the tokenizer's own encoding, rejects a split it never makes, and the
    canonical beam is small and close to the all-tokenizations one."""
    tok = HFTokenization(smollm2)
    guid = tok.encode(b"guid")
    pieces = [tok.encode(b"gu")[0], tok.encode(b"id")[0]]
    assert len(guid) == 1 and bool(tok.canonical_mask(())[guid[0]])
    assert not bool(tok.canonical_mask((pieces[0],))[pieces[1]])
    assert not bool(tok.canonical_mask(())[smollm2.vocab.eos_ids[0]])
    canonical = ByteLM(smollm2, mode="canonical", tokenization=tok)
    state = canonical.prefill(b"Hello, worl")
    own = tuple(tok.encode(b"Hello, worl"))
    assert state.size <= 4 and any(state.tokens(h) == own for h in range(state.size))
    logprobs = canonical.next_byte_logprobs(state)
    assert float(logprobs[ord("d")].exp()) > 0.99
    every = ByteLM(smollm2).next_byte_logprobs(b"Hello, worl")
    assert float((every.exp() - logprobs.exp()).abs().sum()) / 2 < 1e-3
