"""Exact token healing at a literal -> hole boundary.

A prompt can end inside a token (``"https://github.com/guid"``: the model would write ``guidance``
as one token). Tokenizing the prompt and decoding on from its tokens conditions on a tokenization the
model would rarely produce; *token healing* repairs this. :func:`heal` does it exactly: the hole's
text is drawn from the byte-level conditional ``P(· | prompt bytes)`` of :class:`ByteLM`, and
ordinary token decoding resumes at a token boundary.

**Procedure.** ``B`` is the beam after the prompt (its settled head as tokens, the tail at byte
level). Its hypotheses are *root* ones (a token ends exactly at the end of the bytes read) and
*partial* ones (a token is open). The posterior of a hypothesis given the bytes is its weight
over the total, and a root hypothesis's future is plain token decoding from its context. So:

1. with probability ``W(roots) / W(B)``, pick a root hypothesis in proportion to its weight and stop:
   its tokens are committed and token decoding resumes from them;
2. otherwise keep only the partial hypotheses, draw the next byte from *their* next-byte
   distribution (no end of text: a token is open), append it to the hole, and repeat.

Each step draws part of the hypothesis (token boundary here or not) and then bytes consistent with
it, so every draw is an exact sample of ``P(hole | prompt)`` composed with token decoding; in
particular the first byte of the hole (or end of text) follows ``next_byte_logprobs(prompt)``
exactly. The loop ends at the first boundary chosen (tokens are at most a few dozen bytes);
after ``max_bytes`` bytes it stops at the next state that has a root hypothesis.

**Constraints.** ``allowed(hole) -> bool[257]`` (optional) restricts the bytes drawn at byte level
(the hole's constraint on its first bytes); the draw is then locally constrained and
``Healed.log_weight`` is the sum of the log allowed masses (an importance weight, 0 when
unconstrained). After the boundary the executor's constraint, advanced by ``Healed.hole``,
constrains the tokens as usual.

**No-op at a boundary.** :func:`heal` never advances the caller's generator: its draws come from a
private generator seeded by a hash of the caller's generator state. When the prompt's beam holds a
single root hypothesis, or the draw stops at once on the canonical tokens, the result is
``tokens == encode(prompt)`` with ``hole == b""`` and token decoding goes on exactly as without
healing, with the same random draws.

**For the executor** (one call per boundary; rows with equal contexts can share one call with ``n``):

    healed = heal(model, pending_text.encode(), context=row_tokens, lm_state=model.select(state, [row]),
                  generator=generator)[0]
    # commit healed.tokens (their bytes are exactly pending_text + healed.hole); the row's model state
    # is healed.model_state(model) (one row, a fresh copy), or extend the old state by healed.tokens;
    # the hole's text starts with healed.hole (advance the hole's constraint by it), then decode tokens.

>>> from genweave.runtime.models import ToyLM
>>> lm = ToyLM([b"a", b"b", b"ab", b"ba", b"aab"], seed=2)
>>> [healed] = heal(lm, b"aa", generator=torch.Generator().manual_seed(0))
>>> lm.vocab.decode(healed.tokens) == b"aa" + healed.hole, healed.state.size
(True, 1)
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from genweave.dsl.errors import GenRuntimeError, NoValidTokenError
from genweave.runtime.bytes.byte_lm import ByteLM, ByteState
from genweave.runtime.bytes.sample import multinomial_counts
from genweave.runtime.models.base import LanguageModel

_NEG_INF = float("-inf")


@dataclass(frozen=True, eq=False)
class Healed:
    """One healed draw.

    * ``tokens``: the ids to commit after ``context``; their bytes are exactly ``prompt + hole``.
    * ``hole``: the hole's first bytes, drawn at byte level (``b""`` when the draw stopped at once).
    * ``log_weight``: log of the product of allowed byte masses (0 without ``allowed``).
    * ``state``: the byte-level beam with one root hypothesis; :meth:`model_state` gives a one-row
      model state that has read ``context + tokens``.
    """

    tokens: tuple[int, ...]
    hole: bytes
    log_weight: float
    state: ByteState

    def model_state(self, model: LanguageModel) -> Any:
        """A fresh one-row state of ``model`` that has read ``context + tokens`` (no recomputation)."""
        return model.select(self.state.lm_state, [self.state.rows[0]])


def heal(model: LanguageModel | ByteLM, prompt: bytes, *, context: Sequence[int] | None = None,
         lm_state: Any = None, n: int = 1, generator: torch.Generator | None = None,
         allowed: Callable[[bytes], torch.Tensor] | None = None, max_bytes: int = 32) -> list[Healed]:
    """``n`` exact healed draws for a hole after ``prompt`` (see the module docstring).

    ``model`` is a ``LanguageModel`` (wrapped in an exact, all-tokenizations ``ByteLM``) or a
    configured ``ByteLM``; ``context``/``lm_state`` are the tokens (and optionally a one-row model
    state) before the prompt, as in :meth:`ByteLM.prefill`.
    """
    byte_lm = model if isinstance(model, ByteLM) else ByteLM(model)
    rng = private_generator(generator)
    start = byte_lm.prefill(prompt, context=context, lm_state=lm_state)
    if start.size == 0:
        raise GenRuntimeError(f"the prompt {prompt[-40:]!r} has probability zero under {byte_lm!r}")
    frontier: list[tuple[ByteState, bytes, int, float]] = [(start, b"", n, 0.0)]
    healed: list[Healed] = []
    while frontier:
        steps, grown = [], []
        for state, hole, count, log_weight in frontier:
            weights = byte_lm.weights(state)
            roots = [h for h, node in enumerate(state.nodes) if node == 0]
            partial = [h for h, node in enumerate(state.nodes) if node != 0]
            stops = _stop_count(weights, roots, partial, count, rng, force=len(hole) >= max_bytes)
            if stops:
                healed.extend(_boundaries(byte_lm, state, roots, weights, stops, hole, log_weight, rng))
            if count > stops:
                inside = byte_lm.select(state, partial)
                for byte, times, weight in _next_bytes(byte_lm, inside, hole, count - stops, allowed, rng):
                    steps.append((inside, byte))
                    grown.append((hole + bytes([byte]), times, log_weight + weight))
        advanced = byte_lm.advance_many(steps) if steps else []
        frontier = [(state, *rest) for state, rest in zip(advanced, grown)]
    return healed


def private_generator(generator: torch.Generator | None) -> torch.Generator:
    """A CPU generator seeded from ``generator``'s state without advancing it (fresh when None)."""
    if generator is None:
        seed = int(torch.randint(0, 2**62, (1,)).item())
    else:
        digest = hashlib.blake2b(generator.get_state().numpy().tobytes(), digest_size=8,
                                 person=b"genweave.heal").digest()
        seed = int.from_bytes(digest, "little") >> 1
    return torch.Generator().manual_seed(seed)


def _stop_count(weights: torch.Tensor, roots: list[int], partial: list[int], count: int,
                rng: torch.Generator, *, force: bool) -> int:
    """How many of ``count`` draws stop here: Binomial(count, W(roots) / W(all))."""
    if not roots:
        return 0
    if not partial or force:
        return count
    share = torch.logsumexp(weights[roots], 0) - torch.logsumexp(weights, 0)
    probability = torch.tensor(float(share.exp().clamp(0.0, 1.0)), dtype=torch.float64)
    return int(torch.binomial(torch.tensor(float(count), dtype=torch.float64), probability, generator=rng))


def _boundaries(byte_lm: ByteLM, state: ByteState, roots: list[int], weights: torch.Tensor, count: int,
                hole: bytes, log_weight: float, rng: torch.Generator) -> list[Healed]:
    """``count`` draws of a root hypothesis in proportion to its weight."""
    out = []
    for index, times in multinomial_counts(weights[roots].cpu(), count, rng).items():
        h = roots[index]
        chosen = byte_lm.select(state, [h])
        out.extend([Healed(state.tokens(h), hole, log_weight, chosen)] * times)
    return out


def _next_bytes(byte_lm: ByteLM, partial: ByteState, hole: bytes, count: int,
                allowed: Callable[[bytes], torch.Tensor] | None,
                rng: torch.Generator) -> list[tuple[int, int, float]]:
    """``(byte, times, log weight)``: the next byte of ``count`` draws from the partial hypotheses
    (masked by ``allowed``; the weight is the log of the allowed mass)."""
    logprobs = byte_lm.next_byte_logprobs(partial).cpu()
    weight = 0.0
    if allowed is not None:
        mask = torch.as_tensor(allowed(hole), dtype=torch.bool).cpu()
        mass = torch.logsumexp(logprobs.masked_fill(~mask, _NEG_INF), 0)
        if not bool(torch.isfinite(mass)):
            raise NoValidTokenError(f"no byte allowed by the hole's constraint can follow the prompt and "
                                    f"the hole's bytes {hole!r} inside the current token",
                                    hint="check that the constraint accepts text that continues the prompt")
        logprobs = logprobs.masked_fill(~mask, _NEG_INF) - mass
        weight = float(mass)
    return [(byte, times, weight) for byte, times in multinomial_counts(logprobs, count, rng).items()]
