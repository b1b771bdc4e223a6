"""Tuned adapters served beside the base model: one copy of the base weights in
memory, any number of LoRA adapters, and each row of a batch answered by its own bot's
adapter (or none).

peft applies the active adapter to every row of a forward pass; our batching scheduler
mixes replies of many bots in one pass, so the LoRA layers here pick per row. On the
first adapter, each target linear layer of the base model (`nn.Linear`, or GPT-2's
`Conv1D`, which stores its weight transposed) is wrapped in `MultiLoraLinear`
(the base layer untouched inside it); an adapter is read from the files peft saves
(`adapter_config.json`, `adapter_model.safetensors`). Before every forward pass the
caller names each row's adapter with `AdapterSet.rows(...)`; only one thread runs
forward passes (the batch scheduler's, or a lone decode under `AdapterSet.lock`).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

_PREFIX = "base_model.model."


class AdapterUnavailable(Exception):  # noqa: N818 - reported to operators; the bot answers with the base model
    """An adapter's files are missing or do not fit the base model."""


@dataclass
class _Lora:
    down: Any  # A: [rank, in]
    up: Any  # B: [out, rank]
    scale: float


def linear_shape(module: Any) -> tuple[int, int] | None:
    """(in features, out features) of a linear layer a LoRA adapter can target: an
    `nn.Linear`, or the `Conv1D` of GPT-2 and its kin (weight stored as [in, out]);
    None for anything else."""
    import torch
    from transformers.pytorch_utils import Conv1D

    if isinstance(module, torch.nn.Linear):
        return module.in_features, module.out_features
    if isinstance(module, Conv1D):
        return int(module.weight.shape[0]), int(module.weight.shape[1])
    return None


def lora_target_modules(model: Any) -> list[str]:
    """The names (last part) of the model's linear layers inside its transformer blocks,
    for peft's `target_modules`: the attention and MLP projections of whatever family it
    is (GPT-Neo's q_proj/out_proj/c_fc/c_proj, GPT-2's c_attn/c_proj/c_fc, Llama's and
    Qwen2's q/k/v/o_proj and gate/up/down_proj). The output head is left alone."""
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    names = {
        name.rpartition(".")[2]
        for name, module in model.named_modules()
        if module is not head and "." in name and linear_shape(module) is not None
    }
    if not names:
        raise ValueError(f"{type(model).__name__} has no linear layers a LoRA adapter could target")
    return sorted(names)


def has_transposed_linears(model: Any, targets: Sequence[str]) -> bool:
    """Whether any target is a `Conv1D` (peft's `fan_in_fan_out`)."""
    from transformers.pytorch_utils import Conv1D

    wanted = set(targets)
    return any(isinstance(m, Conv1D) and n.rpartition(".")[2] in wanted for n, m in model.named_modules())


@cache
def _multi_lora_class() -> type:
    import torch

    class MultiLoraLinear(torch.nn.Module):
        def __init__(self, base: torch.nn.Module) -> None:
            super().__init__()
            self.base = base
            self.adapters: dict[str, _Lora] = {}
            self.row_adapters: Sequence[str | None] = ()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out: torch.Tensor = self.base(x)
            names = self.row_adapters
            if not names or not any(names):
                return out
            for name in set(names) - {None}:
                lora = self.adapters.get(name)  # type: ignore[arg-type]
                if lora is None:
                    continue
                rows = [i for i, row in enumerate(names) if row == name]
                index = torch.tensor(rows, device=x.device)
                part = x.index_select(0, index)
                delta = (part.to(lora.down.dtype) @ lora.down.T @ lora.up.T) * lora.scale
                out = out.index_add(0, index, delta.to(out.dtype))
            return out

    return MultiLoraLinear


class AdapterSet:
    """The adapters loaded into one base model, by key (a model version)."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.layers: dict[str, Any] = {}  # module name -> MultiLoraLinear
        self.loaded: dict[str, Path] = {}
        self.lock = threading.Lock()  # loading, and lone (unbatched) decodes

    def ensure(self, key: str, folder: Path) -> None:
        """Load the adapter in `folder` under `key` unless it is loaded already."""
        with self.lock:
            if key in self.loaded:
                return
            self._load(key, folder)
            self.loaded[key] = folder
            logger.info("loaded adapter %s from %s", key, folder)

    def _load(self, key: str, folder: Path) -> None:
        import torch
        from safetensors.torch import load_file

        try:
            config = json.loads((folder / "adapter_config.json").read_text())
            weights = load_file(folder / "adapter_model.safetensors")
            rank, alpha = int(config["r"]), float(config["lora_alpha"])
            # peft's scaling: alpha / rank, or alpha / sqrt(rank) with rank-stabilised LoRA.
            scale = alpha / (rank**0.5 if config.get("use_rslora") else rank)
        except Exception as error:  # noqa: BLE001 - missing, truncated, not safetensors: all unreadable
            raise AdapterUnavailable(f"adapter {key} in {folder} cannot be read: {error}") from None
        pairs: dict[str, dict[str, Any]] = {}
        for name, tensor in weights.items():
            if not name.startswith(_PREFIX) or ".lora_" not in name:
                continue
            module, _, part = name[len(_PREFIX) :].rpartition(".lora_")
            pairs.setdefault(module, {})[part.split(".")[0]] = tensor
        if not pairs:
            raise AdapterUnavailable(f"adapter {key} in {folder} holds no LoRA weights")
        modules = dict(self.model.named_modules())
        parameter = next(self.model.parameters())
        staged: list[tuple[str, _Lora]] = []
        for module_name, tensors in pairs.items():
            target = self.layers.get(module_name) or modules.get(module_name)
            shape = linear_shape(getattr(target, "base", target))
            if shape is None or set(tensors) != {"A", "B"}:
                raise AdapterUnavailable(f"adapter {key} does not fit the base model at {module_name}")
            down, up = tensors["A"], tensors["B"]
            if down.shape != (rank, shape[0]) or up.shape != (shape[1], rank):
                raise AdapterUnavailable(f"adapter {key} does not fit the base model at {module_name}")
            lora = _Lora(down.to(parameter.device, torch.float32), up.to(parameter.device, torch.float32), scale)
            staged.append((module_name, lora))
        for module_name, lora in staged:  # all checked: now change the model
            self._wrapped(module_name).adapters[key] = lora

    def _wrapped(self, module_name: str) -> Any:
        layer = self.layers.get(module_name)
        if layer is None:
            parent_name, _, child = module_name.rpartition(".")
            parent = self.model.get_submodule(parent_name) if parent_name else self.model
            layer = _multi_lora_class()(getattr(parent, child))
            setattr(parent, child, layer)
            self.layers[module_name] = layer
        return layer

    def unload(self, key: str) -> None:
        with self.lock:
            for layer in self.layers.values():
                layer.adapters.pop(key, None)
            self.loaded.pop(key, None)

    @contextmanager
    def rows(self, names: Sequence[str | None]) -> Iterator[None]:
        """Each row of the forward pass run inside with its adapter (None: the base
        model). Holds the lock: one pass at a time sees the choice, and no adapter is
        loaded in the middle of a pass."""
        chosen = tuple(names) if any(names) else ()
        with self.lock:
            for layer in self.layers.values():
                layer.row_adapters = chosen
            try:
                yield
            finally:
                for layer in self.layers.values():
                    layer.row_adapters = ()


def adapter_rows(adapters: AdapterSet | None, names: Sequence[str | None]) -> AbstractContextManager[None]:
    """`adapters.rows(names)`, or nothing at all while no adapter was ever loaded."""
    if adapters is None or not adapters.layers:
        return nullcontext()
    return adapters.rows(names)


@dataclass(frozen=True)
class AdapterRef:
    """A bot's deployed model version, as the generation engine needs it: the adapter's
    key and folder, the label a reply records, the base model it was tuned on, and
    whether the version may serve (ready)."""

    key: str
    folder: Path
    label: str
    base_model: str
    ready: bool = True


def adapter_choose(ref: AdapterRef | None, *, base_model: str, adapters: AdapterSet) -> tuple[str | None, str]:
    """The adapter key to answer with (loaded on first use) and the label the reply
    records; the base model when none is deployed or it cannot be used here."""
    if ref is None:
        return None, "base"
    if not ref.ready or ref.base_model != base_model:
        logger.warning("%s is not servable on %s; answering with the base model", ref.label, base_model)
        return None, "base"
    try:
        adapters.ensure(ref.key, ref.folder)
    except AdapterUnavailable as problem:
        logger.error("%s; answering with the base model", problem)
        return None, "base"
    return ref.key, ref.label
