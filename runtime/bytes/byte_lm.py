"""``ByteLM``: a tokenized language model seen as a model over bytes, exactly.

A token LM gives ``P(t_1..t_k)``; each token ``t`` writes the bytes ``κ(t)``. For a byte string
``x`` the **covering** of ``x`` is the set of token strings ``t_1..t_k`` with ``κ(t_1..t_{k-1})`` a
strict prefix of ``x`` and ``x`` a prefix of ``κ(t_1..t_k)``; the probability that the text starts
with ``x`` is ``P(x) = Σ_{t in covering(x)} P(t)`` (Phan et al. 2024; Vieira et al. 2025).

The covering is kept as a beam of **hypotheses** ``(context, node, log P(context))``: ``context``
are whole tokens with ``κ(context)`` a prefix of ``x``, and ``node`` is the trie node of the
rest of ``x`` (node 0, the root, when ``κ(context) == x``: a token boundary). A hypothesis stands
for every token string that continues ``context`` with a token below ``node``; its weight is

    w = P(context) · below(node)     below(n) = mass of tokens strictly longer than path(n)
    w = P(context)                   at the root (its next token or EOS is still open)

and distinct hypotheses stand for disjoint sets of token strings, so ``P(x) = Σ w`` when nothing is
pruned, and the sum is a lower bound of ``P(x)`` when something is. Reading one more byte ``b``
moves each hypothesis to the child along ``b`` and turns every token that *ends* there into a new
root hypothesis ``(context + t, root, P(context) p(t | context))``, whose next-token distribution
comes from a batched ``extend`` of the LM (KV reuse: every hypothesis points at a row of a model
state). Node masses come from one sparse matmul for all new rows (:class:`ByteTrie`). Then

    P(x b)   = Σ_h P(context_h) · mass(child_b(node_h))           (at the root: the next token's mass)
    P(x EOS) = Σ_{h at the root} P(context_h) · p(EOS | context_h)

and ``next_byte_logprobs`` returns these 257 numbers normalized (256 bytes, then end of text).

**The token LM.** Special tokens other than EOS are never text: the LM's distribution is
restricted to text tokens and EOS and renormalized. ``mode="all"`` sums over every tokenization;
``mode="canonical"`` uses the LM restricted at each step to tokens that keep the token string
canonical (the tokenizer's own encoding of its bytes, see ``tokenization.py``) and renormalized,
so it is a proper distribution over strings written canonically.

**Prompts.** ``prefill(prompt)`` does not walk the whole prompt byte by byte: the *settled* head
(see :meth:`Tokenization.settled_length`) is tokenized canonically and prefilled in one LM call,
and only the short tail after it goes through the beam. In canonical mode this is exact; in "all"
mode it means "all tokenizations of the tail after the canonical tokens of the head". Pass
``settle=False`` for the full byte-level sum from the text start (exponential in the prompt for
"all" mode unless pruned).

**Cost.** A byte at which some kept token ends costs one batched ``extend`` over the beam's rows
(rows still inside a token get a padding slot). A forward pass of a small batch costs about as
much as reading the weights, so one call over all rows beats one call per group of rows.

**Pruning.** ``beam=K`` keeps the K heaviest hypotheses after each byte and ``prune=τ`` drops those
whose weight is below ``τ`` times the total; candidates are pruned before their LM call is made.
With ``keep_boundary=True`` the heaviest hypothesis at a token boundary is kept as well (one more
row when the K kept are all inside tokens), so a pruned beam never loses end of text or the bytes
that start a new token: a constraint that must end the text here keeps positive mass. (Without it,
the bound rises with K; with it, it need not.)

>>> from genweave.runtime.models import ToyLM
>>> byte_lm = ByteLM(ToyLM([b"a", b"b", b"ab"], seed=1))
>>> logprobs = byte_lm.next_byte_logprobs(b"a")
>>> logprobs.shape, round(float(logprobs.exp().sum()), 12)
(torch.Size([257]), 1.0)
>>> sorted(int(b) for b in torch.nonzero(logprobs > float("-inf")))    # "a", "b" or end of text
[97, 98, 256]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from genweave.dsl.errors import GenArgumentError, GenModelError, GenRuntimeError
from genweave.runtime.bytes.alphabet import EOT, byte_vocabulary
from genweave.runtime.bytes.tokenization import Tokenization, tokenization_of
from genweave.runtime.bytes.trie import ByteTrie
from genweave.runtime.models.base import LanguageModel

MODES = ("all", "canonical")
_NEG_INF = float("-inf")


@dataclass(frozen=True, eq=False)
class ByteState:
    """The beam after reading ``head + data`` (immutable; every state stays usable).

    * ``context``: tokens before the text; ``head_ids``: the canonical tokens of the settled
      ``head``; together they are the fixed token prefix of every hypothesis.
    * ``data``: bytes read byte by byte after the head.
    * per hypothesis ``h``: ``contexts[h]`` (tokens after the head), ``nodes[h]`` (trie node, 0 at
      a token boundary), ``log_prefix[h] = log P(contexts[h] | context + head_ids)``,
      ``logprobs[h]`` (``[V]``, the restricted next-token log-probs after it), ``masses[h]``
      (``[N]``, trie masses of ``logprobs[h].exp()``), and ``rows[h]``, the row of the model state
      ``lm_state`` that has read ``context + head_ids + contexts[h]`` (plus padding).

    Beams descended from one model state share it (each uses its own rows), so the beams of many
    draws advance together in one LM call (:meth:`ByteLM.advance_many`).
    """

    context: tuple[int, ...]
    head: bytes
    head_ids: tuple[int, ...]
    data: bytes
    contexts: tuple[tuple[int, ...], ...]
    nodes: tuple[int, ...]
    log_prefix: torch.Tensor
    logprobs: torch.Tensor
    masses: torch.Tensor
    lm_state: Any
    rows: tuple[int, ...]

    @property
    def size(self) -> int:
        """Number of hypotheses (0 once the bytes read have probability zero)."""
        return len(self.nodes)

    @property
    def text(self) -> bytes:
        """Every byte read: the settled head, then the rest."""
        return self.head + self.data

    def tokens(self, h: int) -> tuple[int, ...]:
        """Hypothesis ``h``'s tokens after ``context`` (head tokens included)."""
        return self.head_ids + self.contexts[h]


class ByteLM:
    """A language model over bytes from a token ``LanguageModel`` (see the module docstring).

    ``mode``: ``"all"`` (every tokenization) or ``"canonical"``; ``beam``: keep at most this many
    hypotheses (None: all); ``prune``: drop hypotheses below this share of the total weight;
    ``keep_boundary``: when pruning, also keep the heaviest token-boundary hypothesis;
    ``settle``: prefill the settled head of a prompt as tokens; ``context``: tokens before every
    text (default ``model.bos_ids``); ``tokenization``: how the tokenizer writes bytes (default
    :func:`tokenization_of`).
    """

    def __init__(self, model: LanguageModel, *, mode: str = "all", beam: int | None = None,
                 prune: float = 0.0, settle: bool = True, context: Sequence[int] | None = None,
                 tokenization: Tokenization | None = None, keep_boundary: bool = False):
        if mode not in MODES:
            raise GenArgumentError(f"unknown byte-level mode {mode!r}", hint="use 'all' or 'canonical'")
        if beam is not None and beam < 1:
            raise GenArgumentError(f"beam must be at least 1, not {beam}")
        if not 0.0 <= prune < 1.0:
            raise GenArgumentError(f"prune must lie in [0, 1), not {prune}")
        self.model, self.mode, self.beam, self.prune, self.settle = model, mode, beam, prune, settle
        self.keep_boundary = keep_boundary
        self.trie = ByteTrie.of(model.vocab)
        self.tokenization = tokenization if tokenization is not None else tokenization_of(model)
        self.context = tuple(model.bos_ids) if context is None else tuple(int(t) for t in context)
        self.device = model.device
        self.name = f"bytes({model.name})"
        self.vocab = byte_vocabulary()  # its outcomes: 256 bytes, then end of text (EOT)
        self._text_or_eos = (self.trie.text_mask | self.trie.eos_mask).to(self.device)
        self._eos = self.trie.eos_mask.to(self.device)
        self._eos_ids = torch.tensor(model.vocab.eos_ids, dtype=torch.long, device=self.device)

    def __repr__(self) -> str:
        return f"ByteLM({self.model.name!r}, mode={self.mode!r}, beam={self.beam}, prune={self.prune})"

    # -- building beams --------------------------------------------------------------------------

    def prefill(self, prompt: bytes = b"", *, context: Sequence[int] | None = None,
                lm_state: Any = None) -> ByteState:
        """The beam after ``prompt``: its settled head as tokens (one LM call), the rest byte by byte.

        ``context`` overrides the tokens before the text; ``lm_state`` is a model state whose row 0
        has read exactly ``context`` (reused instead of a prefill; left untouched).
        """
        context = self.context if context is None else tuple(int(t) for t in context)
        settled = self.tokenization.settled_length(prompt) if self.settle else 0
        head_ids = tuple(self.tokenization.encode(prompt[:settled])) if settled else ()
        if lm_state is None:
            state = self.model.prefill([list(context + head_ids)])
        else:
            state = self.model.select(lm_state, [0])
            if head_ids:
                state, _ = self.model.extend(state, torch.tensor([head_ids], device=self.device))
        logprobs = self._restrict(self.model.logits(state)[:1], [head_ids])
        start = ByteState(context, prompt[:settled], head_ids, b"", ((),), (0,),
                          torch.zeros(1, dtype=torch.float64, device=self.device), logprobs,
                          self.trie.masses(logprobs.exp()), state, (0,))
        return self.advance_bytes(start, prompt[settled:])

    def prefill_many(self, prompts: Sequence[bytes]) -> list[ByteState]:
        """The beams after each prompt: the settled heads in one batched LM call, then the tails
        byte by byte, the beams that still read a byte advancing together (one call per byte).
        Equal prompts share one beam."""
        prompts = [bytes(p) for p in prompts]
        distinct = list(dict.fromkeys(prompts))
        settled = [self.tokenization.settled_length(p) if self.settle else 0 for p in distinct]
        heads = [tuple(self.tokenization.encode(p[:n])) if n else () for p, n in zip(distinct, settled)]
        try:
            lm_state = self.model.prefill([list(self.context + head) for head in heads])
        except GenModelError as error:
            if all(self.context + head for head in heads):
                raise
            raise GenModelError(f"{self!r} needs a token to start from, but the text {distinct[0][:40]!r} has "
                                f"no settled head and the model no BOS ({error.message})",
                                hint="start the program with a longer prompt (a few words)") from None
        logprobs = self._restrict(self.model.logits(lm_state), list(heads))
        masses = self.trie.masses(logprobs.exp())
        states = [ByteState(self.context, p[:n], head, b"", ((),), (0,),
                            torch.zeros(1, dtype=torch.float64, device=self.device), logprobs[i:i + 1],
                            masses[i:i + 1], lm_state, (i,))
                  for i, (p, n, head) in enumerate(zip(distinct, settled, heads))]
        tails = [p[n:] for p, n in zip(distinct, settled)]
        for position in range(max((len(t) for t in tails), default=0)):
            moving = [i for i, tail in enumerate(tails) if len(tail) > position]
            for i, state in zip(moving, self.advance_many([(states[i], tails[i][position]) for i in moving])):
                states[i] = state
        found = dict(zip(distinct, states))
        return [found[p] for p in prompts]

    @property
    def exact(self) -> bool:
        """Whether no hypothesis is ever pruned (next-byte distributions are exact)."""
        return self.beam is None and self.prune == 0.0

    def advance_bytes(self, state: ByteState, data: bytes) -> ByteState:
        """The beam after reading ``data`` more bytes."""
        for byte in data:
            state = self.advance(state, byte)
        return state

    def advance(self, state: ByteState, byte: int) -> ByteState:
        """The beam after one more byte (one batched LM call when kept tokens end at it)."""
        return self.advance_many([(state, byte)])[0]

    def advance_many(self, steps: Sequence[tuple[ByteState, int]]) -> list[ByteState]:
        """Each ``(state, byte)`` advanced by its byte; beams sharing a model state share one LM call."""
        out: list[ByteState | None] = [None] * len(steps)
        groups: dict[int, list[int]] = {}
        for k, (state, _) in enumerate(steps):
            groups.setdefault(id(state.lm_state), []).append(k)
        for members in groups.values():
            plans = [_Step.of(self, *steps[k]) for k in members]
            for k, advanced in zip(members, self._apply(plans)):
                out[k] = advanced
        return out

    def select(self, state: ByteState, hypotheses: Sequence[int]) -> ByteState:
        """The beam restricted to some hypotheses (weights unchanged; no model call)."""
        hyps = list(hypotheses)
        return ByteState(state.context, state.head, state.head_ids, state.data,
                         tuple(state.contexts[h] for h in hyps), tuple(state.nodes[h] for h in hyps),
                         state.log_prefix[hyps], state.logprobs[hyps], state.masses[hyps], state.lm_state,
                         tuple(state.rows[h] for h in hyps))

    def model_state(self, state: ByteState, h: int) -> Any:
        """A fresh one-row model state that has read hypothesis ``h``'s context (no recomputation)."""
        return self.model.select(state.lm_state, [state.rows[h]])

    # -- reading beams ---------------------------------------------------------------------------

    def weights(self, state: ByteState) -> torch.Tensor:
        """``[H]`` float64 log weights of the hypotheses (their sum is ``P(data | head)``)."""
        below = self._below(state, list(range(state.size)), list(state.nodes))
        at_root = torch.tensor([node == 0 for node in state.nodes], dtype=torch.bool, device=self.device)
        return state.log_prefix + torch.where(at_root, 0.0, below.log())

    def next_byte_logweights(self, state: ByteState) -> torch.Tensor:
        """``[257]`` float64 ``log P(data + b | head)`` for each byte ``b`` and end of text (unnormalized;
        all ``-inf`` for an empty beam)."""
        rows, cols, index = [], [], []
        for h, node in enumerate(state.nodes):
            edge, kids = self.trie.children(node)
            rows.extend([h] * len(kids))
            cols.extend(kids.tolist())
            index.extend(edge.tolist())
        values = state.masses[rows, cols].log() + state.log_prefix[rows]
        roots = [h for h, node in enumerate(state.nodes) if node == 0]
        if roots and len(self._eos_ids):
            eos = torch.logsumexp(state.logprobs[roots][:, self._eos_ids], dim=1) + state.log_prefix[roots]
            values = torch.cat([values, eos])
            index.extend([EOT] * len(roots))
        return _scatter_logsumexp(torch.tensor(index, dtype=torch.long, device=self.device), values, EOT + 1)

    def next_byte_logprobs(self, prefix: bytes | ByteState) -> torch.Tensor:
        """``[257]`` float64 log-probs of the next byte (0..255) and of end of text (256)."""
        state = self.prefill(prefix) if isinstance(prefix, bytes | bytearray) else prefix
        logweights = self.next_byte_logweights(state)
        total = torch.logsumexp(logweights, dim=0)
        if not bool(torch.isfinite(total)):
            raise GenRuntimeError(f"the bytes {state.text[-40:]!r} have probability zero under {self!r}",
                                  hint="a byte-level model only continues prefixes it can produce")
        return logweights - total

    def prefix_logprob(self, prefix: bytes | ByteState) -> float:
        """``log P(the text starts with prefix | context)``: the beam's total plus the head's tokens.

        With pruning this is a lower bound. In canonical mode and with ``settle=False`` it is the
        exact byte-level prefix probability; in "all" mode with a settled head, the head is counted
        through its canonical tokens only.
        """
        state = self.prefill(prefix) if isinstance(prefix, bytes | bytearray) else prefix
        if state.size == 0:
            return _NEG_INF
        return float(torch.logsumexp(self.weights(state), dim=0)) + self.head_logprob(state)

    def head_logprob(self, state: ByteState) -> float:
        """``log P(head_ids | context)`` under the restricted token LM (0 without a head)."""
        if not state.head_ids:
            return 0.0
        lm = self.model.prefill([list(state.context)])
        first = self.model.logits(lm)[:1]
        _, out = self.model.extend(lm, torch.tensor([state.head_ids], device=self.device))
        rows = torch.cat([first, out[0, :-1]])
        afters = [state.head_ids[:i] for i in range(len(state.head_ids))]
        logprobs = self._restrict(rows, afters)
        ids = torch.tensor(state.head_ids, device=self.device)
        return float(logprobs[torch.arange(len(ids), device=self.device), ids].sum())

    def sample_bytes(self, prompt: bytes | ByteState = b"", *, n: int = 1, max_bytes: int = 64,
                     generator: torch.Generator | None = None):
        """``n`` byte strings drawn byte by byte after ``prompt`` (see :func:`sample_bytes`)."""
        from genweave.runtime.bytes.sample import sample_bytes

        return sample_bytes(self, prompt, n=n, max_bytes=max_bytes, generator=generator)

    # -- internals -------------------------------------------------------------------------------

    def _candidates(self, state: ByteState, byte: int) -> tuple[tuple, tuple]:
        """``(parents, nodes, log weights)`` of partial and ``(parents, tokens, log weights)`` of
        root candidates after ``byte``."""
        parents_p, nodes_p, parents_r, tokens_r = [], [], [], []
        for h, node in enumerate(state.nodes):
            child = self.trie.child(node, byte)
            if child < 0:
                continue
            if self.trie.child_ptr[child + 1] > self.trie.child_ptr[child]:
                parents_p.append(h)
                nodes_p.append(child)
            ends = self.trie.ends(child)
            parents_r.extend([h] * len(ends))
            tokens_r.extend(ends.tolist())
        weights_p = state.log_prefix[parents_p] + self._below(state, parents_p, nodes_p).log()
        tokens = torch.tensor(tokens_r, dtype=torch.long, device=self.device)
        weights_r = state.log_prefix[parents_r] + state.logprobs[parents_r, tokens]
        return (parents_p, nodes_p, weights_p), (parents_r, tokens_r, weights_r)

    def _below(self, state: ByteState, rows: list[int], nodes: list[int]) -> torch.Tensor:
        """``[len(rows)]`` mass strictly below ``nodes[i]`` under hypothesis ``rows[i]`` (sum of children)."""
        flat_rows, flat_cols, segments = [], [], []
        for i, (h, node) in enumerate(zip(rows, nodes)):
            _, kids = self.trie.children(node)
            flat_rows.extend([h] * len(kids))
            flat_cols.extend(kids.tolist())
            segments.extend([i] * len(kids))
        out = torch.zeros(len(rows), dtype=torch.float64, device=self.device)
        index = torch.tensor(segments, dtype=torch.long, device=self.device)
        return out.index_add_(0, index, state.masses[flat_rows, flat_cols])

    def _prune(self, weights: torch.Tensor) -> torch.Tensor:
        """Indices of the candidates kept: finite weight, above ``prune`` of the total, top ``beam``."""
        keep = torch.nonzero(weights > _NEG_INF)[:, 0]
        if self.prune > 0 and len(keep):
            share = weights[keep] - torch.logsumexp(weights[keep], dim=0)
            keep = keep[share >= math.log(self.prune)]
        if self.beam is not None and len(keep) > self.beam:
            keep = keep[torch.topk(weights[keep], self.beam).indices]
        return torch.sort(keep).values.cpu()

    def _apply(self, steps: list[_Step]) -> list[ByteState]:
        """The advanced beams of ``steps`` (all on one model state): one ragged ``extend`` in which the
        rows of new tokens read them and the rows still inside a token get padding."""
        source = steps[0].state.lm_state
        feed = [t for step in steps for t in [-1] * len(step.kept) + step.tokens]
        empty = steps[0].state.logprobs[:0], steps[0].state.masses[:0]
        if not any(t >= 0 for t in feed):  # nothing to read: the beams keep rows of the same state
            return [self._finish(step, source, step.rows, *empty) for step in steps]
        lm_state = self.model.select(source, [r for step in steps for r in step.rows])
        grid = torch.tensor(feed, dtype=torch.long, device=self.device)[:, None].clamp(min=0)
        lengths = None if min(feed) >= 0 else torch.tensor([int(t >= 0) for t in feed], device=self.device)
        lm_state, _ = self.model.extend(lm_state, grid, lengths)
        new = torch.tensor([i for i, t in enumerate(feed) if t >= 0], dtype=torch.long, device=self.device)
        afters = [step.state.head_ids + c for step in steps for c in step.new_contexts]
        logprobs = self._restrict(self.model.logits(lm_state)[new], afters)
        masses = self.trie.masses(logprobs.exp())
        out, row, first = [], 0, 0
        for step in steps:
            size, fresh = len(step.rows), slice(first, first + len(step.tokens))
            out.append(self._finish(step, lm_state, tuple(range(row, row + size)), logprobs[fresh], masses[fresh]))
            row, first = row + size, fresh.stop
        return out

    def _finish(self, step: _Step, lm_state: Any, rows: tuple[int, ...], logprobs: torch.Tensor,
                masses: torch.Tensor) -> ByteState:
        """The advanced beam of ``step``: its model rows, and restricted log-probs and masses of its new
        tokens' rows."""
        state, kept = step.state, list(step.kept)
        return ByteState(state.context, state.head, state.head_ids, state.data + bytes([step.byte]),
                         tuple([state.contexts[h] for h in kept] + step.new_contexts),
                         tuple([*step.kept_nodes] + [0] * len(step.tokens)),
                         torch.cat([state.log_prefix[kept], step.new_log_prefix]),
                         torch.cat([state.logprobs[kept], logprobs]), torch.cat([state.masses[kept], masses]),
                         lm_state if rows else None, rows)

    def _restrict(self, logits: torch.Tensor, afters: list[tuple[int, ...]]) -> torch.Tensor:
        """Rows of next-token log-probs restricted to text tokens and EOS (and, in canonical mode,
        to tokens keeping ``after``, the tokens since the text start, canonical), renormalized, float64."""
        logprobs = logits.to(torch.float64)
        allowed = self._text_or_eos.expand_as(logprobs)
        if self.mode == "canonical" and afters:
            masks = torch.stack([self.tokenization.canonical_mask(after) for after in afters]).to(self.device)
            allowed = allowed & (masks | self._eos)
        logprobs = logprobs.masked_fill(~allowed, _NEG_INF)
        total = torch.logsumexp(logprobs, dim=-1, keepdim=True)
        return torch.where(torch.isfinite(total), logprobs - total, _NEG_INF)


@dataclass(frozen=True, eq=False)
class _Step:
    """One beam's pruned candidates after ``byte``: hypotheses ``kept`` move to ``kept_nodes`` inside
    their token; hypothesis ``parents[i]`` reads the new token ``tokens[i]``."""

    state: ByteState
    byte: int
    kept: list[int]
    kept_nodes: list[int]
    parents: list[int]
    tokens: list[int]
    new_log_prefix: torch.Tensor

    @classmethod
    def of(cls, byte_lm: ByteLM, state: ByteState, byte: int) -> _Step:
        partial, root = byte_lm._candidates(state, byte)
        keep = byte_lm._prune(torch.cat([partial[2], root[2]])).tolist()
        count = len(partial[0])
        chosen = [i - count for i in keep if i >= count]
        if byte_lm.keep_boundary and not chosen and len(root[1]) and bool(torch.isfinite(root[2].max())):
            chosen = [int(root[2].argmax())]  # keep a token boundary (see "Pruning")
        return cls(state, byte, [partial[0][i] for i in keep if i < count],
                   [partial[1][i] for i in keep if i < count], [root[0][j] for j in chosen],
                   [int(root[1][j]) for j in chosen], root[2][chosen])

    @property
    def rows(self) -> tuple[int, ...]:
        """The model rows the new beam continues: kept hypotheses, then parents of new tokens."""
        return tuple(self.state.rows[h] for h in self.kept + self.parents)

    @property
    def new_contexts(self) -> list[tuple[int, ...]]:
        return [self.state.contexts[h] + (t,) for h, t in zip(self.parents, self.tokens)]


def _scatter_logsumexp(index: torch.Tensor, values: torch.Tensor, size: int) -> torch.Tensor:
    """``out[k] = log Σ_{index[i] == k} exp(values[i])`` (``-inf`` where empty)."""
    out = torch.full((size,), _NEG_INF, dtype=torch.float64, device=values.device)
    if values.numel() == 0:
        return out
    shift = values.max()
    if not bool(torch.isfinite(shift)):
        return out
    sums = torch.zeros(size, dtype=torch.float64, device=values.device)
    sums.index_add_(0, index, (values - shift).exp())
    return sums.log() + shift

