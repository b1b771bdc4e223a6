"""LoRA fine-tuning of a bot's GPT-Neo on its training examples, and the perplexity
that decides whether the result may be deployed.

Parameter-efficient (peft's LoRA on the attention and MLP projections, found in the
model whatever its family: `workers.generation.adapters.lora_target_modules`): the base
weights stay frozen and shared, an adapter is a few megabytes. The loss counts only the
answer's tokens; the prompt is the run-time prompt, cut from the left when too long.
Training writes a checkpoint (adapter, optimizer and schedule, step, random state) every
`checkpoint_every` steps and when cancelled, and resumes from it; a checkpoint that
cannot be read is set aside and training starts over.
"""

from __future__ import annotations

import logging
import math
import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workers.training.dataset import Example

logger = logging.getLogger(__name__)

IGNORE = -100


@dataclass(frozen=True)
class TrainingConfig:
    epochs: float = 3.0
    rank: int = 8
    alpha: int = 16
    dropout: float = 0.05
    learning_rate: float = 5e-4
    batch_size: int = 8
    max_tokens: int = 512
    checkpoint_every: int = 50
    seed: int = 0

    def __post_init__(self) -> None:
        if not (0 < self.epochs <= 100 and 1 <= self.rank <= 256 and 0 < self.learning_rate < 1):
            raise ValueError("epochs must be in (0, 100], rank in [1, 256] and the learning rate in (0, 1).")
        if self.batch_size < 1 or self.max_tokens < 16 or self.checkpoint_every < 1:
            raise ValueError("batch_size ≥ 1, max_tokens ≥ 16 and checkpoint_every ≥ 1.")


@dataclass
class Progress:
    step: int
    total_steps: int
    loss: float
    tokens: int
    elapsed_seconds: float

    @property
    def eta_seconds(self) -> float:
        done = max(1, self.step)
        return self.elapsed_seconds / done * max(0, self.total_steps - self.step)


@dataclass
class TrainingResult:
    steps: int
    tokens: int
    seconds: float
    device: str
    final_loss: float
    resumed_from: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0


class TrainingCancelled(Exception):  # noqa: N818 - a person's decision, not a fault
    """Stopped on request; the checkpoint holds the progress."""


def prompt_text(tokenizer: Any, example: Example) -> str:
    """The example's prompt as the model is prompted at run time: rendered with the
    tokenizer's chat template when it has one (and the example has chat messages), else
    the completion text."""
    from workers.generation.model import render_chat

    if example.messages and getattr(tokenizer, "chat_template", None):
        return render_chat(tokenizer, example.messages)
    return example.prompt


def encode(tokenizer: Any, example: Example, max_tokens: int) -> tuple[list[int], list[int]]:
    """Token ids of prompt + answer + end, and labels that count only the answer."""
    prompt = tokenizer(prompt_text(tokenizer, example), add_special_tokens=False)["input_ids"]
    answer = tokenizer(example.answer, add_special_tokens=False)["input_ids"]
    if tokenizer.eos_token_id is not None:
        answer = [*answer, tokenizer.eos_token_id]
    answer = answer[: max_tokens // 2] if len(answer) > max_tokens // 2 else answer
    prompt = prompt[-(max_tokens - len(answer)) :] if len(prompt) + len(answer) > max_tokens else prompt
    return prompt + answer, [IGNORE] * len(prompt) + answer


def _batch(rows: Sequence[tuple[list[int], list[int]]], pad_id: int, device: str) -> dict[str, Any]:
    import torch

    width = max(len(ids) for ids, _ in rows)
    input_ids = [ids + [pad_id] * (width - len(ids)) for ids, _ in rows]
    labels = [labels + [IGNORE] * (width - len(labels)) for _, labels in rows]
    mask = [[1] * len(ids) + [0] * (width - len(ids)) for ids, _ in rows]
    return {
        "input_ids": torch.tensor(input_ids, device=device),
        "labels": torch.tensor(labels, device=device),
        "attention_mask": torch.tensor(mask, device=device),
    }


def load_base(name: str, device: str) -> tuple[Any, Any]:
    """A trainable fp32 copy of the base model (never the one serving replies)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from workers.generation.model import ModelUnavailable, missing_weights_message

    try:
        tokenizer = AutoTokenizer.from_pretrained(name)
        # As the nn.Module it is: PreTrainedModel.to borrows nn.Module.to's signature with
        # functools.wraps, and mypy does not bind such a wrapper's `self` to the instance.
        model: torch.nn.Module = AutoModelForCausalLM.from_pretrained(name, dtype=torch.float32)
    except (OSError, ValueError) as error:
        raise ModelUnavailable(missing_weights_message(name, error)) from None
    return tokenizer, model.to(device)


def perplexity(
    model: Any, tokenizer: Any, examples: Sequence[Example], *, max_tokens: int = 512, device: str = "cpu"
) -> float:
    """exp of the mean negative log-likelihood of the answers' tokens, given their prompts."""
    import torch

    total, count = 0.0, 0
    pad_id = tokenizer.eos_token_id or 0
    model.eval()
    rows = [encode(tokenizer, example, max_tokens) for example in examples]
    with torch.inference_mode():
        for start in range(0, len(rows), 8):
            batch = _batch(rows[start : start + 8], pad_id, device)
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.float()
            shifted, targets = logits[:, :-1], batch["labels"][:, 1:]
            losses = torch.nn.functional.cross_entropy(
                shifted.reshape(-1, shifted.shape[-1]), targets.reshape(-1), ignore_index=IGNORE, reduction="sum"
            )
            total += float(losses)
            count += int((targets != IGNORE).sum())
    return math.exp(total / count) if count else float("nan")


def train_adapter(
    *,
    base: str,
    examples: Sequence[Example],
    config: TrainingConfig,
    output: Path,
    device: str = "cpu",
    on_progress: Callable[[Progress], None] | None = None,
    cancelled: Callable[[], bool] = lambda: False,
) -> TrainingResult:
    """Train a LoRA adapter on the training split and save it to `output/adapter`."""
    import torch
    from peft import LoraConfig, get_peft_model

    from workers.generation.adapters import has_transposed_linears, lora_target_modules

    training = [example for example in examples if example.split == "train"]
    if not training:
        raise ValueError("No training examples.")
    torch.manual_seed(config.seed)
    tokenizer, model = load_base(base, device)
    targets = lora_target_modules(model)
    lora = LoraConfig(
        r=config.rank,
        lora_alpha=config.alpha,
        lora_dropout=config.dropout,
        target_modules=targets,
        fan_in_fan_out=has_transposed_linears(model, targets),
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(model, lora)
    rows = [encode(tokenizer, example, config.max_tokens) for example in training]
    steps_per_epoch = math.ceil(len(rows) / config.batch_size)
    total_steps = max(1, round(steps_per_epoch * config.epochs))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.learning_rate)
    warmup = max(1, total_steps // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min((step + 1) / warmup, max(0.0, (total_steps - step) / max(1, total_steps - warmup)))
    )
    checkpoint = output / "checkpoint"
    result = TrainingResult(steps=0, tokens=0, seconds=0.0, device=device, final_loss=float("nan"))
    step = _resume(checkpoint, model, optimizer, schedule, result)
    result.resumed_from = step
    pad_id = tokenizer.eos_token_id or 0
    started = time.perf_counter() - result.seconds
    model.train()
    while step < total_steps:
        epoch, offset = divmod(step, steps_per_epoch)
        order = list(range(len(rows)))
        random.Random(config.seed * 1000 + epoch).shuffle(order)
        chosen = [rows[i] for i in order[offset * config.batch_size : (offset + 1) * config.batch_size]]
        batch = _batch(chosen, pad_id, device)
        loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        result.steps, result.final_loss = step, float(loss.detach())
        result.tokens += int(batch["attention_mask"].sum())
        result.seconds = time.perf_counter() - started
        if on_progress is not None:
            on_progress(Progress(step, total_steps, result.final_loss, result.tokens, result.seconds))
        if step % config.checkpoint_every == 0 or step == total_steps:
            _save_checkpoint(checkpoint, model, optimizer, schedule, result)
        if step < total_steps and cancelled():
            _save_checkpoint(checkpoint, model, optimizer, schedule, result)
            raise TrainingCancelled(f"Cancelled at step {step} of {total_steps}.")
    adapter = output / "adapter"
    staging = output / "adapter.new"
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(str(staging))  # peft declares the directory a str
    shutil.rmtree(adapter, ignore_errors=True)
    staging.rename(adapter)
    return result


def _save_checkpoint(directory: Path, model: Any, optimizer: Any, schedule: Any, result: TrainingResult) -> None:
    """Written beside, then swapped in: a crash mid-write leaves the previous checkpoint."""
    import torch

    staging = directory.with_name(directory.name + ".new")
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(staging)
    torch.save(
        {
            "optimizer": optimizer.state_dict(),
            "schedule": schedule.state_dict(),
            "step": result.steps,
            "tokens": result.tokens,
            "seconds": result.seconds,
            "loss": result.final_loss,
            "rng": torch.get_rng_state(),
        },
        staging / "state.pt",
    )
    old = directory.with_name(directory.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if directory.exists():
        directory.rename(old)
    staging.rename(directory)
    shutil.rmtree(old, ignore_errors=True)


def _resume(directory: Path, model: Any, optimizer: Any, schedule: Any, result: TrainingResult) -> int:
    """The step to go on from: the checkpoint's, or 0 when there is none or it is unreadable."""
    import torch
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    if not directory.exists():
        return 0
    try:
        state = torch.load(directory / "state.pt", map_location="cpu", weights_only=True)
        weights = load_file(directory / "adapter_model.safetensors")
        set_peft_model_state_dict(model, weights)
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        torch.set_rng_state(state["rng"])
    except Exception as error:  # noqa: BLE001 - any unreadable checkpoint: start over, say so
        aside = directory.with_name(directory.name + ".corrupt")
        shutil.rmtree(aside, ignore_errors=True)
        directory.rename(aside)
        note = f"The checkpoint could not be read ({type(error).__name__}); training started over."
        logger.warning("%s: %s", directory, note)
        result.notes.append(note)
        return 0
    result.steps, result.tokens = int(state["step"]), int(state["tokens"])
    result.seconds, result.final_loss = float(state["seconds"]), float(state["loss"])
    return result.steps


def load_tuned(base_model: Any, adapter: Path) -> Any:
    """The base model with an adapter applied (peft), for evaluation or serving."""
    from peft import PeftModel

    return PeftModel.from_pretrained(base_model, str(adapter))
