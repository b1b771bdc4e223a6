"""Writes for bots and conversations."""

from __future__ import annotations

from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import transaction

from bots.models import (
    Bot,
)
from neo_support import audit
from neo_support.models import Organization
from retrieval.models import KnowledgeBase


def bot_set_knowledge_bases(*, bot: Bot, knowledge_bases: Iterable[KnowledgeBase]) -> None:
    """Attach exactly these knowledge bases; all must belong to the bot's organization."""
    chosen = list(knowledge_bases)
    foreign = [kb for kb in chosen if kb.organization_id != bot.organization_id]
    if foreign:
        raise ValueError(f"Knowledge base {foreign[0].name!r} belongs to another organization.")
    bot.knowledge_bases.set(chosen)


def bot_create(
    *,
    organization: Organization,
    name: str,
    knowledge_bases: Iterable[KnowledgeBase] = (),
    **fields: object,
) -> Bot:
    with transaction.atomic():
        bot = Bot(organization=organization, name=name, **fields)
        bot.full_clean()
        bot.save()
        bot_set_knowledge_bases(bot=bot, knowledge_bases=knowledge_bases)
        audit.record(
            organization=organization,
            action="bot.create",
            target=bot,
            after={**audit.snapshot(bot, ["name", *fields]), "knowledge_bases": _kb_ids(bot)},
        )
    return bot


def bot_update(*, bot: Bot, knowledge_bases: Iterable[KnowledgeBase] | None = None, **fields: object) -> Bot:
    """Set `fields` on the bot, validate the whole bot (full_clean: field validators and the
    threshold ordering constraint) and save only those fields; with `knowledge_bases`,
    attach exactly those (all of the bot's organization). Raises ValidationError, or
    ValueError for another organization's knowledge base, and then writes nothing and
    leaves the instance as it was."""
    before = {name: getattr(bot, name) for name in fields}
    audited_before = {**audit.snapshot(bot, fields), "knowledge_bases": _kb_ids(bot)}
    for name, value in fields.items():
        setattr(bot, name, value)
    try:
        with transaction.atomic():
            bot.full_clean()
            bot.save(update_fields=[*fields, "updated_at"])
            if knowledge_bases is not None:
                bot_set_knowledge_bases(bot=bot, knowledge_bases=knowledge_bases)
            was, now = audit.changes(audited_before, {**audit.snapshot(bot, fields), "knowledge_bases": _kb_ids(bot)})
            audit.record(organization=bot.organization_id, action="bot.update", target=bot, before=was, after=now)
    except (ValidationError, ValueError):
        for name, value in before.items():
            setattr(bot, name, value)
        raise
    return bot


def bot_delete(*, bot: Bot) -> None:
    """Delete the bot with its conversations, messages and tickets (they cascade)."""
    with transaction.atomic():
        audit.record(organization=bot.organization_id, action="bot.delete", target=bot)
        bot.delete()


def _kb_ids(bot: Bot) -> list[int]:
    return sorted(bot.knowledge_bases.values_list("pk", flat=True))
