"""Reads for bots and conversations, always scoped to one organization."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from bots.models import Bot, Conversation, ConversationStatus, Message, Ticket
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
