"""``beam W``: beam search (Hugging Face semantics) and stochastic beam search (Gumbel-top-k).

Both run over a program's trace: a draw holds ``W`` rows (hypotheses); text between holes is
deterministic, so only hole tokens branch. Each hole continues the hypotheses its rows hold (at the
first hole a draw's rows are one hypothesis) and ends with ``W`` new ones. Scores are the log-probs
of the distribution ``sample`` would draw each token from (:mod:`.stepping`: constraint mask, then
the sampler chain), summed over the trace; ``factor`` values add to the score of deterministic
beams (a selection by weight).

**Deterministic** (transformers' ``_beam_search``, per draw): each step the ``max(2, 1 + #EOS) x W``
best continuations ``score + log p`` of the running beams are ranked; those among the first ``W``
that end the hole (end-of-sequence, or the ``max N tokens``-th token of an unconstrained hole) are
finished with the *normalized* score ``score / length ** length_penalty`` (``length``: tokens the
trace generated, each hole's end counting one) and the best ``W`` finished are kept; the first ``W``
that do not end run on. The hole is over when ``early_stopping`` is ``true`` and ``W`` hypotheses
finished, or when the best running score (normalized by its current length; by its longest
possible length under ``never`` with a positive penalty) cannot beat the worst of ``W`` finished,
or when every candidate ends. Finished hypotheses keep their own rows (not fed), so nothing is
recomputed. ``length_penalty 0`` with ``early_stopping never`` is canonical beam search.

**Stochastic** (Kool et al. 2019): each hypothesis carries its log-prob ``phi`` and a perturbed
value ``G`` (root: a standard Gumbel draw). A child ``c`` gets ``phi_c = phi + log p(c)``, a Gumbel-perturbed
``phi_c + g``, and is shifted so that the largest child of a parent equals the parent's ``G``
(:func:`shift_gumbel`); the ``W`` largest among the children and the finished hypotheses (which keep
their ``G``) survive. The ``W`` traces are an exact sample *without replacement* from the law of
``sample`` decoding (constraint masks renormalize each step), ordered by ``G``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from genweave.dsl.errors import BudgetExhaustedError, NoValidTokenError
from genweave.runtime.inference.potentials import NEG_INF
from genweave.runtime.inference.stepping import Decoded, Hyp, Stepper, dead, gumbel, regroup


@dataclass(frozen=True)
class BeamSearch:
    """``beam W [length_penalty a] [early_stopping false|true|never] [kind deterministic|stochastic]
    [returns K]``: ``returns`` is how many hypotheses each draw returns, best first."""

    width: int
    length_penalty: float = 1.0
    early_stopping: str = "false"
    stochastic: bool = False
    returns: int = 1


def log1mexp(x: torch.Tensor) -> torch.Tensor:
    """``log(1 - exp(x))`` for ``x <= 0``, stable on both sides of ``-ln 2``."""
    safe = x.clamp(max=-1e-300)
    return torch.where(safe > -math.log(2), torch.log(-torch.expm1(safe)), torch.log1p(-torch.exp(safe)))


def shift_gumbel(parent: torch.Tensor, children: torch.Tensor) -> torch.Tensor:
    """Children's perturbed values ``[R, V]`` conditioned on their maximum being ``parent[R]``:
    ``-log(exp(-T) - exp(-Z) + exp(-G_c))`` computed stably (``-inf`` children stay ``-inf``)."""
    top = children.amax(dim=-1, keepdim=True)
    t = parent[:, None].expand_as(children)
    with torch.no_grad():
        u = t - children + log1mexp((children - top).clamp(max=0.0))
        out = t - torch.relu(u) - torch.log1p(torch.exp(-u.abs()))
    out = torch.where(children == NEG_INF, torch.full_like(out, NEG_INF), out)
    return torch.where(torch.isnan(out), torch.full_like(out, NEG_INF), out)


@dataclass
class _Segment:
    """One draw's beam inside a group: its rows are group positions ``start .. start + size``."""

    start: int
    size: int
    running: list[Hyp]
    finished: list[Hyp]
    done: bool = False
    base: int = 0  # its first row in the search's internal batch


class BeamHole:
    """Fills one hole for a group of rows (see the module docstring)."""

    def __init__(self, spec: BeamSearch, stepper: Stepper, model: Any, generator: torch.Generator | None,
                 max_tokens: int | None, budget: int):
        self.spec, self.stepper, self.model, self.generator = spec, stepper, model, generator
        self.unconstrained_limit = max_tokens if stepper.constraint is None else None
        self.budget = budget
        self.width = len(model.vocab)
        self.n_eos = len(stepper.eos)

    # ---------------------------------------------------------------------------------- driver
    def run(self, state: Any, segments: list[_Segment]) -> tuple[Any, list[Hyp]]:
        """Search from ``state`` (one row per group position); returns the state and hypothesis of
        each group position after the hole."""
        sources = self._layout(segments)
        state = self.model.select(state, torch.as_tensor(sources, dtype=torch.long, device=self.model.device))
        for _ in range(self.budget):
            if all(s.done for s in segments):
                break
            state = self._step(state, segments)
        return self._finish(state, segments)

    def _layout(self, segments: list[_Segment]) -> list[int]:
        """Internal rows: per segment its running slots, then (deterministic) its finished slots."""
        sources = []
        for s in segments:
            s.base = len(sources)
            sources += [s.start + i for i in range(s.size)]
            if not self.spec.stochastic:
                sources += [s.start] * s.size
        return sources

    def _rows(self, s: _Segment, segments: list[_Segment]) -> int:
        """The first internal row of segment ``s``."""
        return s.base

    def _step(self, state: Any, segments: list[_Segment]) -> Any:
        logits = self.model.logits(state)
        running_rows, cstates = [], []
        for s in segments:
            base = self._rows(s, segments)
            for i, h in enumerate(s.running):
                if h.alive and h.running and not s.done:
                    running_rows.append(base + i)
                    cstates.append(h.cstate)
        lp = torch.full((logits.shape[0], logits.shape[1]), NEG_INF, dtype=torch.float64, device=logits.device)
        if running_rows:
            index = torch.as_tensor(running_rows, device=logits.device)
            lp[index] = self.stepper.logprobs(logits.index_select(0, index), cstates).double()
        keys = self._perturbed(segments, lp) if self.spec.stochastic else None
        sources, feed = [], []
        for s in segments:
            base = self._rows(s, segments)
            rows = lp[base:base + s.size]
            src, fd = (self._stochastic(s, rows, base, keys[base:base + s.size]) if self.spec.stochastic
                       else self._deterministic(s, rows, base))
            sources += src
            feed += fd
        return regroup(self.model, state, sources, feed)

    # ---------------------------------------------------------------------------- deterministic
    def _deterministic(self, s: _Segment, lp: torch.Tensor, base: int) -> tuple[list[int], list[int]]:
        size = s.size
        keep = [(base + size + i, -1) for i in range(size)]  # finished slots stay as they are
        if s.done:
            return [base + i for i in range(size)] + [b for b, _ in keep], [-1] * size + [-1] * size
        scores = torch.tensor([self._score(h) if h.alive and h.running else NEG_INF for h in s.running],
                              dtype=torch.float64, device=lp.device)
        flat = (scores[:, None] + lp).reshape(-1)
        k = min(max(2, 1 + self.n_eos) * size, flat.numel())
        values, index = torch.topk(flat, k)
        running: list[tuple[int, Hyp, int]] = []
        finals: list[tuple[int, Hyp, int]] = []
        stopping = []
        full = sum(h.alive for h in s.finished) == size and self.spec.early_stopping == "true"
        for j, (value, i) in enumerate(zip(values.tolist(), index.tolist())):
            if value == NEG_INF:
                break
            p, token = divmod(i, self.width)
            child = self.stepper.advance(s.running[p], token, float(lp[p, token]))
            ends = not child.running or self._at_limit(child)
            stopping.append(ends)
            if ends and j < size and not full:
                child.running = False
                child.key = self._normalized(child)
                finals.append((base + p, child, -1 if token in self.stepper.eos else token))
            elif not ends and len(running) < size:
                running.append((base + p, child, token))
        merged = [(b, h, -1) for (b, _), h in zip(keep, s.finished) if h.alive] + finals
        merged.sort(key=lambda item: -item[1].key)  # stable: earlier finished first on ties
        merged = merged[:size]
        s.finished = [h for _, h, _ in merged] + [dead() for _ in range(size - len(merged))]
        s.running = [h for _, h, _ in running] + [dead() for _ in range(size - len(running))]
        s.done = not running or not self._may_improve(s) or (bool(stopping) and all(stopping))
        pad = [base] * (size - len(running)), [-1] * (size - len(running))
        sources = [b for b, _, _ in running] + pad[0] + [b for b, _, _ in merged] + [base] * (size - len(merged))
        feed = [t for _, _, t in running] + pad[1] + [t for _, _, t in merged] + [-1] * (size - len(merged))
        return sources, feed

    @staticmethod
    def _score(h: Hyp) -> float:
        return h.logprob + h.weight

    def _normalized(self, h: Hyp) -> float:
        return self._score(h) / (max(h.length, 1) ** self.spec.length_penalty)

    def _at_limit(self, h: Hyp) -> bool:
        return self.unconstrained_limit is not None and len(h.tokens) >= self.unconstrained_limit

    def _may_improve(self, s: _Segment) -> bool:
        """Transformers' test: can the best running beam still beat the worst of ``W`` finished?"""
        alive = [h for h in s.running if h.alive]
        finished = [h.key for h in s.finished if h.alive]
        if len(finished) < s.size:
            return True
        if self.spec.early_stopping == "true":
            return False
        if self.spec.early_stopping == "never" and self.spec.length_penalty > 0:
            best = max(self._score(h) / (self._longest(h) ** self.spec.length_penalty) for h in alive)
        else:
            best = max(self._normalized(h) for h in alive)
        return best > min(finished)

    def _longest(self, h: Hyp) -> int:
        return max(h.length + self.budget - len(h.tokens), 1)

    # ---------------------------------------------------------------------------- stochastic
    def _perturbed(self, segments: list[_Segment], lp: torch.Tensor) -> torch.Tensor:
        """``[R, V]`` shifted perturbed values of every child of every internal row (one batched op)."""
        hyps = [h for s in segments for h in s.running]
        live = [h.alive and h.running for h in hyps]
        phi = torch.tensor([h.logprob if on else NEG_INF for h, on in zip(hyps, live)],
                           dtype=torch.float64, device=lp.device)
        perturbed = phi[:, None] + lp + gumbel(lp.shape, self.generator, lp.device)
        perturbed = torch.where(lp == NEG_INF, torch.full_like(lp, NEG_INF), perturbed)
        parent = torch.tensor([h.key if on else NEG_INF for h, on in zip(hyps, live)],
                              dtype=torch.float64, device=lp.device)
        return shift_gumbel(parent, perturbed)

    def _stochastic(self, s: _Segment, lp: torch.Tensor, base: int,
                    keys: torch.Tensor) -> tuple[list[int], list[int]]:
        size = s.size
        if s.done:
            return [base + i for i in range(size)], [-1] * size
        keys = keys.reshape(-1)
        held = torch.tensor([h.key if h.alive and not h.running else NEG_INF for h in s.running],
                            dtype=torch.float64, device=lp.device)
        values, index = torch.topk(torch.cat([keys, held]), size)
        slots, sources, feed = [], [], []
        for value, i in zip(values.tolist(), index.tolist()):
            if value == NEG_INF:
                continue
            if i >= keys.numel():  # a finished hypothesis keeps its row and its G
                j = i - keys.numel()
                slots.append(s.running[j])
                sources.append(base + j)
                feed.append(-1)
                continue
            p, token = divmod(i, self.width)
            child = self.stepper.advance(s.running[p], token, float(lp[p, token]))
            child.key = value
            ends = not child.running or self._at_limit(child)
            child.running = not ends
            slots.append(child)
            sources.append(base + p)
            feed.append(-1 if token in self.stepper.eos else token)
        s.running = slots + [dead() for _ in range(size - len(slots))]
        sources += [base] * (size - len(slots))
        feed += [-1] * (size - len(slots))
        s.done = not any(h.alive and h.running for h in s.running)
        return sources, feed

    # ---------------------------------------------------------------------------- the end
    def _finish(self, state: Any, segments: list[_Segment]) -> tuple[Any, list[Hyp]]:
        out: list[Hyp] = []
        sources = []
        for s in segments:
            base = self._rows(s, segments)
            pool = s.running if self.spec.stochastic else s.finished
            offset = 0 if self.spec.stochastic else s.size
            ranked = sorted(range(s.size), key=lambda i: -pool[i].key if pool[i].alive and not pool[i].running
                            else math.inf)
            kept = [i for i in ranked if pool[i].alive and not pool[i].running]
            if not kept:
                self._fail(s)
            for i in ranked:
                ok = pool[i].alive and not pool[i].running
                out.append(pool[i] if ok else dead(pool[kept[0]].origin))
                sources.append(base + offset + (i if ok else kept[0]))
        return self.model.select(state, torch.as_tensor(sources, dtype=torch.long, device=self.model.device)), out

    def _fail(self, s: _Segment) -> None:
        running = [h for h in s.running if h.alive]
        if running:
            raise BudgetExhaustedError(
                f"beam search over hole {self.stepper.where} used its whole token budget before any "
                f"hypothesis completed its text (best so far {running[0].text[-60:]!r})",
                hint="raise `max N tokens`, or constrain the hole so it can end in time")
        raise NoValidTokenError(f"beam search over hole {self.stepper.where}: no hypothesis can continue",
                                hint="check that the constraint accepts some text in this context")


def start_segments(starts: Sequence[tuple[int, int]], hyps: Sequence[Hyp]) -> list[_Segment]:
    """Segments ``[start, stop)`` of group positions with their hypotheses at the hole's start."""
    out = []
    for a, b in starts:
        running = list(hyps[a:b])
        out.append(_Segment(a, b - a, running, [dead(a) for _ in range(b - a)]))
    return out


def decoded(hyps: Sequence[Hyp]) -> Decoded:
    d = Decoded.of(hyps)
    d.masked = False  # a failed `where` check removes the hypothesis instead of raising
    return d
