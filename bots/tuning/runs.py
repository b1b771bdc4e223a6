"""One tuning run of a bot, on the `training` queue: build the examples, train the
adapter with progress in the database, evaluate base against tuned, and mark the
version ready (deployable) or rejected. The bot keeps answering with its current
version throughout; a worker killed mid-way resumes from the checkpoint when the task
is delivered again."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from bots.models import ModelVersion, ModelVersionStatus
from workers.generation.loading import ModelUnavailable, resolve_device
from workers.moderation.pipeline import Policy
from workers.training.dataset import NotEnoughHistory, build_examples, write_jsonl
from workers.training.evaluation import regressions, score
from workers.training.finetune import (
    Progress,
    TrainingCancelled,
    TrainingConfig,
    load_base,
    load_tuned,
    train_adapter,
)

logger = logging.getLogger(__name__)

FINISHED = [
    ModelVersionStatus.READY,
    ModelVersionStatus.REJECTED,
    ModelVersionStatus.FAILED,
    ModelVersionStatus.CANCELLED,
]
PROGRESS_EVERY_SECONDS = 2.0
# A run whose progress is fresher than this belongs to a live worker: the same task
# delivered again (the broker's visibility timeout passed during a long run) leaves it.
ALIVE_SECONDS = 120.0


def adapter_path(version: ModelVersion) -> Path:
    return Path(settings.MEDIA_ROOT) / version.adapter_dir


def _update(version: ModelVersion, **fields: object) -> None:
    ModelVersion.objects.filter(pk=version.pk).update(**fields)
    for name, value in fields.items():
        setattr(version, name, value)


def _finish(version: ModelVersion, status: str, **fields: object) -> str:
    _update(version, status=status, finished_at=timezone.now(), **fields)
    return status


def model_version_train(version: ModelVersion) -> str:
    """Run (or resume) the version's training and evaluation; returns its final status."""
    if version.status in FINISHED:
        return version.status
    if version.cancel_requested:
        return _finish(version, ModelVersionStatus.CANCELLED)
    busy = version.status in (ModelVersionStatus.TRAINING, ModelVersionStatus.EVALUATING)
    if busy and time.time() - float(version.progress.get("at", 0)) < ALIVE_SECONDS:
        return str(version.status)
    _update(version, status=ModelVersionStatus.TRAINING, error="")
    bot = version.bot
    try:
        examples = build_examples(bot)
    except NotEnoughHistory as problem:
        return _finish(version, ModelVersionStatus.FAILED, error=str(problem))
    output = adapter_path(version)
    write_jsonl(examples, output / "dataset.jsonl")
    counts: dict[str, int] = {}
    for example in examples:
        key = f"{example.split}_{example.source}"
        counts[key] = counts.get(key, 0) + 1
    _update(version, examples=counts)

    config = TrainingConfig(**version.config)
    device = resolve_device(settings.NEO_DEVICE)
    last_saved = 0.0

    def report(progress: Progress) -> None:
        nonlocal last_saved
        if time.monotonic() - last_saved < PROGRESS_EVERY_SECONDS and progress.step < progress.total_steps:
            return
        last_saved = time.monotonic()
        _update(
            version,
            progress={
                "step": progress.step,
                "total_steps": progress.total_steps,
                "loss": round(progress.loss, 4),
                "eta_seconds": round(progress.eta_seconds, 1),
                "at": time.time(),
            },
        )

    def cancelled() -> bool:
        return bool(ModelVersion.objects.filter(pk=version.pk, cancel_requested=True).exists())

    try:
        result = train_adapter(
            base=version.base_model,
            examples=examples,
            config=config,
            output=output,
            device=device,
            on_progress=report,
            cancelled=cancelled,
        )
    except TrainingCancelled as stop:
        return _finish(version, ModelVersionStatus.CANCELLED, error=str(stop))
    except ModelUnavailable as problem:
        return _finish(version, ModelVersionStatus.FAILED, error=str(problem))
    compute = {
        "device": device,
        "seconds": round(result.seconds, 2),
        "tokens": result.tokens,
        "tokens_per_second": round(result.tokens_per_second, 1),
        "steps": result.steps,
        "resumed_from": result.resumed_from,
        "notes": result.notes,
    }
    _update(
        version, status=ModelVersionStatus.EVALUATING, compute=compute, progress={**version.progress, "at": time.time()}
    )

    policy = Policy.from_bot(bot.moderation_policy)
    tokenizer, base = load_base(version.base_model, device)
    base_scores = score(base, tokenizer, examples, policy=policy, device=device, max_tokens=config.max_tokens)
    _update(version, progress={**version.progress, "at": time.time()})
    tuned = load_tuned(base, output / "adapter")  # the adapter goes onto the same copy: one model in memory
    tuned_scores = score(tuned, tokenizer, examples, policy=policy, device=device, max_tokens=config.max_tokens)
    worse = regressions(base_scores, tuned_scores)
    metrics = {"base": base_scores.as_dict(), "tuned": tuned_scores.as_dict(), "regressions": worse}
    status = ModelVersionStatus.REJECTED if worse else ModelVersionStatus.READY
    logger.info("model version %s of bot %s: %s %s", version.label, bot.pk, status, metrics)
    return _finish(version, status, metrics=metrics, config=asdict(config))
