"""Writes for conversations: a visitor's messages, feedback, identity and handoff; idle conversations closed."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, cast

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from bots.models import (
    Bot,
    Channel,
    Conversation,
    ConversationStatus,
    Feedback,
    Message,
    MessageStatus,
    Role,
    Ticket,
)
from neo_support.tasking import QueueUnavailable, enqueue, enqueue_for_model
from workers.moderation.verdicts import strongest_action

IDENTITY_FIELDS = ("name", "email", "external_id")


class MessageRejected(Exception):  # noqa: N818 - shown to the visitor, not a crash
    """A visitor message that cannot be accepted; the text says why."""


class ReplyInProgress(MessageRejected):
    def __init__(self, message_id: int) -> None:
        super().__init__("Wait for the current reply to finish, or stop it, before sending another message.")
        self.message_id = message_id


def conversation_start(
    *, bot: Bot, visitor_id: str, channel: str = Channel.WIDGET, is_test: bool = False
) -> Conversation:
    """A new conversation; `is_test` marks one started from the dashboard's test chat."""
    return cast(
        Conversation,
        Conversation.objects.create(bot=bot, visitor_id=visitor_id[:64], channel=channel, is_test=is_test),
    )


def conversation_ask(
    *, conversation: Conversation, text: str, client_id: str | None = None, refuse_while_replying: bool = False
) -> tuple[Message, Message | None]:
    """Store the visitor's message and a pending bot reply, and queue the reply. While a
    person holds the conversation (an agent took it over), the bot stays silent: the
    message is stored for the agent and there is no reply (None).

    A message resent with the same `client_id` (a reconnecting widget) returns the pair
    stored the first time instead of asking twice. With `refuse_while_replying`, a new
    message while the bot is still answering raises ReplyInProgress.
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
            if reply is not None or _agent_holds(conversation):
                return earlier, reply
    agent_holds = _agent_holds(conversation)
    if refuse_while_replying and not agent_holds:
        busy = reply_in_progress(conversation=conversation)
        if busy is not None:
            raise ReplyInProgress(busy.pk)
    # Personal data is redacted before the message is stored; a blocked message is kept,
    # and the bot answers it with the safe reply.
    text, verdicts = question_screened(bot=conversation.bot, text=text)
    stored: list[int] = []
    try:
        with transaction.atomic():
            question = Message.objects.create(
                conversation=conversation,
                role=Role.VISITOR,
                text=text,
                client_id=client_id or None,
                moderation=verdicts,
                moderation_action=strongest_action(verdicts),
            )
            stored.append(question.pk)
            Conversation.objects.filter(pk=conversation.pk).update(last_activity_at=timezone.now())
            if agent_holds:
                return question, None
            reply = Message.objects.create(conversation=conversation, role=Role.BOT, status=MessageStatus.PENDING)
            stored.append(reply.pk)
            enqueue_for_model("workers.tasks.generate_reply", reply.pk, model=conversation.bot.answering_model)
    except QueueUnavailable:
        # Redis is down: the reply was never queued. Take the pair back so the client's
        # retry (same client_id) asks afresh instead of finding a reply nobody will write.
        Message.objects.filter(pk__in=stored).delete()
        raise
    return question, reply


def question_screened(*, bot: Bot, text: str) -> tuple[str, list[dict[str, Any]]]:
    """A visitor's question after the input rules of `bot`'s policy: the text as stored
    (personal data redacted) and the verdicts to store with it (none when nothing was found)."""
    from workers.moderation.pipeline import Policy, screen_input

    verdict = screen_input(text, Policy.from_bot(bot.moderation_policy))
    return verdict.text, [verdict.as_dict()] if verdict.findings else []


def _agent_holds(conversation: Conversation) -> bool:
    return cast(bool, Conversation.objects.filter(pk=conversation.pk, status=ConversationStatus.AGENT).exists())


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


def reply_in_progress(*, conversation: Conversation) -> Message | None:
    """The bot reply still being written in `conversation`, if any."""
    return cast(
        "Message | None",
        Message.objects.filter(
            conversation=conversation, role=Role.BOT, status__in=(MessageStatus.PENDING, MessageStatus.STREAMING)
        )
        .order_by("-created_at", "-pk")
        .first(),
    )


def feedback_record(*, conversation: Conversation, message_id: int, rating: int, comment: str = "") -> Feedback:
    """A visitor's thumbs on one of the bot's replies in their own conversation; a second
    rating of the same reply replaces the first."""
    message = Message.objects.filter(conversation=conversation, pk=message_id, role=Role.BOT).first()
    if message is None:
        raise MessageRejected("There is no such bot reply in this conversation.")
    with transaction.atomic():
        Feedback.objects.filter(message=message).delete()
        return cast(Feedback, Feedback.objects.create(message=message, rating=rating, comment=comment.strip()[:1000]))


def conversation_request_handoff(*, conversation: Conversation, reason: str = "") -> bool:
    """Mark the conversation as waiting for a person; False when it already is (or has one)."""
    with transaction.atomic():
        locked = Conversation.objects.select_for_update().get(pk=conversation.pk)
        if locked.status in (ConversationStatus.PENDING_AGENT, ConversationStatus.AGENT):
            return False
        locked.status = ConversationStatus.PENDING_AGENT
        locked.last_activity_at = timezone.now()
        locked.save(update_fields=["status", "last_activity_at", "updated_at"])
        note = "The visitor asked to talk to a person." + (f" Reason: {reason.strip()[:500]}" if reason.strip() else "")
        Message.objects.create(conversation=locked, role=Role.SYSTEM, text=note, status=MessageStatus.DONE)
        ticket = _handoff_ticket(locked)
    conversation.status = ConversationStatus.PENDING_AGENT
    if ticket is not None:
        from bots.webhooks.services import webhooks_emit_ticket

        webhooks_emit_ticket(ticket=ticket, event="ticket.created")
        enqueue("workers.tasks.triage_ticket", ticket.pk)
    return True


def _handoff_ticket(conversation: Conversation) -> Ticket | None:
    """The ticket agents pick a handed-off chat up from (None when it has one already)."""
    if Ticket.objects.filter(conversation=conversation).exists():
        return None
    first = conversation.messages.filter(role=Role.VISITOR).order_by("created_at", "pk").first()
    subject = " ".join((first.text if first else "Chat with a visitor").split())
    info = conversation.visitor_info
    return cast(
        Ticket,
        Ticket.objects.create(
            conversation=conversation,
            subject=subject[:77] + "…" if len(subject) > 80 else subject,
            requester_email=str(info.get("email", "")),
            requester_name=str(info.get("name", ""))[:200],
        ),
    )


def conversation_identify(*, conversation: Conversation, traits: dict[str, str]) -> None:
    """Record who the host page says the visitor is (name, email, external id)."""
    info = {key: value.strip() for key, value in traits.items() if key in IDENTITY_FIELDS and value.strip()}
    if "email" in info:
        try:
            validate_email(info["email"])
        except ValidationError:
            raise MessageRejected("That email address is not valid.") from None
    Conversation.objects.filter(pk=conversation.pk).update(visitor_info={**conversation.visitor_info, **info})
    conversation.visitor_info = {**conversation.visitor_info, **info}
