"""ToyLM: determinism, context dependence, the LanguageModel laws (exactly), text helpers."""

from __future__ import annotations

import model_laws as laws
import pytest
import torch

from genweave.dsl.errors import GenModelError
from genweave.runtime.models import ToyLM

EXACT = 1e-12


def test_vocabulary_appends_a_special_eos(toy):
    assert toy.vocab.token_bytes[-1] == b"<eos>"
    assert toy.eos_ids == (len(toy.vocab) - 1,)
    assert len(toy.vocab) - 1 in toy.vocab.special
    bare = ToyLM([b"x", b"y"], eos=False)
    assert len(bare.vocab) == 2 and bare.eos_ids == ()


def test_distributions_are_normalised_float64(toy):
    logprobs = toy.next_token_logprobs([0, 1])
    assert logprobs.dtype == torch.float64 and logprobs.shape == (len(toy.vocab),)
    assert abs(logprobs.exp().sum().item() - 1) < 1e-12


def test_same_seed_same_model_other_seed_other_model():
    vocab = [b"a", b"b", b"c"]
    first, again, other = ToyLM(vocab, seed=1), ToyLM(vocab, seed=1), ToyLM(vocab, seed=2)
    for context in ([], [0], [2, 1, 0]):
        assert torch.equal(first.next_token_logprobs(context), again.next_token_logprobs(context))
        assert not torch.allclose(first.next_token_logprobs(context), other.next_token_logprobs(context))


def test_distribution_depends_on_the_whole_context(toy):
    contexts = [[], [0], [1], [0, 1], [1, 0], [2, 0, 1], [3, 0, 1]]
    rows = torch.stack([toy.next_token_logprobs(c) for c in contexts])
    distances = torch.cdist(rows, rows)
    assert (distances + torch.eye(len(contexts)) > 1e-3).all()


def test_max_context_makes_an_ngram_model():
    bigram = ToyLM([b"a", b"b", b"c"], seed=3, max_context=1)
    assert torch.equal(bigram.next_token_logprobs([0, 2]), bigram.next_token_logprobs([1, 1, 2]))
    assert not torch.equal(bigram.next_token_logprobs([0, 2]), bigram.next_token_logprobs([0, 1]))
    unigram = ToyLM([b"a", b"b"], seed=3, max_context=0)
    assert torch.equal(unigram.next_token_logprobs([]), unigram.next_token_logprobs([1, 0]))


def test_sharpness_scales_the_logits():
    flat, sharp = ToyLM([b"a", b"b", b"c"], sharpness=0.0), ToyLM([b"a", b"b", b"c"], sharpness=50.0)
    assert torch.allclose(flat.next_token_logprobs([1]).exp(), torch.full((4,), 0.25, dtype=torch.float64))
    assert sharp.next_token_logprobs([1]).exp().max() > 0.99


def test_extend_equals_steps_and_fresh(toy):
    laws.extend_equals_steps_and_fresh(toy, [0, 1], [2, 3, 0, 6], EXACT)


def test_ragged_prefill_and_extend(toy):
    laws.ragged_prefill_equals_alone(toy, [[0], [1, 2, 3], []], EXACT)
    laws.ragged_extend_equals_alone(toy, [[0], [1, 2, 3], [4]], [[1, 2, 3], [4, 5, 0], [1, 1, 1]],
                                    [3, 1, 0], EXACT)


def test_select_with_duplicates(toy):
    laws.select_then_continue_equals_alone(toy, [[0, 1], [2], [3, 3]], [2, 0, 2, 1], [1, 4, 5, 0], EXACT)


@pytest.mark.parametrize("keep", [0, 2, 4])
def test_crop_rolls_back(toy, keep):
    laws.crop_rolls_back(toy, [[0, 1], [5]], [2, 3, 4, 1], keep, 6, EXACT)


def test_states_are_never_mutated(toy):
    state = toy.prefill([[0]])
    toy.extend(state, torch.tensor([[1, 2]]))
    assert state.contexts == ((0,),)


def test_encode_takes_the_longest_match(toy):
    assert toy.encode("abcab c") == [5, 2, 4, 3]
    assert toy.encode("ab<eos>") == [2, 6]
    assert toy.decode(toy.encode("abcab c")) == b"abcab c"
    assert toy.encode("") == []


def test_encode_rejects_text_the_tokens_cannot_cover(toy):
    with pytest.raises(GenModelError, match="cannot be written"):
        toy.encode("abx")


def test_render_chat_uses_a_fixed_template(toy):
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    assert toy.render_chat(messages) == "<|system|>\nbe brief\n<|user|>\nhi\n"


def test_bad_ids_and_vocabularies_are_model_errors(toy):
    with pytest.raises(GenModelError, match="outside the vocabulary"):
        toy.prefill([[99]])
    with pytest.raises(GenModelError):
        ToyLM([])
    with pytest.raises(GenModelError):
        ToyLM([b"a", b""])


def test_prefill_shared_computes_identical_rows_once(toy, monkeypatch):
    prompts = [toy.encode("ab"), toy.encode("ab"), toy.encode("ab")]
    calls = []
    prefill = toy.prefill
    monkeypatch.setattr(toy, "prefill", lambda rows: calls.append(len(rows)) or prefill(rows))
    shared = toy.prefill_shared(prompts)
    assert calls == [1]
    assert torch.equal(toy.logits(shared), toy.logits(prefill(prompts)))
    mixed = [toy.encode("ab"), toy.encode("c")]
    assert torch.equal(toy.logits(toy.prefill_shared(mixed)), toy.logits(prefill(mixed)))
    assert calls == [1, 2]
