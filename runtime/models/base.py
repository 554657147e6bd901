"""The LanguageModel interface: batched, stateful, KV-cached next-token distributions.

A *state* holds one row per sequence of a batch. The contract every backend honours:

* ``prefill(token_lists)`` starts one row per list (lists may differ in length) and returns a state
  whose ``logits`` are each row's next-token log-probs after its whole list.
* ``logits(state) -> Tensor[B, V]``: next-token **log-probs** (log-softmax of the model's logits).
* ``extend(state, tokens[B, T], lengths=None) -> (state, Tensor[B, T, V])``: appends
  ``tokens[b, :lengths[b]]`` to row ``b`` (all ``T`` when ``lengths`` is None; the rest of the row
  is padding and is ignored). ``out[b, t]`` are the log-probs of the next token after
  ``tokens[b, :t+1]`` for ``t < lengths[b]`` (undefined beyond). The returned state's ``logits``
  are each row's distribution after its last appended token; a row with ``lengths[b] == 0`` keeps
  its distribution. The input state must not be used afterwards (caches are updated in place).
* ``select(state, rows) -> state``: a state whose row ``i`` continues row ``rows[i]`` of the given
  one (reorder, drop or duplicate rows; no recomputation). The given state stays usable.
* ``crop(state, n, logprobs) -> state``: drops the last ``n`` appended positions of every row
  (rollback of rejected draft tokens); ``logprobs[B, V]`` are the rows' next-token log-probs after
  the kept context (the caller has them from the ``extend`` that appended the dropped positions).
  The input state must not be used afterwards. Optional: backends without it raise
  :class:`GenModelError`.
* ``rollback(state, dropped, logprobs) -> state``: like ``crop`` with a count per row: drops the
  last ``dropped[b]`` appended tokens of row ``b`` (speculative decoding, where rows accept drafts
  of different lengths). The default handles equal counts with ``crop``.
* ``extend_tree(state, tokens[B, M], parents[B, M], lengths) -> (state, logprobs[B, M, V])``: one
  forward over a tree of tokens per row (tree attention): node ``i`` sees the row's context and its
  ancestors (``parents[b, i]``, ``-1`` for the context, parents before children); ``logprobs[b, i]``
  is the distribution after the path to node ``i``. ``keep_path(state, kept, logprobs)`` must follow:
  it appends nodes ``kept[b]`` (a path from the context, in order) to row ``b``. Optional.
* ``early_exit(layers) -> LanguageModel``: the same model cut after its first ``layers`` layers
  (final norm and output head kept), a draft for self-speculative decoding over the same
  vocabulary. Optional: backends without it raise :class:`GenModelError`.

Log-probs are float32 for ``HFModel`` and float64 for ``ToyLM``; both are on ``model.device``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import torch

from genweave.dsl.errors import GenModelError
from genweave.runtime.vocab import Vocabulary


class LanguageModel(ABC):
    """A causal language model over a token vocabulary (see the module docstring)."""

    name: str
    vocab: Vocabulary
    device: torch.device
    #: Ids put before a text's first token (a BOS token), or ().
    bos_ids: tuple[int, ...] = ()
    #: The longest context the model accepts, or None when unbounded.
    context_window: int | None = None

    @abstractmethod
    def prefill(self, token_lists: Sequence[Sequence[int]]) -> Any: ...

    def prefill_shared(self, token_lists: Sequence[Sequence[int]]) -> Any:
        """:meth:`prefill`, computing identical rows once (the usual case: every draw or particle
        starts from the same prompt) and duplicating them with :meth:`select`."""
        if len(token_lists) > 1 and all(t == token_lists[0] for t in token_lists):
            return self.select(self.prefill([token_lists[0]]), [0] * len(token_lists))
        return self.prefill(token_lists)

    @abstractmethod
    def logits(self, state: Any) -> torch.Tensor: ...

    @abstractmethod
    def extend(self, state: Any, tokens: torch.Tensor,
               lengths: torch.Tensor | None = None) -> tuple[Any, torch.Tensor]: ...

    @abstractmethod
    def select(self, state: Any, rows: torch.Tensor | Sequence[int]) -> Any: ...

    def crop(self, state: Any, n: int, logprobs: torch.Tensor) -> Any:
        """Drop the last ``n`` appended positions of every row (see the module docstring)."""
        raise GenModelError(f"model {self.name!r} cannot roll back its state",
                            hint="use a strategy without draft rollback (no speculative decoding)")

    def rollback(self, state: Any, dropped: torch.Tensor | Sequence[int], logprobs: torch.Tensor) -> Any:
        """Drop the last ``dropped[b]`` appended tokens of row ``b`` (see the module docstring)."""
        counts = torch.as_tensor(dropped, dtype=torch.long).tolist()
        if len(set(counts)) > 1:
            raise GenModelError(f"model {self.name!r} cannot roll back rows by different amounts",
                                hint="use a strategy without draft rollback (no speculative decoding)")
        return self.crop(state, counts[0] if counts else 0, logprobs)

    def extend_tree(self, state: Any, tokens: torch.Tensor, parents: torch.Tensor,
                    lengths: torch.Tensor) -> tuple[Any, torch.Tensor]:
        """Score a tree of tokens per row in one forward (see the module docstring)."""
        raise GenModelError(f"model {self.name!r} cannot score token trees",
                            hint="use a speculative method with chain drafts (draft, ngram, self)")

    def keep_path(self, state: Any, kept: Sequence[Sequence[int]], logprobs: torch.Tensor) -> Any:
        """Keep one path of the tree scored by ``extend_tree`` (see the module docstring)."""
        raise GenModelError(f"model {self.name!r} cannot score token trees")

    def early_exit(self, layers: int) -> LanguageModel:
        """This model cut after ``layers`` layers (see the module docstring)."""
        raise GenModelError(f"model {self.name!r} cannot draft with its own first layers",
                            hint="use `speculate draft MODEL` or `speculate ngram` instead of `speculate self`")

    @property
    def eos_ids(self) -> tuple[int, ...]:
        """Ids that end a text (``vocab.eos_ids``)."""
        return self.vocab.eos_ids

    @abstractmethod
    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (no special tokens added; special-token text is recognised)."""

    def decode(self, ids: Sequence[int]) -> bytes:
        """Exact bytes of a token id sequence (special tokens decode to their text)."""
        return self.vocab.decode(ids)

    def render_chat(self, messages: Sequence[dict[str, str]]) -> str:
        """The model's chat template applied to ``messages`` (no generation prompt added).

        Models without a chat template raise :class:`GenModelError`; ``runtime/chat.py`` builds
        open role blocks on top of this.
        """
        raise GenModelError(f"model {self.name!r} has no chat template",
                            hint="drop `chat` from the model declaration, or use a chat model")
