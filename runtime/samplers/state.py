"""Per-row state of the stateful samplers of one batch: token history, penalty counts, mirostat mu.

``advance(tokens)`` appends one token per row (``-1``: this row takes no token this step),
``rollback(n)`` undoes the last ``n`` advances exactly (speculative rejection), and ``select(rows)``
returns the state of the rows ``rows`` (reordered or duplicated: SMC resampling, beams, forks).

Mirostat's ``mu`` is updated by the first ``advance`` after the chain computed a distribution with
this state (``logprobs`` / ``sample``), from the probability that distribution gave the token; an
``advance`` with no distribution in between (a forced token) leaves ``mu`` unchanged, as llama.cpp
updates ``mu`` only when it samples.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from genweave.dsl.errors import GenRuntimeError

COUNT_SCOPES = ("all", "generated")

# cap on one step's surprise (bits) in the mirostat update: a token the distribution excluded (only
# possible when the caller advances with a token it did not sample) would otherwise send mu to -inf
MAX_SURPRISE_BITS = 1024.0


@dataclass(frozen=True, eq=False)
class StateLayout:
    """Which parts of the state a compiled chain reads.

    ``count_scopes``: the scopes (``"all"`` = prompt + generated, ``"generated"``) whose whole-history
    counts are kept incrementally; ``history``: keep the token history (windows, DRY);
    ``mirostat``: ``(tau, eta, mu0)`` as ``[R, 1]`` tensors, or None.
    """

    vocab_size: int
    device: torch.device
    count_scopes: frozenset[str] = frozenset()
    history: bool = False
    mirostat: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    @property
    def empty(self) -> bool:
        return not (self.count_scopes or self.history or self.mirostat is not None)


class SamplerState:
    """The mutable per-row state of one batch (see the module docstring for the contract)."""

    __slots__ = ("layout", "history", "length", "prompt_length", "max_prompt", "steps", "n_steps",
                 "counts", "mu", "mu_log", "tau", "eta", "last_logits")

    def __init__(self, layout: StateLayout, batch: int, prompts: Sequence[Sequence[int]] | None = None):
        if prompts is not None and len(prompts) != batch:
            raise GenRuntimeError(f"new_state: got {len(prompts)} prompts for a batch of {batch} rows")
        device, vocab = layout.device, layout.vocab_size
        prompts = [list(p) for p in prompts] if prompts is not None else [[] for _ in range(batch)]
        self.layout = layout
        self.max_prompt = max((len(p) for p in prompts), default=0)
        self.history, self.length = _prompt_history(prompts, self.max_prompt + 64, vocab, device)
        self.prompt_length = self.length.clone()
        self.steps = torch.full((batch, 64), -1, dtype=torch.long, device=device)
        self.n_steps = 0
        self.counts: dict[str, torch.Tensor] = {}
        for scope in layout.count_scopes:
            counts = torch.zeros(batch, vocab, dtype=torch.int32, device=device)
            if scope == "all":
                self._add(counts, self.history[:, : self.max_prompt], +1)
            self.counts[scope] = counts
        self.last_logits: torch.Tensor | None = None
        self.mu = self.mu_log = self.tau = self.eta = None
        if layout.mirostat is not None:
            self.tau, self.eta, mu0 = layout.mirostat
            self.mu = mu0.expand(batch, 1).clone()
            self.mu_log = torch.zeros(batch, 64, dtype=torch.float32, device=device)

    @property
    def batch(self) -> int:
        return self.length.shape[0]

    # ------------------------------------------------------------------------------ updates
    def advance(self, tokens: torch.Tensor | Sequence[int]) -> None:
        """Append ``tokens[b]`` to row ``b`` (``-1``: row ``b`` takes no token this step)."""
        tok = torch.as_tensor(tokens, dtype=torch.long).to(self.length.device).reshape(-1)
        if tok.shape[0] != self.batch:
            raise GenRuntimeError(f"advance: got {tok.shape[0]} tokens for a batch of {self.batch} rows")
        valid = tok >= 0
        safe = tok.clamp(min=0)
        self.steps = _grow(self.steps, self.n_steps + 1, -1)
        self.steps[:, self.n_steps] = tok
        if self.mu is not None:
            self._update_mu(safe, valid)
        self.history = _grow(self.history, self.max_prompt + self.n_steps + 1, -1)
        self.history.scatter_(1, self.length.unsqueeze(1), tok.unsqueeze(1))
        self.length += valid
        for counts in self.counts.values():
            self._add(counts, tok.unsqueeze(1), +1)
        self.n_steps += 1
        self.last_logits = None

    def _update_mu(self, safe: torch.Tensor, valid: torch.Tensor) -> None:
        self.mu_log = _grow(self.mu_log, self.n_steps + 1, 0.0)
        self.mu_log[:, self.n_steps] = self.mu[:, 0]
        if self.last_logits is None:
            return
        z = self.last_logits
        logp = z.gather(1, safe.unsqueeze(1)) - torch.logsumexp(z, dim=-1, keepdim=True)
        surprise = (-logp / math.log(2.0)).clamp(max=MAX_SURPRISE_BITS)
        updated = self.mu - self.eta * (surprise - self.tau)
        self.mu = torch.where(valid.unsqueeze(1), updated, self.mu)

    def rollback(self, n: int) -> None:
        """Undo the last ``n`` advances exactly."""
        if not 0 <= n <= self.n_steps:
            raise GenRuntimeError(f"rollback({n}): only {self.n_steps} advances can be undone")
        if n == 0:
            return
        block = self.steps[:, self.n_steps - n: self.n_steps]
        for counts in self.counts.values():
            self._add(counts, block, -1)
        self.length -= (block >= 0).sum(1)
        if self.mu is not None:
            self.mu = self.mu_log[:, self.n_steps - n].unsqueeze(1).clone()
        self.n_steps -= n
        self.last_logits = None

    @staticmethod
    def _add(counts: torch.Tensor, tokens: torch.Tensor, sign: int) -> None:
        """``counts[b, t] += sign`` for every token ``t >= 0`` of ``tokens[b, :]``."""
        ones = (tokens >= 0).to(counts.dtype) * sign
        counts.scatter_add_(1, tokens.clamp(min=0), ones)

    # ------------------------------------------------------------------------------ reading
    def counts_for(self, scope: str, window: int) -> torch.Tensor:
        """``[B, V]`` occurrence counts of each token among the row's tokens of ``scope``
        (``"all"`` or ``"generated"``), restricted to the last ``window`` of them when ``window > 0``."""
        if window <= 0:
            return self.counts[scope]
        counts = torch.zeros(self.batch, self.layout.vocab_size, dtype=torch.int32, device=self.length.device)
        self._add(counts, self.window_tokens(scope, window), +1)
        return counts

    def window_tokens(self, scope: str, window: int) -> torch.Tensor:
        """``[B, window]``: the last ``window`` tokens of each row's ``scope``, most recent first,
        ``-1`` where the scope holds fewer."""
        back = torch.arange(window, device=self.length.device)
        pos = self.length.unsqueeze(1) - 1 - back
        start = self.prompt_length if scope == "generated" else torch.zeros_like(self.length)
        return self.history.gather(1, pos.clamp(min=0)).masked_fill(pos < start.unsqueeze(1), -1)

    def recent(self, window: torch.Tensor, size: int) -> torch.Tensor:
        """The last tokens of each row, most recent first, ``[B, size]``: entry ``l`` is the token
        ``l`` steps back when ``l < min(length, window)``, else a negative sentinel ``-(l + 2)`` that
        equals no token and no other sentinel (``window`` is ``[R, 1]``; ``-1`` = whole history)."""
        back = torch.arange(size, device=self.length.device)
        length = self.length.unsqueeze(1)
        limit = torch.where(window < 0, length, torch.minimum(window, length))
        pos = length - 1 - back
        tokens = self.history.gather(1, pos.clamp(min=0))
        return torch.where(back < limit, tokens, -(back + 2))

    def seen_tokens(self) -> torch.Tensor:
        """``[B, max_length]`` token ids covering every token any count scope or window can count
        (the history buffer, padding read as token 0): the columns a penalty can change."""
        return self.history[:, : self.max_length].clamp(min=0)

    @property
    def max_length(self) -> int:
        """An upper bound of every row's history length (known without a device sync)."""
        return self.max_prompt + self.n_steps

    # ------------------------------------------------------------------------------ rows
    def select(self, rows: torch.Tensor | Sequence[int]) -> SamplerState:
        """The state of rows ``rows`` (any order, repeats allowed) as a new state."""
        index = torch.as_tensor(rows, dtype=torch.long).to(self.length.device)
        other = object.__new__(SamplerState)
        other.layout, other.max_prompt, other.n_steps = self.layout, self.max_prompt, self.n_steps
        for name in ("history", "length", "prompt_length", "steps", "mu", "mu_log", "last_logits"):
            value = getattr(self, name)
            setattr(other, name, None if value is None else value.index_select(0, index))
        other.counts = {scope: c.index_select(0, index) for scope, c in self.counts.items()}
        other.tau = None if self.tau is None else _select_rows(self.tau, index)
        other.eta = None if self.eta is None else _select_rows(self.eta, index)
        return other

    def clone(self) -> SamplerState:
        return self.select(torch.arange(self.batch, device=self.length.device))

    def tokens(self, row: int) -> list[int]:
        """The history of one row (prompt then advanced tokens), for inspection and tests."""
        return self.history[row, : int(self.length[row])].tolist()


def _prompt_history(prompts: list[list[int]], columns: int, vocab: int, device: torch.device
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """The left-aligned ``[B, columns]`` history buffer (``-1`` past the end) and the lengths."""
    lengths = torch.tensor([len(p) for p in prompts], dtype=torch.long)
    flat = torch.tensor([t for p in prompts for t in p], dtype=torch.long)
    if flat.numel() and (flat.min() < 0 or flat.max() >= vocab):
        raise GenRuntimeError(f"new_state: prompt token ids must lie in 0..{vocab - 1}")
    history = torch.full((len(prompts), columns), -1, dtype=torch.long)
    rows = torch.repeat_interleave(torch.arange(len(prompts)), lengths)
    starts = torch.repeat_interleave(torch.cumsum(lengths, 0) - lengths, lengths)
    history[rows, torch.arange(flat.numel()) - starts] = flat
    return history.to(device), lengths.to(device)


def _select_rows(param: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    return param if param.shape[0] == 1 else param.index_select(0, index)


def _grow(buffer: torch.Tensor, needed: int, fill: float) -> torch.Tensor:
    """``buffer`` with at least ``needed`` columns (capacity doubles; new columns hold ``fill``)."""
    columns = buffer.shape[1]
    if needed <= columns:
        return buffer
    extra = torch.full((buffer.shape[0], max(needed, 2 * columns) - columns), fill,
                       dtype=buffer.dtype, device=buffer.device)
    return torch.cat([buffer, extra], dim=1)
