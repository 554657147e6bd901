"""Laws every LanguageModel backend obeys, checked the same way on ToyLM and on HFModel.

Each law compares the batched, cached protocol against the plainest computation: a fresh
``prefill`` of the row's whole context, alone.
"""

from __future__ import annotations

import torch


def fresh(model, context: list[int]) -> torch.Tensor:
    """``[V]`` next-token log-probs after ``context``, computed from scratch."""
    return model.logits(model.prefill([context]))[0]


def assert_close(actual: torch.Tensor, expected: torch.Tensor, atol: float) -> None:
    torch.testing.assert_close(actual, expected.to(actual.dtype), atol=atol, rtol=0)


def extend_equals_steps_and_fresh(model, prompt: list[int], tokens: list[int], atol: float) -> None:
    """``extend`` over T tokens == T one-token extends == fresh prefills of each prefix."""
    state, out = model.extend(model.prefill([prompt]), torch.tensor([tokens]))
    assert out.shape == (1, len(tokens), len(model.vocab))
    stepped = model.prefill([prompt])
    for t, token in enumerate(tokens):
        stepped, one = model.extend(stepped, torch.tensor([[token]]))
        assert_close(one[0, 0], out[0, t], atol)
        assert_close(out[0, t], fresh(model, prompt + tokens[:t + 1]), atol)
    assert_close(model.logits(state)[0], model.logits(stepped)[0], atol)


def ragged_prefill_equals_alone(model, prompts: list[list[int]], atol: float) -> None:
    logprobs = model.logits(model.prefill(prompts))
    assert logprobs.shape == (len(prompts), len(model.vocab))
    for row, prompt in enumerate(prompts):
        assert_close(logprobs[row], fresh(model, prompt), atol)


def ragged_extend_equals_alone(model, prompts: list[list[int]], tokens: list[list[int]],
                               lengths: list[int], atol: float) -> list[list[int]]:
    """Row b appends ``tokens[b][:lengths[b]]``; a later full extend continues every row correctly."""
    state, out = model.extend(model.prefill(prompts), torch.tensor(tokens), torch.tensor(lengths))
    contexts = [p + t[:n] for p, t, n in zip(prompts, tokens, lengths)]
    for row, (prompt, n) in enumerate(zip(prompts, lengths)):
        assert_close(model.logits(state)[row], fresh(model, contexts[row]), atol)
        for t in range(n):
            assert_close(out[row, t], fresh(model, prompt + tokens[row][:t + 1]), atol)
    more = [[3 + row, 5] for row in range(len(prompts))]
    state, _ = model.extend(state, torch.tensor(more))
    for row, context in enumerate(contexts):
        assert_close(model.logits(state)[row], fresh(model, context + more[row]), atol)
    return contexts


def select_then_continue_equals_alone(model, prompts: list[list[int]], rows: list[int],
                                      next_tokens: list[int], atol: float) -> None:
    """``select`` (with duplicates) then ``extend`` == independent runs; the input state stays usable."""
    state = model.prefill(prompts)
    before = model.logits(state).clone()
    chosen = model.select(state, rows)
    assert_close(model.logits(chosen), before[rows], atol)
    chosen, _ = model.extend(chosen, torch.tensor([[t] for t in next_tokens]))
    for i, (row, token) in enumerate(zip(rows, next_tokens)):
        assert_close(model.logits(chosen)[i], fresh(model, prompts[row] + [token]), atol)
    again, _ = model.extend(state, torch.tensor([[next_tokens[0]]] * len(prompts)))
    for row, prompt in enumerate(prompts):
        assert_close(model.logits(again)[row], fresh(model, prompt + [next_tokens[0]]), atol)


def crop_rolls_back(model, prompts: list[list[int]], draft: list[int], keep: int, then: int,
                    atol: float) -> None:
    """Extend by a draft, keep its first ``keep`` tokens, then continue as if never drafted."""
    state, out = model.extend(model.prefill(prompts), torch.tensor([draft] * len(prompts)))
    logprobs = out[:, keep - 1] if keep else model.logits(model.prefill(prompts))
    state = model.crop(state, len(draft) - keep, logprobs)
    for row, prompt in enumerate(prompts):
        assert_close(model.logits(state)[row], fresh(model, prompt + draft[:keep]), atol)
    state, _ = model.extend(state, torch.tensor([[then]] * len(prompts)))
    for row, prompt in enumerate(prompts):
        assert_close(model.logits(state)[row], fresh(model, prompt + draft[:keep] + [then]), atol)
