"""Reads for the moderation log, scoped to one organization."""

from __future__ import annotations

from typing import cast

from django.db.models import QuerySet

from bots.models import Message
from bots.moderation_log.findings import REVIEWED_ACTIONS
from neo_support.models import Organization


class ReviewState:
    UNREVIEWED = "unreviewed"
    FALSE_POSITIVE = "false_positive"


def moderation_log_list(
    *,
    organization: Organization,
    bot_id: int | None = None,
    action: str | None = None,
    filter_name: str | None = None,
    review: str | None = None,
) -> QuerySet[Message]:
    """The organization's flagged, blocked (and withheld) messages, newest first, optionally
    only one bot's, one action's, one filter's (any finding of it), or one review state's."""
    messages = (
        Message.objects.for_organization(organization)
        .filter(moderation_action__in=REVIEWED_ACTIONS)
        .select_related("conversation__bot")
        .order_by("-created_at", "-pk")
    )
    if bot_id is not None:
        messages = messages.filter(conversation__bot_id=bot_id)
    if action is not None:
        messages = messages.filter(moderation_action=action)
    if filter_name is not None:
        # The stored JSON as text, on SQLite and Postgres alike: json.dumps and jsonb both
        # write `"key": "value"`, and a quote inside a string is escaped, so a reason or an
        # excerpt cannot fake the match.
        messages = messages.filter(moderation__icontains=f'"filter": "{filter_name}"')
    if review == ReviewState.FALSE_POSITIVE:
        messages = messages.filter(moderation_review__has_key="false_positive")
    elif review == ReviewState.UNREVIEWED:
        messages = messages.exclude(moderation_review__has_key="false_positive")
    return messages


def moderation_log_message_get(*, organization: Organization, message_id: int) -> Message | None:
    return cast("Message | None", moderation_log_list(organization=organization).filter(pk=message_id).first())
