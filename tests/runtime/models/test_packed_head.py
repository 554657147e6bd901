"""The prepacked output head (runtime/models/head.py): same logits as the plain head up to float32
rounding, the caller's model untouched, no second packing for early-exit views."""

from __future__ import annotations

import torch

from genweave.runtime.models.head import PackedHead, with_packed_head
from genweave.runtime.models.hf import HFModel


def test_packed_head_gives_the_plain_logits(smollm2):
    plain = HFModel(smollm2.model, smollm2.tokenizer, "plain", pack_head=False)
    assert isinstance(smollm2.model.get_output_embeddings(), PackedHead)  # the registry's model packs
    plain_head = plain.model.get_output_embeddings()
    assert type(plain_head) is torch.nn.Linear and plain_head.weight is smollm2.model.get_output_embeddings().weight
    original = torch.nn.Linear(8, 40, bias=False)
    packed = PackedHead(original)
    hidden = torch.randn(3, 2, 8)
    torch.testing.assert_close(packed(hidden), original(hidden), rtol=1e-5, atol=1e-5)
    prompts = [smollm2.encode("The cat sat on the"), smollm2.encode("One plus one is two, and two plus")]
    prompts = [p[:4] for p in prompts]
    fast = smollm2.logits(smollm2.prefill(prompts))
    slow = plain.logits(plain.prefill(prompts))
    torch.testing.assert_close(fast, slow, rtol=0, atol=1e-4)
    assert not torch.equal(fast, slow)  # a different summation order: the packed head really ran
    assert bool((fast.argmax(-1) == slow.argmax(-1)).all())


def test_the_callers_model_is_not_modified():
    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.body = torch.nn.Linear(4, 4)
            self.lm_head = torch.nn.Linear(4, 10)

        def get_output_embeddings(self):
            return self.lm_head

    tiny = Tiny()
    copied = with_packed_head(tiny)
    assert copied is not tiny and type(tiny.lm_head) is torch.nn.Linear
    assert isinstance(copied.lm_head, PackedHead) and copied.body is tiny.body
    assert with_packed_head(copied) is copied  # already packed: unchanged
    x = torch.randn(5, 4)
    torch.testing.assert_close(copied.lm_head(x), tiny.lm_head(x), rtol=1e-5, atol=1e-5)
    assert with_packed_head(tiny.to(torch.float64)) is tiny  # not float32: unchanged


def test_early_exit_views_share_the_packed_head(smollm2):
    view = smollm2.early_exit(4)
    assert view.model.get_output_embeddings() is smollm2.model.get_output_embeddings()
