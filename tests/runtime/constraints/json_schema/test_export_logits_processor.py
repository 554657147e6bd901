"""The Hugging Face logits-processor export: state followed from ``input_ids``, masks applied,
finished rows left alone; ``model.generate`` on SmolLM2; the XGrammar/llguidance engines when
their packages are installed."""

from __future__ import annotations

import importlib.util
import json
import re

import pytest
import torch

from genweave.dsl.errors import GenArgumentError
from genweave.runtime.constraints import choice, regex
from genweave.runtime.constraints.export import logits_processor
from genweave.runtime.constraints.json_schema import json_schema
from genweave.runtime.vocab import Vocabulary

TOKENS = [b"a", b"b", b"ab", b"1", b"<eos>"]
EOS = 4


@pytest.fixture()
def vocab() -> Vocabulary:
    return Vocabulary.from_bytes(TOKENS, eos_ids=[EOS])


def allowed(scores: torch.Tensor) -> list[list[int]]:
    return [torch.nonzero(torch.isfinite(row)).flatten().tolist() for row in scores]


def test_processor_follows_each_row(vocab):
    processor = logits_processor(regex("ab1?"), vocab)
    prompts = torch.tensor([[3, 3], [0, 3]])
    assert allowed(processor(prompts, torch.zeros(2, 5))) == [[0, 2], [0, 2]]
    step = torch.cat([prompts, torch.tensor([[2], [0]])], dim=1)  # "ab" / "a"
    assert allowed(processor(step, torch.zeros(2, 5))) == [[3, EOS], [1]]
    step = torch.cat([step, torch.tensor([[EOS], [1]])], dim=1)  # row 0 ended
    assert allowed(processor(step, torch.zeros(2, 5))) == [[0, 1, 2, 3, 4], [3, EOS]]


def test_new_prompt_resets_and_padding_is_masked(vocab):
    processor = logits_processor(choice(["b", "ab"]), vocab)
    processor(torch.tensor([[1]]), torch.zeros(1, 5))
    scores = processor(torch.tensor([[3]]), torch.zeros(1, 7))  # another prompt; logits wider than V
    assert allowed(scores) == [[0, 1, 2]]


def test_a_token_outside_the_constraint_raises(vocab):
    processor = logits_processor(regex("ab"), vocab)
    processor(torch.tensor([[3]]), torch.zeros(1, 5))
    with pytest.raises(Exception, match="broke the constraint"):
        processor(torch.tensor([[3, 1]]), torch.zeros(1, 5))


def test_unknown_engine_and_missing_package(vocab):
    with pytest.raises(GenArgumentError):
        logits_processor(regex("a"), vocab, engine="other")
    with pytest.raises(GenArgumentError):
        logits_processor(regex("a"), vocab, engine="xgrammar")  # a Vocabulary is not a tokenizer


@pytest.fixture(scope="module")
def smollm2_model():
    from transformers import AutoModelForCausalLM

    from genweave.runtime.models.registry import load_tokenizer, resolve

    folder, _ = resolve("smollm2-135m")
    return AutoModelForCausalLM.from_pretrained(folder).eval(), load_tokenizer("smollm2-135m")


def _generate(model, tokenizer, processor, prompt: str, tokens: int) -> str:
    ids = tokenizer(prompt, return_tensors="pt").input_ids
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=tokens, do_sample=False, logits_processor=[processor],
                             pad_token_id=tokenizer.eos_token_id)
    return tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)


@pytest.mark.model
def test_generate_with_smollm2(smollm2_model):
    model, tokenizer = smollm2_model
    text = _generate(model, tokenizer, logits_processor(regex(r"[0-9]{3}-[a-z]{2}"), tokenizer),
                     "Write a code:", 12)
    assert re.fullmatch(r"[0-9]{3}-[a-z]{2}", text), text
    schema = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 8},
                                               "age": {"type": "integer", "minimum": 0, "maximum": 120}},
              "required": ["name", "age"], "additionalProperties": False}
    text = _generate(model, tokenizer, logits_processor(json_schema(schema), tokenizer), "A person as JSON:", 30)
    value = json.loads(text)
    assert set(value) == {"name", "age"} and 0 <= value["age"] <= 120 and len(value["name"]) <= 8


@pytest.mark.parametrize("engine", ["xgrammar", "llguidance"])
def test_peer_engines_agree_with_genweave(engine, request):
    if importlib.util.find_spec(engine) is None:
        pytest.skip(f"{engine} is not installed (optional engine)")
    smollm2_tokenizer = request.getfixturevalue("smollm2_tokenizer")
    schema = {"type": "object", "properties": {"n": {"type": "integer"}, "tag": {"enum": ["x", "y"]}},
              "required": ["n", "tag"], "additionalProperties": False}
    text = '{"n":12,"tag":"y"}'
    ids = smollm2_tokenizer.encode(text, add_special_tokens=False) + [smollm2_tokenizer.eos_token_id]
    width = len(smollm2_tokenizer)
    ours = logits_processor(json_schema(schema), smollm2_tokenizer)
    theirs = logits_processor(json_schema(schema), smollm2_tokenizer, engine=engine)
    prompt = torch.tensor([[0]])
    for step in range(len(ids)):
        seen = torch.cat([prompt, torch.tensor([ids[:step]], dtype=torch.long)], dim=1)
        mine, other = ours(seen, torch.zeros(1, width)), theirs(seen, torch.zeros(1, width))
        assert torch.isfinite(mine[0, ids[step]]) and torch.isfinite(other[0, ids[step]])
