"""The executor: runs a bound plan on a model, all draws as the rows of one batch.

Rows share one KV-cached model state. Text is buffered per row and tokenized when a hole needs
the context (so consecutive literals and template pieces are tokenized together), then each hole
is decoded token by token for every unfinished row at once: one forward, one masked draw, and a
little per-row bookkeeping per step (never a loop over the vocabulary).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from genweave.dsl.errors import BudgetExhaustedError, GenRuntimeError, NoValidTokenError
from genweave.runtime import chat
from genweave.runtime.models.base import LanguageModel
from genweave.runtime.result import Result, Results
from genweave.runtime.samplers.draw import unpack_mask
from genweave.runtime.textmask import text_token_mask

Env = Mapping[str, Any]


@dataclass(frozen=True)
class Emit:
    """Append ``render(values)`` to each row's context."""

    render: Callable[[Env], str]


@dataclass(frozen=True)
class Role:
    """Open or close a role block."""

    role: str
    opening: bool


@dataclass(frozen=True)
class Fill:
    """Decode hole ``name`` token by token until end-of-sequence.

    ``constraint`` (a compiled constraint, or None for any text) masks each step: its masks allow
    end-of-sequence exactly when the text is complete, so the hole ends inside its language. A
    ``stop`` string is part of that language and is cut from the value. ``max_tokens`` bounds the
    token count (None: the model's context window); an unconstrained hole simply ends there.
    ``parse`` turns the text into the value (e.g. ``int``); ``where`` is the hole's source place.
    """

    name: str
    max_tokens: int | None
    stop: str | None
    where: str
    constraint: Any = None
    parse: Callable[[str], Any] | None = None


@dataclass(frozen=True)
class Return:
    value: Callable[[Env], Any]


Step = Emit | Role | Fill | Return


class Decoder:
    """Turns next-token log-probs into one token per row.

    ``sample(logprobs, generator) -> (tokens[B], logprobs of the drawn tokens[B])``; greedy
    decoding reports log-prob 0 (a point mass).
    """

    def __init__(self, temperature: float | None):
        self.temperature = temperature  # None: greedy

    @property
    def is_greedy(self) -> bool:
        return self.temperature is None

    def sample(self, logprobs: torch.Tensor, generator: torch.Generator | None) -> tuple[torch.Tensor,
                                                                                             torch.Tensor]:
        if self.temperature is None:
            tokens = logprobs.argmax(dim=-1)
            return tokens, torch.zeros(tokens.shape, dtype=logprobs.dtype, device=logprobs.device)
        scaled = torch.log_softmax(logprobs / self.temperature, dim=-1)
        tokens = torch.multinomial(scaled.exp(), 1, generator=generator).squeeze(-1)
        return tokens, scaled.gather(-1, tokens[:, None]).squeeze(-1)


@dataclass(frozen=True)
class Plan:
    """A program bound to a model: the steps, how to decode, how many draws."""

    steps: tuple[Step, ...]
    decoder: Decoder
    chat: bool
    guarantee: str = "local"


def run_plan(plan: Plan, model: LanguageModel, args: Env, *, draws: int = 1,
             seed: int | None = None) -> Results:
    """Run ``plan`` ``draws`` times as one batch and return every draw."""
    run = _Run(plan, model, args, draws, seed)
    for step in plan.steps:
        run.do(step)
    return Results(tuple(run.results()))


class _Run:
    """The mutable state of one batched execution."""

    def __init__(self, plan: Plan, model: LanguageModel, args: Env, draws: int, seed: int | None):
        self.plan, self.model, self.batch = plan, model, draws
        self.env = [dict(args) for _ in range(draws)]
        self.emitted = [""] * draws          # text already handed to the model (chat bookkeeping)
        self.pending = [""] * draws          # text not tokenized yet
        self.tokens: list[list[int]] = [[] for _ in range(draws)]
        self.messages: list[list[dict[str, str]]] = [[] for _ in range(draws)]
        self.hole_tokens: list[dict[str, tuple[int, ...]]] = [{} for _ in range(draws)]
        self.logprob = torch.zeros(draws, dtype=torch.float64)
        self.value: list[Any] = [None] * draws
        self.state = None
        self.generator = None
        if seed is not None:
            self.generator = torch.Generator(device=model.device).manual_seed(seed)
        self.excluded = ~text_token_mask(model.vocab, str(model.device))

    def do(self, step: Step) -> None:
        match step:
            case Emit(render):
                for b in range(self.batch):
                    text = render(self.env[b])
                    self.pending[b] += text
                    if self.messages[b]:
                        self.messages[b][-1]["content"] += text
            case Role(role, True):
                self._open_role(role)
            case Role(role, False):
                self._close_role(role)
            case Fill():
                self._fill(step)
            case Return(value):
                self.value = [value(env) for env in self.env]

    # --- chat ----------------------------------------------------------------------------------
    def _open_role(self, role: str) -> None:
        for b in range(self.batch):
            before = self.emitted[b] + self.pending[b]
            prefix = chat.open_message(self.model, self.messages[b], role)
            self.pending[b] += chat.continuation(before, prefix, self.model, role)
            self.messages[b].append({"role": role, "content": ""})

    def _close_role(self, role: str) -> None:
        for b in range(self.batch):
            before = self.emitted[b] + self.pending[b]
            after = chat.close_message(self.model, self.messages[b])
            self.pending[b] += chat.continuation(before, after, self.model, role)

    # --- tokens --------------------------------------------------------------------------------
    def _flush(self) -> None:
        """Tokenize each row's pending text and feed it to the model."""
        pieces = [self.model.encode(text) if text else [] for text in self.pending]
        if self.state is None:
            pieces = [[*self.model.bos_ids, *p] for p in pieces]
            if not all(pieces):
                raise GenRuntimeError("the context is empty before the first hole",
                                      hint="start the program with a prompt literal")
            if all(p == pieces[0] for p in pieces):
                # Identical prompts (the usual case for draws): one prefill, duplicated rows.
                self.state = self.model.select(self.model.prefill([pieces[0]]), [0] * self.batch)
            else:
                self.state = self.model.prefill(pieces)
        elif any(pieces):
            width = max(len(p) for p in pieces)
            grid = torch.zeros((self.batch, width), dtype=torch.long)
            for b, p in enumerate(pieces):
                grid[b, :len(p)] = torch.tensor(p, dtype=torch.long)
            lengths = torch.tensor([len(p) for p in pieces])
            self.state, _ = self.model.extend(self.state, grid.to(self.model.device),
                                              None if bool((lengths == width).all()) else lengths)
        for b, p in enumerate(pieces):
            self.tokens[b] += p
            self.emitted[b] += self.pending[b]
            self.pending[b] = ""

    # --- holes ---------------------------------------------------------------------------------
    def _fill(self, hole: Fill) -> None:
        self._flush()
        model, batch = self.model, self.batch
        fill = _HoleDecoding(hole, batch, model.vocab)
        budget = hole.max_tokens if hole.max_tokens is not None else self._context_left()
        if hole.constraint is not None:
            budget += 1  # the last step may be the (possibly forced) end-of-sequence
        for _ in range(budget):
            logprobs = model.logits(self.state).masked_fill(self.excluded, float("-inf"))
            logprobs = fill.apply_mask(logprobs)
            tokens, chosen = self.plan.decoder.sample(logprobs, self.generator)
            self.logprob += torch.where(torch.tensor(fill.active), chosen.double().cpu(), 0.0)
            feed = fill.advance(tokens.tolist())
            if any(feed):
                lengths = None if all(feed) else torch.tensor(feed, dtype=torch.long, device=tokens.device)
                self.state, _ = model.extend(self.state, tokens[:, None], lengths)
            if not any(fill.active):
                break
        else:
            self._out_of_budget(hole, fill)
        self._finish_hole(hole, fill)

    def _out_of_budget(self, hole: Fill, fill: _HoleDecoding) -> None:
        # A plain hole may end anywhere, so a full budget ends it. A hole that must end inside its
        # language (a stop string, a constraint) and has not is a dead end, never truncated.
        if hole.constraint is None and hole.max_tokens is not None:
            return
        rows = [b for b in range(self.batch) if fill.active[b]]
        if rows:
            reason = ("because the model's context window is full" if hole.max_tokens is None
                      else f"before its text was complete{fill.describe_language()}")
            raise BudgetExhaustedError(
                f"hole '{hole.name}' ({hole.where}) used all its token budget {reason} "
                f"(draw {rows[0]}; text so far {fill.texts[rows[0]][-60:]!r})",
                hint="raise `max N tokens`, or constrain the hole so it can end in time")

    def _finish_hole(self, hole: Fill, fill: _HoleDecoding) -> None:
        for b in range(self.batch):
            text = fill.texts[b].decode("utf-8", errors="replace")
            value = text
            if hole.stop is not None and value.endswith(hole.stop):
                value = value[: len(value) - len(hole.stop)]
            if hole.parse is not None:
                value = hole.parse(value)
            self.env[b][hole.name] = value
            self.tokens[b] += fill.generated[b]
            self.hole_tokens[b][hole.name] = tuple(fill.generated[b])
            self.emitted[b] += text
            if self.messages[b]:
                self.messages[b][-1]["content"] += text

    def _context_left(self) -> int:
        limit = getattr(self.model, "context_window", None) or 1_000_000
        return max(1, limit - max(len(t) for t in self.tokens))

    def results(self) -> list[Result]:
        out = []
        for b in range(self.batch):
            text = self.emitted[b] + self.pending[b]
            holes = {name: self.env[b][name] for name in self.hole_tokens[b]}
            logprob = 0.0 if self.plan.decoder.is_greedy else float(self.logprob[b])
            out.append(Result(self.value[b], text, holes, tuple(self.tokens[b]), logprob,
                              self.plan.guarantee, dict(self.hole_tokens[b])))
        return out


class _HoleDecoding:
    """Per-row progress through one hole: tokens, bytes, constraint states, which rows are done."""

    def __init__(self, hole: Fill, batch: int, vocab):
        self.hole, self.vocab = hole, vocab
        self.constraint = hole.constraint
        self.generated: list[list[int]] = [[] for _ in range(batch)]
        self.texts = [b""] * batch
        self.active = [True] * batch
        self.states = [self.constraint.initial()] * batch if self.constraint is not None else None
        self.eos = frozenset(vocab.eos_ids)

    def apply_mask(self, logprobs: torch.Tensor) -> torch.Tensor:
        """Exclude, in each active row, the tokens its constraint state does not allow."""
        if self.constraint is None:
            return logprobs
        rows = [b for b, on in enumerate(self.active) if on]
        allowed = unpack_mask(self.constraint.mask([self.states[b] for b in rows]).to(logprobs.device),
                              logprobs.shape[-1])
        empty = ~allowed.any(dim=-1)
        if bool(empty.any()):
            self._dead_end(rows[int(empty.nonzero()[0])])
        index = torch.tensor(rows, device=logprobs.device)
        logprobs[index] = logprobs[index].masked_fill(~allowed, float("-inf"))
        return logprobs

    def advance(self, tokens: list[int]) -> list[bool]:
        """Record each active row's token; returns which rows append it to the model's context."""
        feed = [False] * len(tokens)
        for b, token in enumerate(tokens):
            if not self.active[b]:
                continue
            if token in self.eos:
                self.active[b] = False
                continue
            self.generated[b].append(token)
            self.texts[b] += self.vocab.token_bytes[token]
            if self.constraint is not None:
                self.states[b] = self.constraint.advance(self.states[b], token)
            feed[b] = True
        return feed

    def describe_language(self) -> str:
        return f" in {self.constraint!r}" if self.constraint is not None else ""

    def _dead_end(self, row: int) -> None:
        hole = self.hole
        text = self.texts[row][-60:]
        if hole.max_tokens is not None and len(self.generated[row]) >= hole.max_tokens - 1:
            raise BudgetExhaustedError(
                f"hole '{hole.name}' ({hole.where}) cannot complete its text within {hole.max_tokens} "
                f"tokens (draw {row}; text so far {text!r})",
                hint="raise `max N tokens`, or loosen the constraint")
        raise NoValidTokenError(
            f"hole '{hole.name}' ({hole.where}): no token can continue the text {text!r} "
            f"(draw {row}){self.describe_language()}",
            hint="check that the constraint accepts some text in this context")


def decoder_for(method: str, chain: Sequence[tuple[str, Mapping[str, float]]]) -> Decoder:
    """The decoder of an ``infer:`` block (greedy, or sampling through a temperature)."""
    temperature = 1.0
    for name, params in chain:
        if name == "temperature":
            temperature *= float(params["t"])
    if method == "greedy" or temperature == 0:
        return Decoder(None)
    return Decoder(temperature)
