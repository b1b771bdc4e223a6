"""Writes for bots and conversations."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from bots.models import Bot, Channel, Conversation, ConversationStatus, Message, MessageStatus, Role
from neo_support.models import Organization
from neo_support.tasking import enqueue
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
    return bot


class MessageRejected(Exception):  # noqa: N818 - shown to the visitor, not a crash
    """A visitor message that cannot be accepted; the text says why."""


def conversation_start(*, bot: Bot, visitor_id: str, channel: str = Channel.WIDGET) -> Conversation:
    return Conversation.objects.create(bot=bot, visitor_id=visitor_id[:64], channel=channel)


def conversation_ask(*, conversation: Conversation, text: str, client_id: str | None = None) -> tuple[Message, Message]:
    """Store the visitor's message and a pending bot reply, and queue the reply.

    A message resent with the same `client_id` (a reconnecting widget) returns the pair
    stored the first time instead of asking twice.
    """
    text = text.strip()
    if not text:
        raise MessageRejected("The message is empty.")
    if len(text) > settings.NEO_MAX_MESSAGE_CHARS:
        raise MessageRejected(f"The message is too long: at most {settings.NEO_MAX_MESSAGE_CHARS} characters.")
    if client_id:
        earlier = Message.objects.filter(conversation=conversation, client_id=client_id).first()
        if earlier is not None:
            reply = (
                Message.objects.filter(conversation=conversation, role=Role.BOT, created_at__gte=earlier.created_at)
                .order_by("created_at", "pk")
                .first()
            )
            if reply is not None:
                return earlier, reply
    from workers.tasks import generate_reply

    with transaction.atomic():
        question = Message.objects.create(
            conversation=conversation, role=Role.VISITOR, text=text, client_id=client_id or None
        )
        reply = Message.objects.create(conversation=conversation, role=Role.BOT, status=MessageStatus.PENDING)
        Conversation.objects.filter(pk=conversation.pk).update(last_activity_at=timezone.now())
        enqueue(generate_reply, reply.pk)
    return question, reply


def conversations_close_idle(*, now: datetime | None = None) -> tuple[int, int]:
    """Resolve bot conversations idle past NEO_CONVERSATION_IDLE_HOURS and close
    resolved ones past NEO_CONVERSATION_CLOSE_DAYS. Returns (resolved, closed).

    Conversations waiting for or with an agent are left alone: only a person
    ends those. Each change leaves a system message, so it shows in the transcript.
    """
    now = now or timezone.now()
    idle_since = now - timedelta(hours=settings.NEO_CONVERSATION_IDLE_HOURS)
    close_since = now - timedelta(days=settings.NEO_CONVERSATION_CLOSE_DAYS)
    resolved = _transition(
        Q(status=ConversationStatus.BOT, last_activity_at__lt=idle_since),
        status=ConversationStatus.RESOLVED,
        field="resolved_at",
        now=now,
        note=f"Resolved automatically after {settings.NEO_CONVERSATION_IDLE_HOURS} h without activity.",
    )
    closed = _transition(
        Q(status=ConversationStatus.RESOLVED, resolved_at__lt=close_since),
        status=ConversationStatus.CLOSED,
        field="closed_at",
        now=now,
        note="Closed automatically.",
    )
    return resolved, closed


def _transition(condition: Q, *, status: str, field: str, now: datetime, note: str) -> int:
    count = 0
    for conversation_id in Conversation.objects.filter(condition).values_list("id", flat=True):
        with transaction.atomic():
            # Re-check under a row lock: the visitor may have written meanwhile.
            conversation = Conversation.objects.select_for_update().filter(condition, pk=conversation_id).first()
            if conversation is None:
                continue
            conversation.status = status
            setattr(conversation, field, now)
            conversation.save(update_fields=["status", field, "updated_at"])
            Message.objects.create(conversation=conversation, role=Role.SYSTEM, text=note, status=MessageStatus.DONE)
            count += 1
    return count
