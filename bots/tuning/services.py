"""Tuning a bot's model on its own history (workers/training): start a run, cancel it,
choose which version answers, roll back. The bot keeps its current version until a
person deploys a ready one."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from django.db import transaction
from django.db.models import Max

from bots.models import Bot, ModelVersion, ModelVersionStatus
from neo_support import audit
from neo_support.tasking import enqueue

RUNNING = [ModelVersionStatus.QUEUED, ModelVersionStatus.TRAINING, ModelVersionStatus.EVALUATING]


class TuningRefused(Exception):  # noqa: N818 - a refusal shown to the person, not a crash
    """The request cannot be done; the message says why."""


def model_version_start(
    *, bot: Bot, options: dict[str, Any] | None = None, by: Any = None, queue: bool = True
) -> ModelVersion:
    """Queue a tuning run with `options` (TrainingConfig's fields); one run per bot at a
    time. `queue=False` when the caller runs it itself (`manage.py tune_bot --now`)."""
    from bots.tuning.examples import usable_answer_count
    from workers.training.dataset import NotEnoughHistory, require_history
    from workers.training.finetune import TrainingConfig

    try:
        config = TrainingConfig(**(options or {}))
    except (TypeError, ValueError) as error:
        raise TuningRefused(f"Invalid training settings: {error}") from None
    try:
        require_history(bot.name, usable_answer_count(bot))
    except NotEnoughHistory as problem:
        raise TuningRefused(str(problem)) from None
    with transaction.atomic():
        Bot.objects.select_for_update().get(pk=bot.pk)
        if ModelVersion.objects.filter(bot=bot, status__in=RUNNING).exists():
            raise TuningRefused("A model is already being tuned for this bot; wait for it or cancel it.")
        number = (ModelVersion.objects.filter(bot=bot).aggregate(top=Max("number"))["top"] or 0) + 1
        version: ModelVersion = ModelVersion.objects.create(
            bot=bot, number=number, base_model=bot.answering_model, config=asdict(config), created_by=by
        )
        audit.record(
            organization=bot.organization_id,
            action="model.run_start",
            target=version,
            target_label=f"{bot.name} {version.label}",
            after={"base_model": version.base_model, "config": version.config},
        )
        if queue:
            enqueue("workers.tasks.train_model_version", version.pk)
    return version


def model_version_cancel(*, version: ModelVersion) -> ModelVersion:
    if version.status not in RUNNING:
        raise TuningRefused(f"{version.label} is {version.get_status_display().lower()}; only a running one stops.")
    with transaction.atomic():
        ModelVersion.objects.filter(pk=version.pk).update(cancel_requested=True)
        version.cancel_requested = True
        audit.record(
            organization=version.bot.organization_id,
            action="model.run_cancel",
            target=version,
            target_label=f"{version.bot.name} {version.label}",
        )
    return version


def bot_model_deploy(*, bot: Bot, version: ModelVersion | None) -> Bot:
    """Answer with `version` from the next reply on (None: the base model; also the
    rollback). Workers load the adapter when they first need it; nothing restarts."""
    if version is not None:
        if version.bot_id != bot.pk:
            raise TuningRefused("That model version belongs to another bot.")
        if version.status != ModelVersionStatus.READY:
            raise TuningRefused(
                f"{version.label} is {version.get_status_display().lower()}; only a ready version can answer."
            )
    before = {"model_version": bot.model_version_id}
    with transaction.atomic():
        Bot.objects.filter(pk=bot.pk).update(model_version=version)
        bot.model_version = version
        audit.record(
            organization=bot.organization_id,
            action="model.deploy" if version is not None else "model.rollback",
            target=bot,
            before=before,
            after={"model_version": bot.model_version_id},
        )
    return bot
