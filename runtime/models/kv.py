"""A KV cache that grows into spare capacity instead of concatenating at every step.

transformers' ``DynamicLayer`` appends new keys and values with ``torch.cat``, which copies the
whole cache of the layer at every decoding step: ``O(length)`` bytes moved per token and layer, the
same order as the attention itself. :class:`SlackLayer` keeps each layer's keys and values in a
buffer with room for more positions and exposes ``keys``/``values`` as views of its filled prefix;
an append writes only the new positions. When the room runs out the buffer is reallocated with a
quarter more (at least :data:`SLACK` positions), so appends cost amortized ``O(new tokens)``.

Everything else (``crop``, ``reorder_cache``, ``batch_select_indices``, code that rebinds
``layer.keys``) keeps working: a layer whose ``keys`` are no longer a prefix view of its buffer
adopts them into a fresh buffer on its next append. ``reorder_cache`` (row selection, used by
``HFModel.select``) gathers the rows straight into a new buffer with room, so the step after a
resampling does not copy the cache a second time. Values are bit-identical to ``DynamicLayer``'s.
"""

from __future__ import annotations

import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

SLACK = 32  # least number of spare positions a (re)allocated buffer gets


class SlackLayer(DynamicLayer):
    """A ``DynamicLayer`` whose ``keys``/``values`` ``[B, H, T, D]`` are views of buffers with spare
    positions (module docstring)."""

    _key_buffer: torch.Tensor | None = None
    _value_buffer: torch.Tensor | None = None

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs
               ) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        length = self.get_seq_length()
        grown = length + key_states.shape[-2]
        if not self._owns_prefix(key_states) or grown > self._key_buffer.shape[-2]:
            self._reallocate(key_states, value_states, length, grown)
        self._key_buffer[:, :, length:grown] = key_states
        self._value_buffer[:, :, length:grown] = value_states
        self.keys = self._key_buffer[:, :, :grown]
        self.values = self._value_buffer[:, :, :grown]
        return self.keys, self.values

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        """Keep rows ``beam_idx`` (in that order), gathered into a new buffer that keeps its room."""
        if self.get_seq_length() == 0:
            return
        index = beam_idx.to(self.keys.device)
        if self._owns_prefix(self.keys):
            length = self.keys.shape[-2]
            self._key_buffer = self._key_buffer.index_select(0, index)
            self._value_buffer = self._value_buffer.index_select(0, index)
            self.keys = self._key_buffer[:, :, :length]
            self.values = self._value_buffer[:, :, :length]
        else:
            super().reorder_cache(index)

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        self.reorder_cache(torch.as_tensor(indices, device=self.keys.device).flatten())

    def _owns_prefix(self, like: torch.Tensor) -> bool:
        """Whether ``keys``/``values`` are prefix views of this layer's buffers (rows and heads as
        ``like``'s)."""
        keys, buffer = self.keys, self._key_buffer
        if buffer is None or keys is None or keys.dim() != 4 or keys.shape[:2] != like.shape[:2]:
            return False
        values, value_buffer = self.values, self._value_buffer
        return (keys.data_ptr() == buffer.data_ptr() and keys.stride() == buffer.stride()
                and keys.shape[:2] == buffer.shape[:2] and values.data_ptr() == value_buffer.data_ptr()
                and values.stride() == value_buffer.stride())

    def _reallocate(self, key_states: torch.Tensor, value_states: torch.Tensor, length: int, grown: int) -> None:
        capacity = grown + max(SLACK, grown // 4)
        batch, heads = key_states.shape[:2]
        keys = key_states.new_empty((batch, heads, capacity, key_states.shape[-1]))
        values = value_states.new_empty((batch, heads, capacity, value_states.shape[-1]))
        if length:
            keys[:, :, :length] = self.keys
            values[:, :, :length] = self.values
        self._key_buffer, self._value_buffer = keys, values


def slack_cache(config) -> DynamicCache:
    """A ``DynamicCache`` for ``config`` whose plain full-attention layers are :class:`SlackLayer`
    (sliding-window and other special layers are kept as transformers builds them)."""
    cache = DynamicCache(config=config)
    if cache.layers:
        cache.layers = [_slack(layer) if type(layer) is DynamicLayer else layer for layer in cache.layers]
    elif cache.layer_class_to_replicate is DynamicLayer:
        cache.layer_class_to_replicate = SlackLayer
    return cache


def _slack(layer: DynamicLayer) -> SlackLayer:
    slack = SlackLayer.__new__(SlackLayer)
    slack.__dict__.update(vars(layer))
    return slack
