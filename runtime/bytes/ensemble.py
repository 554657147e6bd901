"""``ByteEnsemble``: models with different vocabularies combined through their next-byte distributions.

Each member is a :class:`ByteLM` (any tokenizer); bytes are the common alphabet. At every step the
members' next-byte distributions ``p_i(b | x)`` (257 entries, end of text included) are combined:

* ``"mixture"``: ``q(b) = Σ_i w_i p_i(b)`` (weights normalized to sum 1);
* ``"product"``: ``q(b) ∝ Π_i p_i(b)^{w_i}`` (a product of experts; weights are exponents);
* ``"power"``: ``q(b) ∝ (Σ_i w_i p_i(b)^α)^{1/α}`` (power mean, weights normalized; ``α = 1`` is the
  mixture, ``α -> 0`` the weighted geometric mean, ``α -> -∞`` the minimum).

A member for which the bytes so far are impossible contributes probability 0 to every byte. The
combination is per step (locally normalized): a product or a negative power can put mass on a byte
after which the members have no byte in common, a dead end that ``next_byte_logprobs`` reports as
a :class:`GenRuntimeError`; a mixture never has one.

>>> from genweave.runtime.models import ToyLM
>>> a = ByteLM(ToyLM([b"a", b"b", b"ab"], seed=1))
>>> b = ByteLM(ToyLM([b"a", b"b", b"ba", b"bb"], seed=2))
>>> duo = ByteEnsemble([a, b], [0.5, 0.5], kind="mixture")
>>> round(float(duo.next_byte_logprobs(b"ab").exp().sum()), 12)
1.0
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from genweave.dsl.errors import GenArgumentError, GenRuntimeError
from genweave.runtime.bytes.alphabet import byte_vocabulary
from genweave.runtime.bytes.byte_lm import ByteLM, ByteState

KINDS = ("mixture", "product", "power")


@dataclass(frozen=True, eq=False)
class EnsembleState:
    """One :class:`ByteState` per member, all after the same bytes."""

    states: tuple[ByteState, ...]
    text: bytes


class ByteEnsemble:
    """Byte-level combination of ``members`` (see the module docstring)."""

    def __init__(self, members: Sequence[ByteLM], weights: Sequence[float] | None = None, *,
                 kind: str = "mixture", alpha: float = 0.5):
        if kind not in KINDS:
            raise GenArgumentError(f"unknown ensemble kind {kind!r}", hint="use mixture, product or power")
        if len(members) < 1:
            raise GenArgumentError("an ensemble needs at least one member")
        weights = [1.0] * len(members) if weights is None else [float(w) for w in weights]
        if len(weights) != len(members) or any(not w > 0 for w in weights):
            raise GenArgumentError(f"an ensemble of {len(members)} models needs as many positive weights, "
                                   f"not {weights}")
        if kind == "power" and alpha == 0:
            raise GenArgumentError("the power mean needs alpha != 0", hint="use kind='product' for alpha -> 0")
        self.members, self.kind, self.alpha = tuple(members), kind, float(alpha)
        total = sum(weights)
        self.weights = tuple(weights) if kind == "product" else tuple(w / total for w in weights)
        self.device = self.members[0].device
        self.vocab = byte_vocabulary()  # its outcomes: 256 bytes, then end of text (EOT)
        self.name = f"{kind}({', '.join(m.name for m in self.members)})"

    def __repr__(self) -> str:
        return f"ByteEnsemble({list(self.members)!r}, weights={list(self.weights)}, kind={self.kind!r})"

    @property
    def exact(self) -> bool:
        """Whether every member's next-byte distributions are exact (no pruning)."""
        return all(member.exact for member in self.members)

    def prefill(self, prompt: bytes = b"") -> EnsembleState:
        """Every member's beam after ``prompt``."""
        return EnsembleState(tuple(member.prefill(prompt) for member in self.members), bytes(prompt))

    def prefill_many(self, prompts: list[bytes]) -> list[EnsembleState]:
        """Every member's beams after each prompt (each member batches its prompts; equal prompts
        share one state)."""
        distinct = list(dict.fromkeys(bytes(p) for p in prompts))
        per_member = [member.prefill_many(distinct) for member in self.members]
        found = {prompt: EnsembleState(tuple(states), prompt) for prompt, states in zip(distinct, zip(*per_member))}
        return [found[bytes(p)] for p in prompts]

    def advance(self, state: EnsembleState, byte: int) -> EnsembleState:
        """Every member's beam after one more byte."""
        return self.advance_many([(state, byte)])[0]

    def advance_many(self, steps: Sequence[tuple[EnsembleState, int]]) -> list[EnsembleState]:
        """Each ``(state, byte)`` advanced; each member advances all its beams together."""
        per_member = [member.advance_many([(state.states[i], byte) for state, byte in steps])
                      for i, member in enumerate(self.members)]
        return [EnsembleState(tuple(states), state.text + bytes([byte]))
                for (state, byte), states in zip(steps, zip(*per_member))]

    def next_byte_logprobs(self, prefix: bytes | EnsembleState) -> torch.Tensor:
        """``[257]`` float64 log-probs of the combined next-byte distribution."""
        state = self.prefill(prefix) if isinstance(prefix, bytes | bytearray) else prefix
        rows = torch.stack([_member_logprobs(member, s).cpu()
                            for member, s in zip(self.members, state.states)])
        weights = torch.tensor(self.weights, dtype=torch.float64)
        if self.kind == "mixture":
            combined = torch.logsumexp(rows + weights.log()[:, None], dim=0)
        elif self.kind == "product":
            combined = (weights[:, None] * rows).sum(dim=0)
        else:
            combined = torch.logsumexp(self.alpha * rows + weights.log()[:, None], dim=0) / self.alpha
        total = torch.logsumexp(combined, dim=0)
        if not bool(torch.isfinite(total)):
            raise GenRuntimeError(f"no byte can follow {state.text[-40:]!r} under every member of the "
                                  f"{self.kind} ensemble", hint="use a mixture, which needs only one member")
        return combined - total

    def sample_bytes(self, prompt: bytes | EnsembleState = b"", *, n: int = 1, max_bytes: int = 64,
                     generator: torch.Generator | None = None):
        """``n`` byte strings drawn from the combined next-byte distributions."""
        from genweave.runtime.bytes.sample import sample_bytes

        return sample_bytes(self, prompt, n=n, max_bytes=max_bytes, generator=generator)


def _member_logprobs(member: ByteLM, state: ByteState) -> torch.Tensor:
    """A member's next-byte log-probs, or all ``-inf`` when the bytes so far are impossible for it."""
    logweights = member.next_byte_logweights(state)
    total = torch.logsumexp(logweights, dim=0)
    return logweights - total if bool(torch.isfinite(total)) else logweights
