"""The moderation log page (messages or their groups, and the share of traffic each filter
flagged per day), an owner's 'not a problem' review, and undoing what it taught."""

from __future__ import annotations

from typing import Any, cast

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
from bots.moderation_log.findings import FILTERS, screened_pieces
from bots.moderation_log.forms import GROUPED, ModerationFilterForm
from bots.moderation_log.selectors import (
    moderation_daily_shares,
    moderation_example_get,
    moderation_examples,
    moderation_log_groups,
    moderation_log_list,
    moderation_log_message_get,
)
from bots.moderation_log.services import message_mark_false_positive, moderation_example_remove
from neo_support.access import dashboard_area
from neo_support.models import Role
from neo_support.permissions import Area
from neo_support.selectors import membership_current

MODERATION_PAGE_SIZE = 50
REVIEW_ROLES = (Role.OWNER, Role.ADMIN)
EXAMPLES_SHOWN = 200


@dashboard_area(Area.MODERATION)
@require_GET
def moderation_log(request: HttpRequest) -> HttpResponse:
    """Flagged and blocked messages, with the flagged words marked, or their groups by
    filter and reason; the share of traffic each filter flagged per day; and what owners
    taught the filters. Owners and admins can mark a message as a false positive and undo
    what that taught."""
    membership = membership_current(user=request.user, session=request.session)
    if membership is None:
        return render(request, "dashboard/no_organization.html", status=403)
    organization = membership.organization
    form = ModerationFilterForm(request.GET, organization=organization)
    form.is_valid()  # an invalid field is left out of cleaned_data, so it does not filter
    chosen = form.cleaned_data
    bot = chosen.get("bot")
    messages_found = moderation_log_list(
        organization=organization,
        bot_id=bot.pk if bot is not None else None,
        action=chosen.get("action") or None,
        filter_name=chosen.get("filter") or None,
        review=chosen.get("review") or None,
        reason=chosen.get("reason") or None,
    )
    grouped = chosen.get("view") == GROUPED
    context: dict[str, Any] = {"form": form, "grouped": grouped}
    if grouped:
        groups, truncated = moderation_log_groups(messages=messages_found)
        context.update(groups=[(group, _group_query(request.GET, group.filter, group.reason)) for group in groups])
        context.update(groups_truncated=truncated)
    else:
        page = Paginator(messages_found, MODERATION_PAGE_SIZE).get_page(request.GET.get("page"))
        context["page"] = page
        context["rows"] = [
            {
                "message": message,
                "pieces": screened_pieces(
                    text=message.text, verdicts=message.moderation, from_visitor=message.role == MessageRole.VISITOR
                ),
                "reviewed_at": parse_datetime(str(message.moderation_review.get("at", ""))),
            }
            for message in page
        ]
    daily = moderation_daily_shares(organization=organization, bot_id=bot.pk if bot is not None else None)
    shown = [name for name in FILTERS if any(day["filters"][name]["flagged"] for day in daily)]
    context.update(
        daily=daily,
        daily_filters=shown,
        daily_rows=[
            {
                "date": day["date"],
                "screened": day["screened"],
                "filters": [
                    {**day["filters"][name], "percent": f"{day['filters'][name]['flagged_share'] * 100:.1f}"}
                    for name in shown
                ],
            }
            for day in daily
        ],
        chart={
            "days": [day["date"] for day in daily],
            "series": {name: [day["filters"][name]["flagged_share"] for day in daily] for name in shown},
        },
        examples=moderation_examples(organization=organization)[:EXAMPLES_SHOWN],
        can_review=membership.role in REVIEW_ROLES,
        return_query=_moderation_query(request.GET),
    )
    return render(request, "dashboard/moderation.html", context)


@dashboard_area(Area.MODERATION)
@require_POST
def moderation_false_positive(request: HttpRequest, message_id: int) -> HttpResponse:
    membership = membership_current(user=request.user, session=request.session)
    if membership is None:
        return render(request, "dashboard/no_organization.html", status=403)
    message = moderation_log_message_get(organization=membership.organization, message_id=message_id)
    if message is None:
        raise Http404("No such message.")
    if membership.role not in REVIEW_ROLES:
        return render(request, "dashboard/forbidden.html", status=403)
    review = message_mark_false_positive(message=message, user=request.user)
    said = []
    if review.taught:
        filters = ", ".join(sorted({example.filter for example in review.taught}))
        said.append(f"taught {filters} to allow messages like it in your organization")
    if review.phrases:
        said.append(f"{message.conversation.bot.name} now allows: {'; '.join(review.phrases)}")
    messages.success(request, f"Marked as a false positive; {' and '.join(said) or 'nothing in it could be taught'}.")
    return _back_to_log(request)


@dashboard_area(Area.MODERATION)
@require_POST
def moderation_taught_remove(request: HttpRequest, example_id: int) -> HttpResponse:
    membership = membership_current(user=request.user, session=request.session)
    if membership is None:
        return render(request, "dashboard/no_organization.html", status=403)
    example = moderation_example_get(organization=membership.organization, example_id=example_id)
    if example is None:
        raise Http404("No such taught example.")
    if membership.role not in REVIEW_ROLES:
        return render(request, "dashboard/forbidden.html", status=403)
    moderation_example_remove(example=example, user=request.user)
    messages.success(request, f"Removed; {example.filter} judges messages like it again.")
    return _back_to_log(request)


def _back_to_log(request: HttpRequest) -> HttpResponse:
    query = _moderation_query(QueryDict(request.POST.get("return_query", "")))
    return redirect(reverse("dashboard:moderation") + (f"?{query}" if query else ""))


def _group_query(query: QueryDict, filter_name: str, reason: str) -> str:
    """The list of one group's messages, with the page's other filters kept."""
    kept = QueryDict(_moderation_query(query), mutable=True)
    for key in ("view", "page"):
        kept.pop(key, None)
    kept["filter"], kept["reason"] = filter_name, reason
    return cast(str, kept.urlencode())


def _moderation_query(query: QueryDict) -> str:
    """The list's filters and page from `query`, and nothing else, re-encoded: what the
    mark-as-false-positive form sends back so the reviewer lands where they were."""
    kept = QueryDict(mutable=True)
    for key in (*ModerationFilterForm.base_fields, "page"):
        if query.get(key):
            kept[key] = query[key]
    return cast(str, kept.urlencode())
