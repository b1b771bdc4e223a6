"""The injection classifier that generalises: all-MiniLM-L6-v2 (the packaged embedding
model) fine-tuned to tell an attempt to instruct the bot from everything else, with a
linear head over its mean-pooled output.

A linear head over the frozen sentence embedding (`injection.py`'s `LinearTextModel`)
sees one vector for the whole text: an attack appended to an ordinary question is
diluted, and a German or Croatian attack reads like its topic. Fine-tuning the encoder
itself lets it attend to the instruction wherever it is (grouped 5-fold accuracy of the
whole filter on deepset 0.898 with the head, 0.936 with LoRA, 0.947 fine-tuned whole;
see bench/README.md and docs/decisions.md).

Every layer is trained (the token embeddings stay frozen), and what ships is small: each
projection's change cut to its top singular directions (rank 64, which scored as the
uncut change on every fold), the changed biases and layer norms, and the head
(`data/injection_encoder.safetensors`, about 6 MB). They are added to a private copy of
the base model when first used. `manage.py train_moderation injection --encoder`
reproduces it (seeded; about 3 minutes on two cores of a recent Xeon).
"""

from __future__ import annotations

import json
import logging
import math
import random
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

ADAPTER_PATH = Path(__file__).resolve().parent / "data" / "injection_encoder.safetensors"
# The transformer layers' parameters are trained and shipped; the embeddings stay frozen
# and the pooler is not used (mean pooling, as the sentence model).
LAYERS = "encoder.layer."


@dataclass(frozen=True)
class EncoderSettings:
    rank: int = 64  # of each projection's shipped change
    epochs: int = 3
    batch_size: int = 16
    learning_rate: float = 1e-4
    head_learning_rate: float = 1e-3
    warmup: float = 0.1
    max_tokens: int = 128
    threshold: float = 0.5
    seed: int = 0


SETTINGS = EncoderSettings()


def _base_path() -> str:
    from retrieval.embeddings import DEFAULT_MODEL, model_path

    return model_path(DEFAULT_MODEL)


class InjectionEncoder:
    """The fine-tuned encoder and head, ready to score texts (the change applied, eval mode)."""

    def __init__(self, encoder: Any, head: torch.nn.Linear, tokenizer: Any, settings: EncoderSettings) -> None:
        self.encoder = encoder
        self.head = head
        self.tokenizer = tokenizer
        self.settings = settings
        self.threshold = settings.threshold
        self._lock = threading.Lock()  # the fast tokenizer is not safe across threads

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        with self._lock:
            batch = self.tokenizer(
                list(texts), padding=True, truncation=True, max_length=self.settings.max_tokens, return_tensors="pt"
            )
        with torch.inference_mode():
            logits = _logits(self.encoder, self.head, batch)
        result: np.ndarray = torch.sigmoid(logits).float().numpy()
        return result

    def probability(self, text: str) -> float:
        return float(self.probabilities([text])[0])


def _logits(encoder: Any, head: torch.nn.Linear, batch: Any) -> torch.Tensor:
    hidden = encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
    logits: torch.Tensor = head(pooled).squeeze(-1)
    return logits


def _base_model() -> tuple[Any, Any]:
    from transformers import AutoModel, AutoTokenizer

    path = _base_path()
    return AutoModel.from_pretrained(path, local_files_only=True), AutoTokenizer.from_pretrained(path)


def train(
    texts: Sequence[str],
    labels: Sequence[int],
    settings: EncoderSettings = SETTINGS,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[InjectionEncoder, dict[str, Any]]:
    """Fine-tune the encoder's layers and the head on the labelled texts (1 = injection).
    Returns the ready encoder, as `load` rebuilds it from the shipped change, and the
    tensors to save (`save`)."""
    import torch

    torch.manual_seed(settings.seed)
    rng = random.Random(settings.seed)
    model, tokenizer = _base_model()
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(name.startswith(LAYERS))
    head = torch.nn.Linear(model.config.hidden_size, 1)
    # Balanced classes: an injection counts as much as all the negatives per positive.
    positives = max(sum(labels), 1)
    weight = torch.tensor((len(labels) - positives) / positives)
    optimiser = torch.optim.AdamW(
        [
            {"params": [p for p in model.parameters() if p.requires_grad], "lr": settings.learning_rate},
            {"params": head.parameters(), "lr": settings.head_learning_rate},
        ],
        weight_decay=0.01,
    )
    steps_per_epoch = math.ceil(len(texts) / settings.batch_size)
    total = steps_per_epoch * settings.epochs
    warmup = max(1, int(total * settings.warmup))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda step: min((step + 1) / warmup, max(0.0, (total - step) / max(1, total - warmup)))
    )
    lengths = [len(ids) for ids in tokenizer(list(texts), truncation=True, max_length=settings.max_tokens)["input_ids"]]
    model.train()
    step = 0
    for _ in range(settings.epochs):
        for rows in _batches_of_similar_length(lengths, settings.batch_size, rng):
            batch = tokenizer(
                [texts[i] for i in rows],
                padding=True,
                truncation=True,
                max_length=settings.max_tokens,
                return_tensors="pt",
            )
            target = torch.tensor([float(labels[i]) for i in rows])
            loss = torch.nn.functional.binary_cross_entropy_with_logits(
                _logits(model, head, batch), target, pos_weight=weight
            )
            loss.backward()  # type: ignore[no-untyped-call]
            optimiser.step()
            schedule.step()
            optimiser.zero_grad()
            step += 1
            if progress is not None:
                progress(step, total)
    base, _ = _base_model()
    tensors = _change(base, model, settings.rank)
    tensors["head.weight"] = head.weight.detach().clone()
    tensors["head.bias"] = head.bias.detach().clone()
    return _encoder(base, tokenizer, tensors, settings), tensors


def _change(base: Any, tuned: Any, rank: int) -> dict[str, torch.Tensor]:
    """What fine-tuning changed in the layers: each projection's weight change as two
    factors of the given rank (its top singular directions, fp16), the layers' other
    parameters (biases, layer norms) whole."""
    import torch

    original = dict(base.named_parameters())
    linear = {f"{name}.weight" for name, module in tuned.named_modules() if isinstance(module, torch.nn.Linear)}
    tensors = {}
    with torch.no_grad():
        for name, parameter in tuned.named_parameters():
            if not name.startswith(LAYERS):
                continue
            change = parameter.detach() - original[name].detach()
            if name in linear:
                u, singular, vh = torch.linalg.svd(change, full_matrices=False)
                tensors[f"up.{name}"] = (u[:, :rank] * singular[:rank]).half().contiguous()
                tensors[f"down.{name}"] = vh[:rank].half().contiguous()
            else:
                tensors[f"set.{name}"] = parameter.detach().clone()
    return tensors


def _encoder(
    base: Any, tokenizer: Any, tensors: dict[str, torch.Tensor], settings: EncoderSettings
) -> InjectionEncoder:
    """The base model (changed in place) with the saved change applied, and the head."""
    import torch

    parameters = dict(base.named_parameters())
    unknown = [n for n in tensors if n.split(".", 1)[1] not in parameters and not n.startswith("head.")]
    if unknown:
        raise ValueError(f"the injection encoder's file names parameters the model lacks: {unknown[:3]}")
    halves = {n.split(".", 1)[1] for n in tensors if n.startswith("up.")}
    missing = [n for n in ("head.weight", "head.bias") if n not in tensors]
    missing += [f"down.{n}" for n in halves if f"down.{n}" not in tensors]
    if missing or len(halves) != sum(n.startswith("down.") for n in tensors):
        raise ValueError(f"the injection encoder's file is incomplete: {missing[:3] or 'unpaired factors'}")
    with torch.no_grad():
        for name, tensor in tensors.items():
            kind, parameter = name.split(".", 1)
            if kind == "up":
                parameters[parameter] += tensor.float() @ tensors[f"down.{parameter}"].float()
            elif kind == "set":
                parameters[parameter].copy_(tensor)
    base.eval()
    head = torch.nn.Linear(base.config.hidden_size, 1)
    head.load_state_dict({"weight": tensors["head.weight"], "bias": tensors["head.bias"]})
    head.eval()
    return InjectionEncoder(base, head, tokenizer, settings)


def _batches_of_similar_length(lengths: list[int], size: int, rng: random.Random) -> list[list[int]]:
    """One epoch's batches in random order, each of texts of about the same length: the
    rows are shuffled, sorted by length within windows of 50 batches and cut, so a short
    question is not padded to a long jailbreak's 128 tokens (three times fewer tokens)."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    window = size * 50
    batches = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lambda i: lengths[i])
        batches += [chunk[i : i + size] for i in range(0, len(chunk), size)]
    rng.shuffle(batches)
    return batches


def save(tensors: dict[str, Any], settings: EncoderSettings, path: Path, info: dict[str, Any]) -> None:
    from safetensors.torch import save_file

    metadata = {"settings": json.dumps(settings.__dict__), "info": json.dumps(info)}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({name: tensor.contiguous() for name, tensor in tensors.items()}, str(path), metadata=metadata)


def load(path: Path) -> InjectionEncoder:
    """The base model with the saved change applied, and the saved head."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
    saved = json.loads(metadata.get("settings", "{}"))
    if "alpha" in saved:
        raise ValueError(
            f"{path} holds LoRA matrices (an older format); retrain: manage.py train_moderation injection --encoder"
        )
    settings = EncoderSettings(**saved)
    base, tokenizer = _base_model()
    return _encoder(base, tokenizer, load_file(str(path)), settings)


def info(path: Path = ADAPTER_PATH) -> dict[str, Any]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
    loaded: dict[str, Any] = json.loads(metadata.get("info", "{}"))
    return loaded


_load_lock = threading.Lock()


@cache
def _default() -> InjectionEncoder | None:
    if not ADAPTER_PATH.exists():
        logger.warning("no fine-tuned injection encoder at %s; the linear head alone judges", ADAPTER_PATH)
        return None
    try:
        return load(ADAPTER_PATH)
    except ValueError as error:
        logger.error("cannot use the injection encoder at %s (%s); the linear head alone judges", ADAPTER_PATH, error)
        return None


def default_encoder() -> InjectionEncoder | None:
    """The shipped encoder, loaded once per process (None when its file is missing)."""
    with _load_lock:
        return _default()
