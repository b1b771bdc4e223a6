"""A KV cache that grows in place: a decode step writes one column into spare room.

transformers' `DynamicCache` appends with `torch.cat`, which copies every layer's whole
cache at every step; at 8 sequences of 700 tokens that copy was 40% of a CPU decode
step. Here each layer keeps a buffer with room for `GROWTH` more tokens and hands the
model a view of the filled part; the buffer is reallocated (doubling) only when full.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers.cache_utils import Cache, DynamicCache, DynamicLayer

GROWTH = 256


# transformers' CacheLayerMixin leaves __init_subclass__ and __init__ unannotated.
class GrowingLayer(DynamicLayer):  # type: ignore[no-untyped-call]
    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._key_buffer: torch.Tensor | None = None
        self._value_buffer: torch.Tensor | None = None
        self._length = 0

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        self.device = key_states.device
        self.is_initialized = True

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        start, end = self._length, self._length + key_states.shape[-2]
        self._reserve(key_states, value_states, end)
        assert self._key_buffer is not None and self._value_buffer is not None
        self._key_buffer[:, :, start:end] = key_states
        self._value_buffer[:, :, start:end] = value_states
        self._expose(end)
        assert self.keys is not None and self.values is not None  # set by _expose
        return self.keys, self.values

    def assign(self, keys: torch.Tensor, values: torch.Tensor) -> None:
        """Replace the whole cache (rows joined, left or re-padded)."""
        self.is_initialized, self.device = True, keys.device
        self._key_buffer = self._value_buffer = None
        self._length = 0
        self.update(keys, values)

    def _reserve(self, key_states: torch.Tensor, value_states: torch.Tensor, needed: int) -> None:
        buffer = self._key_buffer
        if buffer is not None and buffer.shape[0] == key_states.shape[0] and buffer.shape[2] >= needed:
            return
        capacity = max(needed + GROWTH, 2 * buffer.shape[2] if buffer is not None else 0)
        batch, heads, _, width = key_states.shape
        keys = key_states.new_empty((batch, heads, capacity, width))
        values = value_states.new_empty((batch, heads, capacity, value_states.shape[-1]))
        if buffer is not None and self._value_buffer is not None and self._length:
            keys[:, :, : self._length] = buffer[:, :, : self._length]
            values[:, :, : self._length] = self._value_buffer[:, :, : self._length]
        self._key_buffer, self._value_buffer = keys, values

    def _expose(self, length: int) -> None:
        assert self._key_buffer is not None and self._value_buffer is not None
        self._length = length
        self.keys = self._key_buffer[:, :, :length]
        self.values = self._value_buffer[:, :, :length]

    def get_seq_length(self) -> int:
        return self._length

    def reset(self) -> None:
        self._key_buffer = self._value_buffer = None
        self._length = 0
        super().reset()

    def crop(self, tokens_to_remove: int) -> None:
        if tokens_to_remove < 0 and self._length:
            self._expose(max(0, self._length + tokens_to_remove))

    def batch_repeat_interleave(self, repeats: int) -> None:
        if self._length:
            assert self.keys is not None and self.values is not None  # exposed whenever _length is
            self.assign(self.keys.repeat_interleave(repeats, dim=0), self.values.repeat_interleave(repeats, dim=0))

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        if self._length:
            assert self.keys is not None and self.values is not None  # exposed whenever _length is
            self.assign(self.keys[indices, ...], self.values[indices, ...])


class GrowingCache(DynamicCache):
    """A `DynamicCache` whose layers are `GrowingLayer`s; every layer attends to the whole
    sequence (GPT-Neo's local layers are masked, not cropped, as with `DynamicCache()`)."""

    def __init__(self, layers: list[tuple[torch.Tensor, torch.Tensor]] | None = None) -> None:
        Cache.__init__(self, layer_class_to_replicate=GrowingLayer)
        for keys, values in layers or []:
            layer = GrowingLayer()
            layer.assign(keys, values)
            self.layers.append(layer)
