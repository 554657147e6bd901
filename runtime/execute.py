"""The executor: runs a bound plan on a model, all draws as the rows of one batch.

Rows share KV-cached model state. Text is buffered per row and tokenized when a hole needs the
context (so consecutive literals and template pieces are tokenized together); each hole is then
decoded token by token for every unfinished row at once: one forward, one masked draw through the
sampler chain, and a little per-row bookkeeping per step (never a loop over the vocabulary).

Control flow can differ between rows: at a branch or a loop the rows split into groups that go on
separately, each with the model state of its own rows (``LanguageModel.select``); groups never merge
again, so a program without data-dependent control flow stays one batch from start to end.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from genweave.dsl.errors import BudgetExhaustedError, GenModelError, GenRuntimeError, NoValidTokenError
from genweave.runtime import chat
from genweave.runtime.constraints.prefetch import MaskPrefetcher
from genweave.runtime.models.base import LanguageModel
from genweave.runtime.result import Result, Results
from genweave.runtime.samplers import ChainSpec, gumbel_argmax, unpack_mask
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
    keep_stop: bool = False
    check: Callable[[Env, str], bool] | None = None  # a predicate on the complete text (`where`)
    heal: bool = False  # draw the hole's first bytes from the exact byte-level conditional
    # A prefix-monotone predicate on the hole's text (a `where` with a `prefix` extern): particle
    # inference (smc, awrs) checks it token by token; `check` still decides on the finished value.
    prefix: Callable[[str], bool] | None = None
    # The hole's own sampler chain (its `for HOLE:` block names `sample`/`greedy`); None: the plan's.
    chain: ChainSpec | None = None
    # The hole's own speculation (its `for HOLE:` block): a SpeculatePlan, or False when that block
    # has no `speculate` (decoded token by token); None: the program's (``Plan.speculate``).
    speculate: Any = None


@dataclass(frozen=True)
class Assign:
    """Bind ``name`` to ``value(values)`` (``let``, a loop variable)."""

    name: str
    value: Callable[[Env], Any]


@dataclass(frozen=True)
class Branch:
    """Run ``then`` for the rows where ``test(values)`` holds, ``orelse`` for the others."""

    test: Callable[[Env], Any]
    then: tuple[Step, ...]
    orelse: tuple[Step, ...] = ()


@dataclass(frozen=True)
class Loop:
    """Run ``body`` once per item of ``items(values)``, with ``var`` bound to the item."""

    var: str
    items: Callable[[Env], Sequence[Any]]
    body: tuple[Step, ...]


@dataclass(frozen=True)
class Weigh:
    """Add ``log_weight(values)`` to each row's log-weight (``factor``; ``condition`` adds -inf)."""

    log_weight: Callable[[Env], float]


@dataclass(frozen=True)
class Return:
    """End the program for these rows with ``value(values)``."""

    value: Callable[[Env], Any]


Step = Emit | Role | Fill | Assign | Branch | Loop | Weigh | Return


@dataclass(frozen=True)
class Plan:
    """A program bound to a model: the steps, the sampler chain every hole draws through.

    ``chain`` is folded already; a ``greedy()`` chain decodes greedily. ``rejection`` (a number of
    tries) switches to rejection sampling: holes are drawn from the model without masks and a
    draw is kept only when every hole's text is in its language and every ``where``/``condition``
    holds, which samples the program's target exactly. ``particles`` (a
    :class:`~genweave.runtime.inference.program.ParticlePlan`) switches to particle inference
    (``smc``, ``awrs``), run by :mod:`genweave.runtime.inference.program`.
    """

    steps: tuple[Step, ...]
    chain: ChainSpec
    chat: bool
    guarantee: str = "local"
    rejection: int | None = None
    particles: Any = None
    # Search and selection (``beam``, ``best_of``, ``cautious``, ``lookahead_tree``) and the holes
    # whose exact distribution is wanted (``enumerate``): run by :mod:`genweave.runtime.inference.search`.
    search: Any = None
    enumerate: tuple[str, ...] = ()
    # "bytes": the model is byte-level (``bytes``, an ensemble); the holes are bound against the
    # byte vocabulary and filled byte by byte by :mod:`genweave.runtime.bytes.program`.
    level: str = "tokens"
    # ``speculate`` (a :class:`~genweave.runtime.inference.speculative.SpeculatePlan`): holes are
    # decoded in draft-and-verify rounds by :mod:`genweave.runtime.inference.speculative.run`.
    speculate: Any = None


def hole_chain(plan: Plan, hole: Fill) -> ChainSpec:
    """The sampler chain hole ``hole`` draws through: its own, else the program's."""
    return hole.chain if hole.chain is not None else plan.chain


def run_plan(plan: Plan, model: LanguageModel, args: Env, *, draws: int = 1,
             seed: int | None = None) -> Results:
    """Run ``plan`` ``draws`` times as one batch and return every draw."""
    if plan.level == "bytes":
        from genweave.runtime.bytes.program import run_bytes  # it builds on this module

        return run_bytes(plan, model, args, draws, seed)
    generator = torch.Generator(device=model.device).manual_seed(seed) if seed is not None else None
    if plan.particles is not None:
        from genweave.runtime.inference.program import run_particles  # it builds on this module

        return run_particles(plan, model, args, draws, generator)
    if plan.search is not None or plan.enumerate:
        from genweave.runtime.inference.search import run_search  # it builds on this module

        return run_search(plan, model, args, draws, generator)
    if plan.rejection is None:
        from genweave.runtime.inference.speculative import run as speculative  # it builds on this module

        if speculative.speculates(plan):  # the program's `speculate`, or a hole's own
            return speculative.run_speculative(plan, model, args, draws, generator)
    if plan.rejection is None:
        run = _Run(plan, model, args, draws, generator)
        run.execute(plan.steps, _Group(list(range(draws)), None))
        return Results(tuple(run.results()))
    return _rejection(plan, model, args, draws, generator)


def _rejection(plan: Plan, model: LanguageModel, args: Env, draws: int,
               generator: torch.Generator | None) -> Results:
    """Whole-trace rejection: batches of ``draws`` traces until ``draws`` are accepted."""
    kept: list[Result] = []
    for _ in range(plan.rejection):
        run = _Run(plan, model, args, draws, generator)
        run.execute(plan.steps, _Group(list(range(draws)), None))
        kept += [r for r in run.results() if r.weight != -math.inf]
        if len(kept) >= draws:
            return Results(tuple(kept[:draws]))
    raise GenRuntimeError(
        f"rejection sampling accepted {len(kept)} of {draws} draws in {plan.rejection * draws} tries",
        hint="raise `rejection max N`, or use smc for constraints that rarely hold")


@dataclass
class _Group:
    """Rows (draw indices) that run the same steps together, with their model state."""

    rows: list[int]
    state: Any


class _Run:
    """The mutable state of one batched execution; per-row data is indexed by draw."""

    def __init__(self, plan: Plan, model: LanguageModel, args: Env, draws: int,
                 generator: torch.Generator | None):
        self.plan, self.model, self.batch = plan, model, draws
        self.env = [dict(args) for _ in range(draws)]
        self.emitted = [""] * draws          # text already handed to the model (chat bookkeeping)
        self.pending = [""] * draws          # text not tokenized yet
        self.tokens: list[list[int]] = [[] for _ in range(draws)]
        self.messages: list[list[dict[str, str]]] = [[] for _ in range(draws)]
        self.hole_tokens: list[dict[str, tuple[int, ...]]] = [{} for _ in range(draws)]
        self.logprob = [0.0] * draws
        self.weight = [0.0] * draws          # log-weight: factors, and -inf when a check fails
        self.healed: dict[int, list[int]] = {}  # row -> tokens committed by healing, not yet fed
        self.value: list[Any] = [None] * draws
        self.generator = generator
        self.allowed = text_token_mask(model.vocab, str(model.device))
        self.compiled_chain = {}

    # --- control ------------------------------------------------------------------------------
    def execute(self, steps: tuple[Step, ...], group: _Group) -> None:
        """Run ``steps`` for ``group``; splits at branches and loops (an explicit work stack,
        so long loops never deepen Python's recursion)."""
        work = [(steps, group)]
        while work:
            steps, group = work.pop()
            for index, step in enumerate(steps):
                if isinstance(step, Branch | Loop):
                    work.extend(reversed(self._split(step, steps[index + 1:], group)))
                    break
                if isinstance(step, Return):
                    for row in group.rows:
                        self.value[row] = step.value(self.env[row])
                    break
                self._do(step, group)

    def _split(self, step: Branch | Loop, rest: tuple[Step, ...], group: _Group):
        """The (steps, group) pairs that continue after a branch or a loop, in row order."""
        if isinstance(step, Branch):
            truth = [bool(step.test(self.env[row])) for row in group.rows]
            arms = [(True, step.then), (False, step.orelse)]
            return [(body + rest, self._subgroup(group, [k for k, t in enumerate(truth) if t is flag]))
                    for flag, body in arms if flag in truth]
        items = [list(step.items(self.env[row])) for row in group.rows]
        out = []
        for count in sorted({len(i) for i in items}):
            members = [k for k, i in enumerate(items) if len(i) == count]
            unrolled: list[Step] = []
            for position in range(count):
                unrolled.append(Assign(step.var, _item_getter(step, position)))
                unrolled.extend(step.body)
            for k in members:
                self.env[group.rows[k]][_items_key(step)] = items[k]
            out.append((tuple(unrolled) + rest, self._subgroup(group, members)))
        return out

    def _subgroup(self, group: _Group, members: list[int]) -> _Group:
        if len(members) == len(group.rows):
            return group
        state = None if group.state is None else self.model.select(group.state, members)
        return _Group([group.rows[k] for k in members], state)

    def _do(self, step: Step, group: _Group) -> None:
        match step:
            case Emit(render):
                for row in group.rows:
                    text = render(self.env[row])
                    self.pending[row] += text
                    if self.messages[row]:
                        self.messages[row][-1]["content"] += text
            case Role(role, True):
                self._open_role(role, group.rows)
            case Role(role, False):
                self._close_role(role, group.rows)
            case Assign(name, value):
                for row in group.rows:
                    self.env[row][name] = value(self.env[row])
            case Weigh(log_weight):
                for row in group.rows:
                    self.weight[row] += log_weight(self.env[row])
            case Fill():
                self._fill(step, group)

    # --- chat ----------------------------------------------------------------------------------
    # Raw text (text or holes outside any role block) goes to the context verbatim, outside the
    # template: ``messages`` then holds a ``{"role": None}`` entry collecting it, which the template
    # never sees; each role's template text is found against the template's own rendering.
    def _open_role(self, role: str, rows: list[int]) -> None:
        for row in rows:
            real = _templated(self.messages[row])
            before = chat.close_message(self.model, real) if real else ""
            prefix = chat.open_message(self.model, real, role)
            self.pending[row] += chat.continuation(before, prefix, self.model, role)
            self.messages[row].append({"role": role, "content": ""})

    def _close_role(self, role: str, rows: list[int]) -> None:
        for row in rows:
            real = _templated(self.messages[row])
            before = chat.open_message(self.model, real[:-1], role) + real[-1]["content"]
            after = chat.close_message(self.model, real)
            self.pending[row] += chat.continuation(before, after, self.model, role)
            self.messages[row].append({"role": None, "content": ""})

    # --- tokens --------------------------------------------------------------------------------
    def _flush(self, group: _Group) -> None:
        """Tokenize each row's pending text and feed it to the model."""
        model = self.model
        pieces = [model.encode(self.pending[row]) if self.pending[row] else [] for row in group.rows]
        healed = [self.healed.pop(row, None) for row in group.rows]
        if group.state is None:
            pieces = [[*model.bos_ids, *p] for p in pieces]
        pieces = [h if h is not None else p for h, p in zip(healed, pieces)]
        if group.state is None:
            if not all(pieces):
                raise GenRuntimeError("the context is empty before the first hole",
                                      hint="start the program with a prompt literal")
            group.state = model.prefill_shared(pieces)
        elif any(pieces):
            width = max(len(p) for p in pieces)
            grid = torch.zeros((len(pieces), width), dtype=torch.long)
            for k, p in enumerate(pieces):
                grid[k, :len(p)] = torch.tensor(p, dtype=torch.long)
            lengths = [len(p) for p in pieces]
            ragged = None if min(lengths) == width else torch.tensor(lengths, device=model.device)
            group.state, _ = model.extend(group.state, grid.to(model.device), ragged)
        for row, p in zip(group.rows, pieces):
            self.tokens[row] += p
            self.emitted[row] += self.pending[row]
            self.pending[row] = ""

    # --- holes ---------------------------------------------------------------------------------
    # Compute each step's constraint mask on a background thread while the forward pass of the
    # step before runs (runtime/constraints/prefetch.py); results are identical either way.
    overlap_masks = True

    def _fill(self, hole: Fill, group: _Group) -> None:
        model, rows = self.model, group.rows
        checking = self.plan.rejection is not None  # propose from the model, check at the end
        fill = _HoleDecoding(hole, len(rows), model.vocab, masked=not checking)
        if hole.heal and not checking:
            self._heal(hole, group, fill)
        shape = torch.Size((len(rows), self.allowed.shape[-1]))
        overlap = self.overlap_masks and fill.constrained
        with MaskPrefetcher(lambda: fill.mask(self.allowed, shape), overlap=overlap) as prefetch:
            prefetch.start()  # the first mask overlaps the prompt's forward pass
            self._flush(group)
            self._decode_hole(hole, group, fill, prefetch)
        self._finish_hole(hole, fill, rows)

    def _decode_hole(self, hole: Fill, group: _Group, fill: _HoleDecoding, prefetch: MaskPrefetcher) -> None:
        """Draw the hole's tokens step by step; the next step's mask is started (``prefetch``) as
        soon as the drawn tokens are recorded, so it is computed during the forward pass."""
        model, rows = self.model, group.rows
        chain = hole_chain(self.plan, hole).compile(len(model.vocab), device=model.device, batch=len(rows))
        chain_state = chain.new_state(len(rows), [self.tokens[r] for r in rows]) if chain.stateful else None
        budget = hole.max_tokens if hole.max_tokens is not None else self._context_left(rows)
        if hole.constraint is not None or not fill.masked:
            # The step after the last token is the end-of-sequence: forced by the masks when
            # masking, a real draw that must come out EOS under rejection (the target counts it).
            budget += 1
        for position in range(budget):
            logits = model.logits(group.state)
            mask = prefetch.take()
            where = f"hole '{hole.name}' ({hole.where}), token {position}"
            logprobs = chain.logprobs(logits, chain_state, mask=mask, context=where)
            tokens = logprobs.argmax(dim=-1) if chain.is_greedy else gumbel_argmax(logprobs, self.generator)
            chosen = logprobs.gather(1, tokens[:, None]).squeeze(1).tolist()
            token_list = tokens.tolist()
            for k, row in enumerate(rows):
                if fill.active[k]:
                    self.logprob[row] += chosen[k]
            if chain_state is not None:
                chain_state.advance([t if on else -1 for t, on in zip(token_list, fill.active)])
            feed = fill.advance(token_list, over_budget=position == hole.max_tokens)
            if any(fill.active) and position + 1 < budget:
                prefetch.start()  # the next step's mask, while the model extends
            if any(feed):
                lengths = None if all(feed) else torch.tensor(feed, dtype=torch.long, device=tokens.device)
                group.state, _ = model.extend(group.state, tokens[:, None], lengths)
            if not any(fill.active):
                break
        else:
            self._out_of_budget(hole, fill, rows)

    def _heal(self, hole: Fill, group: _Group, fill: _HoleDecoding) -> None:
        """Token healing at the boundary: each row's pending text (which may end inside a token)
        and the hole's first bytes are drawn from the exact byte-level conditional, then committed
        as tokens; the hole goes on from a token boundary with those bytes as its start. Rows with
        the same context and text share one call (the usual case for draws)."""
        together: dict[tuple, list[int]] = {}
        for k, row in enumerate(group.rows):
            if self.pending[row]:
                together.setdefault((tuple(self.tokens[row]), self.pending[row]), []).append(k)
        for (_, text), members in together.items():
            # Healing runs before the hole's first token, so every row's constraint is in its
            # initial state and one byte filter serves the whole group.
            prefix, draws = self._heal_rows(group, members, text, fill.byte_filter(members[0]))
            for k, healed in zip(members, draws):
                row = group.rows[k]
                fill.start_with(k, healed.hole)
                self.weight[row] += healed.log_weight
                self.pending[row] = ""
                self.emitted[row] += text
                self.healed[row] = [*prefix, *healed.tokens]

    def _heal_rows(self, group: _Group, ks: list[int], text: str, allowed):
        """``len(ks)`` healed draws for rows sharing context and text; returns (tokens to commit
        before the healed ones, the draws)."""
        from genweave.runtime.bytes import heal

        model, row = self.model, group.rows[ks[0]]
        if group.state is not None:
            state = model.select(group.state, [ks[0]])
            return [], heal(model, text.encode("utf-8"), context=self.tokens[row], lm_state=state, n=len(ks),
                            generator=self.generator, allowed=allowed)
        context = list(model.bos_ids)
        try:
            return context, heal(model, text.encode("utf-8"), context=context, n=len(ks),
                                 generator=self.generator, allowed=allowed)
        except GenModelError:
            # A model without BOS cannot score bytes from an empty context: commit the prompt's
            # settled head as tokens and heal from its last two tokens on.
            head = model.encode(text)
            if len(head) < 3:
                raise
            return head[:-2], heal(model, model.decode(head[-2:]), context=head[:-2], n=len(ks),
                                   generator=self.generator, allowed=allowed)

    def _out_of_budget(self, hole: Fill, fill: _HoleDecoding, rows: list[int]) -> None:
        # A plain hole may end anywhere, so a full budget ends it. A hole that must end inside its
        # language (a stop string, a constraint) and has not is a dead end, never truncated. Under
        # rejection the text is checked when the hole ends instead.
        if (hole.constraint is None or not fill.masked) and hole.max_tokens is not None:
            return
        late = [k for k, on in enumerate(fill.active) if on]
        if late:
            reason = ("because the model's context window is full" if hole.max_tokens is None
                      else f"before its text was complete{fill.describe_language()}")
            raise BudgetExhaustedError(
                f"hole '{hole.name}' ({hole.where}) used all its token budget {reason} "
                f"(draw {rows[late[0]]}; text so far {fill.texts[late[0]][-60:]!r})",
                hint="raise `max N tokens`, or constrain the hole so it can end in time")

    def _finish_hole(self, hole: Fill, fill: _HoleDecoding, rows: list[int]) -> None:
        for k, row in enumerate(rows):
            text = fill.texts[k].decode("utf-8", errors="replace")
            value = text
            accepted = fill.accepts(k)
            if hole.stop is not None and value.endswith(hole.stop) and not hole.keep_stop:
                value = value[: len(value) - len(hole.stop)]
            if hole.check is not None and accepted:
                accepted = hole.check(self.env[row], value)
                if not accepted and fill.masked:
                    raise GenRuntimeError(f"hole '{hole.name}' ({hole.where}): its `where` predicate "
                                          "failed on a masked draw", hint="use rejection or smc inference")
            if not accepted:
                self.weight[row] = -math.inf
            elif hole.parse is not None:
                value = hole.parse(value)
            self.env[row][hole.name] = value
            self.tokens[row] += fill.generated[k]
            self.hole_tokens[row][hole.name] = tuple(fill.generated[k])
            self.emitted[row] += text
            if self.messages[row]:
                self.messages[row][-1]["content"] += text

    def _context_left(self, rows: list[int]) -> int:
        limit = self.model.context_window or 1_000_000
        return max(1, limit - max(len(self.tokens[r]) for r in rows))

    def reindex(self, rows: list[int], ancestors: Any) -> None:
        """Row ``rows[k]`` becomes a copy of row ``rows[ancestors[k]]`` for every per-row datum:
        every list attribute of the run with one entry per row (per-row data are lists of batch
        length; nothing else of the run is). Used by particle resampling and search."""
        sources = [rows[int(a)] for a in ancestors]
        if sources == list(rows):
            return
        per_row = [v for v in vars(self).values() if isinstance(v, list) and len(v) == self.batch]
        for data in per_row:
            taken = [data[s] for s in sources]
            for k, row in enumerate(rows):
                data[row] = taken[k] if sources[k] == row else copy.deepcopy(taken[k])

    def results(self) -> list[Result]:
        out = []
        for row in range(self.batch):
            text = self.emitted[row] + self.pending[row]
            holes = {name: self.env[row][name] for name in self.hole_tokens[row]}
            out.append(Result(self.value[row], text, holes, tuple(self.tokens[row]), self.logprob[row],
                              self.plan.guarantee, dict(self.hole_tokens[row]), weight=self.weight[row]))
        return out


def _templated(messages: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The messages the chat template renders (raw-text entries left out)."""
    return [m for m in messages if m["role"] is not None]


def _items_key(loop: Loop) -> str:
    return f"\x00items:{id(loop)}"


def _item_getter(loop: Loop, position: int) -> Callable[[Env], Any]:
    key = _items_key(loop)
    return lambda env: env[key][position]


class _HoleDecoding:
    """Per-row progress through one hole: tokens, bytes, constraint states, which rows are done."""

    def __init__(self, hole: Fill, batch: int, vocab, *, masked: bool = True):
        self.hole, self.vocab, self.masked = hole, vocab, masked
        self.constraint = hole.constraint
        self.generated: list[list[int]] = [[] for _ in range(batch)]
        self.texts = [b""] * batch
        self.active = [True] * batch
        self.rejected = [False] * batch  # a text that went past its budget (rejection only)
        self.states = [self.constraint.initial()] * batch if self.constraint is not None else None
        self.eos = frozenset(vocab.eos_ids)

    @property
    def constrained(self) -> bool:
        """Whether the masks depend on constraint states (else they are the text-token mask)."""
        return self.constraint is not None and self.masked

    def mask(self, allowed: torch.Tensor, shape: torch.Size) -> torch.Tensor:
        """Bool ``[B, V]``: text tokens, narrowed in each active row to what its constraint allows."""
        full = allowed.expand(shape)
        if not self.constrained:
            return full
        rows = [k for k, on in enumerate(self.active) if on]
        packed = self.constraint.mask([self.states[k] for k in rows]).to(allowed.device)
        narrowed = unpack_mask(packed, shape[-1]) & allowed
        empty = ~narrowed.any(dim=-1)
        if bool(empty.any()):
            self._dead_end(rows[int(empty.nonzero()[0])])
        full = full.clone()
        full[torch.tensor(rows, device=allowed.device)] = narrowed
        return full

    def advance(self, tokens: list[int], *, over_budget: bool = False) -> list[bool]:
        """Record each active row's token; returns which rows append it to the model's context.

        ``over_budget``: the hole already has ``max_tokens`` tokens, so only end-of-sequence may
        follow; any other token (possible only without masks) rejects the row's text.
        """
        return [self.active[k] and self.take(k, token, over_budget) for k, token in enumerate(tokens)]

    def take(self, k: int, token: int, over_budget: bool = False) -> bool:
        """Row ``k`` (active) draws ``token``: True if the token joins its text, False if it ends
        the hole (end-of-sequence, or any token past the budget, which rejects the text)."""
        if token in self.eos or over_budget:
            self.active[k] = False
            self.rejected[k] = token not in self.eos
            return False
        self.generated[k].append(token)
        self.texts[k] += self.vocab.token_bytes[token]
        if self.constraint is not None:
            self.states[k] = self.constraint.advance(self.states[k], token)
        return True

    def start_with(self, k: int, data: bytes) -> None:
        """Row ``k``'s text starts with ``data`` (bytes healing drew inside committed tokens)."""
        self.texts[k] += data
        if self.constraint is not None and data:
            self.states[k] = self.constraint.walk(self.states[k], data)

    def byte_filter(self, k: int) -> Callable[[bytes], torch.Tensor] | None:
        """For healing: which next bytes (256 = end of text) keep row ``k``'s text in its language."""
        if self.constraint is None or not self.masked:
            return None
        constraint, start = self.constraint, self.states[k]

        def allowed(data: bytes) -> torch.Tensor:
            state = constraint.walk(start, data)
            out = torch.zeros(257, dtype=torch.bool)
            for byte in range(256):
                out[byte] = not constraint.is_dead(constraint.walk(state, bytes([byte])))
            out[256] = not constraint.is_dead(state) and constraint.is_complete(state)
            return out

        return allowed

    def accepts(self, k: int) -> bool:
        """Whether row ``k``'s finished text is in the hole's language (always, when masked)."""
        if self.rejected[k]:
            return False
        if self.constraint is None or self.masked:
            return True
        state = self.states[k]
        return not self.constraint.is_dead(state) and self.constraint.is_complete(state)

    def describe_language(self) -> str:
        return f" in {self.constraint!r}" if self.constraint is not None else ""

    def _dead_end(self, k: int) -> None:
        hole = self.hole
        text = self.texts[k][-60:]
        if hole.max_tokens is not None and len(self.generated[k]) >= hole.max_tokens - 1:
            raise BudgetExhaustedError(
                f"hole '{hole.name}' ({hole.where}) cannot complete its text within {hole.max_tokens} "
                f"tokens (text so far {text!r})",
                hint="raise `max N tokens`, or loosen the constraint")
        raise NoValidTokenError(
            f"hole '{hole.name}' ({hole.where}): no token can continue the text {text!r}"
            f"{self.describe_language()}",
            hint="check that the constraint accepts some text in this context")
