"""Reads for bots and conversations, always scoped to one organization."""

from __future__ import annotations

from typing import cast

from django.db.models import QuerySet

from bots.models import Bot
from neo_support.models import Organization


def bot_list(*, organization: Organization) -> QuerySet[Bot]:
    return Bot.objects.for_organization(organization).prefetch_related("knowledge_bases")


def bot_get(*, organization: Organization, bot_id: int) -> Bot | None:
    return cast("Bot | None", bot_list(organization=organization).filter(pk=bot_id).first())


def bot_get_by_public_key(*, public_key: str) -> Bot | None:
    """The widget's entry point: the public key alone names the bot (and so its organization)."""
    return cast("Bot | None", Bot.objects.select_related("organization").filter(public_key=public_key).first())
