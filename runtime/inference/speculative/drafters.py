"""Drafters: where the tokens that speculative decoding verifies come from.

A drafter proposes, for each row of a hole's batch, up to ``limits[b]`` tokens that continue the
row's emitted text, and says how they were drawn: from a distribution ``q`` (its log-probs come
with the draft, :class:`Draft.logq`) or deterministically from the history (``logq`` is None: point
masses, verified by sample-and-compare). Drafts never contain a token after an end-of-sequence.

* :class:`NgramDrafter`: prompt lookup: the tokens that followed the leftmost earlier occurrence of
  the context's last ``n``-gram (``n`` down to 1), as in Hugging Face's prompt lookup.
* :class:`ModelDrafter`: a draft model over the same vocabulary (a smaller model, or the target's
  first layers for ``speculate self``), through the program's sampler chain and the hole's
  constraint masks (so ``q`` is what it really sampled from; greedy decoding drafts its argmax).

After a verification :meth:`commit` tells the drafter what each row emitted, so it can keep its
state in step (a draft model rolls back its rejected tokens).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from genweave.dsl.errors import GenModelError
from genweave.runtime.models.base import LanguageModel
from genweave.runtime.samplers import gumbel_argmax


@dataclass(frozen=True)
class Draft:
    """``tokens[b]``: row ``b``'s draft; ``logq`` ``[B, T, V]`` the log-probs each draft token was
    drawn from (None: point masses); ``T = max len(tokens[b])``."""

    tokens: list[list[int]]
    logq: torch.Tensor | None = None


@dataclass
class DraftRound:
    """What a drafter may read in one round: each row's whole context (prompt and emitted tokens),
    the most tokens it may draft, and for model drafters the machinery of the target's steps.

    ``masks(states)`` gives bool ``[B, V]`` allow-masks for constraint states (an empty row: nothing
    allowed); ``advance(states, tokens)`` steps them; ``states`` are the rows' constraint states (or
    None without a constraint); ``chain``/``chain_state`` are the compiled sampler chain and a fork
    of its state (advance it freely); ``greedy`` says the chain decodes greedily.
    """

    contexts: list[list[int]]
    limits: list[int]
    eos: frozenset[int]
    masks: Any = None
    advance: Any = None
    states: list[Any] | None = None
    chain: Any = None
    chain_state: Any = None
    greedy: bool = False
    generator: torch.Generator | None = None


class Drafter(Protocol):
    def begin(self, contexts: list[list[int]]) -> None:
        """A new hole starts with these row contexts (every token fed to the target so far)."""

    def propose(self, round: DraftRound) -> Draft: ...

    def commit(self, accepted: list[int], emitted: list[list[int]], ended: list[bool]) -> None:
        """Row ``b`` kept ``accepted[b]`` draft tokens and emitted ``emitted[b]`` (the kept drafts,
        then the verifier's token) in the last round; ``ended[b]``: it finished the hole."""


# ------------------------------------------------------------------------------------ n-grams
class NgramDrafter:
    """Prompt lookup with n-grams of at most ``n`` tokens, copying at most ``k`` tokens.

    >>> d = NgramDrafter(n=2, k=3)
    >>> d.propose(DraftRound([[5, 6, 7, 8, 5, 6]], [10], frozenset())).tokens
    [[7, 8, 5]]
    """

    def __init__(self, n: int, k: int):
        self.n, self.k = n, k

    def begin(self, contexts: list[list[int]]) -> None:
        pass

    def propose(self, round: DraftRound) -> Draft:
        out = []
        for context, limit in zip(round.contexts, round.limits):
            draft = lookup(context, self.n, min(self.k, limit)) if limit > 0 else []
            out.append(_cut_at_eos(draft, round.eos))
        return Draft(out)

    def commit(self, accepted: list[int], emitted: list[list[int]], ended: list[bool]) -> None:
        pass


def lookup(context: Sequence[int], n: int, k: int) -> list[int]:
    """Up to ``k`` tokens following the leftmost earlier occurrence of the last ``m``-gram of
    ``context``, for ``m = n`` down to 1 (the first ``m`` with a match wins); [] when none."""
    ids = np.asarray(context, dtype=np.int64)
    for m in range(min(n, len(ids) - 1), 0, -1):
        windows = np.lib.stride_tricks.sliding_window_view(ids[:-1], m)  # the trailing window excluded
        hits = np.flatnonzero((windows == ids[len(ids) - m:]).all(axis=1))
        if hits.size:
            start = int(hits[0]) + m
            return ids[start:start + k].tolist()
    return []


def _cut_at_eos(draft: list[int], eos: frozenset[int]) -> list[int]:
    for i, token in enumerate(draft):
        if token in eos:
            return draft[:i + 1]
    return draft


# ------------------------------------------------------------------------------ draft models
class ModelDrafter:
    """Drafts ``k`` tokens a round with ``model`` (same vocabulary as the target).

    The draft model keeps a KV-cached state in step with the rows: tokens emitted but not yet fed
    to it wait in ``unfed`` and go in front of the next round's first forward; rejected draft tokens
    are rolled back per row.
    """

    def __init__(self, model: LanguageModel, k: int):
        self.model, self.k = model, k
        self.state: Any = None
        self.unfed: list[list[int]] = []
        self.fed: list[int] = []  # draft tokens of the last round that went into the draft's cache

    def begin(self, contexts: list[list[int]]) -> None:
        self.state = self.model.prefill_shared(contexts)
        self.unfed = [[] for _ in contexts]
        self.fed = [0] * len(contexts)

    def propose(self, round: DraftRound) -> Draft:
        batch = len(round.limits)
        limits = [min(self.k, n) for n in round.limits]
        width = max(limits, default=0)
        logits = self._feed(self.unfed)
        self.unfed = [[] for _ in range(batch)]
        self.fed = [0] * batch
        tokens: list[list[int]] = [[] for _ in range(batch)]
        going = [n > 0 for n in limits]
        states = list(round.states) if round.states is not None else None
        logq = []
        for _ in range(width):
            mask = round.masks(states) if states is not None else None
            if mask is not None:
                going = [g and bool(m) for g, m in zip(going, mask.any(-1).tolist())]
                mask = mask | ~torch.tensor(going, device=mask.device)[:, None]  # finished rows: anything
            lp = round.chain.logprobs(logits, round.chain_state, mask=mask)
            drawn = lp.argmax(-1) if round.greedy else gumbel_argmax(lp, round.generator)
            logq.append(lp)
            picked = drawn.tolist()
            for b in range(batch):
                if going[b]:
                    tokens[b].append(picked[b])
            if round.chain_state is not None:
                round.chain_state.advance([t if g else -1 for t, g in zip(picked, going)])
            going = [g and t not in round.eos and len(d) < n for g, t, d, n in zip(going, picked, tokens, limits)]
            if states is not None:
                states = round.advance(states, [t if g else -1 for t, g in zip(picked, going)])
            if not any(going):
                break
            logits = self._feed([[t] if g else [] for t, g in zip(picked, going)])
            self.fed = [f + g for f, g in zip(self.fed, going)]
        q = torch.stack(logq, dim=1) if logq and not round.greedy else None
        return Draft(tokens, q)

    def _feed(self, pieces: list[list[int]]) -> torch.Tensor:
        """Append ``pieces[b]`` to the draft state; the draft's next-token log-probs ``[B, V]``."""
        if not any(pieces):
            return self.model.logits(self.state)
        grid, lengths = padded(pieces, self.model.device)
        self.state, _ = self.model.extend(self.state, grid, lengths)
        return self.model.logits(self.state)

    def commit(self, accepted: list[int], emitted: list[list[int]], ended: list[bool]) -> None:
        """Keep the accepted drafts in the draft's cache, drop the rest; the others wait in ``unfed``."""
        dropped, unfed = [], []
        for fed, kept, tokens, done in zip(self.fed, accepted, emitted, ended):
            cached = min(fed, kept)
            dropped.append(fed - cached)
            unfed.append([] if done else list(tokens[cached:]))
        if any(dropped):
            self.state = self.model.rollback(self.state, dropped, self.model.logits(self.state))
        self.unfed = unfed
        self.fed = [0] * len(emitted)


def padded(rows: Sequence[Sequence[int]], device: torch.device | str = "cpu",
           width: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``rows`` as a zero-padded long grid ``[B, width]`` and their lengths ``[B]`` (one copy each)."""
    width = max((len(r) for r in rows), default=0) if width is None else width
    grid = torch.tensor([list(r[:width]) + [0] * (width - len(r)) for r in rows], dtype=torch.long)
    lengths = torch.tensor([min(len(r), width) for r in rows], dtype=torch.long)
    return grid.view(len(rows), width).to(device), lengths.to(device)


def check_same_vocabulary(target: LanguageModel, draft: LanguageModel) -> None:
    """Raise :class:`GenModelError` unless ``draft`` has exactly the target's tokens and EOS ids."""
    a, b = target.vocab, draft.vocab
    if len(a) != len(b) or a.token_bytes != b.token_bytes or tuple(a.eos_ids) != tuple(b.eos_ids):
        raise GenModelError(f"the draft model {draft.name!r} does not share the vocabulary of {target.name!r} "
                            f"({len(b)} vs {len(a)} tokens)",
                            hint="speculative decoding needs a draft with the same tokenizer as the target; "
                                 "otherwise use `speculate ngram` or `speculate self`")
