"""DRY, "don't repeat yourself" (llama.cpp ``dry``, from koboldcpp): penalise tokens that would
extend a repeat of the recent context.

Per row, with context ``c`` = the last ``N`` tokens of the history (``last_n = -1``: all of it):

1. ``N <= allowed_length``: no change.
2. Restart limit: scanning back from the end, the first position ``i`` (distance from the end)
   whose token heads a sequence breaker whose tail follows it sets ``rep_limit = i - len(tail)``
   (longest tail among those matching there); default ``N``. Repeats never cross a breaker.
3. For each earlier end position ``j``, ``L(j)`` = the longest common suffix of ``c[..j]`` and ``c``,
   capped at ``rep_limit``; the token ``c[j + 1]`` would extend that repeat.
4. For each token ``t`` with ``Lmax(t) = max L(j) >= allowed_length`` over the ``j`` it follows,
   unless ``t`` alone is a breaker: ``z_t -= multiplier * base ** min(Lmax(t) - allowed_length, E)``,
   ``E = floor(88.7228391 / ln base)`` when ``base > 1.000001`` (float overflow guard), else no cap.

Breakers are strings: every token whose bytes contain one is a single-token breaker; a token whose
bytes end with a proper prefix of a breaker heads a multi-token breaker whose tail is the greedy
longest-match tokenisation of the rest (llama.cpp runs its tokenizer there; tails are capped at
20 tokens). The whole step is tensor code: suffix-match lengths grow by comparing shifted copies of
the reversed context, a chunk of lengths at a time, until no match survives.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch

from genweave.dsl.errors import GenCheckError, GenRuntimeError
from genweave.runtime.samplers.base import (
    CompileContext,
    CompiledStage,
    Param,
    Stage,
    Work,
    row_param,
    select_param,
)
from genweave.runtime.samplers.state import SamplerState

DEFAULT_BREAKERS = ("\n", ":", '"', "*")
MAX_TAIL_TOKENS = 20
FLOAT_MAX_LOG = 88.7228391
MATCH_CHUNK = 8


@dataclass(frozen=True, slots=True)
class Dry(Stage):
    """Subtract ``multiplier * base ** (L - allowed_length)`` from tokens extending a repeat of
    length ``L >= allowed_length``."""

    multiplier: float = 0.8
    base: float = 1.75
    allowed_length: int = 2
    last_n: int = -1
    breakers: tuple[str, ...] = DEFAULT_BREAKERS
    name: ClassVar[str] = "dry"
    params: ClassVar[tuple[Param, ...]] = (
        Param("multiplier", "float", 0.8, "penalty scale; 0 = off", low=0.0),
        Param("base", "float", 1.75, "growth of the penalty per extra repeated token", low=1.0),
        Param("allowed_length", "int", 2, "repeats up to this length are free", low=1),
        Param("last_n", "int", -1, "how many recent tokens to scan; -1 = all, 0 = off", low=-1),
        Param("breakers", "strings", DEFAULT_BREAKERS, "strings across which repeats do not extend",
              per_row=False),
    )
    logit_transform: ClassVar[bool] = True
    stateful: ClassVar[bool] = True

    @property
    def is_noop(self) -> bool:
        return self.multiplier == 0.0 or self.last_n == 0

    @classmethod
    def compile_rows(cls, rows: Sequence[Dry], ctx: CompileContext) -> CompiledDry:
        breakers = rows[0].breakers
        if breakers and ctx.vocab is None:
            raise GenCheckError("dry: its sequence breakers need the token bytes; compile the chain with "
                                "vocab=... (a Vocabulary or a list of token bytes), or use breakers=()")
        token_bytes = tuple(getattr(ctx.vocab, "token_bytes", ctx.vocab) or ())
        table = breaker_table(token_bytes, breakers) if breakers else BreakerTable(frozenset(), ())
        single = torch.zeros(ctx.vocab_size, dtype=torch.bool)
        single[list(table.single)] = True
        caps = [_exponent_cap(r.base) for r in rows]
        # beyond allowed_length + cap every repeat gets the same (capped) penalty: no need to measure it
        horizon = None if None in caps else max(r.allowed_length + c for r, c in zip(rows, caps))
        return CompiledDry(
            multiplier=row_param([r.multiplier for r in rows], ctx.device),
            base=row_param([r.base for r in rows], ctx.device),
            allowed=row_param([r.allowed_length for r in rows], ctx.device, torch.long),
            last_n=row_param([r.last_n for r in rows], ctx.device, torch.long),
            cap=row_param([math.inf if c is None else c for c in caps], ctx.device),
            window_max=None if any(r.last_n < 0 for r in rows) else max(r.last_n for r in rows),
            horizon=horizon, single=single.to(ctx.device), multi=table.multi)


def _exponent_cap(base: float) -> int | None:
    return int(FLOAT_MAX_LOG / math.log(base)) if base > 1.000001 else None


@dataclass(frozen=True, slots=True)
class BreakerTable:
    """Single-token breakers (ids) and multi-token ones as ``(head id, tail ids)``."""

    single: frozenset[int]
    multi: tuple[tuple[int, tuple[int, ...]], ...]


@functools.lru_cache(maxsize=8)
def breaker_table(token_bytes: tuple[bytes, ...], breakers: tuple[str, ...]) -> BreakerTable:
    """Tokenise the breaker strings against a vocabulary (one pass over it, cached)."""
    single: set[int] = set()
    multi: set[tuple[int, tuple[int, ...]]] = set()
    longest = max((len(t) for t in token_bytes), default=0)
    index = {t: i for i, t in reversed(list(enumerate(token_bytes))) if t}
    for text in breakers:
        target = text.encode("utf-8")
        for token, piece in enumerate(token_bytes):
            if not piece:
                continue
            if target in piece:
                single.add(token)
                continue
            for cut in range(1, len(target)):  # piece ends with target[:cut]
                if piece.endswith(target[:cut]):
                    tail = _greedy_tokenize(target[cut:], index, longest)[:MAX_TAIL_TOKENS]
                    if tail:
                        multi.add((token, tail))
    return BreakerTable(frozenset(single), tuple(sorted(multi)))


def _greedy_tokenize(text: bytes, index: dict[bytes, int], longest: int) -> tuple[int, ...]:
    out = []
    while text:
        for size in range(min(longest, len(text)), 0, -1):
            if text[:size] in index:
                out.append(index[text[:size]])
                text = text[size:]
                break
        else:
            return ()  # the vocabulary cannot spell it: no such breaker
    return tuple(out)


class CompiledDry(CompiledStage):
    __slots__ = ("multiplier", "base", "allowed", "last_n", "cap", "window_max", "horizon", "single", "multi")
    stateful: ClassVar[bool] = True

    def __init__(self, *, multiplier, base, allowed, last_n, cap, window_max, horizon, single, multi):
        self.multiplier, self.base, self.allowed, self.last_n, self.cap = multiplier, base, allowed, last_n, cap
        self.window_max, self.horizon, self.single, self.multi = window_max, horizon, single, multi

    def apply(self, work: Work, state: SamplerState | None) -> None:
        if state is None:
            raise GenRuntimeError("dry needs a sampler state: pass state=chain.new_state(batch)")
        size = state.max_length if self.window_max is None else min(state.max_length, self.window_max)
        if size < 2:
            return
        rev = state.recent(self.last_n, size)
        longest = repeat_lengths(rev, self.horizon).clamp(max=restart_limit(rev, self.single, self.multi))
        work.set_logits(work.z - self.penalty(rev, longest, work.z.shape[-1]))

    def penalty(self, rev: torch.Tensor, longest: torch.Tensor, vocab: int) -> torch.Tensor:
        """``[B, V]`` penalties from the match lengths ``longest[b, k - 1]`` (end ``k`` back)."""
        follower = rev[:, :-1]  # the token after the match that ends k steps back is rev[k - 1]
        counted = (longest >= self.allowed) & (follower >= 0)
        exponent = torch.minimum((longest - self.allowed).float(), self.cap).clamp(min=0)
        amount = torch.where(counted, self.multiplier * self.base.pow(exponent), 0.0)
        dense = torch.zeros(rev.shape[0], vocab, dtype=torch.float32, device=rev.device)
        dense.scatter_reduce_(1, follower.clamp(min=0), amount, reduce="amax")
        return dense.masked_fill_(self.single, 0.0)

    def select(self, rows: torch.Tensor) -> CompiledDry:
        return CompiledDry(multiplier=select_param(self.multiplier, rows), base=select_param(self.base, rows),
                           allowed=select_param(self.allowed, rows), last_n=select_param(self.last_n, rows),
                           cap=select_param(self.cap, rows), window_max=self.window_max, horizon=self.horizon,
                           single=self.single, multi=self.multi)


def repeat_lengths(rev: torch.Tensor, horizon: int | None) -> torch.Tensor:
    """``L[b, k - 1]`` for ``k = 1..N-1``: how many tokens back from the end ``rev[b, :]`` agrees
    with itself shifted by ``k`` (the common suffix of the context and the context ``k`` tokens
    earlier), measured up to ``horizon`` (None: without limit). ``rev`` holds sentinels past each
    row's context, which match nothing."""
    batch, size = rev.shape
    limit = size if horizon is None else min(horizon, size)
    pad = -(torch.arange(size, size + limit + MATCH_CHUNK + 1, device=rev.device) + 2).expand(batch, -1)
    padded = torch.cat([rev, pad], dim=1)
    alive = torch.ones(batch, size - 1, dtype=torch.bool, device=rev.device)
    length = torch.zeros(batch, size - 1, dtype=torch.long, device=rev.device)
    start = 0
    while start < limit:
        chunk = min(MATCH_CHUNK, limit - start)
        here = padded[:, start: start + chunk].unsqueeze(1)                  # rev[l], l in chunk
        there = padded.unfold(1, chunk, 1)[:, start + 1: start + size]      # rev[l + k]
        run = (here == there).long().cumprod(-1) * alive.unsqueeze(-1)
        length += run.sum(-1)
        alive = run[..., -1].bool()
        start += chunk
        if not bool(alive.any()):
            break
    return length


def restart_limit(rev: torch.Tensor, single: torch.Tensor, multi: Sequence[tuple[int, tuple[int, ...]]]
                  ) -> torch.Tensor:
    """``[B, 1]``: the first distance ``i`` back whose token heads a breaker, minus the longest tail
    matching after it; the context length bound ``N`` when no breaker occurs."""
    batch, size = rev.shape
    head_len = torch.where((rev >= 0) & single[rev.clamp(min=0)], 0, -1)
    for head, tail in multi:  # breaker sequences: a compile-time constant list, not the vocabulary
        m = len(tail)
        if m >= size:
            continue
        match = rev[:, m:] == head
        for offset, token in enumerate(tail):  # rev[i - 1 - offset] == tail[offset]
            match &= rev[:, m - 1 - offset: size - 1 - offset] == token
        head_len[:, m:] = torch.where(match, torch.clamp(head_len[:, m:], min=m), head_len[:, m:])
    found = head_len >= 0
    first = found.long().argmax(dim=-1, keepdim=True)
    limit = first - head_len.gather(1, first)
    return torch.where(found.any(-1, keepdim=True), limit, size)
