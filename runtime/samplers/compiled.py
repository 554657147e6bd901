"""A sampler chain compiled into one per-step function ``[B, V] logits -> [B, V] log-probs``, then
one draw.

Per call: one float32 working copy of the logits; the constraint mask (packed int32 bitmask or bool)
applied in the same pass, before the stages (default) or after them (``mask_last=True``); the
stages in order, sharing one ranking of the logits (``topk`` or a single ``sort``, only when a
rank-based rule needs it); then one Gumbel-max draw. Rows may carry different parameter values of
one chain shape (:func:`compile_batch`). One host sync per call checks for NaN logits and rows
with no valid token, raising :class:`NaNLogitsError` / :class:`NoValidTokenError` naming the row.

The distribution ``logprobs`` returns is exactly the one ``sample`` draws from (XTC included: its
two branches are mixed), so it is the one source of truth for tests, speculative verification
and SMC weights (``target_probs``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from genweave.dsl.errors import GenCheckError, GenRuntimeError, NaNLogitsError, NoValidTokenError
from genweave.runtime.samplers.base import (
    NEG_INF,
    ChainSpec,
    CompileContext,
    CompiledStage,
    Stage,
    Work,
    as_chain,
)
from genweave.runtime.samplers.chain import check_chain
from genweave.runtime.samplers.draw import gumbel_argmax, unpack_mask
from genweave.runtime.samplers.mirostat import CompiledMirostat
from genweave.runtime.samplers.penalties import PenaltyStage
from genweave.runtime.samplers.select import mask_packed, usable
from genweave.runtime.samplers.state import SamplerState, StateLayout
from genweave.runtime.samplers.transforms import CompiledGreedy, CompiledTemperature
from genweave.runtime.samplers.xtc import CompiledXTC

FLOAT_MAX = torch.finfo(torch.float32).max


def compile_batch(chains: Sequence[ChainSpec | Stage], vocab_size: int, *, device: str | torch.device = "cpu",
                  batch: int | None = None, vocab: object | None = None, mask_last: bool = False
                  ) -> CompiledChain:
    """Compile one chain per row (or one chain for every row) into a :class:`CompiledChain`.

    All chains must share a shape: the same stage types in the same order with the same structural
    parameters; numeric parameters may differ per row. ``vocab`` (a Vocabulary or token bytes) is
    needed by DRY's sequence breakers only.
    """
    chains = [as_chain(c) for c in chains]
    if not chains:
        raise GenCheckError("compile_batch needs at least one chain")
    batch = batch if batch is not None else len(chains)
    if len(chains) not in (1, batch):
        raise GenCheckError(f"compile_batch: {len(chains)} chains for a batch of {batch} rows")
    for chain in chains:
        check_chain(chain)
    if any(c.shape() != chains[0].shape() for c in chains):
        raise GenCheckError("rows of one batch must share a chain shape (the same samplers in the same order, "
                            "with the same structural parameters)",
                            hint=f"got {chains[0]} and {next(c for c in chains if c.shape() != chains[0].shape())}")
    if all(c == chains[0] for c in chains):
        chains = chains[:1]
    ctx = CompileContext(vocab_size, torch.device(device), vocab)
    stages = tuple(type(column[0]).compile_rows(column, ctx) for column in zip(*(c.stages for c in chains)))
    return CompiledChain(chains[0] if len(chains) == 1 else tuple(chains), stages, ctx, batch,
                         _layout(chains, stages, ctx), mask_last, len(chains))


def _layout(chains: Sequence[ChainSpec], stages: Sequence[CompiledStage], ctx: CompileContext) -> StateLayout:
    specs = chains[0].stages
    scopes = frozenset(s.scope for s in specs if isinstance(s, PenaltyStage) and s.window == 0)
    history = any((isinstance(s, PenaltyStage) and s.window > 0) or s.name == "dry" for s in specs)
    mirostat = next((s.params for s in stages if isinstance(s, CompiledMirostat)), None)
    return StateLayout(ctx.vocab_size, ctx.device, scopes, history, mirostat)


class CompiledChain:
    """One chain bound to a vocabulary size, a device and per-row parameters.

    * ``logprobs(logits, state, mask)``: ``[B, V]`` log-probabilities of the distribution the chain
      draws from (``-inf`` for excluded tokens);
    * ``sample(logits, generator, mask)``: ``[B]`` tokens, one draw per row (and, for stateful chains,
      ``state.advance(tokens)`` unless ``advance=False``);
    * ``target_probs``: ``exp(logprobs)``;
    * ``new_state(batch, prompts)``: a fresh :class:`SamplerState` (stateful chains);
      stateful calls without ``state`` use the chain's own, made for ``batch`` rows at compile time;
    * ``select(rows)``: the chain for rows ``rows`` (per-row parameters follow their rows).
    """

    __slots__ = ("spec", "stages", "ctx", "batch", "layout", "mask_last", "state", "is_greedy", "_rows")

    def __init__(self, spec: ChainSpec | tuple[ChainSpec, ...], stages: tuple[CompiledStage, ...],
                 ctx: CompileContext, batch: int, layout: StateLayout, mask_last: bool, rows: int):
        self.spec, self.stages, self.ctx, self.batch = spec, stages, ctx, batch
        self.layout, self.mask_last = layout, mask_last
        self.state = None if layout.empty else SamplerState(layout, batch)
        self._rows = rows  # rows of per-row parameters: 1 (shared by every row) or the batch size
        last = stages[-1] if stages else None
        greedy_last = isinstance(last, CompiledGreedy) or (isinstance(last, CompiledTemperature) and last.all_zero)
        self.is_greedy = greedy_last and not any(isinstance(s, CompiledXTC) for s in stages)

    @property
    def vocab_size(self) -> int:
        return self.ctx.vocab_size

    @property
    def stateful(self) -> bool:
        return not self.layout.empty

    def new_state(self, batch: int | None = None, prompts: Sequence[Sequence[int]] | None = None
                  ) -> SamplerState:
        """A fresh state for ``batch`` rows (default: the compiled batch), with optional prompts
        (counted by ``scope="all"`` penalties and scanned by DRY)."""
        return SamplerState(self.layout, self.batch if batch is None else batch, prompts)

    def select(self, rows: torch.Tensor | Sequence[int]) -> CompiledChain:
        """The chain for rows ``rows`` of this batch (its own state follows the rows too)."""
        index = torch.as_tensor(rows, dtype=torch.long).to(self.ctx.device)
        other = object.__new__(CompiledChain)
        for name in self.__slots__:
            setattr(other, name, getattr(self, name))
        other.stages = tuple(s.select(index) for s in self.stages)
        other.batch = index.shape[0]
        other._rows = 1 if self._rows == 1 else index.shape[0]
        other.state = None if self.state is None else self.state.select(index)
        return other

    # ---------------------------------------------------------------------------- per step
    def logprobs(self, logits: torch.Tensor, state: SamplerState | None = None,
                 mask: torch.Tensor | None = None, context: str = "") -> torch.Tensor:
        """``[B, V]`` log-probabilities of the chain's distribution (exactly what ``sample`` draws)."""
        state = self._state(state, logits)
        branches, bad = self._run(logits, state, mask)
        work = branches[0][1]
        logp = torch.log_softmax(work.z, dim=-1) if len(branches) == 1 else _mixture(branches)
        self._check(bad, work.z.amax(dim=-1), logits, mask, context)
        if state is not None and self.layout.mirostat is not None:
            state.last_logits = work.z
        return logp

    def target_probs(self, logits: torch.Tensor, state: SamplerState | None = None,
                     mask: torch.Tensor | None = None, context: str = "") -> torch.Tensor:
        """``[B, V]`` probabilities the chain samples from: ``exp(logprobs)``."""
        return self.logprobs(logits, state, mask, context).exp()

    def sample(self, logits: torch.Tensor, generator: torch.Generator | None = None,
               mask: torch.Tensor | None = None, state: SamplerState | None = None, *,
               advance: bool = True, context: str = "") -> torch.Tensor:
        """``[B]`` tokens, one exact draw per row from the chain's distribution."""
        state = self._state(state, logits)
        if self.is_greedy and not self.mask_last:
            branches, bad = self._run(logits, state, mask, self.stages[:-1])
            z = branches[0][1].z
            tokens = z.argmax(dim=-1)
        else:
            branches, bad = self._run(logits, state, mask)
            z = branches[0][1].z if len(branches) == 1 else _mixture(branches)
            tokens = gumbel_argmax(z, generator)  # z need not be normalised
        self._check(bad, z.gather(1, tokens.unsqueeze(1)).squeeze(1), logits, mask, context)
        if state is not None:
            if self.layout.mirostat is not None:
                state.last_logits = z
            if advance:
                state.advance(tokens)
        return tokens

    # ---------------------------------------------------------------------------- internals
    def _state(self, state: SamplerState | None, logits: torch.Tensor) -> SamplerState | None:
        if logits.dim() != 2 or logits.shape[1] != self.vocab_size:
            raise GenRuntimeError(f"sampler chain compiled for {self.vocab_size} tokens got logits of shape "
                                  f"{tuple(logits.shape)}; expected [batch, {self.vocab_size}]")
        if self._rows not in (1, logits.shape[0]):
            raise GenRuntimeError(f"sampler chain has per-row parameters for {self._rows} rows, got "
                                  f"{logits.shape[0]} rows of logits; use chain.select(rows) after reordering")
        if self.layout.empty:
            return None
        state = self.state if state is None else state
        if state.batch != logits.shape[0]:
            raise GenRuntimeError(f"sampler state holds {state.batch} rows, logits have {logits.shape[0]}")
        return state

    def _run(self, logits: torch.Tensor, state: SamplerState | None, mask: torch.Tensor | None,
             stages: Sequence[CompiledStage] | None = None) -> tuple[list[tuple[torch.Tensor, Work]], torch.Tensor]:
        """The branches ``(log weight [B, 1], work)`` after the stages, and the rows whose input
        holds NaN or +inf."""
        z = logits.to(dtype=torch.float32, copy=True)
        bad = ~(z.amax(dim=-1) <= FLOAT_MAX)  # amax propagates NaN; NaN and +inf compare False
        if mask is not None and not self.mask_last:
            _apply_mask(z, mask)
        zero = torch.zeros(z.shape[0], 1, device=z.device)
        branches = [(zero, Work(z))]
        for stage in self.stages if stages is None else stages:
            if isinstance(stage, CompiledXTC):
                branches = [pair for weight, work in branches for pair in _split(stage, weight, work)]
            else:
                for _, work in branches:
                    stage.apply(work, state)
        if mask is not None and self.mask_last:
            for _, work in branches:
                _apply_mask(work.z, mask)
                work.ranked = None
        return branches, bad

    def _check(self, bad: torch.Tensor, picked: torch.Tensor, logits: torch.Tensor,
               mask: torch.Tensor | None, context: str) -> None:
        """Raise for rows with NaN input, or whose picked (or best) value is -inf or NaN: one sync."""
        failed = bad | torch.isnan(picked) | (picked == NEG_INF)
        if not bool(failed.any()):
            return
        where = f" ({context})" if context else ""
        rows = failed.nonzero().flatten().tolist()
        nan_rows = (bad | torch.isnan(picked)).nonzero().flatten().tolist()
        if nan_rows:
            raise NaNLogitsError(f"NaN or +inf logits in row{_plural(nan_rows)}{where}",
                                 hint="the model or a logits processor produced them; check the model's "
                                      "dtype and any custom processors")
        finite = torch.isfinite(logits[rows]).any(-1)
        if not bool(finite.all()):
            cause = "every logit is -inf"
        elif mask is None:
            cause = "the sampler chain kept no token"
        elif self.mask_last:
            cause = "the sampler chain kept no token the constraint mask allows"
        else:
            cause = "the constraint mask allows no token with a finite logit"
        raise NoValidTokenError(f"no valid token in row{_plural(rows)}{where}: {cause}",
                                hint="check the constraint (it may be unsatisfiable here) or loosen the sampler chain")


def _apply_mask(z: torch.Tensor, mask: torch.Tensor) -> None:
    """Set the tokens the constraint forbids to ``-inf`` in place: straight from the packed words
    on CPU, else through the unpacked bool mask."""
    batch, vocab = z.shape
    if (mask.dtype != torch.bool and usable(z) and mask.dim() == 2 and mask.shape[0] in (1, batch)
            and 32 * mask.shape[1] >= vocab):
        mask_packed(z, mask)
    else:
        z.masked_fill_(~unpack_mask(mask, vocab), NEG_INF)


def _mixture(branches: Sequence[tuple[torch.Tensor, Work]]) -> torch.Tensor:
    """``log sum_k w_k softmax(z_k)`` over the branches (XTC's coin outcomes)."""
    return torch.logsumexp(torch.stack([w + torch.log_softmax(b.z, dim=-1) for w, b in branches]), dim=0)


def _split(stage: CompiledXTC, weight: torch.Tensor, work: Work) -> list[tuple[torch.Tensor, Work]]:
    keep, drop, excluded = stage.split(work)
    return [(weight + keep, work), (weight + drop, excluded)]


def _plural(rows: list[int]) -> str:
    return f" {rows[0]}" if len(rows) == 1 else "s " + ", ".join(str(r) for r in rows)
