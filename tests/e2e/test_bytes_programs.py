"""Byte-level `.gen` programs on SmolLM2: a prompt that ends inside a token, continued from its bytes.

The exact laws are tested on toy models (``tests/runtime/bytes/test_gen_programs.py``); here the
byte executor runs the real model: the greedy first byte is the argmax of the byte view's masked
next-byte distribution after the prompt's bytes, and sampled draws stay in the hole's language.
"""

import re

import pytest
import torch

import genweave
from genweave.runtime.bytes import ByteLM
from genweave.runtime.bytes.program import DEFAULT_BEAM, DEFAULT_PRUNE

PROMPT = "The source code is on GitHub: https://github.com/guid"
SOURCE = '''model lm = "smollm2-135m" bytes

program url() -> str:
  target:
    "{prompt}"
    rest = gen regex r"[a-z-]{{1,10}}/" max 11 tokens
    return rest
  infer:
    {infer}
'''


@pytest.mark.model
def test_bytes_model_continues_a_mid_token_prompt_from_its_bytes(smollm2):
    greedy = genweave.compile(SOURCE.format(prompt=PROMPT, infer="greedy\n    boundary bytes"))
    result = greedy.url(model=smollm2)
    view = ByteLM(smollm2, beam=DEFAULT_BEAM, prune=DEFAULT_PRUNE, keep_boundary=True)
    logprobs = view.next_byte_logprobs(PROMPT.encode())
    allowed = torch.zeros_like(logprobs, dtype=torch.bool)
    allowed[list(b"abcdefghijklmnopqrstuvwxyz-")] = True
    assert result.value.encode()[0] == int(logprobs.masked_fill(~allowed, float("-inf")).argmax())
    assert result.text == PROMPT + result.value and result.tokens == tuple((PROMPT + result.value).encode())
    assert "approximate" in result.guarantee  # the default view prunes its beam

    sampled = genweave.compile(SOURCE.format(prompt=PROMPT, infer="sample\n    draws 2\n    seed 0"))
    for draw in sampled.url(model=smollm2):
        assert re.fullmatch(r"[a-z-]{1,10}/", draw.value), draw.value
        assert draw.logprob < 0 and draw.hole_tokens["rest"] == tuple(draw.value.encode())
