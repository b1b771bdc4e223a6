"""The generation model itself: which device and dtype it runs on, and reading its weights.

`NEO_MODEL` is a Hugging Face id (EleutherAI/gpt-neo-125M by default; 1.3B and 2.7B
work the same) or a local directory. When the weights are missing and cannot be
fetched, loading fails with a message that says what to do.

This module depends on no other module of the package: making a read model ready to
serve (warm-up, adapters, batch scheduler) and holding it per process is
`workers.generation.loading`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any


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


def load_weights(name: str, *, device: str = "auto", dtype: str = "auto") -> LoadedModel:
    """The tokenizer and the model on its device, in eval mode: not warmed up, with no
    adapters and no scheduler yet (`workers.generation.loading.load_model` adds them)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = resolve_device(device)
    dtype = resolve_dtype(dtype, device)
    try:
        tokenizer = AutoTokenizer.from_pretrained(name)
        # As the nn.Module it is: PreTrainedModel.to borrows nn.Module.to's signature with
        # functools.wraps, and mypy does not bind such a wrapper's `self` to the instance.
        model: torch.nn.Module = AutoModelForCausalLM.from_pretrained(name, dtype=getattr(torch, dtype))
    except (OSError, ValueError) as error:
        raise ModelUnavailable(missing_weights_message(name, error)) from None
    model.to(device).eval()
    return LoadedModel(
        name=name,
        model=model,
        tokenizer=tokenizer,
        device=device,
        dtype=dtype,
        context_window=int(getattr(model.config, "max_position_embeddings", 2048)),
        eos_token_id=tokenizer.eos_token_id,
        load_seconds=0.0,
    )
