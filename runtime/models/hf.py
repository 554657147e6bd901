"""``HFModel``: any Hugging Face causal LM behind the batched, KV-cached LanguageModel protocol.

Rows of a batch may have different lengths. Prompts are left-padded; tokens appended by a ragged
``extend`` leave padding *inside* the cache. Every padding slot has attention-mask 0 and every real
token gets its own position id (its index among the row's real tokens), so each row computes exactly
what it would compute alone (up to float rounding).

While no row has ever held padding the state carries no mask and no position ids, and the model runs
its fastest causal kernel (``attention_mask=None``), as ``model.generate`` does.

>>> from genweave.runtime.models.registry import load_model   # doctest: +SKIP
>>> model = load_model("smollm2-135m")                          # doctest: +SKIP
>>> state = model.prefill([model.encode("The capital of France is")])   # doctest: +SKIP
>>> token = model.logits(state).argmax(-1)                      # doctest: +SKIP
>>> state, logprobs = model.extend(state, token[:, None])       # doctest: +SKIP
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import DynamicCache

from genweave.dsl.errors import GenModelError
from genweave.runtime.models.base import LanguageModel
from genweave.runtime.models.head import with_packed_head, with_plain_head
from genweave.runtime.models.kv import slack_cache
from genweave.runtime.vocab import Vocabulary


@dataclass(frozen=True, eq=False)
class HFState:
    """A batch of ``B`` rows sharing one KV cache of ``length`` slots per row.

    * ``cache``: the transformers ``DynamicCache`` (updated in place by ``extend`` and ``crop``).
    * ``logprobs``: ``[B, V]`` float32 next-token log-probs of each row.
    * ``length``: cache slots per row (real tokens plus padding).
    * ``mask``: ``[B, length]`` long, 1 for a real token and 0 for padding; ``None`` when no row has
      any padding (then every row holds ``length`` real tokens).
    * ``positions``: ``[B]`` long, the position id of each row's next token (its count of real
      tokens); ``None`` exactly when ``mask`` is.
    * ``tree``: after :meth:`HFModel.extend_tree`, the number of trailing slots holding the scored
      tree (padding until :meth:`HFModel.keep_path` keeps one path), else 0.
    """

    cache: DynamicCache
    logprobs: torch.Tensor
    length: int
    mask: torch.Tensor | None = None
    positions: torch.Tensor | None = None
    tree: int = 0  # slots of a scored tree at the end, waiting for ``keep_path``

    @property
    def batch_size(self) -> int:
        return self.logprobs.shape[0]


class HFModel(LanguageModel):
    """A transformers causal LM (``AutoModelForCausalLM``) with its tokenizer.

    ``V`` (the width of :meth:`logits`) is the model's logits width; the vocabulary is padded to it
    with empty special tokens (ids the tokenizer never produces) and holds the tokenizer's and the
    generation config's EOS ids. ``bos_ids`` are the ids the tokenizer puts before a text by
    default (Gemma's ``<bos>``; none for SmolLM2): prompts should start with them, ``encode`` never
    adds them. The model is put in eval mode and used as is (device and dtype); on the CPU in
    float32 its output head runs from a oneDNN-prepacked copy of its weight (``pack_head``; see
    :mod:`~genweave.runtime.models.head`: the caller's model object is not modified).
    Models whose caches hold recurrent state (Mamba-like layers) are not supported.
    """

    def __init__(self, model: torch.nn.Module, tokenizer, name: str, *, pack_head: bool = True):
        self.model = (with_packed_head(model) if pack_head else with_plain_head(model)).eval()
        self.tokenizer = tokenizer
        self.name = name
        self.device = next(model.parameters()).device
        self.width = _logits_width(model)
        self.vocab = Vocabulary.from_hf(tokenizer, extra_eos=_generation_eos_ids(model), size=self.width, name=name)
        self.bos_ids = _default_prefix(tokenizer)
        self.context_window = getattr(model.config, "max_position_embeddings", None)
        self.pad_id = 0
        params = inspect.signature(model.forward).parameters
        self._cache_keyword = "cache" if "cache" in params else "past_key_values"
        self._keeps_logits = "logits_to_keep" in params

    def __repr__(self) -> str:
        return f"HFModel({self.name!r}, V={self.width}, device={self.device})"

    # -- the step protocol ---------------------------------------------------------------------

    def prefill(self, token_lists: Sequence[Sequence[int]]) -> HFState:
        """One row per token list (left-padded when lengths differ); see the module docstring."""
        lengths = [len(tokens) for tokens in token_lists]
        self._check_prompts(token_lists, lengths)
        width = max(lengths)
        ids = [[self.pad_id] * (width - n) + list(tokens) for tokens, n in zip(token_lists, lengths)]
        ids = torch.tensor(ids, dtype=torch.long).to(self.device)
        cache = slack_cache(self.model.config)
        if min(lengths) == width:
            logits = self._forward(ids, cache, None, None, last_only=True)
            return HFState(cache, _log_softmax(logits[:, -1]), width)
        real = torch.arange(width)[None, :] >= torch.tensor([width - n for n in lengths])[:, None]
        mask = real.long().to(self.device)
        position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
        logits = self._forward(ids, cache, mask, position_ids, last_only=True)
        positions = torch.tensor(lengths, dtype=torch.long).to(self.device)
        return HFState(cache, _log_softmax(logits[:, -1]), width, mask, positions)

    def logits(self, state: HFState) -> torch.Tensor:
        """``[B, V]`` float32 next-token log-probs of each row."""
        return state.logprobs

    def extend(self, state: HFState, tokens: torch.Tensor,
               lengths: torch.Tensor | Sequence[int] | None = None) -> tuple[HFState, torch.Tensor]:
        """Append ``tokens[b, :lengths[b]]`` to row ``b``; returns ``(state, logprobs[B, T, V])``.

        The cache grows by ``T`` slots in every row; slots past ``lengths[b]`` become padding. The
        input state must not be used afterwards (its cache is updated in place).
        """
        tokens = torch.as_tensor(tokens, dtype=torch.long, device=self.device)
        count = tokens.shape[1]
        if count == 0:
            return state, state.logprobs.new_empty((state.batch_size, 0, self.width))
        if lengths is not None:
            lengths = torch.as_tensor(lengths, dtype=torch.long, device=self.device)
            if bool((lengths == count).all()):  # one sync, only on the ragged path
                lengths = None
        if lengths is None and state.mask is None:
            logits = self._forward(tokens, state.cache, None, None, last_only=False)
            logprobs = _log_softmax(logits)
            return HFState(state.cache, logprobs[:, -1], state.length + count), logprobs
        return self._extend_padded(state, tokens, lengths)

    def _extend_padded(self, state: HFState, tokens: torch.Tensor,
                       lengths: torch.Tensor | None) -> tuple[HFState, torch.Tensor]:
        batch, count = tokens.shape
        mask, positions = _explicit_padding(state, self.device)
        steps = torch.arange(count, device=self.device)
        if lengths is None:
            appended = torch.ones((batch, count), dtype=torch.long, device=self.device)
            lengths = torch.full((batch,), count, dtype=torch.long, device=self.device)
        else:
            appended = (steps[None, :] < lengths[:, None]).long()
        mask = torch.cat([mask, appended], dim=1)
        logits = self._forward(tokens, state.cache, mask, positions[:, None] + steps[None, :], last_only=False)
        logprobs = _log_softmax(logits)
        rows = torch.arange(batch, device=self.device)
        last = logprobs[rows, (lengths - 1).clamp(min=0)]
        kept = torch.where((lengths > 0)[:, None], last, state.logprobs)
        return HFState(state.cache, kept, state.length + count, mask, positions + lengths), logprobs

    def select(self, state: HFState, rows: torch.Tensor | Sequence[int]) -> HFState:
        """Row ``i`` of the result continues row ``rows[i]`` (reorder, drop, duplicate).

        The input state stays valid: the selected cache is a copy.
        """
        index = torch.as_tensor(rows, dtype=torch.long, device=self.device)
        cache = _copy_cache(state.cache)
        for layer in cache.layers:
            layer.reorder_cache(index)
        return HFState(
            cache, state.logprobs.index_select(0, index), state.length,
            None if state.mask is None else state.mask.index_select(0, index),
            None if state.positions is None else state.positions.index_select(0, index),
        )

    def crop(self, state: HFState, n: int, logprobs: torch.Tensor) -> HFState:
        """Drop the last ``n`` cache slots of every row (rollback of rejected draft tokens).

        ``logprobs`` ``[B, V]`` are each row's next-token log-probs after the kept context, usually
        ``out[:, T - n - 1]`` of the ``extend`` over ``T`` tokens that appended the dropped slots (or
        the state's log-probs from before that ``extend``). Padding slots among the dropped ones are
        accounted for. The input state must not be used afterwards. Sliding-window layers can only
        be cropped while the context is shorter than their window.
        """
        if not 0 <= n <= state.length:
            raise GenModelError(f"cannot crop {n} of {state.length} cache positions")
        if n == 0:
            return HFState(state.cache, logprobs, state.length, state.mask, state.positions)
        try:
            state.cache.crop(-n)
        except (RuntimeError, ValueError) as error:
            raise GenModelError(f"model {self.name!r} cannot roll back its cache: {error}") from None
        if state.mask is None:
            return HFState(state.cache, logprobs, state.length - n)
        dropped = state.mask[:, state.length - n:].sum(dim=1)
        return HFState(state.cache, logprobs, state.length - n, state.mask[:, :state.length - n],
                       state.positions - dropped)

    def rollback(self, state: HFState, dropped: torch.Tensor | Sequence[int], logprobs: torch.Tensor) -> HFState:
        """Drop the last ``dropped[b]`` real tokens of row ``b`` (speculative rejection, per row).

        Equal counts are a :meth:`crop`. Otherwise the dropped slots become padding (mask 0, and the
        row's next position id goes back), and trailing slots that are padding in every row are cut
        from the cache. The input state must not be used afterwards.
        """
        counts = torch.as_tensor(dropped, dtype=torch.long, device=self.device)
        if counts.numel() == 0 or bool((counts == counts[0]).all()):
            return self.crop(state, int(counts[0]) if counts.numel() else 0, logprobs)
        mask, positions = _explicit_padding(state, self.device)
        after = mask.flip(1).cumsum(1).flip(1)  # real tokens at or after each slot, per row
        mask = mask * ((after > counts[:, None]) | (mask == 0)).long()
        real = (mask.sum(0) > 0).nonzero()
        keep = int(real[-1]) + 1 if real.numel() else 0
        if keep < state.length:
            state.cache.crop(keep - state.length)
        return HFState(state.cache, logprobs, keep, mask[:, :keep].contiguous(), positions - counts)

    def extend_tree(self, state: HFState, tokens: torch.Tensor, parents: torch.Tensor,
                    lengths: torch.Tensor) -> tuple[HFState, torch.Tensor]:
        """Score a tree of tokens per row in one forward; returns ``(state, logprobs[B, M, V])``.

        ``tokens[b, :lengths[b]]`` are row ``b``'s nodes, each after its ancestors: ``parents[b, i]``
        is the index of node ``i``'s parent (``-1``: the row's context; parents come first).
        ``logprobs[b, i]`` is the next-token distribution after the context and node ``i``'s path.
        The returned state holds the nodes as padding until :meth:`keep_path` keeps one path; call it
        next (the input state must not be used afterwards).
        """
        tokens = torch.as_tensor(tokens, dtype=torch.long, device=self.device)
        parents = torch.as_tensor(parents, dtype=torch.long, device=self.device)
        lengths = torch.as_tensor(lengths, dtype=torch.long, device=self.device)
        batch, count = tokens.shape
        mask, positions = _explicit_padding(state, self.device)
        ancestry, depth = _ancestry(parents)
        real = torch.arange(count, device=self.device)[None, :] < lengths[:, None]
        sees = torch.cat([mask.bool()[:, None, :].expand(batch, count, -1), ancestry & real[:, None, :]], dim=2)
        bias = torch.zeros(sees.shape, dtype=self.model.dtype, device=self.device)
        bias = bias.masked_fill(~sees, torch.finfo(bias.dtype).min)[:, None]
        logits = self._forward(tokens, state.cache, bias, positions[:, None] + depth, last_only=False)
        grown = torch.cat([mask, torch.zeros((batch, count), dtype=torch.long, device=self.device)], dim=1)
        grown_state = HFState(state.cache, state.logprobs, state.length + count, grown, positions, tree=count)
        return grown_state, _log_softmax(logits)

    def keep_path(self, state: HFState, kept: Sequence[Sequence[int]], logprobs: torch.Tensor) -> HFState:
        """After :meth:`extend_tree` over ``M`` nodes: keep nodes ``kept[b]`` (a root-to-node path, in
        order) of row ``b`` as its appended tokens; the other nodes stay padding. ``logprobs`` are the
        rows' next-token log-probs after their kept path."""
        mask = state.mask.clone()
        start = state.length - state.tree
        slots = [(b, start + i) for b, path in enumerate(kept) for i in path]
        if slots:
            rows, columns = zip(*slots)
            mask[list(rows), list(columns)] = 1
        added = torch.tensor([len(k) for k in kept], dtype=torch.long, device=self.device)
        return HFState(state.cache, logprobs, state.length, mask, state.positions + added)

    def early_exit(self, layers: int) -> HFModel:
        """This model cut after its first ``layers`` decoder layers (then the final norm and the output
        head), sharing the weights; its own KV cache holds ``layers`` layers. For models whose decoder
        runs ``layers[: config.num_hidden_layers]`` (Llama, Qwen, Gemma, ...)."""
        config = self.model.config.get_text_config()
        total = getattr(config, "num_hidden_layers", None)
        if total is None or not 1 <= layers <= total:
            raise GenModelError(f"model {self.name!r} has {total} layers; cannot exit after {layers}",
                                hint=f"choose `layers` in 1..{total}")
        head = copy.copy(self.model)
        head._modules = dict(head._modules)
        body_name = head.base_model_prefix
        body = copy.copy(getattr(head, body_name))
        head._modules[body_name] = body
        shallow = copy.deepcopy(self.model.config)
        shallow.get_text_config().num_hidden_layers = layers
        for module in (head, body):
            object.__setattr__(module, "config", shallow)
        return HFModel(head, self.tokenizer, f"{self.name}[:{layers}]")

    # -- text ----------------------------------------------------------------------------------

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``: no special tokens added, special-token text recognised."""
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def render_chat(self, messages: Sequence[dict[str, str]]) -> str:
        """The tokenizer's chat template over ``messages`` (no generation prompt added)."""
        if not getattr(self.tokenizer, "chat_template", None):
            raise GenModelError(f"model {self.name!r} has no chat template",
                                hint="drop `chat` from the model declaration, or use a chat model")
        try:
            return self.tokenizer.apply_chat_template(list(messages), tokenize=False)
        except Exception as error:  # jinja errors, template `raise_exception`, bad roles
            raise GenModelError(f"the chat template of model {self.name!r} failed: {error}",
                                hint="check the roles and order of the chat messages") from None

    # -- internals -----------------------------------------------------------------------------

    def _check_prompts(self, token_lists: Sequence[Sequence[int]], lengths: list[int]) -> None:
        if not lengths or min(lengths) == 0:
            raise GenModelError("prefill needs at least one row and one token in every row",
                                hint="start each row with a prompt or the model's BOS token")
        bad = [t for tokens in token_lists for t in tokens if not 0 <= t < self.width]
        if bad:
            raise GenModelError(f"token id {bad[0]} is outside the vocabulary of model {self.name!r} "
                                f"(0..{self.width - 1})")

    def _forward(self, ids: torch.Tensor, cache: DynamicCache, mask: torch.Tensor | None,
                 position_ids: torch.Tensor | None, *, last_only: bool) -> torch.Tensor:
        arguments = {self._cache_keyword: cache}
        if last_only and self._keeps_logits:
            arguments["logits_to_keep"] = 1
        with torch.no_grad():
            output = self.model(input_ids=ids, attention_mask=mask, position_ids=position_ids,
                                use_cache=True, **arguments)
        return output.logits


def _ancestry(parents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(ancestor [B, M, M], depth [B, M])`` of trees given by parent indices (``-1``: the context):
    ``ancestor[b, i, j]`` when node ``j`` is node ``i`` or one of its ancestors; ``depth`` counts
    the nodes on the path (0 for a child of the context)."""
    batch, count = parents.shape
    index = torch.arange(count, device=parents.device)
    ancestor = index[None, :, None] == index[None, None, :]
    ancestor = ancestor.expand(batch, count, count).clone()
    current = parents.clone()
    depth = torch.zeros_like(parents)
    for _ in range(count):
        alive = current >= 0
        if not bool(alive.any()):
            break
        ancestor |= alive[..., None] & (index[None, None, :] == current.clamp(min=0)[..., None])
        depth += alive.long()
        current = torch.where(alive, parents.gather(1, current.clamp(min=0)), current)
    return ancestor, depth


def _log_softmax(logits: torch.Tensor) -> torch.Tensor:
    return torch.log_softmax(logits.float(), dim=-1)


def _explicit_padding(state: HFState, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The state's mask and next positions, materialised when it has none (no padding yet)."""
    if state.mask is not None:
        return state.mask, state.positions
    mask = torch.ones((state.batch_size, state.length), dtype=torch.long, device=device)
    positions = torch.full((state.batch_size,), state.length, dtype=torch.long, device=device)
    return mask, positions


def _copy_cache(cache: DynamicCache) -> DynamicCache:
    """A cache whose layers can be rebound without touching ``cache`` (tensors are shared)."""
    copied = copy.copy(cache)
    copied.layers = [_copy_layer(layer) for layer in cache.layers]
    return copied


def _copy_layer(layer):
    copied = copy.copy(layer)
    for key, value in vars(layer).items():
        if isinstance(value, dict | list):  # per-state dicts of linear-attention layers
            setattr(copied, key, copy.copy(value))
    return copied


def _logits_width(model: torch.nn.Module) -> int:
    head = model.get_output_embeddings()
    if head is not None and getattr(head, "weight", None) is not None:
        return int(head.weight.shape[0])
    return int(model.config.get_text_config().vocab_size)


def _generation_eos_ids(model: torch.nn.Module) -> tuple[int, ...]:
    config = getattr(model, "generation_config", None)
    eos = getattr(config, "eos_token_id", None)
    if eos is None:
        eos = getattr(model.config, "eos_token_id", None)
    if eos is None:
        return ()
    return tuple(int(e) for e in (eos if isinstance(eos, list | tuple) else [eos]))


def _default_prefix(tokenizer) -> tuple[int, ...]:
    """The ids the tokenizer puts before a text when asked to add special tokens (e.g. BOS)."""
    plain = tokenizer("a", add_special_tokens=False)["input_ids"]
    full = tokenizer("a", add_special_tokens=True)["input_ids"]
    if len(full) > len(plain) and full[len(full) - len(plain):] == plain:
        return tuple(full[:len(full) - len(plain)])
    return ()
