"""`genweave.sampler(text)` and the sampler builders exported from `genweave`."""

import pytest
import torch

import genweave
from genweave.runtime.samplers import build_chain


def test_sampler_text_equals_the_built_chain():
    logits = torch.randn(4, 50, generator=torch.Generator().manual_seed(0))
    hook = genweave.sampler("temperature 0.7 | top_p 0.9 | min_p 0.05")
    built = build_chain([("temperature", {"t": 0.7}), ("top_p", {"p": 0.9}), ("min_p", {"p": 0.05})])
    assert torch.equal(hook.logprobs(logits), built.compile(50, batch=4).logprobs(logits))
    assert hook.spec == (genweave.temperature(0.7) | genweave.top_p(0.9) | genweave.min_p(0.05))


def test_sampler_text_is_folded():
    assert str(genweave.sampler("temperature 1 | top_p 1 | temperature 0.5")) == "temperature(0.5)"
    assert str(genweave.sampler("temperature 0")) == "greedy()"


def test_sample_draws_from_the_kept_set():
    logits = torch.tensor([[3.0, 2.9, -10.0, -10.0]]).repeat(200, 1)
    tokens = genweave.sampler("top_k 2").sample(logits, torch.Generator().manual_seed(1))
    assert set(tokens.tolist()) == {0, 1}


@pytest.mark.parametrize(("text", "col", "fragment"), [
    ("temperature 0.7 | top_p 1.5", 25, "parameter p must be"),
    ("temprature 0.7", 1, "unknown sampler 'temprature'"),
])
def test_errors_point_into_the_chain_text(text, col, fragment):
    with pytest.raises(genweave.GenError) as info:
        genweave.sampler(text)
    err = info.value.errors[0] if hasattr(info.value, "errors") else info.value
    assert fragment in err.message
    assert (err.span.line, err.span.col) == (1, col)
    assert err.render().splitlines()[1].strip() == text
