"""``ToyLM``: a tiny, seeded language model over a handful of byte tokens, for exact tests.

The next-token distribution after a context is a fixed pseudo-random function of the seed and the
whole context (or of its last ``max_context`` ids): a hash of both seeds a generator that draws
``V`` standard-normal logits, scaled by ``sharpness``. Every distribution is therefore exactly
computable, which makes exact enumeration of a program's output distribution possible.

>>> lm = ToyLM([b"a", b"b"], seed=3)
>>> len(lm.vocab), lm.eos_ids
(3, (2,))
>>> state = lm.prefill([lm.encode("ab")])
>>> bool(lm.logits(state)[0].exp().sum().sub(1).abs() < 1e-12)
True
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from genweave.dsl.errors import GenModelError
from genweave.runtime.models.base import LanguageModel
from genweave.runtime.vocab import Vocabulary

EOS_BYTES = b"<eos>"
_MAX_CACHED = 1 << 16


@dataclass(frozen=True, eq=False)
class ToyState:
    """``contexts[b]``: the ids of row ``b`` so far; ``logprobs``: ``[B, V]`` float64 next-token log-probs."""

    contexts: tuple[tuple[int, ...], ...]
    logprobs: torch.Tensor
    tree: tuple[tuple[int, ...], ...] = ()  # per row: the nodes scored by ``extend_tree``, until ``keep_path``

    @property
    def batch_size(self) -> int:
        return len(self.contexts)


class ToyLM(LanguageModel):
    """A deterministic model over ``vocab`` (plus ``<eos>`` as the last id when ``eos``).

    ``sharpness`` scales the logits (0 gives uniform distributions, large values nearly greedy
    ones); ``max_context`` makes the distribution depend only on the last ``max_context`` ids (an
    n-gram model with finitely many states). States are never mutated, so every state stays usable.
    """

    def __init__(self, vocab: Sequence[bytes], seed: int = 0, *, eos: bool = True,
                 sharpness: float = 1.0, max_context: int | None = None):
        tokens = [bytes(token) for token in vocab]
        if not tokens or any(not token for token in tokens):
            raise GenModelError("a ToyLM needs a non-empty list of non-empty byte tokens")
        if max_context is not None and max_context < 0:
            raise GenModelError(f"max_context must be >= 0, not {max_context}")
        eos_ids = (len(tokens),) if eos else ()
        if eos:
            tokens.append(EOS_BYTES)
        self.name = f"toy(V={len(tokens)}, seed={seed})"
        self.vocab = Vocabulary.from_bytes(tokens, eos_ids=eos_ids, special=set(eos_ids), name=self.name)
        self.seed = seed
        self.sharpness = sharpness
        self.max_context = max_context
        self.device = torch.device("cpu")
        self._by_bytes = {token: i for i, token in reversed(list(enumerate(tokens)))}
        self._longest = max(len(token) for token in tokens)
        self._cache: dict[tuple[int, ...], torch.Tensor] = {}

    def __repr__(self) -> str:
        return f"ToyLM({self.name})"

    def next_token_logprobs(self, ids: Sequence[int]) -> torch.Tensor:
        """``[V]`` float64 log-probs of the token after ``ids`` (cached per context)."""
        context = tuple(ids)
        if self.max_context is not None:
            context = context[max(0, len(context) - self.max_context):]
        cached = self._cache.get(context)
        if cached is None:
            if len(self._cache) >= _MAX_CACHED:
                self._cache.clear()
            key = hashlib.blake2b(repr((self.seed, context)).encode(), digest_size=8).digest()
            generator = torch.Generator().manual_seed(int.from_bytes(key, "little") >> 1)
            logits = torch.randn(len(self.vocab), generator=generator, dtype=torch.float64)
            cached = self._cache[context] = torch.log_softmax(logits * self.sharpness, dim=0)
        return cached

    # -- the step protocol ---------------------------------------------------------------------

    def prefill(self, token_lists: Sequence[Sequence[int]]) -> ToyState:
        contexts = tuple(tuple(int(t) for t in tokens) for tokens in token_lists)
        if not contexts:
            raise GenModelError("prefill needs at least one row")
        self._check_ids(contexts)
        return ToyState(contexts, torch.stack([self.next_token_logprobs(c) for c in contexts]))

    def logits(self, state: ToyState) -> torch.Tensor:
        return state.logprobs

    def extend(self, state: ToyState, tokens: torch.Tensor,
               lengths: torch.Tensor | Sequence[int] | None = None) -> tuple[ToyState, torch.Tensor]:
        """See :class:`LanguageModel`; positions past ``lengths[b]`` repeat row ``b``'s last distribution."""
        rows = torch.as_tensor(tokens, dtype=torch.long).tolist()
        count = len(rows[0]) if rows else 0
        counts = [count] * len(rows) if lengths is None else torch.as_tensor(lengths).tolist()
        out = torch.empty((state.batch_size, count, len(self.vocab)), dtype=torch.float64)
        contexts, last = [], []
        for b, (context, row, n) in enumerate(zip(state.contexts, rows, counts)):
            context = context + tuple(row[:n])
            self._check_ids([context[len(context) - n:]])
            for t in range(count):
                out[b, t] = self.next_token_logprobs(context[:len(context) - n + t + 1] if t < n else context)
            contexts.append(context)
            last.append(self.next_token_logprobs(context))
        return ToyState(tuple(contexts), torch.stack(last)), out

    def select(self, state: ToyState, rows: torch.Tensor | Sequence[int]) -> ToyState:
        index = torch.as_tensor(rows, dtype=torch.long)
        return ToyState(tuple(state.contexts[i] for i in index.tolist()), state.logprobs.index_select(0, index))

    def crop(self, state: ToyState, n: int, logprobs: torch.Tensor) -> ToyState:
        """Drop the last ``n`` ids of every row; ``logprobs`` are the rows' log-probs after the rest."""
        if n == 0:
            return ToyState(state.contexts, logprobs)
        if any(len(context) < n for context in state.contexts):
            raise GenModelError(f"cannot crop {n} tokens from a row shorter than that")
        return ToyState(tuple(context[:-n] for context in state.contexts), logprobs)

    def rollback(self, state: ToyState, dropped: torch.Tensor | Sequence[int], logprobs: torch.Tensor) -> ToyState:
        """Drop the last ``dropped[b]`` ids of row ``b``; ``logprobs`` are the rows' log-probs after the rest."""
        counts = torch.as_tensor(dropped, dtype=torch.long).tolist()
        if any(n < 0 or n > len(c) for n, c in zip(counts, state.contexts)):
            raise GenModelError(f"cannot roll back {counts} tokens of rows of lengths "
                                f"{[len(c) for c in state.contexts]}")
        return ToyState(tuple(c[:len(c) - n] for c, n in zip(state.contexts, counts)), logprobs)

    def extend_tree(self, state: ToyState, tokens: torch.Tensor, parents: torch.Tensor,
                    lengths: torch.Tensor) -> tuple[ToyState, torch.Tensor]:
        """See :meth:`LanguageModel.extend_tree`: node ``i`` of row ``b`` is scored after the row's
        context and the path to it; padding nodes repeat the row's distribution."""
        rows, ups = torch.as_tensor(tokens).tolist(), torch.as_tensor(parents).tolist()
        counts = torch.as_tensor(lengths).tolist()
        width = len(rows[0]) if rows else 0
        out = torch.empty((state.batch_size, width, len(self.vocab)), dtype=torch.float64)
        for b, (context, row, up, n) in enumerate(zip(state.contexts, rows, ups, counts)):
            self._check_ids([row[:n]])
            for i in range(width):
                path, j = [], i
                while 0 <= j < n:
                    path.append(row[j])
                    j = up[j]
                out[b, i] = self.next_token_logprobs(context + tuple(reversed(path)))
        return ToyState(state.contexts, state.logprobs, tuple(tuple(r[:n]) for r, n in zip(rows, counts))), out

    def keep_path(self, state: ToyState, kept: Sequence[Sequence[int]], logprobs: torch.Tensor) -> ToyState:
        """Append nodes ``kept[b]`` of the scored tree to row ``b``."""
        return ToyState(tuple(c + tuple(nodes[i] for i in path) for c, nodes, path in zip(state.contexts, state.tree,
                                                                                           kept)), logprobs)

    def early_exit(self, layers: int) -> ToyLM:
        """A toy stand-in for the first ``layers`` layers: the same vocabulary and seed, seeing only the
        last ``layers`` ids of the context (so it agrees with this model on short contexts)."""
        if layers < 1:
            raise GenModelError(f"early exit needs at least one layer, not {layers}")
        vocab = [self.vocab.token_bytes[i] for i in range(len(self.vocab) - len(self.eos_ids))]
        shallow = ToyLM(vocab, self.seed, eos=bool(self.eos_ids), sharpness=self.sharpness,
                        max_context=layers if self.max_context is None else min(layers, self.max_context))
        shallow.name = f"{self.name}[:{layers}]"
        return shallow

    # -- text ----------------------------------------------------------------------------------

    def encode(self, text: str) -> list[int]:
        """Greedy longest match of the UTF-8 bytes of ``text`` over the token bytes (``<eos>`` included)."""
        data, ids, i = text.encode("utf-8"), [], 0
        while i < len(data):
            for size in range(min(self._longest, len(data) - i), 0, -1):
                token = self._by_bytes.get(data[i:i + size])
                if token is not None:
                    ids.append(token)
                    i += size
                    break
            else:
                raise GenModelError(f"the text {text!r} cannot be written with the tokens of {self.name} "
                                    f"(no token matches at byte {i}: {data[i:i + 8]!r})")
        return ids

    def render_chat(self, messages: Sequence[dict[str, str]]) -> str:
        """``<|role|>\\n`` + content + ``\\n`` per message."""
        return "".join(f"<|{message['role']}|>\n{message['content']}\n" for message in messages)

    def _check_ids(self, contexts: Sequence[Sequence[int]]) -> None:
        size = len(self.vocab)
        for context in contexts:
            for token in context:
                if not 0 <= token < size:
                    raise GenModelError(f"token id {token} is outside the vocabulary of {self.name} (0..{size - 1})")
