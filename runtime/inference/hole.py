"""One hole as an inference problem: its target and the per-step pieces every engine shares.

A hole generates a text after a context. Its (unnormalized) target over token sequences ``y``
that end with EOS is

    pi(y) = prod_t Q(y_t | context, y_<t) * 1[y in L] * prod_k exp(complete_k(y)) * 1[|y| <= N]

where ``Q`` is the model's next-token distribution restricted to text tokens and EOS (special
tokens excluded, renormalized) and passed through the target's sampler chain, ``L`` the
constraint's language, ``complete_k`` the potentials and ``N`` the token budget
(``max N tokens``: EOS is forced after ``N`` tokens). Several EOS ids count as one end: the
end's probability is their total.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from genweave.dsl.errors import GenArgumentError
from genweave.runtime.inference.potentials import NEG_INF, Potential
from genweave.runtime.samplers.draw import unpack_mask
from genweave.runtime.samplers.select import mask_packed
from genweave.runtime.textmask import text_token_mask
from genweave.runtime.vocab import Vocabulary


@dataclass(frozen=True, eq=False)
class Hole:
    """What one hole may produce and the target it defines (module docstring).

    * ``constraint``: the hole's language with the step protocol (``CompiledConstraint``,
      ``TokenBudget``) or None for any text;
    * ``potentials``: ``where`` predicates, conditions and factors on the hole's text;
    * ``max_tokens``: the budget ``N`` (None: a ``TokenBudget``'s own, else unbounded);
    * ``chain``: the target's compiled sampler chain (None: the model's distribution).
    """

    constraint: Any = None
    potentials: tuple[Potential, ...] = ()
    max_tokens: int | None = None
    chain: Any = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "potentials", tuple(self.potentials))
        if self.max_tokens is not None and self.max_tokens < 0:
            raise GenArgumentError(f"max tokens must be non-negative, not {self.max_tokens}")

    @property
    def limit(self) -> int | None:
        """The token budget after which EOS is forced (None: unbounded)."""
        if self.max_tokens is not None:
            return self.max_tokens
        return getattr(self.constraint, "max_tokens", None)

    @property
    def foldable(self) -> tuple[bool, ...]:
        """Per potential: boolean and prefix-monotone, so AWRS can check it token by token."""
        return tuple(p.boolean and p.is_prefix for p in self.potentials)

    def has_soft_potentials(self) -> bool:
        return any(not p.boolean for p in self.potentials)


def target_rows(logits: torch.Tensor, excluded: torch.Tensor, chain: Any = None,
                chain_state: Any = None) -> torch.Tensor:
    """float64 ``[B, V]`` log-probs of ``Q``: special tokens removed, then the chain (if any)."""
    if chain is None:
        return torch.log_softmax(logits.to(torch.float64, copy=True).masked_fill_(excluded, NEG_INF), dim=-1)
    return chain.logprobs(logits.masked_fill(excluded, NEG_INF), chain_state).to(torch.float64)


def excluded_tokens(vocab: Vocabulary, device: torch.device | str) -> torch.Tensor:
    """Bool ``[V]``: the special tokens a hole never produces (EOS is not excluded)."""
    return ~text_token_mask(vocab, str(device))


def end_log_mass(rows: torch.Tensor, eos_ids: Sequence[int]) -> torch.Tensor:
    """Log of the total probability of the EOS ids, per row."""
    index = torch.as_tensor(list(eos_ids), dtype=torch.long, device=rows.device)
    return torch.logsumexp(rows.index_select(1, index), dim=-1)


class Condition:
    """The hard part of a hole that AWRS checks token by token: the constraint and the boolean
    prefix potentials (``folded``), on the particles' current states."""

    def __init__(self, hole: Hole, vocab: Vocabulary, *, with_constraint: bool = True):
        self.constraint = hole.constraint if with_constraint else None  # None: masked by the caller
        self.potentials = [p for p, f in zip(hole.potentials, hole.foldable) if f]
        self.index = [k for k, f in enumerate(hole.foldable) if f]
        self.token_bytes = vocab.token_bytes
        self.eos_ids = frozenset(vocab.eos_ids)

    @property
    def trivial(self) -> bool:
        return self.constraint is None and not self.potentials

    def allows(self, cstate: Any, pstates: Sequence[Any], token: int) -> bool:
        """Whether ``token`` (EOS included) may follow a text in states ``cstate``/``pstates``."""
        if token in self.eos_ids:
            return self.allows_end(cstate, pstates)
        if self.constraint is not None and not self.constraint.check(cstate, token):
            return False
        data = self.token_bytes[token]
        return all(p.check(pstates[k], token, data) for p, k in zip(self.potentials, self.index))

    def allows_end(self, cstate: Any, pstates: Sequence[Any]) -> bool:
        if self.constraint is not None and not self.constraint.is_complete(cstate):
            return False
        return all(p.check_eos(pstates[k]) for p, k in zip(self.potentials, self.index))


def constraint_allowed(constraint: Any, states: Sequence[Any], vocab_size: int) -> torch.Tensor | None:
    """Bool ``[B, V]`` of the tokens the constraint allows in each state (None: no constraint)."""
    if constraint is None:
        return None
    return unpack_mask(constraint.mask(list(states)), vocab_size)


def forbid_(rows: torch.Tensor, constraint: Any, states: Sequence[Any]) -> torch.Tensor:
    """``rows`` (``[B, V]`` log-weights, one row per state) with the tokens the constraint forbids
    set to ``-inf``, in place; on the CPU straight from the packed mask words (no ``[B, V]`` bool
    mask). No constraint: ``rows`` unchanged."""
    if constraint is None:
        return rows
    packed = constraint.mask(list(states))
    if (rows.device.type == "cpu" and rows.is_contiguous() and packed.dtype != torch.bool
            and 32 * packed.shape[-1] >= rows.shape[1]):
        mask_packed(rows, packed)
        return rows
    return rows.masked_fill_(~unpack_mask(packed, rows.shape[1]).to(rows.device), NEG_INF)
