"""Reads for bots and conversations, always scoped to one organization."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.db.models import Count, Exists, OuterRef, QuerySet

from bots.models import Bot, Conversation, ConversationStatus, Message, Ticket
from bots.moderation_log import REVIEWED_ACTIONS
from neo_support.models import Organization


def bot_list(*, organization: Organization) -> QuerySet[Bot]:
    return Bot.objects.for_organization(organization).prefetch_related("knowledge_bases")


def bot_get(*, organization: Organization, bot_id: int) -> Bot | None:
    return bot_list(organization=organization).filter(pk=bot_id).first()


def bot_get_by_public_key(*, public_key: str) -> Bot | None:
    """The widget's entry point: the public key alone names the bot (and so its organization)."""
    return Bot.objects.select_related("organization").filter(public_key=public_key).first()


def conversation_list(*, organization: Organization, status: str | None = None) -> QuerySet[Conversation]:
    conversations = Conversation.objects.for_organization(organization).select_related("bot", "assignee")
    return conversations if status is None else conversations.filter(status=status)


def ticket_list(*, organization: Organization) -> QuerySet[Ticket]:
    return Ticket.objects.for_organization(organization).select_related("conversation__bot", "assignee")


HISTORY_LIMIT = 50


def conversation_for_visitor(*, bot: Bot, visitor_id: str, conversation_id: int | None) -> Conversation | None:
    """The visitor's open conversation with `bot`: the one their token names, if it is
    still theirs and not closed."""
    if conversation_id is None:
        return None
    return (
        Conversation.objects.filter(pk=conversation_id, bot=bot, visitor_id=visitor_id)
        .exclude(status=ConversationStatus.CLOSED)
        .first()
    )


def message_payload(message: Message) -> dict[str, Any]:
    """A message as the widget shows it (docs/protocol.md, `welcome.history`)."""
    return {
        "id": message.pk,
        "role": message.role,
        "text": message.text,
        "status": message.status,
        "citations": message.citations,
        "created_at": message.created_at.isoformat(),
    }


def conversation_history(*, conversation: Conversation) -> list[dict[str, Any]]:
    """The latest messages, oldest first."""
    latest = list(Message.objects.filter(conversation=conversation).order_by("-created_at", "-pk")[:HISTORY_LIMIT])
    return [message_payload(message) for message in reversed(latest)]


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
    return moderation_log_list(organization=organization).filter(pk=message_id).first()


def conversations_filtered(
    *,
    organization: Organization,
    bot: Bot | None = None,
    status: str = "",
    channel: str = "",
    started_from: date | None = None,
    started_to: date | None = None,
    search: str = "",
) -> QuerySet[Conversation]:
    """The organization's conversations, latest activity first, with their message counts,
    narrowed by each filter given; `search` matches any message's text, case-insensitively."""
    conversations = (
        Conversation.objects.for_organization(organization)
        .select_related("bot", "assignee", "ticket")
        .annotate(message_count=Count("messages"))
        .order_by("-last_activity_at", "-pk")
    )
    if bot is not None:
        conversations = conversations.filter(bot=bot)
    if status:
        conversations = conversations.filter(status=status)
    if channel:
        conversations = conversations.filter(channel=channel)
    if started_from is not None:
        conversations = conversations.filter(created_at__date__gte=started_from)
    if started_to is not None:
        conversations = conversations.filter(created_at__date__lte=started_to)
    if search:
        matching = Message.objects.filter(conversation=OuterRef("pk"), text__icontains=search)
        conversations = conversations.filter(Exists(matching))
    return conversations
