"""The keys and values of a bot's fixed prompt head, computed once and reused.

Every prompt of a bot opens with the same text: its instructions, its canary and the
answering guidance. A causal model's first tokens never see what follows them, so
their keys and values are the same in every prompt that opens with the same tokens:
the prefill computes them once, keeps them here, and later prompts of that bot prefill
only the rest (the passages, the conversation and the question). On a CPU that reads
a 680-token prompt at 2.5 s, every token not prefilled again is time off the
visitor's wait for the first word, and off every reply's share of a busy worker.

Only the head the caller names is kept (`shared` tokens), not whole prompts: passages
and questions rarely repeat exactly, and a whole prompt's cache is large. Entries are
keyed by the head's token ids and the tuned adapter answering (an adapter changes the
keys and values), and evicted least recently used beyond `max_bytes`.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workers.generation.model import LoadedModel

# A head shorter than this is prefilled again: copying it saves less than it costs.
MIN_SHARED_TOKENS = 16
DEFAULT_MAX_BYTES = 256 * 1024 * 1024

Layers = list[tuple[Any, Any]]  # per layer: keys and values, [1, heads, tokens, width]


class PrefixCache:
    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[tuple[str | None, tuple[int, ...]], Layers] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, adapter: str | None, head: tuple[int, ...]) -> Layers | None:
        with self._lock:
            layers = self._entries.get((adapter, head))
            if layers is None:
                self.misses += 1
                return None
            self._entries.move_to_end((adapter, head))
            self.hits += 1
            return layers

    def put(self, adapter: str | None, head: tuple[int, ...], layers: Layers) -> None:
        size = sum(keys.nbytes + values.nbytes for keys, values in layers)
        if size > self.max_bytes:
            return
        with self._lock:
            if (adapter, head) in self._entries:
                return
            self._entries[(adapter, head)] = layers
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= sum(keys.nbytes + values.nbytes for keys, values in evicted)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)


def shared_length(prompt_ids: list[int], head_ids: list[int]) -> int:
    """How many of the prompt's first tokens are the head's: tokenized apart, the head's
    last token may have merged with the text after it in the prompt."""
    length = 0
    for prompt_id, head_id in zip(prompt_ids, head_ids, strict=False):
        if prompt_id != head_id:
            break
        length += 1
    return length


def prefill(loaded: LoadedModel, prompt_ids: list[int], *, shared: int = 0, adapter: str | None = None) -> Any:
    """The model's output over `prompt_ids` (logits of the last position, a growing KV
    cache), the first `shared` tokens' keys and values taken from the model's prefix
    cache when it holds them, and kept there when it does not. Call inside
    `torch.inference_mode()` and the adapter's `adapter_rows`."""
    from workers.generation.kv_cache import GrowingCache

    prefixes: PrefixCache | None = loaded.prefixes
    # At least one token is prefilled here: its logits choose the first answer token.
    usable = prefixes is not None and MIN_SHARED_TOKENS <= shared < len(prompt_ids)
    if not usable:
        return _forward(loaded, prompt_ids, GrowingCache())
    assert prefixes is not None
    head = tuple(prompt_ids[:shared])
    layers = prefixes.get(adapter, head)
    if layers is not None:
        # GrowingCache copies them into buffers of its own: the entry is never written.
        return _forward(loaded, prompt_ids[shared:], GrowingCache(layers))
    output = _forward(loaded, prompt_ids, GrowingCache())
    prefixes.put(
        adapter,
        head,
        [(layer.keys[:, :, :shared].clone(), layer.values[:, :, :shared].clone()) for layer in output.cache.layers],
    )
    return output


def _forward(loaded: LoadedModel, ids: list[int], cache: Any) -> Any:
    import torch

    tensor = torch.tensor([ids], device=loaded.device)
    return loaded.model(input_ids=tensor, cache=cache, use_cache=True, logits_to_keep=1)
