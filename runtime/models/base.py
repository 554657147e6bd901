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
