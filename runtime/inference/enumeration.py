"""``enumerate x``: the exact distribution of a finite hole given its prefix.

Breadth-first over the tree of token sequences the hole may produce: every frontier node is a row
of one model batch (children are made with ``select`` + one ``extend`` per depth), the tokens of a
node are those the constraint's mask allows with positive probability, and a node dies as soon as
a prefix potential is ``-inf``. Each sequence that can end contributes its target weight
``pi(y)`` (:mod:`.hole`). The hole must be finite: a finite language or a token budget; a
frontier larger than ``max_nodes`` raises :class:`GenRuntimeError`.

>>> from genweave.runtime.models.toy import ToyLM
>>> lm = ToyLM([b"a", b"b"], seed=0)
>>> e = enumerate_hole(lm, [], Hole(max_tokens=2))
>>> len(e.log_weights), round(sum(e.distribution.values()), 12)
(7, 1.0)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from genweave.dsl.errors import GenRuntimeError
from genweave.runtime.inference.hole import (
    Hole,
    constraint_allowed,
    end_log_mass,
    excluded_tokens,
    target_rows,
)
from genweave.runtime.inference.potentials import NEG_INF, complete_text
from genweave.runtime.inference.results import log_mean_exp
from genweave.runtime.models.base import LanguageModel


@dataclass(frozen=True, eq=False)
class Enumeration:
    """``log_weights``: token ids (EOS excluded) -> ``log pi(y)``; ``log_z``: ``log sum pi``;
    ``texts``: the bytes of each sequence."""

    log_weights: dict[tuple[int, ...], float]
    log_z: float
    texts: dict[tuple[int, ...], bytes]

    @property
    def distribution(self) -> dict[tuple[int, ...], float]:
        """Token sequence -> probability under ``pi / Z``."""
        return {ids: math.exp(w - self.log_z) for ids, w in self.log_weights.items()}

    @property
    def posterior(self) -> dict[str, float]:
        """Text -> probability (sequences with the same text merged), most probable first."""
        out: dict[str, float] = {}
        for ids, p in self.distribution.items():
            key = complete_text(self.texts[ids])
            out[key] = out.get(key, 0.0) + p
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))


@dataclass
class _Frontier:
    ids: list[tuple[int, ...]]
    log_q: np.ndarray
    cstates: list
    pstates: list[list]
    state: Any


def enumerate_hole(model: LanguageModel, prompt: Sequence[int], hole: Hole, *,
                   max_nodes: int = 100_000, state: Any = None) -> Enumeration:
    """The exact target of ``hole`` after ``prompt`` (or after the one-row ``state``)."""
    if hole.chain is not None and getattr(hole.chain, "stateful", False):
        raise GenRuntimeError("enumerate does not support stateful sampler chains (penalties, DRY, mirostat)")
    state = model.prefill([list(prompt)]) if state is None else state
    c, vocab = hole.constraint, model.vocab
    excluded = excluded_tokens(vocab, model.device)
    front = _Frontier([()], np.zeros(1), [c.initial() if c is not None else None],
                      [[p.initial() for p in hole.potentials]], state)
    weights: dict[tuple[int, ...], float] = {}
    texts: dict[tuple[int, ...], bytes] = {}
    while front.ids:
        rows = target_rows(model.logits(front.state), excluded, hole.chain)
        _collect_ends(front, rows, hole, vocab, weights, texts)
        if hole.limit is not None and len(front.ids[0]) >= hole.limit:
            break
        front = _expand(front, rows, hole, model, max_nodes)
    return Enumeration(weights, _log_sum(list(weights.values())), texts)


def _collect_ends(front: _Frontier, rows: torch.Tensor, hole: Hole, vocab: Any,
                  weights: dict, texts: dict) -> None:
    ends = end_log_mass(rows, vocab.eos_ids).cpu().numpy()
    c = hole.constraint
    for j, ids in enumerate(front.ids):
        if c is not None and not c.is_complete(front.cstates[j]):
            continue
        log_w = front.log_q[j] + ends[j] + sum(p.complete(s) for p, s in zip(hole.potentials, front.pstates[j]))
        if log_w > NEG_INF:
            weights[ids] = float(log_w)
            texts[ids] = vocab.decode(ids)


def _expand(front: _Frontier, rows: torch.Tensor, hole: Hole, model: LanguageModel,
            max_nodes: int) -> _Frontier:
    """The children of every frontier node: text tokens of positive probability the constraint
    allows, minus those a prefix potential rules out."""
    vocab, c = model.vocab, hole.constraint
    ok = torch.isfinite(rows)
    ok[:, list(vocab.eos_ids)] = False
    allowed = constraint_allowed(c, front.cstates, rows.shape[1])
    if allowed is not None:
        ok &= allowed.to(ok.device)
    parents, tokens = (t.cpu().numpy() for t in ok.nonzero(as_tuple=True))
    if len(parents) > max_nodes:
        raise GenRuntimeError(f"enumerate: the hole has more than {max_nodes} prefixes of "
                              f"{len(front.ids[0]) + 1} tokens", hint="enumerate only finite holes: "
                              "a small finite language or a small `max N tokens` budget")
    picked = rows[torch.as_tensor(parents, device=rows.device), torch.as_tensor(tokens, device=rows.device)]
    log_q = front.log_q[parents] + picked.cpu().numpy()
    children = _Frontier([], np.zeros(0), [], [], None)
    keep = []
    for i, (j, t) in enumerate(zip(parents.tolist(), tokens.tolist())):
        data = vocab.token_bytes[t]
        pstates = [p.advance(s, t, data) for p, s in zip(hole.potentials, front.pstates[j])]
        if any(p.is_prefix and p.prefix(s) == NEG_INF for p, s in zip(hole.potentials, pstates)):
            continue
        keep.append(i)
        children.ids.append(front.ids[j] + (t,))
        children.cstates.append(c.advance(front.cstates[j], t) if c is not None else None)
        children.pstates.append(pstates)
    if not keep:
        return children
    index = np.asarray(keep)
    children.log_q = log_q[index]
    device = model.device
    state = model.select(front.state, torch.as_tensor(parents[index], device=device))
    children.state, _ = model.extend(state, torch.as_tensor(tokens[index], device=device).unsqueeze(1))
    return children


def _log_sum(values: list[float]) -> float:
    if not values:
        return NEG_INF
    return log_mean_exp(np.asarray(values)) + math.log(len(values))
