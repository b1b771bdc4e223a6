"""Writes for the moderation log: an owner's review of a flag, and what it teaches."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from bots.models import (
    Bot,
    Message,
    ModerationExample,
    Role,
)
from bots.moderation_log.findings import false_positive_phrases, merge_phrases, taught_texts
from neo_support import audit
from workers.moderation.taught import compared_text
from workers.moderation.vectors import embed_texts


@dataclass
class FalsePositiveReview:
    phrases: list[str] = field(default_factory=list)  # added to the bot's allowlist
    taught: list[ModerationExample] = field(default_factory=list)  # taught to a classifier filter


def message_mark_false_positive(*, message: Message, user: AbstractBaseUser) -> FalsePositiveReview:
    """Record that `message`'s flag or block was wrong. A classifier's judgement (hate, the
    injection head) is taught by example: the screened text and its embedding are kept for
    the organization and that filter (workers.moderation.taught), so texts like it pass
    too. What a rule flagged (blocked words, an injection phrase, grounding) is allowlisted
    in the bot's moderation policy (bots.moderation_log.findings.false_positive_phrases).

    Marking again is harmless: phrases are merged case-insensitively and an example is
    kept once per message, filter and text, so a repeat only re-adds what was removed
    since, and the first review is kept."""
    from_visitor = message.role == Role.VISITOR
    phrases = false_positive_phrases(text=message.text, verdicts=message.moderation, from_visitor=from_visitor)
    texts = taught_texts(text=message.text, verdicts=message.moderation, from_visitor=from_visitor)
    # Embedded before the transaction: the model may take a while to load the first time.
    compared = [compared_text(taught.filter, taught.text) for taught in texts]
    vectors = embed_texts(compared) if texts else np.zeros((0, 0), dtype=np.float32)
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
        examples = [
            ModerationExample.objects.get_or_create(
                message=message,
                filter=taught.filter,
                text=taught.text,
                defaults={
                    "organization_id": bot.organization_id,
                    "embedding": vector.astype("float32").tobytes(),
                    "score": taught.score,
                    "created_by": user,
                },
            )[0]
            for taught, vector in zip(texts, vectors, strict=True)
        ]
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
            after={"allowlist": allowlist, "taught": [_described(example) for example in examples]},
        )
    return FalsePositiveReview(phrases=phrases, taught=examples)


def moderation_example_remove(*, example: ModerationExample, user: AbstractBaseUser) -> None:
    """Stop allowing texts like `example`: the filter judges them again from the next
    screening on (workers re-read an organization's examples when they change)."""
    with transaction.atomic():
        audit.record(
            organization=example.organization_id,
            action="moderation.untaught",
            target_kind="moderation example",
            target_id=example.pk,
            target_label=f"{example.filter} example {example.pk} (message {example.message_id})",
            before=_described(example),
            after=None,
        )
        example.delete()


def _described(example: ModerationExample) -> dict[str, object]:
    # Not the text: the audit log outlives a person's erasure, the example does not.
    return {"id": example.pk, "filter": example.filter, "message": example.message_id}
