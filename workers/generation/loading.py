"""Loading the generation model: once per process, on the configured device and dtype.

`NEO_MODEL` is a Hugging Face id (EleutherAI/gpt-neo-125M by default; 1.3B and 2.7B
work the same) or a local directory. When the weights are missing and cannot be
fetched, loading fails once with a message that says what to do, and replies fall
back to extractive answers.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

WARM_UP_PROMPT = "Customer: Hello\nAssistant:"


class ModelUnavailable(Exception):  # noqa: N818 - a state reported to operators, not a crash
    """The generation model cannot be loaded; the message says what to do."""


@dataclass
class LoadedModel:
    name: str
    model: Any
    tokenizer: Any
    device: str
    dtype: str
    context_window: int
    eos_token_id: int | None
    load_seconds: float
    # Concurrent replies share decode steps through it (workers.generation.batching).
    scheduler: Any = None
    # Tuned LoRA adapters served on this base model (workers.generation.adapters).
    adapters: Any = None

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])


@cache
def _cpu_flags() -> frozenset[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    return frozenset(word for line in text.splitlines() if line.startswith("flags") for word in line.split())


def resolve_device(setting: str) -> str:
    import torch

    if setting == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if setting.startswith("cuda") and not torch.cuda.is_available():
        raise ModelUnavailable(f"NEO_DEVICE={setting} but no CUDA device is available; set NEO_DEVICE=cpu or auto.")
    return setting


def resolve_dtype(setting: str, device: str) -> str:
    """fp16 on CUDA; bf16 on CPUs with native bf16 instructions, where it runs faster; else fp32."""
    if setting != "auto":
        return setting
    if device.startswith("cuda"):
        return "float16"
    return "bfloat16" if {"avx512_bf16", "amx_bf16"} & _cpu_flags() else "float32"


def missing_weights_message(name: str, error: BaseException) -> str:
    where = "the directory" if Path(name).exists() or name.startswith(("/", ".")) else "the Hugging Face cache"
    return (
        f"The generation model {name!r} could not be loaded from {where} ({type(error).__name__}: {error}). "
        f"On a machine with internet access run `python manage.py download_model {name}` (or point NEO_MODEL "
        f"at a local directory holding the model). Until then bots answer extractively, quoting their documents."
    )


def load_model(name: str, *, device: str = "auto", dtype: str = "auto") -> LoadedModel:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    started = time.perf_counter()
    device = resolve_device(device)
    dtype = resolve_dtype(dtype, device)
    try:
        tokenizer = AutoTokenizer.from_pretrained(name)
        model = AutoModelForCausalLM.from_pretrained(name, dtype=getattr(torch, dtype))
    except (OSError, ValueError) as error:
        raise ModelUnavailable(missing_weights_message(name, error)) from None
    model.to(device).eval()
    loaded = LoadedModel(
        name=name,
        model=model,
        tokenizer=tokenizer,
        device=device,
        dtype=dtype,
        context_window=int(getattr(model.config, "max_position_embeddings", 2048)),
        eos_token_id=tokenizer.eos_token_id,
        load_seconds=0.0,
    )
    _warm_up(loaded)
    from workers.generation.adapters import AdapterSet
    from workers.generation.batching import BatchScheduler

    loaded.adapters = AdapterSet(model)
    loaded.scheduler = BatchScheduler(loaded)
    loaded.load_seconds = round(time.perf_counter() - started, 2)
    logger.info("loaded generation model %s on %s (%s) in %.1f s", name, device, dtype, loaded.load_seconds)
    return loaded


def _warm_up(loaded: LoadedModel) -> None:
    """One short generation, so the first visitor does not pay for kernel selection."""
    from workers.generation.streaming import SamplingParameters, stream_text

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
