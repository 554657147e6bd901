"""HFModel on the embedded SmolLM2: the LanguageModel laws (atol 1e-4), greedy decoding equal to
``model.generate``, text helpers and errors."""

from __future__ import annotations

import model_laws as laws
import pytest
import torch

from genweave.dsl.errors import GenModelError

ATOL = 1e-4


@pytest.fixture(scope="module")
def prompts(smollm2):
    texts = ["<|im_start|>user\nName a colour.", "Once upon a time", "x"]
    return [smollm2.encode(text) for text in texts]


def test_logits_are_float32_log_probs_over_the_logits_width(smollm2, prompts):
    logprobs = smollm2.logits(smollm2.prefill(prompts[:2]))
    assert logprobs.dtype == torch.float32 and logprobs.shape == (2, smollm2.model.config.vocab_size)
    torch.testing.assert_close(logprobs.exp().sum(-1), torch.ones(2), atol=1e-4, rtol=0)
    assert len(smollm2.vocab) == logprobs.shape[1]


def test_extend_equals_steps_and_a_fresh_forward(smollm2, prompts):
    tokens = smollm2.encode(" there lived a king")
    laws.extend_equals_steps_and_fresh(smollm2, prompts[1], tokens, ATOL)
    full = torch.log_softmax(smollm2.model(torch.tensor([prompts[1] + tokens])).logits.float(), -1)
    _, out = smollm2.extend(smollm2.prefill([prompts[1]]), torch.tensor([tokens]))
    torch.testing.assert_close(out[0], full[0, len(prompts[1]):], atol=ATOL, rtol=0)


def test_ragged_prefill_gives_each_row_its_own_distribution(smollm2, prompts):
    laws.ragged_prefill_equals_alone(smollm2, prompts, ATOL)


def test_ragged_extend_pads_inside_the_cache(smollm2, prompts):
    tokens = [smollm2.encode(" and then")[:2] + [11], [314, 253, 42], [7, 8, 9]]
    laws.ragged_extend_equals_alone(smollm2, prompts, tokens, [3, 1, 0], ATOL)


def test_ragged_extend_on_equal_rows(smollm2, prompts):
    same = [prompts[1], prompts[1]]
    laws.ragged_extend_equals_alone(smollm2, same, [[28, 260], [351, 253]], [2, 1], ATOL)


def test_select_with_duplicates_then_continue(smollm2, prompts):
    laws.select_then_continue_equals_alone(smollm2, prompts, [2, 0, 2, 1], [28, 260, 351, 30], ATOL)


@pytest.mark.parametrize("keep", [0, 2])
def test_crop_rolls_back(smollm2, prompts, keep):
    laws.crop_rolls_back(smollm2, [prompts[1]], [28, 260, 2240], keep, 351, ATOL)
    laws.crop_rolls_back(smollm2, prompts[1:], [28, 260, 2240], keep, 351, ATOL)


def test_greedy_decoding_matches_generate(smollm2, prompts):
    prompt = prompts[1]
    ids = torch.tensor([prompt])
    expected = smollm2.model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                      max_new_tokens=20)[0, len(prompt):].tolist()
    assert len(expected) == 20  # the prompt decodes 20 tokens without reaching EOS
    state, produced = smollm2.prefill([prompt]), []
    for _ in range(20):
        token = smollm2.logits(state).argmax(-1)
        produced.append(int(token))
        state, _ = smollm2.extend(state, token[:, None])
    assert produced == expected


def test_encode_recognises_special_tokens_and_adds_none(smollm2):
    ids = smollm2.encode("<|im_start|>user")
    assert ids[0] == smollm2.tokenizer.convert_tokens_to_ids("<|im_start|>") and len(ids) == 2
    assert smollm2.decode(smollm2.encode("Hello, world!")) == b"Hello, world!"


def test_eos_ids_include_the_generation_configs(smollm2):
    assert smollm2.model.generation_config.eos_token_id in smollm2.eos_ids
    assert set(smollm2.eos_ids) <= smollm2.vocab.special
    assert smollm2.bos_ids == ()  # SmolLM2's tokenizer adds no BOS


def test_render_chat_applies_the_template(smollm2):
    text = smollm2.render_chat([{"role": "user", "content": "hi"}])
    assert "<|im_start|>user\nhi<|im_end|>" in text and not text.endswith("assistant\n")


def test_render_chat_failures_are_model_errors(smollm2):
    with pytest.raises(GenModelError, match="chat template"):
        smollm2.render_chat([{"content": "no role"}])


def test_prefill_rejects_empty_rows_and_foreign_ids(smollm2):
    with pytest.raises(GenModelError, match="one token"):
        smollm2.prefill([[1], []])
    with pytest.raises(GenModelError, match="outside the vocabulary"):
        smollm2.prefill([[10**6]])
