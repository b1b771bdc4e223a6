"""The generation model ready to serve, once per process.

`load_model` reads the weights (`workers.generation.model`), picks faster kernels for
its forward pass (`workers.generation.kernels`), warms the model up with
one short generation (`workers.generation.streaming`), and attaches its tuned adapters
and its batch scheduler (`workers.generation.batching`). `holder` keeps the process's
one model; when the weights are not on this machine, loading fails at once with a
message that says what to do, replies fall back to extractive answers, and a background
thread looks for the weights again every `NEO_MODEL_RETRY_SECONDS`.

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
from workers.generation.kernels import DEFAULT_CALIBRATION_SECONDS, speed_up
from workers.generation.model import (
    LoadedModel,
    ModelUnavailable,
    load_weights,
    local_weights,
    missing_weights_message,
)
from workers.generation.prefix_cache import DEFAULT_MAX_BYTES, PrefixCache
from workers.generation.sampling import SamplingParameters
from workers.generation.streaming import stream_text

logger = logging.getLogger(__name__)

WARM_UP_PROMPT = "Customer: Hello\nAssistant:"


def load_model(
    name: str,
    *,
    device: str = "auto",
    dtype: str = "auto",
    prefix_cache_bytes: int = DEFAULT_MAX_BYTES,
    calibration_seconds: float = DEFAULT_CALIBRATION_SECONDS,
) -> LoadedModel:
    started = time.perf_counter()
    loaded = load_weights(name, device=device, dtype=dtype)
    loaded.kernels = speed_up(
        loaded.model, device=loaded.device, dtype=loaded.dtype, calibration_seconds=calibration_seconds
    )
    _warm_up(loaded)
    loaded.prefixes = PrefixCache(prefix_cache_bytes) if prefix_cache_bytes > 0 else None
    loaded.adapters = AdapterSet(loaded.model)
    loaded.scheduler = BatchScheduler(loaded)
    loaded.load_seconds = round(time.perf_counter() - started, 2)
    logger.info(
        "loaded generation model %s on %s (%s, %s) in %.1f s",
        name,
        loaded.device,
        loaded.dtype,
        ", ".join(loaded.kernels) or "stock kernels",
        loaded.load_seconds,
    )
    return loaded


def _warm_up(loaded: LoadedModel) -> None:
    """One short generation, so the first visitor does not pay for kernel selection."""
    for _ in stream_text(loaded, WARM_UP_PROMPT, SamplingParameters(max_new_tokens=2)):
        pass


class ModelHolder:
    """The process's one model: loaded on first use (or at worker start), shared by all
    threads.

    A failed load is remembered: every later `get()` raises ModelUnavailable at once, so
    replies quote their documents without waiting, and nothing is retried on a visitor's
    request. A background thread looks again every `NEO_MODEL_RETRY_SECONDS` (a cheap
    look at the local cache, and a load once the weights are there), so a model
    downloaded later is picked up without a restart."""

    def __init__(self, name: str | None = None) -> None:
        self._name = name  # None: NEO_MODEL, read when loading (tests change it)
        self._lock = threading.Lock()
        self._loaded: LoadedModel | None = None
        self._error: str | None = None
        self._retry_seconds: float | None = None
        # Set by reset() to stop the current retry thread; it also ends once it has loaded the model.
        self._stop_retrying = threading.Event()

    def get(self) -> LoadedModel:
        from django.conf import settings

        loaded = self._loaded
        if loaded is not None:
            return loaded
        with self._lock:
            if self._loaded is None and self._error is None:
                name, device, dtype = self._name or settings.NEO_MODEL, settings.NEO_DEVICE, settings.NEO_DTYPE
                options = {
                    "device": device,
                    "dtype": dtype,
                    "prefix_cache_bytes": settings.NEO_PREFIX_CACHE_MB << 20,
                    "calibration_seconds": settings.NEO_KERNEL_CALIBRATION_SECONDS,
                }
                try:
                    self._loaded = load_model(name, **options)
                except ModelUnavailable as error:
                    self._error = str(error)
                    logger.error("%s", error)
                    self._start_retrying(name, options, every=settings.NEO_MODEL_RETRY_SECONDS)
            if self._loaded is None:
                raise ModelUnavailable(self._error or "the model is not loaded")
            return self._loaded

    def _start_retrying(self, name: str, options: dict[str, Any], *, every: float) -> None:
        """Look for the model again every `every` seconds; `options`: load_model's keywords."""
        self._retry_seconds = every
        stop = self._stop_retrying
        threading.Thread(
            target=self._retry, args=(stop, name, options, every), name="neo-model-retry", daemon=True
        ).start()

    def _retry(self, stop: threading.Event, name: str, options: dict[str, Any], every: float) -> None:
        while not stop.wait(every):
            if local_weights(name) is None:
                continue  # still missing: nothing to load, nothing new to log
            try:
                loaded = load_model(name, **options)
            except ModelUnavailable as error:
                with self._lock:
                    if not stop.is_set():
                        self._error = str(error)
                continue
            except Exception:
                logger.exception("loading the generation model %s failed; trying again in %s s", name, every)
                continue
            with self._lock:
                if stop.is_set():
                    return  # reset meanwhile: this model is no longer wanted
                self._loaded, self._error, self._retry_seconds = loaded, None, None
            logger.info("the generation model %s is available now: replies are generated again", name)
            return

    def status(self) -> dict[str, Any]:
        """The model's state without loading it: `loaded`, `unavailable` (a failed load, or
        weights not on this machine, with what to do), or `not_loaded` (it loads with the
        first reply). Cheap: a web request or a heartbeat may ask."""
        from django.conf import settings

        if self._loaded is not None:
            loaded = self._loaded
            return {"state": "loaded", "name": loaded.name, "device": loaded.device, "dtype": loaded.dtype}
        name = self._name or settings.NEO_MODEL
        if self._error is not None:
            status: dict[str, Any] = {"state": "unavailable", "name": name, "message": self._error}
            if self._retry_seconds is not None:
                status["retry_seconds"] = self._retry_seconds
            return status
        if local_weights(name) is None:
            return {"state": "unavailable", "name": name, "message": missing_weights_message(name)}
        return {"state": "not_loaded", "name": name}

    def reset(self) -> None:
        """Forget the model and stop looking for it (tests, or after NEO_MODEL changed)."""
        with self._lock:
            self._stop_retrying.set()
            self._stop_retrying = threading.Event()
            self._loaded = None
            self._error = None
            self._retry_seconds = None


holder = ModelHolder()
_holders: dict[str, ModelHolder] = {}
_holders_lock = threading.Lock()


def holder_for(name: str) -> ModelHolder:
    """The process's holder of base model `name`: `holder` for NEO_MODEL (or ""), one more
    per other model a bot chose (NEO_MODELS), each loaded on first use."""
    from django.conf import settings

    if not name or name == settings.NEO_MODEL:
        return holder
    with _holders_lock:
        return _holders.setdefault(name, ModelHolder(name))


def holders_reset() -> None:
    """Forget every model this process holds (tests, or after the settings changed)."""
    holder.reset()
    with _holders_lock:
        for other in _holders.values():
            other.reset()
        _holders.clear()
