"""The generation model ready to serve, once per process.

`load_model` reads the weights (`workers.generation.model`), warms the model up with
one short generation (`workers.generation.streaming`), and attaches its tuned adapters
and its batch scheduler (`workers.generation.batching`). `holder` keeps the process's
one model; when the weights are missing and cannot be fetched, loading fails once with
a message that says what to do, and replies fall back to extractive answers.

The top of the package's generation layers: model and sampling at the bottom,
batching and streaming above them, this module above all; none of them imports it.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from workers.generation.adapters import AdapterSet
from workers.generation.batching import BatchScheduler
from workers.generation.model import LoadedModel, ModelUnavailable, load_weights
from workers.generation.sampling import SamplingParameters
from workers.generation.streaming import stream_text

logger = logging.getLogger(__name__)

WARM_UP_PROMPT = "Customer: Hello\nAssistant:"


def load_model(name: str, *, device: str = "auto", dtype: str = "auto") -> LoadedModel:
    started = time.perf_counter()
    loaded = load_weights(name, device=device, dtype=dtype)
    _warm_up(loaded)
    loaded.adapters = AdapterSet(loaded.model)
    loaded.scheduler = BatchScheduler(loaded)
    loaded.load_seconds = round(time.perf_counter() - started, 2)
    logger.info(
        "loaded generation model %s on %s (%s) in %.1f s", name, loaded.device, loaded.dtype, loaded.load_seconds
    )
    return loaded


def _warm_up(loaded: LoadedModel) -> None:
    """One short generation, so the first visitor does not pay for kernel selection."""
    for _ in stream_text(loaded, WARM_UP_PROMPT, SamplingParameters(max_new_tokens=2)):
        pass


class ModelHolder:
    """The process's one model: loaded on first use (or at worker start), shared by all
    threads; a failed load is remembered so every reply does not retry and log it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loaded: LoadedModel | None = None
        self._error: str | None = None

    def get(self) -> LoadedModel:
        from django.conf import settings

        with self._lock:
            if self._loaded is None and self._error is None:
                try:
                    self._loaded = load_model(settings.NEO_MODEL, device=settings.NEO_DEVICE, dtype=settings.NEO_DTYPE)
                except ModelUnavailable as error:
                    self._error = str(error)
                    logger.error("%s", error)
            if self._loaded is None:
                raise ModelUnavailable(self._error or "the model is not loaded")
            return self._loaded

    def status(self) -> dict[str, Any]:
        from django.conf import settings

        if self._loaded is not None:
            loaded = self._loaded
            return {"state": "loaded", "name": loaded.name, "device": loaded.device, "dtype": loaded.dtype}
        if self._error is not None:
            return {"state": "unavailable", "name": settings.NEO_MODEL, "message": self._error}
        return {"state": "not_loaded", "name": settings.NEO_MODEL}

    def reset(self) -> None:
        """Forget the model (tests, or after NEO_MODEL changed)."""
        with self._lock:
            self._loaded = None
            self._error = None


holder = ModelHolder()
