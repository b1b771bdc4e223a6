"""The moderation log page and an owner's 'not a problem' review."""

from __future__ import annotations

from typing import cast

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    QueryDict,
)
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_GET, require_POST

from bots.models import Role as MessageRole
from bots.moderation_log.findings import screened_pieces
from bots.moderation_log.forms import ModerationFilterForm
from bots.moderation_log.selectors import moderation_log_list, moderation_log_message_get
from bots.moderation_log.services import message_mark_false_positive
from neo_support.access import dashboard_area
from neo_support.models import Role
from neo_support.permissions import Area
from neo_support.selectors import membership_current

MODERATION_PAGE_SIZE = 50


@dashboard_area(Area.MODERATION)
@require_GET
def moderation_log(request: HttpRequest) -> HttpResponse:
    """Flagged and blocked messages, with the flagged words marked; owners and admins
    can mark one as a false positive, which allowlists what was flagged."""
    membership = membership_current(user=request.user, session=request.session)
    if membership is None:
        return render(request, "dashboard/no_organization.html", status=403)
    form = ModerationFilterForm(request.GET, organization=membership.organization)
    form.is_valid()  # an invalid field is left out of cleaned_data, so it does not filter
    chosen = form.cleaned_data
    bot = chosen.get("bot")
    messages_found = moderation_log_list(
        organization=membership.organization,
        bot_id=bot.pk if bot is not None else None,
        action=chosen.get("action") or None,
        filter_name=chosen.get("filter") or None,
        review=chosen.get("review") or None,
    )
    page = Paginator(messages_found, MODERATION_PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [
        {
            "message": message,
            "pieces": screened_pieces(
                text=message.text, verdicts=message.moderation, from_visitor=message.role == MessageRole.VISITOR
            ),
            "reviewed_at": parse_datetime(str(message.moderation_review.get("at", ""))),
        }
        for message in page
    ]
    return render(
        request,
        "dashboard/moderation.html",
        {
            "form": form,
            "page": page,
            "rows": rows,
            "can_review": membership.role in (Role.OWNER, Role.ADMIN),
            "return_query": _moderation_query(request.GET),
        },
    )


@dashboard_area(Area.MODERATION)
@require_POST
def moderation_false_positive(request: HttpRequest, message_id: int) -> HttpResponse:
    membership = membership_current(user=request.user, session=request.session)
    if membership is None:
        return render(request, "dashboard/no_organization.html", status=403)
    message = moderation_log_message_get(organization=membership.organization, message_id=message_id)
    if message is None:
        raise Http404("No such message.")
    if membership.role not in (Role.OWNER, Role.ADMIN):
        return render(request, "dashboard/forbidden.html", status=403)
    phrases = message_mark_false_positive(message=message, user=request.user)
    if phrases:
        allowed = "; ".join(phrases)
        messages.success(request, f"Marked as a false positive; {message.conversation.bot.name} now allows: {allowed}")
    else:
        messages.success(request, "Marked as a false positive; nothing in it could be allowlisted.")
    query = _moderation_query(QueryDict(request.POST.get("return_query", "")))
    return redirect(reverse("dashboard:moderation") + (f"?{query}" if query else ""))


def _moderation_query(query: QueryDict) -> str:
    """The list's filters and page from `query`, and nothing else, re-encoded: what the
    mark-as-false-positive form sends back so the reviewer lands where they were."""
    kept = QueryDict(mutable=True)
    for key in (*ModerationFilterForm.base_fields, "page"):
        if query.get(key):
            kept[key] = query[key]
    return cast(str, kept.urlencode())
