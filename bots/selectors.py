"""Reads for bots and conversations, always scoped to one organization."""

from __future__ import annotations

from typing import cast

from django.conf import settings
from django.db.models import QuerySet

from bots.models import Bot
from neo_support.demo import DEMO_BOT_NAME, DEMO_SLUG
from neo_support.model_queues import served_models
from neo_support.models import Organization


def bot_list(*, organization: Organization) -> QuerySet[Bot]:
    return Bot.objects.for_organization(organization).prefetch_related("knowledge_bases")


def bot_get(*, organization: Organization, bot_id: int) -> Bot | None:
    return cast("Bot | None", bot_list(organization=organization).filter(pk=bot_id).first())


def bot_get_by_public_key(*, public_key: str) -> Bot | None:
    """The widget's entry point: the public key alone names the bot (and so its organization)."""
    return cast("Bot | None", Bot.objects.select_related("organization").filter(public_key=public_key).first())


def bot_demo() -> Bot | None:
    """The bot `load_demo` made, for the demo page: in the demo organization, the bot with
    the demo's name, else its oldest bot; None before the demo is loaded. Not simply the
    organization's first bot, because bots sort by name and the demo's admin adds their
    own ("Acme support" would open instead of the demo)."""
    bots = Bot.objects.filter(organization__slug=DEMO_SLUG).order_by("created_at", "pk")
    return cast("Bot | None", bots.filter(name=DEMO_BOT_NAME).first() or bots.first())


def bot_tuned_version_unused(*, bot: Bot) -> str | None:
    """Why the bot's deployed tuned version does not answer, for a warning: it was tuned on
    another base model than the one answering now, so replies skip its adapter and the
    base model answers alone (workers.generation.adapters.adapter_choose). None when no
    tuned version is deployed or it is the one answering."""
    version = bot.model_version
    answering = bot.answering_model
    if version is None or version.base_model == answering:
        return None
    trained_on = version.base_model
    if trained_on in served_models(settings.NEO_MODEL, settings.NEO_MODELS):
        return (
            f"Tuned version {version.label} was trained on {trained_on} and will not be used until it is "
            f"re-tuned on {answering} or the base model is switched back to {trained_on}."
        )
    return (
        f"Tuned version {version.label} was trained on {trained_on}, which this server no longer serves, "
        f"and will not be used until it is re-tuned on {answering}."
    )
