"""Writes for the moderation log: an owner's review of a flag."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from bots.models import (
    Bot,
    Message,
    Role,
)
from bots.moderation_log.findings import false_positive_phrases, merge_phrases
from neo_support import audit


def message_mark_false_positive(*, message: Message, user: AbstractBaseUser) -> list[str]:
    """Record that `message`'s flag or block was wrong and allowlist what was flagged
    (bots.moderation_log.findings.false_positive_phrases) in its bot's moderation policy.

    Marking again is harmless: the phrases are merged case-insensitively, so a repeat
    only re-adds any that were removed since, and the first review is kept. Returns the
    message's phrases.
    """
    phrases = false_positive_phrases(
        text=message.text, verdicts=message.moderation, from_visitor=message.role == Role.VISITOR
    )
    with transaction.atomic():
        # Locked, so two reviews at once cannot drop each other's phrases.
        bot = Bot.objects.select_for_update().get(pk=message.conversation.bot_id)
        policy = bot.moderation_policy if isinstance(bot.moderation_policy, dict) else {}
        existing = policy.get("allowlist")
        existing = [str(phrase) for phrase in existing] if isinstance(existing, list) else []
        allowlist = merge_phrases(existing, phrases)
        if allowlist != existing:
            bot.moderation_policy = {**policy, "allowlist": allowlist}
            bot.save(update_fields=["moderation_policy", "updated_at"])
        if not message.moderation_review.get("false_positive"):
            message.moderation_review = {
                "false_positive": True,
                "by": user.pk,
                "at": timezone.now().isoformat(),
                "phrases": phrases,
            }
            message.save(update_fields=["moderation_review", "updated_at"])
        audit.record(
            organization=bot.organization_id,
            action="moderation.false_positive",
            target=message,
            target_label=f"message {message.pk} of {bot.name}",
            before={"allowlist": existing},
            after={"allowlist": allowlist},
        )
    return phrases
