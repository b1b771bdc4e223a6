"""One tuning run of a bot, on the `training` queue: build the examples, train and
evaluate (workers.training.run) with progress in the database, and mark the version
ready (deployable) or rejected. The bot keeps answering with its current
version throughout; a worker killed mid-way resumes from the checkpoint when the task
is delivered again."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from pathlib import Path
from typing import cast

from django.conf import settings
from django.utils import timezone

from bots.models import ModelVersion, ModelVersionStatus
from bots.tuning.adapter_files import adapter_publish
from bots.tuning.examples import build_examples
from workers.generation.model import resolve_device
from workers.training.dataset import NotEnoughHistory, write_jsonl
from workers.training.finetune import Progress, TrainingConfig
from workers.training.run import example_counts, tune_and_evaluate

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
        return cast(str, version.status)
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
    _update(version, examples=example_counts(examples))

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

    outcome = tune_and_evaluate(
        examples=examples,
        base_model=version.base_model,
        config=config,
        output=output,
        device=device,
        moderation_policy=bot.moderation_policy if isinstance(bot.moderation_policy, dict) else {},
        on_progress=report,
        cancelled=cancelled,
        on_trained=lambda compute: _update(
            version,
            status=ModelVersionStatus.EVALUATING,
            compute=compute,
            progress={**version.progress, "at": time.time()},
        ),
        on_alive=lambda: _update(version, progress={**version.progress, "at": time.time()}),
    )
    if outcome.status in (ModelVersionStatus.CANCELLED, ModelVersionStatus.FAILED):
        return _finish(version, outcome.status, error=outcome.error)
    adapter_publish(version=version)  # before READY: a generation host may fetch it at once
    logger.info("model version %s of bot %s: %s %s", version.label, bot.pk, outcome.status, outcome.metrics)
    return _finish(version, outcome.status, metrics=outcome.metrics, config=asdict(config))
