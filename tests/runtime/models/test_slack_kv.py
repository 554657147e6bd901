"""The slack KV cache (runtime/models/kv.py) holds exactly what transformers' DynamicLayer holds,
through appends, crops, row selections and rebinding, and a model runs identically on it."""

from __future__ import annotations

import copy

import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

from genweave.runtime.models.kv import SLACK, SlackLayer, slack_cache


def _states(generator, rows, count):
    return (torch.randn(rows, 2, count, 4, generator=generator), torch.randn(rows, 2, count, 4, generator=generator))


def test_layer_matches_dynamic_layer_through_every_operation():
    generator = torch.Generator().manual_seed(0)
    plain, slack = DynamicLayer(), SlackLayer()
    script = [("append", 5), ("append", 1), ("append", 40), ("crop", 3), ("append", 2),
              ("select", [2, 0, 0]), ("append", 1), ("crop", 1), ("append", SLACK + 7), ("rebind", None),
              ("append", 1), ("select", [1, 2]), ("append", 3)]
    rows = 3
    for action, argument in script:
        if action == "append":
            keys, values = _states(generator, rows, argument)
            expected = plain.update(keys, values)
            got = slack.update(keys, values)
            assert all(torch.equal(e, g) for e, g in zip(expected, got))
        elif action == "crop":
            plain.crop(-argument)
            slack.crop(-argument)
        elif action == "select":
            index = torch.tensor(argument)
            plain.reorder_cache(index)
            slack.reorder_cache(index)
            rows = len(argument)
        else:  # code outside the layer rebinds its tensors: the layer adopts them
            slack.keys, slack.values = slack.keys.clone(), slack.values.clone()
        assert torch.equal(plain.keys, slack.keys) and torch.equal(plain.values, slack.values), action
        assert slack.get_seq_length() == plain.get_seq_length()


def test_appends_write_in_place_until_the_room_runs_out():
    generator = torch.Generator().manual_seed(1)
    layer = SlackLayer()
    layer.update(*_states(generator, 2, 8))
    buffer = layer._key_buffer
    for _ in range(SLACK):
        layer.update(*_states(generator, 2, 1))
    assert layer._key_buffer is buffer  # 8 + 32 positions fit the first buffer (8 + max(32, 2))
    layer.update(*_states(generator, 2, 1))
    assert layer._key_buffer is not buffer and layer.keys.shape[-2] == 8 + SLACK + 1


def test_a_copied_layer_that_reselects_leaves_the_original_intact():
    generator = torch.Generator().manual_seed(2)
    layer = SlackLayer()
    layer.update(*_states(generator, 2, 6))
    before = layer.keys.clone()
    twin = copy.copy(layer)  # HFModel.select copies layers, then reorders the copy
    twin.reorder_cache(torch.tensor([1, 1]))
    twin.update(*_states(generator, 2, 1))
    assert torch.equal(layer.keys, before)
    layer.update(*_states(generator, 2, 1))
    assert torch.equal(twin.keys[:, :, :6], before[[1, 1]])


def test_slack_cache_replaces_only_plain_layers(smollm2):
    cache = slack_cache(smollm2.model.config)
    assert cache.layers and all(type(layer) is SlackLayer for layer in cache.layers)


def test_model_runs_identically_on_the_slack_cache(smollm2, steps=3):
    model = smollm2.model
    ids = torch.tensor([smollm2.encode("The cat sat on the"), smollm2.encode("A hat is a kind of")[:5]])
    outputs = []
    for cache in (DynamicCache(config=model.config), slack_cache(model.config)):
        with torch.no_grad():
            logits = [model(input_ids=ids, cache=cache, use_cache=True).logits[:, -1]]
            token = logits[-1].argmax(-1, keepdim=True)
            for _ in range(steps):
                logits.append(model(input_ids=token, cache=cache, use_cache=True).logits[:, -1])
                token = logits[-1].argmax(-1, keepdim=True)
            cache.crop(-2)
            cache.reorder_cache(torch.tensor([1, 0, 1]))
            logits.append(model(input_ids=torch.tensor([[5], [6], [7]]), cache=cache, use_cache=True).logits[:, -1])
        outputs.append(logits)
    for plain, slack in zip(*outputs):
        torch.testing.assert_close(slack, plain, rtol=0, atol=0)
