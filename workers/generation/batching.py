"""Continuous batching: concurrent replies in one process share the model's decode steps.

One scheduler thread owns the model's forward passes. A request joins by having its
prompt prefilled alone (its own KV cache), then its cache is left-padded into the
batch's; every step decodes one token for every active sequence at once; a finished
or cancelled sequence leaves at once, and the padding no row needs any more is
cropped. Each request receives its tokens through its own queue as soon as they exist.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import logging
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from workers.generation.adapters import adapter_rows
from workers.generation.prefix_cache import prefill
from workers.generation.sampling import SamplingParameters, next_token, next_tokens

if TYPE_CHECKING:
    from workers.generation.model import LoadedModel

logger = logging.getLogger(__name__)

# Sequences decoded together. On CPU a 16-row step cost more than two 8-row steps
# (attention over every row's cache is memory-bound): 8 concurrent replies gave 3.1x
# sequential, 16 only 1.9x (bench/generation.py). GPUs keep gaining well past 8.
CPU_MAX_BATCH = 8
GPU_MAX_BATCH = 32


def default_max_batch(device: str) -> int:
    return GPU_MAX_BATCH if device.startswith("cuda") else CPU_MAX_BATCH


_DONE = object()
_STOP: Any = object()  # put on the waiting queue by `close`


@dataclass
class _Sequence:
    prompt_ids: list[int]
    params: SamplingParameters
    cancelled: Callable[[], bool]
    out: queue.Queue[Any] = field(default_factory=queue.Queue)
    generated: list[int] = field(default_factory=list)
    length: int = 0  # real tokens in its cache (prompt + generated so far, minus the pending one)
    generator: Any = None
    finished: bool = False
    adapter: str | None = None  # a tuned adapter's key in the model's AdapterSet
    shared: int = 0  # leading prompt tokens every prompt of its bot opens with (prefix_cache)


class BatchScheduler:
    def __init__(self, loaded: LoadedModel, *, max_batch: int | None = None) -> None:
        self.loaded = loaded
        self.max_batch = max_batch or default_max_batch(loaded.device)
        self._waiting: queue.Queue[_Sequence] = queue.Queue()
        self._active: list[_Sequence] = []
        self._cache: Any = None
        self._mask: Any = None  # [batch, cache length], 1 for real tokens
        self._thread = threading.Thread(target=self._run, name="neo-batch", daemon=True)
        self._started = False
        self._lock = threading.Lock()
        self._stopping = False
        self._closed = False

    def submit(
        self,
        prompt_ids: list[int],
        params: SamplingParameters,
        cancelled: Callable[[], bool] = lambda: False,
        adapter: str | None = None,
        shared: int = 0,
    ) -> Iterator[int]:
        """Token ids of the answer, yielded as the batch produces them. The first `shared`
        prompt tokens are the bot's fixed head, whose keys and values may be reused."""
        if self._closed:
            raise RuntimeError("the batch scheduler is closed")
        with self._lock:
            if not self._started:
                self._thread.start()
                self._started = True
                atexit.register(self.close)
        sequence = _Sequence(
            prompt_ids=list(prompt_ids), params=params, cancelled=cancelled, adapter=adapter, shared=shared
        )
        self._waiting.put(sequence)
        while True:
            item = sequence.out.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield int(item)

    def close(self, timeout: float = 5.0) -> None:
        """Stop the scheduler thread once the sequences in its batch are done. Called at
        exit: a daemon thread left inside torch when the interpreter tears down aborted
        the process ("terminate called without an active exception", exit status 134)."""
        self._closed = True
        if self._started and self._thread.is_alive():
            self._waiting.put(_STOP)
            self._thread.join(timeout)

    # The scheduler thread ------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping or self._active:
            try:
                self._admit(block=not self._active)
                if self._active:
                    self._step()
            except Exception as error:  # noqa: BLE001 - handed to every waiting request
                logger.exception("batch step failed")
                for sequence in self._active:
                    sequence.out.put(error)
                self._active, self._cache, self._mask = [], None, None

    def _admit(self, *, block: bool) -> None:
        while len(self._active) < self.max_batch and not self._stopping:
            try:
                sequence = self._waiting.get(block=block, timeout=None if block else 0)
            except queue.Empty:
                return
            if sequence is _STOP:
                self._stopping = True
                return
            block = False
            self._prefill(sequence)

    def _prefill(self, sequence: _Sequence) -> None:
        import torch

        loaded = self.loaded
        budget = min(sequence.params.max_new_tokens, loaded.context_window - len(sequence.prompt_ids))
        if budget <= 0 or sequence.cancelled():
            sequence.out.put(_DONE)
            return
        if sequence.params.seed is not None:
            sequence.generator = torch.Generator(device=loaded.device).manual_seed(sequence.params.seed)
        with torch.inference_mode(), adapter_rows(loaded.adapters, [sequence.adapter]):
            # Its own cache, every layer whole (no config), so rows can be padded alike.
            output = prefill(loaded, sequence.prompt_ids, shared=sequence.shared, adapter=sequence.adapter)
        sequence.length = len(sequence.prompt_ids)
        token = next_token(output.logits[0, -1], sequence.generated, sequence.params, sequence.generator)
        if self._emit(sequence, token):
            return
        self._join(sequence, output.cache)

    def _emit(self, sequence: _Sequence, token: int) -> bool:
        """Hand `token` to the request; True when the sequence is finished."""
        if token in self.loaded.end_token_ids or sequence.cancelled():
            sequence.out.put(_DONE)
            return True
        sequence.generated.append(token)
        sequence.out.put(token)
        limit = min(sequence.params.max_new_tokens, self.loaded.context_window - len(sequence.prompt_ids))
        if len(sequence.generated) >= limit:
            sequence.out.put(_DONE)
            return True
        return False

    def _join(self, sequence: _Sequence, cache: Any) -> None:
        import torch
        import torch.nn.functional as functional

        from workers.generation.kv_cache import GrowingCache

        new_layers = [(layer.keys, layer.values) for layer in cache.layers]
        new_mask = torch.ones((1, sequence.length), dtype=torch.long, device=self.loaded.device)
        if self._cache is None:
            self._cache, self._mask, self._active = cache, new_mask, [sequence]
            return
        current = self._mask.shape[1]
        width = max(current, sequence.length)
        layers = []
        for (keys, values), layer in zip(new_layers, self._cache.layers, strict=True):
            old_pad, new_pad = width - current, width - sequence.length
            layers.append(
                (
                    torch.cat(
                        [functional.pad(layer.keys, (0, 0, old_pad, 0)), functional.pad(keys, (0, 0, new_pad, 0))]
                    ),
                    torch.cat(
                        [functional.pad(layer.values, (0, 0, old_pad, 0)), functional.pad(values, (0, 0, new_pad, 0))]
                    ),
                )
            )
        self._mask = torch.cat(
            [functional.pad(self._mask, (width - current, 0)), functional.pad(new_mask, (width - sequence.length, 0))]
        )
        self._cache = GrowingCache(layers)
        self._active.append(sequence)

    def _step(self) -> None:
        import torch

        loaded = self.loaded
        device = loaded.device
        inputs = torch.tensor([[s.generated[-1]] for s in self._active], device=device)
        positions = torch.tensor([[s.length] for s in self._active], device=device)
        mask = torch.cat([self._mask, torch.ones((len(self._active), 1), dtype=torch.long, device=device)], dim=1)
        with torch.inference_mode(), adapter_rows(loaded.adapters, [s.adapter for s in self._active]):
            output = loaded.model(
                input_ids=inputs, attention_mask=mask, position_ids=positions, cache=self._cache, use_cache=True
            )
        self._cache, self._mask = output.cache, mask
        active = self._active
        tokens = next_tokens(
            output.logits[:, -1],
            [s.generated for s in active],
            [s.params for s in active],
            [s.generator for s in active],
        )
        keep: list[int] = []
        for row, (sequence, token) in enumerate(zip(active, tokens, strict=True)):
            sequence.length += 1
            if not self._emit(sequence, token):
                keep.append(row)
        if len(keep) < len(self._active):
            self._leave(keep)

    def _leave(self, keep: list[int]) -> None:
        import torch

        if not keep:
            self._active, self._cache, self._mask = [], None, None
            release_freed_memory()
            return
        self._active = [self._active[row] for row in keep]
        index = torch.tensor(keep, device=self.loaded.device)
        self._mask = self._mask.index_select(0, index)
        # Columns that are padding in every remaining row are dropped.
        start = int((self._mask.sum(dim=0) > 0).nonzero()[0])
        self._mask = self._mask[:, start:]
        for layer in self._cache.layers:
            layer.assign(
                layer.keys.index_select(0, index)[:, :, start:], layer.values.index_select(0, index)[:, :, start:]
            )


def release_freed_memory() -> None:
    """Hand memory freed by finished KV caches back to the system. glibc keeps freed
    large blocks in its per-thread arenas, so without this a worker's resident memory
    stays at its busiest moment's size (7.9 GB after a 16-request burst, measured)."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc
        ctypes.CDLL("libc.so.6").malloc_trim(0)
