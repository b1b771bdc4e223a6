"""Reads for conversations, always scoped to one organization or one visitor."""

from __future__ import annotations

from datetime import date
from typing import Any, cast

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Exists, OuterRef, Q, QuerySet

from bots.models import Bot, Conversation, ConversationStatus, Delivery, Message, Role
from neo_support.models import Organization


def conversation_list(*, organization: Organization, status: str | None = None) -> QuerySet[Conversation]:
    conversations = Conversation.objects.for_organization(organization).select_related("bot", "assignee")
    return conversations if status is None else conversations.filter(status=status)


HISTORY_LIMIT = 50


def conversation_for_visitor(*, bot: Bot, visitor_id: str, conversation_id: int | None) -> Conversation | None:
    """The visitor's open conversation with `bot`: the one their token names, if it is
    still theirs and not closed."""
    if conversation_id is None:
        return None
    return cast(
        "Conversation | None",
        Conversation.objects.filter(pk=conversation_id, bot=bot, visitor_id=visitor_id)
        .exclude(status=ConversationStatus.CLOSED)
        .first(),
    )


AGENT_FALLBACK_NAME = "Support team"


def agent_display_name(user: AbstractBaseUser | None) -> str:
    """How a person is named to visitors: their full name, else their username; never
    their email address (a username that is one gives only the part before the @)."""
    if user is None:
        return AGENT_FALLBACK_NAME
    get_full_name = getattr(user, "get_full_name", None)
    full = str(get_full_name() if callable(get_full_name) else "").strip()
    if full:
        return full[:80]
    username = str(user.get_username()).strip()
    if "@" in username:
        username = username.split("@", 1)[0].strip()
    return username[:80] or AGENT_FALLBACK_NAME


def message_payload(message: Message) -> dict[str, Any]:
    """A message as the widget shows it (docs/protocol.md, `welcome.history`); a person's
    message also names them (`author`)."""
    payload: dict[str, Any] = {
        "id": message.pk,
        "role": message.role,
        "text": message.text,
        "status": message.status,
        "citations": message.citations,
        "created_at": message.created_at.isoformat(),
    }
    if message.role == Role.AGENT:
        payload["author"] = agent_display_name(message.author)
    return payload


# What the visitor never sees: agents' internal notes (system messages with an author)
# and the bot's drafts waiting for an agent.
_HIDDEN_FROM_VISITOR = Q(role=Role.SYSTEM, author__isnull=False) | Q(role=Role.BOT, delivery=Delivery.DRAFT)


def conversation_history(*, conversation: Conversation) -> list[dict[str, Any]]:
    """The latest messages the visitor may see, oldest first."""
    latest = list(
        Message.objects.filter(conversation=conversation)
        .exclude(_HIDDEN_FROM_VISITOR)
        .select_related("author")
        .order_by("-created_at", "-pk")[:HISTORY_LIMIT]
    )
    return [message_payload(message) for message in reversed(latest)]


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
