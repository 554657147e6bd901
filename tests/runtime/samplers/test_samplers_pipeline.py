"""The compiled per-step function: typed errors naming the row, the constraint mask (packed
bitmask, before or after the chain), per-row greedy, dtypes, and sample/logprobs agreement."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genweave.dsl.errors import GenRuntimeError, NaNLogitsError, NoValidTokenError
from genweave.runtime.samplers import (
    compile_batch,
    greedy,
    min_p,
    pack_mask,
    repetition_penalty,
    temperature,
    top_k,
    top_p,
    unpack_mask,
    xtc,
)

V = 70  # not a multiple of 32: the last mask word is partial


def test_nan_logits_raise_naming_the_row_and_context():
    logits = torch.randn(4, V)
    logits[2, 5] = float("nan")
    compiled = (temperature(0.7) | top_p(0.9)).compile(V)
    with pytest.raises(NaNLogitsError, match=r"row 2 \(hole 'x' at token 3\)"):
        compiled.sample(logits, context="hole 'x' at token 3")
    with pytest.raises(NaNLogitsError, match="row 2"):
        compiled.logprobs(logits)
    logits[2, 5] = float("inf")
    with pytest.raises(NaNLogitsError, match=r"NaN or \+inf"):
        greedy().compile(V).sample(logits)


@pytest.mark.parametrize("chain", [temperature(1.0), greedy(), temperature(0.5) | top_k(3) | top_p(0.5)],
                         ids=str)
def test_an_all_masked_row_raises_instead_of_returning_token_0(chain):
    logits = torch.randn(3, V)
    logits[1] = float("-inf")
    compiled = compile_batch([chain], V)
    with pytest.raises(NoValidTokenError, match="row 1: every logit is -inf"):
        compiled.sample(logits)
    allowed = torch.ones(3, V, dtype=torch.bool)
    allowed[0] = False
    with pytest.raises(NoValidTokenError, match="row 0.*constraint mask allows no token"):
        compiled.logprobs(torch.randn(3, V), mask=pack_mask(allowed))


def test_mask_unpacks_bit_j_of_word_w_as_token_32w_plus_j():
    packed = torch.zeros(2, 3, dtype=torch.int32)
    packed[0, 0] = 1 << 5
    packed[0, 2] = 1 << 3  # token 67
    packed[1, 1] = -(2**31)  # bit 31 of word 1: token 63
    allowed = unpack_mask(packed, V)
    assert allowed.shape == (2, V)
    assert allowed[0].nonzero().flatten().tolist() == [5, 67]
    assert allowed[1].nonzero().flatten().tolist() == [63]
    rng = np.random.default_rng(0)
    random = torch.tensor(rng.random((5, V)) < 0.3)
    assert torch.equal(unpack_mask(pack_mask(random), V), random)


def test_mask_first_restricts_every_stage_to_allowed_tokens():
    logits = torch.randn(6, V)
    allowed = torch.rand(6, V) < 0.2
    allowed[:, 0] = True
    chain = temperature(0.8) | top_k(5) | min_p(0.1)
    compiled = compile_batch([chain], V)
    masked = compiled.logprobs(logits, mask=pack_mask(allowed))
    manual = compiled.logprobs(logits.masked_fill(~allowed, float("-inf")))
    torch.testing.assert_close(masked, manual, rtol=0, atol=0)
    best = greedy().compile(V).sample(logits, mask=pack_mask(allowed))
    assert best.tolist() == logits.masked_fill(~allowed, float("-inf")).argmax(1).tolist()


def test_mask_last_masks_the_chain_distribution_and_renormalises():
    logits = torch.randn(6, V)
    allowed = torch.rand(6, V) < 0.5
    allowed[torch.arange(6), logits.argmax(1)] = True  # the chain always keeps the argmax
    chain = temperature(0.8) | top_k(8)
    compiled = compile_batch([chain], V, mask_last=True)
    got = compiled.logprobs(logits, mask=pack_mask(allowed))
    plain = compile_batch([chain], V).logprobs(logits)
    want = torch.log_softmax(plain.masked_fill(~allowed, float("-inf")), -1)
    torch.testing.assert_close(got, want)
    excluded = allowed.clone()
    excluded[0] = False
    excluded[0, logits[0].argmin()] = True  # only a token top-k drops stays allowed
    with pytest.raises(NoValidTokenError, match="row 0.*kept no token the constraint mask allows"):
        compiled.sample(logits, mask=pack_mask(excluded))


def test_rows_with_temperature_zero_are_greedy_beside_sampling_rows():
    chains = [temperature(0.0) | top_p(0.9), temperature(1.0) | top_p(0.9)] * 2
    compiled = compile_batch(chains, V)
    logits = torch.randn(4, V)
    logits[0, 3] = logits[0, 9] = logits[0].max() + 1.0  # a tie: lowest id wins
    logp = compiled.logprobs(logits)
    assert torch.isfinite(logp[0]).nonzero().flatten().tolist() == [3]
    assert torch.isfinite(logp[2]).sum() == 1 and torch.isfinite(logp[1]).sum() > 1


def test_samples_lie_in_the_support_and_reduced_precision_logits_work():
    chain = temperature(0.7) | top_k(10) | xtc(0.5, 0.05)
    compiled = compile_batch([chain], V)
    logits = torch.randn(512, V).to(torch.bfloat16)
    logp = compiled.logprobs(logits)
    tokens = compiled.sample(logits, torch.Generator().manual_seed(0))
    assert logp.dtype == torch.float32
    assert torch.isfinite(logp.gather(1, tokens[:, None])).all()


def test_a_seeded_generator_makes_draws_reproducible():
    compiled = (temperature(0.9) | top_p(0.95)).compile(V)
    logits = torch.randn(16, V)
    first = compiled.sample(logits, torch.Generator().manual_seed(42))
    second = compiled.sample(logits, torch.Generator().manual_seed(42))
    assert torch.equal(first, second)


def test_shape_and_state_mismatches_are_reported():
    compiled = compile_batch([top_k(3), top_k(5)], V)
    with pytest.raises(GenRuntimeError, match="per-row parameters for 2 rows"):
        compiled.logprobs(torch.randn(3, V))
    with pytest.raises(GenRuntimeError, match="expected \\[batch, 70\\]"):
        compiled.logprobs(torch.randn(2, V + 1))
    stateful = repetition_penalty(1.2).compile(V, batch=2)
    with pytest.raises(GenRuntimeError, match="state holds 2 rows"):
        stateful.logprobs(torch.randn(3, V))
