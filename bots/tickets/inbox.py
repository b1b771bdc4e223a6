"""What agents do in the inbox: take a ticket, reply (or approve the bot's draft), write
internal notes, change status, priority and category, take over a live chat and hand it
back to the bot.

An internal note is a system message with an author (automatic notes have none); it is
never sent to the customer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Case, IntegerField, Q, QuerySet, Value, When
from django.utils import timezone

from bots.models import (
    Channel,
    Conversation,
    ConversationStatus,
    Delivery,
    Message,
    MessageStatus,
    Priority,
    Role,
    Ticket,
    TicketStatus,
)
from bots.webhooks.services import webhooks_emit_message, webhooks_emit_ticket
from neo_support import audit
from neo_support.models import Organization

QUEUES = ("open", "unassigned", "mine", "pending", "resolved", "all")
WAITING = (TicketStatus.NEW, TicketStatus.OPEN)


class InboxError(Exception):
    """An agent's action cannot be done; the message says why."""


@dataclass(frozen=True)
class TicketFilters:
    queue: str = "open"
    status: str = ""
    priority: str = ""
    category: str = ""
    bot_id: int | None = None
    search: str = ""


def inbox_tickets(*, organization: Organization, user: AbstractBaseUser, filters: TicketFilters) -> QuerySet[Ticket]:
    """The organization's tickets in one queue, filtered; most urgent and oldest due first."""
    tickets = Ticket.objects.for_organization(organization).select_related("conversation__bot", "assignee")
    queue = {
        "open": Q(status__in=WAITING),
        "unassigned": Q(status__in=WAITING, assignee__isnull=True),
        "mine": Q(assignee=user) & ~Q(status__in=[TicketStatus.SOLVED, TicketStatus.CLOSED]),
        "pending": Q(status=TicketStatus.PENDING),
        "resolved": Q(status__in=[TicketStatus.SOLVED, TicketStatus.CLOSED]),
    }.get(filters.queue)
    if queue is not None:
        tickets = tickets.filter(queue)
    if filters.status:
        tickets = tickets.filter(status=filters.status)
    if filters.priority:
        tickets = tickets.filter(priority=filters.priority)
    if filters.category:
        tickets = tickets.filter(category=filters.category)
    if filters.bot_id:
        tickets = tickets.filter(conversation__bot_id=filters.bot_id)
    if filters.search.strip():
        words = filters.search.strip()
        tickets = tickets.filter(
            Q(subject__icontains=words)
            | Q(requester_email__icontains=words)
            | Q(requester_name__icontains=words)
            | Q(token__iexact=words.strip("#[]"))
            | Q(conversation__messages__text__icontains=words)
        ).distinct()
    rank = {Priority.URGENT: 0, Priority.HIGH: 1, Priority.NORMAL: 2, Priority.LOW: 3}
    order = Case(*(When(priority=p, then=Value(r)) for p, r in rank.items()), output_field=IntegerField())
    return tickets.annotate(priority_rank=order).order_by("priority_rank", "due_at", "-created_at")


def ticket_is_overdue(ticket: Ticket) -> bool:
    return bool(ticket.due_at and ticket.status in WAITING and ticket.due_at < timezone.now())


def ticket_assign(*, ticket: Ticket, assignee: AbstractBaseUser | None, by: AbstractBaseUser) -> None:
    Ticket.objects.filter(pk=ticket.pk).update(assignee=assignee, updated_at=timezone.now())
    Conversation.objects.filter(pk=ticket.conversation_id).update(assignee=assignee)
    who = assignee.get_username() if assignee is not None else "nobody"
    _system(ticket, f"Assigned to {who} by {by.get_username()}.")
    _audit(ticket, "ticket.assign", before={"assignee": ticket.assignee_id}, after={"assignee": plain_id(assignee)})
    ticket.assignee = assignee


def ticket_change(
    *, ticket: Ticket, by: AbstractBaseUser, status: str = "", priority: str = "", category: str | None = None
) -> list[str]:
    """Change status, priority and category; a category an agent sets is what triage
    learns from. Returns what changed, as notes in the thread."""
    changes: dict[str, Any] = {}
    notes = []
    if status and status != ticket.status:
        if status not in TicketStatus.values:
            raise InboxError(f"Unknown status {status!r}.")
        changes["status"] = status
        notes.append(f"status {ticket.status} → {status}")
    if priority and priority != ticket.priority:
        if priority not in Priority.values:
            raise InboxError(f"Unknown priority {priority!r}.")
        changes["priority"] = priority
        notes.append(f"priority {ticket.priority} → {priority}")
    if category is not None and (category.strip() != ticket.category or ticket.category_source != "agent"):
        changes.update(category=category.strip()[:100], category_source="agent" if category.strip() else "")
        notes.append(f"category → {category.strip() or 'none'}")
    if not changes:
        return []
    _audit(ticket, "ticket.update", before={name: getattr(ticket, name) for name in changes}, after=changes)
    Ticket.objects.filter(pk=ticket.pk).update(**changes, updated_at=timezone.now())
    if changes.get("status") in (TicketStatus.SOLVED, TicketStatus.CLOSED):
        Conversation.objects.filter(pk=ticket.conversation_id).update(
            status=ConversationStatus.RESOLVED, resolved_at=timezone.now()
        )
    for name, value in changes.items():
        setattr(ticket, name, value)
    _system(ticket, f"{by.get_username()} changed " + ", ".join(notes) + ".")
    webhooks_emit_ticket(ticket=ticket, event="ticket.updated")
    return notes


def ticket_note(*, ticket: Ticket, by: AbstractBaseUser, text: str) -> Message:
    if not text.strip():
        raise InboxError("The note is empty.")
    note = Message.objects.create(conversation=ticket.conversation, role=Role.SYSTEM, text=text.strip(), author=by)
    _audit(ticket, "ticket.note", after={"message": note.pk})
    return cast(Message, note)


def ticket_reply(*, ticket: Ticket, by: AbstractBaseUser, text: str, draft_id: int | None = None) -> Message:
    """An agent's answer: their own words, or the bot's draft approved (and maybe edited).
    Email tickets get it by email; a live chat gets it in the widget at once, and the
    bot stays silent from then on (the agent holds the conversation)."""
    if not text.strip():
        raise InboxError("The reply is empty.")
    with transaction.atomic():
        if draft_id is not None:
            message = (
                Message.objects.select_for_update()
                .filter(pk=draft_id, conversation=ticket.conversation, role=Role.BOT, delivery=Delivery.DRAFT)
                .first()
            )
            if message is None:
                raise InboxError("That draft was already sent or is gone.")
            message.text, message.author = text.strip(), by
            message.save(update_fields=["text", "author", "updated_at"])
        else:
            message = Message.objects.create(
                conversation=ticket.conversation,
                role=Role.AGENT,
                text=text.strip(),
                author=by,
                status=MessageStatus.DONE,
            )
    if ticket.conversation.channel == Channel.WIDGET:
        _deliver_to_chat(ticket, message)
        Message.objects.filter(pk=message.pk).update(delivery=Delivery.SENT)
        Ticket.objects.filter(pk=ticket.pk).update(status=TicketStatus.OPEN, updated_at=timezone.now())
    else:
        from bots.tickets.services import ticket_send_reply

        try:
            ticket_send_reply(ticket=ticket, reply=message, automatic=False)
        except OSError as error:
            raise InboxError(f"The email could not be sent ({error}); the reply is kept, try again.") from None
        Ticket.objects.filter(pk=ticket.pk).update(status=TicketStatus.PENDING, updated_at=timezone.now())
    if ticket.assignee_id is None:
        Ticket.objects.filter(pk=ticket.pk).update(assignee=by)
    message.refresh_from_db()
    ticket.refresh_from_db()
    _audit(ticket, "ticket.reply", after={"message": message.pk, "approved_draft": draft_id is not None})
    webhooks_emit_message(ticket=ticket, message=message)
    webhooks_emit_ticket(ticket=ticket, event="ticket.updated")
    return cast(Message, message)


def ticket_return_to_bot(*, ticket: Ticket, by: AbstractBaseUser) -> Message:
    """Hand a live chat an agent holds (or that waits for one) back to the bot: the
    conversation's status is `bot` again, a note in the thread (which the visitor sees
    too) says who did it, and the widget is told (`status` `returned_to_bot`), so it
    offers "Talk to a person" again. The ticket itself is left as it is."""
    from bots.chat.publishing import publish
    from bots.chat.selectors import agent_display_name

    with transaction.atomic():
        conversation = Conversation.objects.select_for_update().filter(pk=ticket.conversation_id).first()
        if conversation is None:
            raise InboxError("This ticket has no conversation to hand back.")
        if conversation.channel != Channel.WIDGET:
            raise InboxError("Only a live chat can be handed back to the bot; this ticket is answered by email.")
        if conversation.status == ConversationStatus.BOT:
            raise InboxError("This chat is already with the bot.")
        if conversation.status not in (ConversationStatus.AGENT, ConversationStatus.PENDING_AGENT):
            raise InboxError("This chat has ended; there is nothing to hand back.")
        conversation.status = ConversationStatus.BOT
        conversation.last_activity_at = timezone.now()
        conversation.save(update_fields=["status", "last_activity_at", "updated_at"])
        note = Message.objects.create(
            conversation=conversation,
            role=Role.SYSTEM,
            text=f"{agent_display_name(by)} handed the conversation back to the bot.",
            status=MessageStatus.DONE,
        )
    ticket.conversation.status = ConversationStatus.BOT
    _audit(ticket, "ticket.return_to_bot", after={"conversation_status": ConversationStatus.BOT})
    publish(conversation.pk, {"type": "status", "status": "returned_to_bot"})
    return cast(Message, note)


def _deliver_to_chat(ticket: Ticket, message: Message) -> None:
    from bots.chat.events import AgentMessage
    from bots.chat.publishing import publish
    from bots.chat.selectors import agent_display_name

    author = agent_display_name(message.author)
    conversation = Conversation.objects.get(pk=ticket.conversation_id)
    if conversation.status != ConversationStatus.AGENT:
        Conversation.objects.filter(pk=conversation.pk).update(status=ConversationStatus.AGENT)
        publish(conversation.pk, {"type": "status", "status": "agent_joined", "agent": author})
    payload: AgentMessage = {
        "id": message.pk,
        "role": "agent",
        "text": message.text,
        "created_at": message.created_at.isoformat(),
        "author": author,
    }
    publish(conversation.pk, {"type": "agent_message", "message": payload})


def plain_id(user: AbstractBaseUser | None) -> int | None:
    return user.pk if user is not None else None


def _audit(ticket: Ticket, action: str, **fields: Any) -> None:
    # The ticket's subject, not its messages: the audit log keeps no customer words.
    audit.record(
        organization=ticket.conversation.bot.organization_id,
        action=action,
        target=ticket,
        target_label=f"ticket {ticket.pk}",
        **fields,
    )


def _system(ticket: Ticket, text: str) -> None:
    Message.objects.create(conversation=ticket.conversation, role=Role.SYSTEM, text=text)
