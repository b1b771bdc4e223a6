"""Reads for bots and conversations, always scoped to one organization."""

from __future__ import annotations

from typing import cast

from django.db.models import QuerySet

from bots.models import Bot
from neo_support.demo import DEMO_BOT_NAME, DEMO_SLUG
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
