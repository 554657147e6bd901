"""Exact distributions of one hole on a small model, by enumerating every token sequence.

The oracle of the inference tests (and of ``genweave.testing.exact_distribution``). It follows the
definitions directly, one context at a time, with no batching and no pruning beyond the
constraint's dead state and zero-probability tokens, so that it shares as little code as possible
with the engines it checks:

* :func:`exact_target`: the global target ``pi / Z`` of :mod:`.hole` (what ``smc``,
  ``rejection`` and ``enumerate`` aim at), with ``log Z``;
* :func:`exact_local`: the law of token-by-token *masked* decoding (``sample``): at each step
  ``Q`` restricted to the allowed tokens and renormalized; the constraint and the boolean prefix
  potentials mask tokens, complete-only predicates mask EOS, soft factors are ignored (a masked
  decoder has no weights). ``failure`` is the probability of reaching a step where nothing is
  allowed.

Outcomes are token sequences (EOS excluded); :meth:`ExactDistribution.by_text` merges those with
the same text. Exponential in the budget: meant for vocabularies of a handful of tokens.

>>> from genweave.runtime.models.toy import ToyLM
>>> lm = ToyLM([b"a", b"b"], seed=0)
>>> d = exact_target(lm, [], Hole(max_tokens=2))
>>> len(d.probabilities), round(sum(d.probabilities.values()), 12)
(7, 1.0)
>>> bool(d.log_z < 0)  # texts longer than the budget have weight 0
True
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from genweave.dsl.errors import GenArgumentError
from genweave.runtime.inference.hole import Hole, excluded_tokens, target_rows
from genweave.runtime.inference.potentials import NEG_INF, complete_text
from genweave.runtime.vocab import Vocabulary

_MAX_DEPTH = 64


@dataclass(frozen=True)
class ExactDistribution:
    """``probabilities``: token ids (EOS excluded) -> probability (summing to 1, or to
    ``1 - failure``); ``log_z``: log of the target's normalizer (0 for a local process);
    ``failure``: probability that masked decoding reaches a dead end."""

    probabilities: Mapping[tuple[int, ...], float]
    log_z: float = 0.0
    failure: float = 0.0
    weights: Mapping[tuple[int, ...], float] = field(default_factory=dict, repr=False)

    def by_text(self, vocab: Vocabulary) -> dict[str, float]:
        """Probability of each text (decoded, invalid UTF-8 replaced)."""
        out: dict[str, float] = {}
        for ids, p in self.probabilities.items():
            text = complete_text(vocab.decode(ids))
            out[text] = out.get(text, 0.0) + p
        return out


def tv_distance(p: Mapping[Hashable, float], q: Mapping[Hashable, float]) -> float:
    """Total variation distance ``(1/2) sum |p - q|`` between two distributions."""
    keys = set(p) | set(q)
    return 0.5 * sum(abs(p.get(k, 0.0) - q.get(k, 0.0)) for k in keys)


class _Rows:
    """``Q(. | prompt + ids)`` one context at a time (float64, cached)."""

    def __init__(self, model: Any, prompt: Sequence[int], hole: Hole):
        if hole.chain is not None and getattr(hole.chain, "stateful", False):
            raise GenArgumentError("exact enumeration supports stateless sampler chains only")
        self.model, self.prompt, self.chain = model, tuple(prompt), hole.chain
        self.excluded = excluded_tokens(model.vocab, "cpu")
        self.cache: dict[tuple[int, ...], list[float]] = {}

    def __call__(self, ids: tuple[int, ...]) -> list[float]:
        row = self.cache.get(ids)
        if row is None:
            context = self.prompt + ids
            if hasattr(self.model, "next_token_logprobs"):
                logits = self.model.next_token_logprobs(context)
            else:
                logits = self.model.logits(self.model.prefill([list(context)]))[0]
            row = target_rows(logits.detach().cpu()[None], self.excluded, self.chain)[0].tolist()
            self.cache[ids] = row
        return row


def exact_target(model: Any, prompt: Sequence[int], hole: Hole) -> ExactDistribution:
    """The hole's global target ``pi / Z`` (module docstring) and ``log Z``."""
    rows, vocab, c = _Rows(model, prompt, hole), model.vocab, hole.constraint
    eos, text_ids = list(vocab.eos_ids), _text_ids(vocab)
    weights: dict[tuple[int, ...], float] = {}

    def visit(ids: tuple[int, ...], log_q: float, cstate: Any, pstates: tuple) -> None:
        _check_depth(ids)
        row = rows(ids)
        if c is None or c.is_complete(cstate):
            log_w = log_q + _logsumexp([row[e] for e in eos])
            log_w += sum(p.complete(s) for p, s in zip(hole.potentials, pstates))
            if log_w > NEG_INF:
                weights[ids] = log_w
        if hole.limit is not None and len(ids) >= hole.limit:
            return
        for t in text_ids:
            nxt = c.advance(cstate, t) if c is not None else None
            if row[t] > NEG_INF and (c is None or not c.is_dead(nxt)):
                visit(ids + (t,), log_q + row[t], nxt, _advance(hole, pstates, t, vocab))

    visit((), 0.0, _initial(c), tuple(p.initial() for p in hole.potentials))
    log_z = _logsumexp(list(weights.values()))
    if log_z == NEG_INF:
        return ExactDistribution({}, NEG_INF, 0.0, weights)
    return ExactDistribution({ids: math.exp(w - log_z) for ids, w in weights.items()}, log_z, 0.0, weights)


def exact_local(model: Any, prompt: Sequence[int], hole: Hole) -> ExactDistribution:
    """The law of masked token-by-token decoding of the hole (module docstring)."""
    rows, vocab, c = _Rows(model, prompt, hole), model.vocab, hole.constraint
    eos, text_ids = list(vocab.eos_ids), _text_ids(vocab)
    hard = [k for k, p in enumerate(hole.potentials) if p.boolean]
    probabilities: dict[tuple[int, ...], float] = {}
    failure = 0.0

    def holds(pstates: tuple, complete: bool) -> bool:
        for k in hard:
            p = hole.potentials[k]
            if (p.complete(pstates[k]) if complete else p.prefix(pstates[k])) != 0.0:
                return False
        return True

    def visit(ids: tuple[int, ...], prob: float, cstate: Any, pstates: tuple) -> None:
        nonlocal failure
        _check_depth(ids)
        row = rows(ids)
        options: list[tuple[int | None, float, Any, tuple]] = []
        if (c is None or c.is_complete(cstate)) and holds(pstates, complete=True):
            options.append((None, math.exp(_logsumexp([row[e] for e in eos])), None, ()))
        if hole.limit is None or len(ids) < hole.limit:
            for t in text_ids:
                nxt = c.advance(cstate, t) if c is not None else None
                if row[t] == NEG_INF or (c is not None and c.is_dead(nxt)):
                    continue
                states = _advance(hole, pstates, t, vocab)
                if holds(states, complete=False):
                    options.append((t, math.exp(row[t]), nxt, states))
        total = sum(q for _, q, _, _ in options)
        if total <= 0.0:
            failure += prob
            return
        for t, q, nxt, states in options:
            if t is None:
                probabilities[ids] = probabilities.get(ids, 0.0) + prob * q / total
            else:
                visit(ids + (t,), prob * q / total, nxt, states)

    visit((), 1.0, _initial(c), tuple(p.initial() for p in hole.potentials))
    return ExactDistribution(probabilities, 0.0, failure)


def _text_ids(vocab: Vocabulary) -> list[int]:
    return [t for t in range(len(vocab)) if t not in vocab.special]


def _initial(constraint: Any) -> Any:
    return constraint.initial() if constraint is not None else None


def _advance(hole: Hole, pstates: tuple, token: int, vocab: Vocabulary) -> tuple:
    data = vocab.token_bytes[token]
    return tuple(p.advance(s, token, data) for p, s in zip(hole.potentials, pstates))


def _logsumexp(values: Sequence[float]) -> float:
    finite = [v for v in values if v > NEG_INF]
    if not finite:
        return NEG_INF
    top = max(finite)
    return top + math.log(sum(math.exp(v - top) for v in finite))


def _check_depth(ids: tuple[int, ...]) -> None:
    if len(ids) > _MAX_DEPTH:
        raise GenArgumentError(f"exact enumeration went past {_MAX_DEPTH} tokens",
                               hint="give the hole a `max N tokens` budget or a finite language")
