"""The agents' inbox: ticket queues and a ticket with its thread, the bot's draft and
the agent's actions. Members read; owners, admins and agents act; viewers only read."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from bots.models import Bot, Channel, ConversationStatus, Delivery, Priority, Role, Ticket, TicketStatus
from bots.tickets.inbox import (
    QUEUES,
    InboxError,
    TicketFilters,
    inbox_tickets,
    ticket_assign,
    ticket_change,
    ticket_is_overdue,
    ticket_note,
    ticket_reply,
    ticket_return_to_bot,
)
from neo_support.access import dashboard_area
from neo_support.forms import posted_text
from neo_support.models import Membership
from neo_support.models import Role as MemberRole
from neo_support.permissions import Area
from neo_support.selectors import membership_current

ACTING_ROLES = (MemberRole.OWNER, MemberRole.ADMIN, MemberRole.AGENT)
PAGE_SIZE = 50


def _membership(request: HttpRequest) -> Membership:
    membership = membership_current(user=request.user, session=request.session)
    if membership is None:
        raise Http404("You are not a member of any organization.")
    return membership


@dashboard_area(Area.TICKETS)
@require_GET
def inbox(request: HttpRequest) -> HttpResponse:
    membership = _membership(request)
    queue = request.GET.get("queue", "open")
    bot_id = request.GET.get("bot", "")
    filters = TicketFilters(
        queue=queue if queue in QUEUES else "open",
        status=request.GET.get("status", "") if request.GET.get("status", "") in TicketStatus.values else "",
        priority=request.GET.get("priority", "") if request.GET.get("priority", "") in Priority.values else "",
        category=request.GET.get("category", "")[:100],
        bot_id=int(bot_id) if bot_id.isdigit() else None,
        search=request.GET.get("q", "")[:200],
    )
    tickets = inbox_tickets(organization=membership.organization, user=request.user, filters=filters)
    page = Paginator(tickets, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [{"ticket": ticket, "overdue": ticket_is_overdue(ticket)} for ticket in page]
    categories = (
        Ticket.objects.for_organization(membership.organization)
        .exclude(category="")
        .values_list("category", flat=True)
        .distinct()
        .order_by("category")
    )
    return render(
        request,
        "dashboard/inbox.html",
        {
            "rows": rows,
            "page": page,
            "filters": filters,
            "queues": QUEUES,
            "statuses": TicketStatus.choices,
            "priorities": Priority.choices,
            "categories": list(categories),
            "bots": Bot.objects.for_organization(membership.organization),
        },
    )


def _ticket(request: HttpRequest, ticket_id: int) -> tuple[Membership, Ticket]:
    membership = _membership(request)
    ticket = (
        Ticket.objects.for_organization(membership.organization)
        .select_related("conversation__bot", "assignee")
        .filter(pk=ticket_id)
        .first()
    )
    if ticket is None:
        raise Http404("No such ticket.")
    return membership, ticket


def _thread(ticket: Ticket) -> list[dict[str, object]]:
    thread = ticket.conversation.messages.select_related("author").prefetch_related("attachments")
    return [
        {
            "message": message,
            "note": message.role == Role.SYSTEM and message.author_id is not None,
            "draft": message.role == Role.BOT and message.delivery == Delivery.DRAFT,
        }
        for message in thread.order_by("created_at", "pk")
    ]


def _ticket_context(membership: Membership, ticket: Ticket) -> dict[str, object]:
    members = get_user_model().objects.filter(memberships__organization=membership.organization).order_by("username")
    return {
        "ticket": ticket,
        "thread": _thread(ticket),
        "overdue": ticket_is_overdue(ticket),
        "can_act": membership.role in ACTING_ROLES,
        "members": members,
        "statuses": TicketStatus.choices,
        "priorities": Priority.choices,
        "live_chat": ticket.conversation.channel == Channel.WIDGET,
        # A live chat a person holds (or that waits for one) can go back to the bot.
        "can_return_to_bot": ticket.conversation.channel == Channel.WIDGET
        and ticket.conversation.status in (ConversationStatus.AGENT, ConversationStatus.PENDING_AGENT),
    }


@dashboard_area(Area.TICKETS)
@require_GET
def ticket_page(request: HttpRequest, ticket_id: int) -> HttpResponse:
    membership, ticket = _ticket(request, ticket_id)
    context = _ticket_context(membership, ticket)
    template = "dashboard/ticket_thread.html" if request.GET.get("fragment") == "thread" else "dashboard/ticket.html"
    return render(request, template, context)


@dashboard_area(Area.TICKETS)
@require_POST
def ticket_act(request: HttpRequest, ticket_id: int) -> HttpResponse:
    """One form per action: reply, approve (the bot's draft, maybe edited), note, assign,
    update, return_to_bot (a live chat goes back to the bot)."""
    membership, ticket = _ticket(request, ticket_id)
    if membership.role not in ACTING_ROLES:
        return render(request, "dashboard/forbidden.html", status=403)
    action = request.POST.get("action", "")
    try:
        try:
            for field in ("text", "status", "priority", "category", "assignee", "draft_id"):
                posted_text(request, field)
        except ValidationError as error:
            raise InboxError(" ".join(error.messages)) from None
        if action in ("reply", "approve"):
            draft = request.POST.get("draft_id", "")
            ticket_reply(
                ticket=ticket,
                by=request.user,
                text=request.POST.get("text", ""),
                draft_id=int(draft) if action == "approve" and draft.isdigit() else None,
            )
            messages.success(request, "Reply sent.")
        elif action == "note":
            ticket_note(ticket=ticket, by=request.user, text=request.POST.get("text", ""))
            messages.success(request, "Note added.")
        elif action == "assign":
            user_id = request.POST.get("assignee", "")
            assignee = (
                get_user_model()
                .objects.filter(pk=int(user_id), memberships__organization=membership.organization)
                .first()
                if user_id.isdigit()
                else None
            )
            if user_id and assignee is None:
                raise InboxError("That person is not a member of this organization.")
            ticket_assign(ticket=ticket, assignee=assignee, by=request.user)
            messages.success(request, "Assigned.")
        elif action == "update":
            changed = ticket_change(
                ticket=ticket,
                by=request.user,
                status=request.POST.get("status", ""),
                priority=request.POST.get("priority", ""),
                category=request.POST.get("category"),
            )
            messages.success(request, "Saved." if changed else "Nothing changed.")
        elif action == "return_to_bot":
            ticket_return_to_bot(ticket=ticket, by=request.user)
            messages.success(request, "The chat is back with the bot; the visitor was told.")
        else:
            raise InboxError(f"Unknown action {action!r}.")
    except InboxError as error:
        messages.error(request, str(error))
        # The page again, with what was typed kept in its form.
        context = {**_ticket_context(membership, ticket), "typed": request.POST.get("text", ""), "typed_action": action}
        return render(request, "dashboard/ticket.html", context, status=400)
    return redirect("dashboard:ticket", ticket_id=ticket.pk)
