"""The generation model itself: which device and dtype it runs on, and reading its weights.

`NEO_MODEL` is a Hugging Face id (EleutherAI/gpt-neo-125M by default; 1.3B and 2.7B
work the same) or a local directory. Weights are only ever read from this machine (the
directory, or the Hugging Face cache): a reply must not wait on the hub's retries when
there is no internet, so only `manage.py download_model` downloads. When the weights
are not here, loading fails at once with a message that says what to do.

This module depends on no other module of the package: making a read model ready to
serve (warm-up, adapters, batch scheduler) and holding it per process is
`workers.generation.loading`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
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
    # Every token that ends a reply (`end_token_ids`); eos_token_id alone when left empty.
    end_token_ids: frozenset[int] = field(default_factory=frozenset)
    family: str = ""  # the config's model_type: "gpt_neo", "llama", "qwen2", ...
    # The faster kernels its forward pass runs on (workers.generation.kernels).
    kernels: list[str] = field(default_factory=list)
    # Keys and values of bots' fixed prompt heads (workers.generation.prefix_cache).
    prefixes: Any = None

    def __post_init__(self) -> None:
        if not self.end_token_ids and self.eos_token_id is not None:
            self.end_token_ids = frozenset({self.eos_token_id})

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    @property
    def has_chat_template(self) -> bool:
        return bool(getattr(self.tokenizer, "chat_template", None))

    def render_chat(self, messages: Sequence[dict[str, str]]) -> str:
        return render_chat(self.tokenizer, messages)


def render_chat(tokenizer: Any, messages: Sequence[dict[str, str]]) -> str:
    """The conversation in the tokenizer's chat format, ending where the assistant's
    answer starts. Templates that refuse a system turn (Gemma's, older Mistral's) get
    its text at the head of the first user turn instead."""
    from jinja2 import TemplateError

    try:
        return str(tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True))
    except TemplateError:
        if not messages or messages[0]["role"] != "system":
            raise
    system, rest = messages[0]["content"], [dict(message) for message in messages[1:]]
    first_user = next((message for message in rest if message["role"] == "user"), None)
    if first_user is None:
        rest.insert(0, {"role": "user", "content": system})
    else:
        first_user["content"] = f"{system}\n\n{first_user['content']}"
    return str(tokenizer.apply_chat_template(rest, tokenize=False, add_generation_prompt=True))


def end_token_ids(model: Any, tokenizer: Any) -> frozenset[int]:
    """The tokens that end a reply, from the model's own files: its generation config's
    `eos_token_id` (an int or, for instruction models, a list: Llama 3 ends a turn with
    <|eot_id|> and a text with <|end_of_text|>), the model config's, and the tokenizer's."""
    found: set[int] = set()
    for source in (getattr(model, "generation_config", None), getattr(model, "config", None), tokenizer):
        value = getattr(source, "eos_token_id", None)
        if isinstance(value, int):
            found.add(value)
        elif isinstance(value, (list, tuple)):
            found.update(int(token) for token in value)
    return frozenset(found)


def context_window_of(config: Any) -> int:
    """The longest sequence the model takes: `max_position_embeddings` (GPT-2 maps its
    `n_positions` onto it), 2048 when the config says nothing."""
    value = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
    return int(value or 2048)


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


# A model folder holds its config and one of these (a single file, or an index of shards).
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)


def _is_path(name: str) -> bool:
    """Whether NEO_MODEL names a folder rather than a Hugging Face id (both may contain "/")."""
    return name.startswith(("/", ".", "~")) or Path(name).expanduser().exists()


def _holds_a_model(folder: Path) -> bool:
    return (folder / "config.json").is_file() and any((folder / file).is_file() for file in WEIGHT_FILES)


def local_weights(name: str) -> Path | None:
    """The folder on this machine holding `name`'s weights, or None when they are not
    here. Reads the file system only, never the network, so it is cheap enough for a
    web request: the directory itself, or the model's snapshot in the Hugging Face cache
    (`HF_HOME`, where `manage.py download_model` puts it)."""
    if _is_path(name):
        folder = Path(name).expanduser()
        return folder if _holds_a_model(folder) else None
    from huggingface_hub import try_to_load_from_cache

    try:
        config = try_to_load_from_cache(name, "config.json")
    except ValueError:  # HFValidationError: not a valid repository id
        return None
    if not isinstance(config, str):
        return None
    snapshot = Path(config).parent
    return snapshot if _holds_a_model(snapshot) else None


def missing_weights_message(name: str, error: BaseException | None = None) -> str:
    """What an operator reads when the model cannot be loaded: why, and the command that fixes it."""
    if error is not None:
        where = "the directory" if _is_path(name) else f"the Hugging Face cache ({_hub_cache()})"
        reason = f"reading it from {where} failed ({type(error).__name__}: {error})"
    elif _is_path(name):
        reason = f"the directory {name} holds no model (config.json and weights)"
    else:
        reason = f"it is not in the Hugging Face cache on this machine ({_hub_cache()})"
    if _is_path(name):
        fix = (
            f"Put a model there (`python manage.py download_model EleutherAI/gpt-neo-125M --to {name}`, "
            f"which needs internet access), or point NEO_MODEL at one"
        )
    else:
        fix = (
            f"Run `python manage.py download_model {name}` (it needs internet access; without it here, run it on "
            f"another machine and copy its Hugging Face cache over), or point NEO_MODEL at a local directory "
            f"holding the model"
        )
    return (
        f"The generation model {name!r} could not be loaded: {reason}. {fix}. "
        f"Until then bots answer extractively, quoting their documents."
    )


def _hub_cache() -> str:
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)


def load_weights(name: str, *, device: str = "auto", dtype: str = "auto") -> LoadedModel:
    """The tokenizer and the model on its device, in eval mode: not warmed up, with no
    adapters and no scheduler yet (`workers.generation.loading.load_model` adds them)."""
    # Before importing torch and transformers (seconds): a missing model is known at once.
    folder = local_weights(name)
    if folder is None:
        raise ModelUnavailable(missing_weights_message(name))
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = resolve_device(device)
    dtype = resolve_dtype(dtype, device)
    try:
        # From the folder found above, and local files only besides: with a Hugging Face id
        # transformers would otherwise ask the hub first, retrying for most of a minute offline.
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        # As the nn.Module it is: PreTrainedModel.to borrows nn.Module.to's signature with
        # functools.wraps, and mypy does not bind such a wrapper's `self` to the instance.
        model: torch.nn.Module = AutoModelForCausalLM.from_pretrained(
            folder, dtype=getattr(torch, dtype), local_files_only=True
        )
    except (OSError, ValueError) as error:
        raise ModelUnavailable(missing_weights_message(name, error)) from None
    model.to(device).eval()
    return LoadedModel(
        name=name,
        model=model,
        tokenizer=tokenizer,
        device=device,
        dtype=dtype,
        context_window=context_window_of(model.config),
        eos_token_id=tokenizer.eos_token_id,
        load_seconds=0.0,
        end_token_ids=end_token_ids(model, tokenizer),
        family=str(getattr(model.config, "model_type", "")),
    )
