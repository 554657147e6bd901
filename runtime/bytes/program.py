"""Running a program on a byte-level model (``model m = "spec" bytes``, ``ensemble(a, b, ...)``).

The executor of :mod:`genweave.runtime.execute` runs the control flow unchanged (branches, loops,
``let``, ``factor``, returns); only holes differ. Each hole is filled **byte by byte** from the
byte-level model's exact next-byte distribution (257 outcomes: 256 bytes, then end of text):

1. **Conditioning.** The context of a row, every byte before the hole (prompt, earlier holes,
   literals between them), is read by ``prefill_many``: its settled head as canonical tokens (one
   batched LM call for all rows), the trailing ambiguous segment at byte level through the covering
   beam. A literal that ends inside a token (``.../guid``) is therefore continued as the model would
   continue those *bytes*, and a hole's end followed by a literal is read again as plain text
   (tokens may span the boundary). This is what ``boundary bytes`` names; a byte-level model always
   does it, and ``heal`` adds nothing to it.
2. **Decoding.** At each step every unfinished row gets ``next_byte_logprobs`` of its beam (rows
   in the same beam share one computation), the hole's constraint as a byte mask (the constraint is
   compiled against the byte vocabulary of :mod:`~genweave.runtime.bytes.alphabet`, so regexes,
   grammars, JSON Schema and budgets work unchanged), then the program's sampler chain over the 257
   outcomes and one draw. End of text ends the hole; other bytes advance the beams (one batched LM
   call per step for the beams that share a model state).
3. **Length.** ``max N tokens`` counts the model's tokens, which are bytes here: at most ``N`` bytes,
   a hard constraint (after ``N`` bytes only end of text is allowed; a constrained hole must be
   complete by then, else :class:`~genweave.dsl.errors.BudgetExhaustedError`). Without ``max`` a hole
   may run until end of text, bounded by the underlying model's context window.

Without a sampler chain the step distribution is the masked next-byte distribution renormalized in
float64, so ``Result.logprob`` is the exact log-probability of the hole's bytes (and ends) under the
local masked law; with a chain it is the chain's (float32) distribution over the 257 outcomes.
``Result.tokens`` and ``Result.hole_tokens`` hold bytes (0..255). A pruned beam (the default view of
a model spec, :func:`byte_view`) makes next-byte distributions approximate, which the result's
``guarantee`` says.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from genweave.dsl.errors import BudgetExhaustedError, GenRuntimeError, NoValidTokenError
from genweave.runtime.bytes.alphabet import EOT
from genweave.runtime.bytes.byte_lm import ByteLM
from genweave.runtime.bytes.ensemble import ByteEnsemble
from genweave.runtime.execute import Env, Fill, Plan, _Group, _Run, hole_chain
from genweave.runtime.models.base import LanguageModel
from genweave.runtime.result import Result, Results
from genweave.runtime.samplers import gumbel_argmax, unpack_mask

# The byte view of a model spec in a `.gen` file: all tokenizations, a beam of 8 hypotheses and
# a relative prune threshold of 1e-4 (bench/bytes.py: within ~1e-6 total variation of the exact
# next-byte distribution on SmolLM2, where the exact beam doubles with every byte).
DEFAULT_BEAM = 8
DEFAULT_PRUNE = 1e-4
_NEG_INF = float("-inf")

ByteModel = ByteLM | ByteEnsemble


def byte_view(model: LanguageModel | ByteModel) -> ByteModel:
    """``model`` as a byte-level model: byte models as they are, token models through a
    ``ByteLM(model, beam=DEFAULT_BEAM, prune=DEFAULT_PRUNE, keep_boundary=True)`` (pass a ``ByteLM``
    for another view, e.g. ``ByteLM(model)`` for exact next-byte distributions)."""
    if isinstance(model, ByteLM | ByteEnsemble):
        return model
    return ByteLM(model, beam=DEFAULT_BEAM, prune=DEFAULT_PRUNE, keep_boundary=True)


def run_bytes(plan: Plan, model: LanguageModel | ByteModel, args: Env, draws: int = 1,
              seed: int | None = None) -> Results:
    """Run ``plan`` (bound against :func:`~genweave.runtime.bytes.alphabet.byte_vocabulary`) on a
    byte-level model, ``draws`` draws as the rows of one batch; the draws use a CPU generator
    seeded with ``seed`` (next-byte distributions are small CPU tensors)."""
    byte_model = byte_view(model)
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    unsupported = [name for name, used in (
        ("smc/awrs", plan.particles is not None), ("rejection", plan.rejection is not None),
        ("search and selection", getattr(plan, "search", None) is not None),
        ("enumerate", bool(getattr(plan, "enumerate", ()))),
        ("speculate", getattr(plan, "speculate", None) is not None)) if used]
    if unsupported:
        raise GenRuntimeError(f"{unsupported[0]} inference does not run on byte-level models yet",
                              hint="use `sample` or `greedy`, or declare the model without `bytes`")
    if plan.chat:
        raise GenRuntimeError("a byte-level model has no chat template for role blocks",
                              hint="write the conversation as text, or declare the model without `bytes`")
    run = _ByteRun(plan, byte_model, args, draws, generator)
    run.execute(plan.steps, _Group(list(range(draws)), None))
    return Results(tuple(run.results()))


class _ByteRun(_Run):
    """The executor with holes filled byte by byte (module docstring); ``self.model`` is the byte
    model, whose ``vocab`` is the byte vocabulary."""

    def _open_role(self, role: str, rows: list[int]) -> None:
        raise GenRuntimeError(f"`{role}:` needs a chat template, which a byte-level model does not have")

    _close_role = _open_role

    def _fill(self, hole: Fill, group: _Group) -> None:
        rows = group.rows
        beams = self._condition(rows)
        fill = _ByteHole(hole, len(rows))
        # With `max N tokens` (bytes here) the last step allows only end of text; without it the
        # hole may run to the context window, where a row still writing is an error.
        limit = hole.max_tokens if hole.max_tokens is not None else self._bytes_left(rows)
        chain = chain_state = None
        spec = hole_chain(self.plan, hole)
        if spec.stages:
            chain = spec.compile(EOT + 1, device=self.model.device, batch=len(rows),
                                            vocab=self.model.vocab)
            chain_state = chain.new_state(len(rows), [self.tokens[r] for r in rows]) if chain.stateful else None
        greedy = chain is not None and chain.is_greedy
        for position in range(limit + 1):
            where = f"hole '{hole.name}' ({hole.where}), byte {position}"
            logprobs = self._step_logprobs(beams, fill, position, chain, chain_state, where)
            drawn = (logprobs.argmax(dim=-1) if greedy else gumbel_argmax(logprobs, self.generator)).tolist()
            chosen = logprobs.gather(1, torch.tensor(drawn, device=logprobs.device)[:, None])[:, 0].tolist()
            moves: list[int] = []
            for k, row in enumerate(rows):
                if fill.active[k]:
                    self.logprob[row] += 0.0 if greedy else chosen[k]
                    if fill.take(k, drawn[k]):
                        moves.append(k)
            if chain_state is not None:
                moved = set(moves)
                chain_state.advance([drawn[k] if k in moved else -1 for k in range(len(rows))])
            beams = _advance(self.model, beams, moves, drawn)
            if not any(fill.active):
                break
        else:
            self._out_of_bytes(hole, fill, rows)
        self._finish_hole(hole, fill, rows)

    def _condition(self, rows: list[int]) -> list[Any]:
        """Each row's beam after its whole text so far (rows with equal texts share one)."""
        contexts = [(self.emitted[r] + self.pending[r]).encode("utf-8") for r in rows]
        for row, context in zip(rows, contexts):
            self.emitted[row] += self.pending[row]
            self.pending[row] = ""
            self.tokens[row] = list(context)
        return self.model.prefill_many(contexts)

    def _step_logprobs(self, beams: list[Any], fill: _ByteHole, position: int, chain: Any,
                       chain_state: Any, where: str) -> torch.Tensor:
        """``[B, 257]`` log-probs of this step's draw for every row (finished rows get a dummy row)."""
        logits = _next_byte_rows(self.model, beams, fill.active)
        mask = fill.mask(position)
        if chain is not None:
            return chain.logprobs(logits, chain_state, mask=mask, context=where)
        masked = logits.masked_fill(~mask, _NEG_INF)
        total = torch.logsumexp(masked, dim=-1, keepdim=True)
        if not bool(torch.isfinite(total).all()):
            k = int((~torch.isfinite(total[:, 0])).nonzero()[0])
            raise NoValidTokenError(f"{where}: the model gives no allowed byte any probability after "
                                    f"{fill.texts[k][-60:]!r}{fill.describe()}",
                                    hint="check that the constraint accepts text the model can write here")
        return masked - total

    def _bytes_left(self, rows: list[int]) -> int:
        """Bytes a hole may take without ``max``: the context window, counted in bytes (a token has
        at least one byte, so this never overflows it)."""
        members = self.model.members if isinstance(self.model, ByteEnsemble) else (self.model,)
        windows = [m.model.context_window for m in members if m.model.context_window]
        limit = min(windows) if windows else 1_000_000
        return max(1, limit - max(len(self.tokens[r]) for r in rows))

    def _out_of_bytes(self, hole: Fill, fill: _ByteHole, rows: list[int]) -> None:
        late = [k for k, on in enumerate(fill.active) if on]
        if late:
            raise BudgetExhaustedError(
                f"hole '{hole.name}' ({hole.where}) filled the model's context window before its text ended "
                f"(draw {rows[late[0]]}; text so far {fill.texts[late[0]][-60:]!r})",
                hint="add `max N tokens` (bytes, on a byte-level model) or constrain the hole")

    def results(self) -> list[Result]:
        exact = getattr(self.model, "exact", False)
        out = super().results()
        if exact:
            return out
        note = f"{self.plan.guarantee}, approximate next-byte distributions (pruned beam)"
        return [Result(r.value, r.text, r.holes, r.tokens, r.logprob, note, r.hole_tokens, weight=r.weight)
                for r in out]


class _ByteHole:
    """Per-row progress through one hole at byte level (the fields ``_Run._finish_hole`` reads:
    ``texts``, ``generated``, ``masked``, ``accepts``)."""

    masked = True

    def __init__(self, hole: Fill, batch: int):
        self.hole, self.constraint = hole, hole.constraint
        self.texts = [b""] * batch
        self.generated: list[list[int]] = [[] for _ in range(batch)]
        self.active = [True] * batch
        self.states = [self.constraint.initial()] * batch if self.constraint is not None else None

    def mask(self, position: int) -> torch.Tensor:
        """Bool ``[B, 257]``: the constraint's byte mask per active row; only end of text once
        ``max N tokens`` bytes are written (finished rows: anything, they are ignored)."""
        out = torch.ones((len(self.active), EOT + 1), dtype=torch.bool)
        rows = [k for k, on in enumerate(self.active) if on]
        if self.constraint is not None and rows:
            packed = self.constraint.mask([self.states[k] for k in rows])
            out[rows] = unpack_mask(packed, EOT + 1).cpu()
        if self.hole.max_tokens is not None and position >= self.hole.max_tokens:
            out[:, :EOT] = False
        for k in rows:
            if not bool(out[k].any()):
                self._dead_end(k)
        return out

    def take(self, k: int, byte: int) -> bool:
        """Record row ``k``'s draw; True when it is a byte (the row goes on), False at end of text."""
        if byte == EOT:
            self.active[k] = False
            return False
        self.generated[k].append(byte)
        self.texts[k] += bytes([byte])
        if self.constraint is not None:
            self.states[k] = self.constraint.advance(self.states[k], byte)
        return True

    def accepts(self, k: int) -> bool:
        return True  # masked: a hole ends only where its language allows

    def describe(self) -> str:
        return f" in {self.constraint!r}" if self.constraint is not None else ""

    def _dead_end(self, k: int) -> None:
        hole, text = self.hole, self.texts[k][-60:]
        if hole.max_tokens is not None and len(self.generated[k]) >= hole.max_tokens - 1:
            raise BudgetExhaustedError(f"hole '{hole.name}' ({hole.where}) cannot complete its text within "
                                       f"{hole.max_tokens} bytes (text so far {text!r})",
                                       hint="raise `max N tokens` (bytes, on a byte-level model), or loosen "
                                            "the constraint")
        raise NoValidTokenError(f"hole '{hole.name}' ({hole.where}): no byte can continue the text {text!r}"
                                f"{self.describe()}", hint="check that the constraint accepts some text here")


def _next_byte_rows(model: ByteModel, beams: list[Any], active: Sequence[bool]) -> torch.Tensor:
    """``[B, 257]`` float64 next-byte log-probs of the active rows' beams, computed once per distinct
    beam (uniform rows for finished ones)."""
    out = torch.full((len(beams), EOT + 1), -math.log(EOT + 1), dtype=torch.float64)
    done: dict[int, torch.Tensor] = {}
    for k, beam in enumerate(beams):
        if active[k]:
            if id(beam) not in done:
                done[id(beam)] = model.next_byte_logprobs(beam).cpu()
            out[k] = done[id(beam)]
    return out


def _advance(model: ByteModel, beams: list[Any], moves: list[int], drawn: list[int]) -> list[Any]:
    """The beams after the drawn bytes of rows ``moves`` (equal (beam, byte) pairs advance once)."""
    pairs = list(dict.fromkeys((id(beams[k]), drawn[k]) for k in moves))
    if not pairs:
        return beams
    source = {id(beams[k]): beams[k] for k in moves}
    advanced = dict(zip(pairs, model.advance_many([(source[b], byte) for b, byte in pairs])))
    out = list(beams)
    for k in moves:
        out[k] = advanced[(id(beams[k]), drawn[k])]
    return out
