"""Pieces the search engines share: one hole's hypotheses as rows of a model batch.

A search engine (beam, cautious decoding, lookahead trees) keeps *hypotheses*: partial texts of
one hole, each a row of a model state. Per step it needs the distribution every hypothesis draws
its next token from, and it re-indexes the rows (``LanguageModel.select``, no recomputation)
before appending one token to some of them.

**Scores.** The log-prob of a token is that of the distribution ``sample`` draws it from: the
model's logits with special tokens removed and the hole's constraint mask applied, through the
program's sampler chain (exactly what the executor samples; a truncating chain truncates). A
hypothesis whose constraint allows no token is dead (its row gets ``-inf`` everywhere) instead of
raising, since other hypotheses may go on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from genweave.dsl.errors import GenRuntimeError
from genweave.runtime.inference.potentials import NEG_INF
from genweave.runtime.samplers import unpack_mask

_TINY = 1e-20


@dataclass
class Hyp:
    """One hypothesis of a hole: ``origin`` is the group position of the executor row it descends
    from; ``tokens``/``text`` the hole so far; ``cstate`` its constraint state; ``logprob`` the sum of
    the log-probs of every token its trace chose (earlier holes included); ``length`` the tokens its
    trace generated in holes (each ended hole counts its end as one); ``key`` an engine's ranking
    value; ``running`` whether the hole goes on; ``alive`` whether it is a hypothesis at all;
    ``weight`` the trace's log-weight so far (its factors)."""

    origin: int
    tokens: list[int] = field(default_factory=list)
    text: bytes = b""
    cstate: Any = None
    logprob: float = 0.0
    length: int = 0
    key: float = 0.0
    running: bool = True
    alive: bool = True
    weight: float = 0.0

    def child(self, token: int, data: bytes, cstate: Any, logprob: float) -> Hyp:
        """This hypothesis with ``token`` appended (``data`` its bytes; EOS appends no bytes)."""
        return Hyp(self.origin, [*self.tokens, token], self.text + data, cstate, self.logprob + logprob,
                   self.length + 1, self.key, self.running, self.alive, self.weight)

    def ended(self, logprob: float) -> Hyp:
        """This hypothesis ended by end-of-sequence (which counts one token, feeds none)."""
        return Hyp(self.origin, list(self.tokens), self.text, self.cstate, self.logprob + logprob,
                   self.length + 1, self.key, False, self.alive, self.weight)


def dead(origin: int = 0) -> Hyp:
    return Hyp(origin, logprob=NEG_INF, key=NEG_INF, running=False, alive=False)


class Stepper:
    """Per-step distributions of hypotheses of one hole (module docstring)."""

    def __init__(self, model: Any, constraint: Any, allowed: torch.Tensor, chain: Any, where: str):
        self.model, self.constraint, self.allowed, self.chain, self.where = model, constraint, allowed, chain, where
        self.eos = frozenset(model.vocab.eos_ids)
        self.token_bytes = model.vocab.token_bytes
        if chain is not None and chain.stateful:
            raise GenRuntimeError(f"search over hole {where} does not support stateful sampler chains "
                                  "(penalties, DRY, mirostat)", hint="use a stateless chain with search")

    def initial(self) -> Any:
        return self.constraint.initial() if self.constraint is not None else None

    def allowed_rows(self, cstates: Sequence[Any], shape: torch.Size) -> torch.Tensor:
        """Bool ``[R, V]``: the tokens each hypothesis's constraint allows (text tokens and EOS)."""
        full = self.allowed.expand(shape)
        if self.constraint is None:
            return full.clone()
        packed = self.constraint.mask(list(cstates)).to(self.allowed.device)
        return unpack_mask(packed, shape[-1]) & full

    def logprobs(self, logits: torch.Tensor, cstates: Sequence[Any]) -> torch.Tensor:
        """float64 ``[R, V]`` log-probs of each row's sampling distribution; ``-inf`` rows are dead
        ends."""
        mask = self.allowed_rows(cstates, logits.shape)
        out = torch.full(logits.shape, NEG_INF, dtype=torch.float64, device=logits.device)
        live = mask.any(dim=-1)
        if not bool(live.any()):
            return out
        index = live.nonzero().squeeze(1)
        z, m = logits.index_select(0, index), mask.index_select(0, index)
        if self.chain is None:  # float64: the model's own log-probs, renormalized on the mask
            rows = torch.log_softmax(z.double().masked_fill(~m, NEG_INF), dim=-1)
        else:
            rows = self.chain.logprobs(z, None, mask=m, context=self.where).double()
        out[index] = rows
        return out

    def advance(self, hyp: Hyp, token: int, logprob: float) -> Hyp:
        """``hyp`` after ``token`` (end-of-sequence ends it)."""
        if token in self.eos:
            return hyp.ended(logprob)
        cstate = self.constraint.advance(hyp.cstate, token) if self.constraint is not None else None
        return hyp.child(token, self.token_bytes[token], cstate, logprob)


def regroup(model: Any, state: Any, sources: Sequence[int], feed: Sequence[int]) -> Any:
    """The state whose row ``i`` continues row ``sources[i]`` with token ``feed[i]`` appended
    (nothing appended where ``feed[i] < 0``)."""
    device = model.device
    if list(sources) != list(range(len(sources))):
        state = model.select(state, torch.as_tensor(list(sources), dtype=torch.long, device=device))
    if not any(t >= 0 for t in feed):
        return state
    tokens = torch.as_tensor([max(t, 0) for t in feed], dtype=torch.long, device=device)[:, None]
    lengths = None if all(t >= 0 for t in feed) else torch.as_tensor([int(t >= 0) for t in feed], device=device)
    state, _ = model.extend(state, tokens, lengths)
    return state


def gumbel(shape: torch.Size | tuple[int, ...], generator: torch.Generator | None,
           device: torch.device | str) -> torch.Tensor:
    """Standard Gumbel noise ``-log(-log U)``, ``U`` uniform in ``(0, 1)``."""
    uniform = torch.rand(shape, generator=generator, dtype=torch.float64, device=device)
    return -torch.log(-torch.log(uniform.clamp(_TINY, 1 - 1e-16)))


@dataclass
class Decoded:
    """A finished hole in the form the executor binds (``_Run._finish_hole``): per group
    position, the hole's bytes and tokens; ``dead`` positions get weight zero."""

    texts: list[bytes]
    generated: list[list[int]]
    dead: list[bool]
    masked: bool = True

    def accepts(self, k: int) -> bool:
        return not self.dead[k]

    @classmethod
    def of(cls, hyps: Sequence[Hyp]) -> Decoded:
        return cls([h.text for h in hyps], [list(h.tokens) for h in hyps], [not h.alive for h in hyps])
