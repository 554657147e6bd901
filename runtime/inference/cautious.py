"""``cautious``: Cautious Next Token Prediction (CNTP; Wang et al., Findings ACL 2025).

At each decoding step of a hole, with ``pi_t`` the distribution ``sample`` draws from (constraint
mask, then the sampler chain) and ``H`` its entropy in nats (``-sum pi log(pi + 1e-10)``):

* ``N = floor(1 + (candidates - 1) * clamp((H - entropy_low) / (entropy_high - entropy_low), 0, 1))``
  trials (``N = 1`` under ``greedy``);
* ``N = 1``: an ordinary step (one token from ``pi_t``, or its argmax under ``greedy``);
* ``N > 1``: ``N`` independent segments are sampled from the same state, token by token from the
  processed distribution, each ending at its first punctuation token (included), at the hole's end
  (end-of-sequence, its token budget) or after ``segment`` tokens (a cap the reference lacks);
  the segment with the lowest perplexity ``exp(-mean log pi(y_t))`` is appended (the first on
  ties) and its rows of the model state adopted.

Punctuation tokens are those whose bytes are exactly one of ``. , \\n ? ! : ; ) ] }``. Per step with
``N > 1`` the appended segment is distributed as the lowest-perplexity of ``N`` i.i.d. segments; it
is not a sampler of the model. Every trial of every row is a row of one model batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import torch

from genweave.dsl.errors import BudgetExhaustedError, NoValidTokenError
from genweave.runtime.inference.potentials import NEG_INF
from genweave.runtime.inference.stepping import Hyp, Stepper, regroup
from genweave.runtime.samplers import gumbel_argmax

PUNCTUATION = (b".", b",", b"\n", b"?", b"!", b":", b";", b")", b"]", b"}")


@dataclass(frozen=True)
class Cautious:
    """``cautious [candidates N] [entropy_low a] [entropy_high b] [segment L]`` (module docstring)."""

    candidates: int = 40
    entropy_low: float = 0.01
    entropy_high: float = 1.5
    segment: int = 64


def trial_counts(entropy: torch.Tensor, spec: Cautious) -> torch.Tensor:
    """``[R]`` numbers of trials for entropies ``[R]`` (module docstring).

    >>> trial_counts(torch.tensor([0.01, 1.5, 0.755, 9.0]), Cautious(candidates=40)).tolist()
    [1, 40, 20, 40]
    """
    scale = ((entropy.double() - spec.entropy_low) / (spec.entropy_high - spec.entropy_low)).clamp(0.0, 1.0)
    return torch.floor(1 + (spec.candidates - 1) * scale + 1e-9).long()


def entropy(logprobs: torch.Tensor) -> torch.Tensor:
    """``[R]`` entropies (nats) of the rows of ``logprobs`` as CNTP defines them."""
    p = logprobs.double().exp()
    return -(p * torch.log(p + 1e-10)).sum(dim=-1)


@lru_cache(maxsize=32)
def _punctuation(token_bytes: tuple[bytes, ...]) -> frozenset[int]:
    return frozenset(i for i, data in enumerate(token_bytes) if data in PUNCTUATION)


def punctuation_ids(vocab: Any) -> frozenset[int]:
    return _punctuation(tuple(vocab.token_bytes))


class CautiousHole:
    """Fills one hole for a group's rows (module docstring)."""

    def __init__(self, spec: Cautious, stepper: Stepper, model: Any, generator: torch.Generator | None,
                 greedy: bool, max_tokens: int | None):
        self.spec, self.stepper, self.model, self.generator, self.greedy = spec, stepper, model, generator, greedy
        self.limit = max_tokens if stepper.constraint is None else None
        self.punctuation = punctuation_ids(model.vocab)

    def run(self, state: Any, hyps: list[Hyp], budget: int) -> tuple[Any, list[Hyp]]:
        for _ in range(budget):
            active = [k for k, h in enumerate(hyps) if h.running]
            if not active:
                return state, hyps
            state, hyps = self.step(state, hyps, active)
        if any(h.running for h in hyps) and self.stepper.constraint is not None:
            raise BudgetExhaustedError(f"cautious decoding of hole {self.stepper.where} used its whole token "
                                       "budget before the text was complete", hint="raise `max N tokens`")
        return state, hyps

    def step(self, state: Any, hyps: list[Hyp], active: list[int]) -> tuple[Any, list[Hyp]]:
        """One CNTP step for the ``active`` hypotheses; a finished one keeps its row as a frozen
        trial, so every row of the new state is a row of the trial batch."""
        logits = self.model.logits(state)
        index = torch.as_tensor(active, device=logits.device)
        lp = self.stepper.logprobs(logits.index_select(0, index), [hyps[k].cstate for k in active])
        if bool((lp.amax(dim=-1) == NEG_INF).any()):
            raise NoValidTokenError(f"hole {self.stepper.where}: no token can continue the text",
                                    hint="check that the constraint accepts some text in this context")
        counts = [1] * len(hyps)
        if not self.greedy:
            for k, n in zip(active, trial_counts(entropy(lp), self.spec).tolist()):
                counts[k] = n
        full = torch.full((len(hyps), lp.shape[1]), NEG_INF, dtype=lp.dtype, device=lp.device)
        full[index] = lp
        owners = [k for k in range(len(hyps)) for _ in range(counts[k])]
        first = full.repeat_interleave(torch.as_tensor(counts, device=lp.device), dim=0)
        trials = _Trials(owners, [hyps[k] for k in owners], [counts[k] == 1 for k in owners])
        tstate = self.model.select(state, torch.as_tensor(owners, dtype=torch.long, device=self.model.device))
        tstate = self._decode(tstate, trials, first)
        winners = self._winners(trials)
        picked = [winners[k] for k in range(len(hyps))]
        state = self.model.select(tstate, torch.as_tensor(picked, dtype=torch.long, device=self.model.device))
        return state, [trials.hyps[i] for i in picked]

    def _decode(self, tstate: Any, trials: _Trials, first: torch.Tensor) -> Any:
        lp = first
        while True:
            tokens = lp.argmax(dim=-1) if self.greedy else gumbel_argmax(lp.float(), self.generator)
            chosen = lp.gather(1, tokens[:, None]).squeeze(1).tolist()
            feed = trials.advance(tokens.tolist(), chosen, self)
            tstate = regroup(self.model, tstate, list(range(len(feed))), feed)
            if not trials.any_running():
                return tstate
            logits = self.model.logits(tstate)
            lp = self.stepper.logprobs(logits, [h.cstate for h in trials.hyps])
            trials.kill_dead_ends(lp)

    def _winners(self, trials: _Trials) -> dict[int, int]:
        """Hypothesis -> its trial with the best mean log-prob (the first on ties); a frozen
        (finished) hypothesis -> its one trial."""
        best: dict[int, tuple[float, int]] = {}
        for i, k in enumerate(trials.owners):
            if trials.frozen[i]:
                best[k] = (math.inf, i)
                continue
            score = trials.sums[i] / trials.lengths[i] if trials.lengths[i] else NEG_INF
            if k not in best or score > best[k][0]:
                best[k] = (score, i)
        if any(score == NEG_INF for score, _ in best.values()):
            raise NoValidTokenError(f"hole {self.stepper.where}: every cautious trial reached a dead end")
        return {k: i for k, (_, i) in best.items()}


class _Trials:
    """The segments sampled at one step, one per row of the trial batch."""

    def __init__(self, owners: list[int], hyps: list[Hyp], single: list[bool]):
        self.owners, self.hyps, self.single = owners, list(hyps), single
        self.sums = [0.0] * len(owners)
        self.lengths = [0] * len(owners)
        self.frozen = [not h.running for h in hyps]
        self.running = [h.running for h in hyps]

    def any_running(self) -> bool:
        return any(self.running)

    def advance(self, tokens: list[int], chosen: list[float], hole: CautiousHole) -> list[int]:
        feed = [-1] * len(tokens)
        for i, (token, logprob) in enumerate(zip(tokens, chosen)):
            if not self.running[i]:
                continue
            h = hole.stepper.advance(self.hyps[i], token, logprob)
            self.sums[i] += logprob
            self.lengths[i] += 1
            at_limit = hole.limit is not None and len(h.tokens) >= hole.limit
            if h.running:
                feed[i] = token
            if at_limit:
                h.running = False
            self.hyps[i] = h
            self.running[i] = (h.running and not self.single[i] and token not in hole.punctuation
                               and self.lengths[i] < hole.spec.segment)
        return feed

    def kill_dead_ends(self, lp: torch.Tensor) -> None:
        stuck = (lp.amax(dim=-1) == NEG_INF).tolist()
        for i, s in enumerate(stuck):
            if s and self.running[i]:
                self.running[i] = False
                self.sums[i] = NEG_INF


def cautious_hole(run: Any, hole: Any, group: Any, spec: Cautious) -> None:
    """Fill ``hole`` for ``group`` of a :class:`~genweave.runtime.inference.search.SearchRun`."""
    run._flush(group)
    rows = group.rows
    stepper = run.stepper(hole)
    greedy = stepper.chain is not None and stepper.chain.is_greedy
    engine = CautiousHole(spec, stepper, run.model, run.generator, greedy, hole.max_tokens)
    state, out = engine.run(group.state, run.hypotheses(rows, stepper), run.budget(hole, rows))
    run.settle(hole, group, state, out)
