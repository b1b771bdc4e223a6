"""Tuned adapters served beside the base model: one copy of the base weights in
memory, any number of LoRA adapters, and each row of a batch answered by its own bot's
adapter (or none).

peft applies the active adapter to every row of a forward pass; our batching scheduler
mixes replies of many bots in one pass, so the LoRA layers here pick per row. On the
first adapter, each target linear layer of the base model (`nn.Linear`, or GPT-2's
`Conv1D`, which stores its weight transposed) is wrapped in `MultiLoraLinear`
(the base layer untouched inside it); an adapter is read from the files peft saves
(`adapter_config.json`, `adapter_model.safetensors`), each module with the rank and
scale peft gives it (`rank_pattern`, `alpha_pattern`, `use_rslora`); settings that
compute something else than plain LoRA (DoRA, biases, trained embeddings or modules)
are refused by name rather than served differently from peft. Before every forward pass the
caller names each row's adapter with `AdapterSet.rows(...)`; only one thread runs
forward passes (the batch scheduler's, or a lone decode under `AdapterSet.lock`).
"""

from __future__ import annotations

import json
import logging
import re
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


# peft settings that change what an adapter computes beyond plain LoRA; we refuse them
# rather than serve different numbers than peft would.
_UNSERVABLE = {
    "use_dora": "DoRA (use_dora)",
    "lora_bias": "LoRA biases (lora_bias)",
    "modules_to_save": "fully trained modules (modules_to_save)",
    "trainable_token_indices": "trained token embeddings (trainable_token_indices)",
    "layer_replication": "layer replication (layer_replication)",
    "target_parameters": "LoRA on parameters (target_parameters)",
    "alora_invocation_tokens": "activated LoRA (alora_invocation_tokens)",
    "use_qalora": "QALoRA (use_qalora)",
}


@dataclass(frozen=True)
class LoraSettings:
    """An adapter's ranks and scales, per module as peft computes them: `r` and
    `lora_alpha` unless a `rank_pattern` / `alpha_pattern` key matches the module's name
    (the whole name or a dotted suffix of it, as a regular expression, first key wins),
    scaled by alpha / rank, or alpha / sqrt(rank) with `use_rslora`."""

    rank: int
    alpha: float
    rslora: bool = False
    rank_pattern: tuple[tuple[str, int], ...] = ()
    alpha_pattern: tuple[tuple[str, float], ...] = ()

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> LoraSettings:
        """Read peft's adapter_config.json; ValueError naming what we cannot serve."""
        kind = config.get("peft_type", "LORA")
        if kind != "LORA":
            raise ValueError(f"it is a {kind} adapter; only LoRA adapters are served")
        refused = [label for name, label in _UNSERVABLE.items() if config.get(name)]
        if config.get("bias", "none") != "none":
            refused.append(f"trained base biases (bias={config['bias']!r})")
        if refused:
            raise ValueError(f"it uses {', '.join(refused)}, which we do not serve; retrain it as plain LoRA")
        try:
            return cls(
                rank=int(config["r"]),
                alpha=float(config["lora_alpha"]),
                rslora=bool(config.get("use_rslora")),
                rank_pattern=tuple((str(k), int(v)) for k, v in (config.get("rank_pattern") or {}).items()),
                alpha_pattern=tuple((str(k), float(v)) for k, v in (config.get("alpha_pattern") or {}).items()),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise ValueError(f"its adapter_config.json has no usable r / lora_alpha / patterns ({error!r})") from None

    def for_module(self, name: str) -> tuple[int, float]:
        """(rank, scale) of the module called `name` in the base model."""
        rank = _pattern_value(self.rank_pattern, name, self.rank)
        alpha = _pattern_value(self.alpha_pattern, name, self.alpha)
        return rank, alpha / (rank**0.5 if self.rslora else rank)


def _pattern_value(pattern: tuple[tuple[str, Any], ...], name: str, default: Any) -> Any:
    for key, value in pattern:  # peft.utils.other.get_pattern_key's matching
        if re.match(rf"(.*\.)?({key})$", name):
            return value
    return default


def lora_pairs(weights: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Each target module's (A, B) matrices from the tensors peft saves; ValueError for
    anything else in the file (an embedding's LoRA, DoRA magnitudes, biases, fully
    trained modules), which would serve different numbers than peft if skipped."""
    embedded = [name for name in weights if ".lora_embedding_" in name]
    if embedded:  # peft saves the embedding layer too then: name the cause, not that copy
        raise ValueError(f"it holds an embedding layer's LoRA ({embedded[0]}); only LoRA on linear layers is served")
    parts: dict[str, dict[str, Any]] = {}
    for name, tensor in weights.items():
        module, _, part = name.removeprefix(_PREFIX).rpartition(".lora_")
        if not name.startswith(_PREFIX) or part not in ("A.weight", "B.weight"):
            raise ValueError(f"it holds a tensor that is not LoRA's A or B ({name}); only LoRA is served")
        parts.setdefault(module, {})[part[0]] = tensor
    if not parts:
        raise ValueError("it holds no LoRA weights")
    pairs = {}
    for module, tensors in parts.items():
        if set(tensors) != {"A", "B"}:
            raise ValueError(f"its weights for {module} lack lora_{'B' if 'A' in tensors else 'A'}")
        pairs[module] = (tensors["A"], tensors["B"])
    return pairs


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
        except Exception as error:  # noqa: BLE001 - missing, truncated, not safetensors: all unreadable
            raise AdapterUnavailable(f"adapter {key} in {folder} cannot be read: {error}") from None
        try:
            settings = LoraSettings.from_config(config)
            pairs = lora_pairs(weights)
        except ValueError as problem:
            raise AdapterUnavailable(f"adapter {key} in {folder} cannot be served: {problem}") from None
        modules = dict(self.model.named_modules())
        parameter = next(self.model.parameters())
        staged: list[tuple[str, _Lora]] = []
        for module_name, (down, up) in pairs.items():
            target = self.layers.get(module_name) or modules.get(module_name)
            if target is None:
                raise AdapterUnavailable(f"adapter {key} does not fit the base model: it has no module {module_name}")
            shape = linear_shape(getattr(target, "base", target))
            if shape is None:
                kind = type(getattr(target, "base", target)).__name__
                raise AdapterUnavailable(
                    f"adapter {key} targets {module_name}, a {kind}: only linear layers are served"
                )
            rank, scale = settings.for_module(module_name)
            if down.shape != (rank, shape[0]) or up.shape != (shape[1], rank):
                raise AdapterUnavailable(
                    f"adapter {key} does not fit the base model at {module_name}: expected rank {rank} on "
                    f"{shape[0]} -> {shape[1]} features, found A {tuple(down.shape)} and B {tuple(up.shape)}"
                )
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
