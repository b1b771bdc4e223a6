"""The dashboard's analytics page and its CSV export."""

from __future__ import annotations

import csv
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from bots.analytics.metrics import TAKEN_ACTIONS
from bots.analytics.selectors import (
    DEFAULT_DAYS,
    FIRST_DAY,
    LAST_DAY,
    MAX_DAYS,
    AnalyticsFilter,
    analytics_csv_rows,
    analytics_summary,
)
from bots.models import Bot
from neo_support import audit
from neo_support.access import dashboard_area
from neo_support.models import Organization, Role
from neo_support.permissions import Area
from neo_support.selectors import membership_current

DRAFT_ROLES = (Role.OWNER, Role.ADMIN)  # those who may add documents to a knowledge base


class AnalyticsFilterForm(forms.Form):
    """The page's filters (GET). A missing or blank date means the last 30 days."""

    since = forms.DateField(label="From", widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))
    until = forms.DateField(label="To", widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))
    bot = forms.ModelChoiceField(queryset=Bot.objects.none(), required=False, empty_label="All bots")
    include_test = forms.BooleanField(label="Include test chats", required=False)

    def __init__(self, query: QueryDict, *, organization: Organization) -> None:
        today = timezone.localdate()
        data: dict[str, str] = {
            "since": (today - timedelta(days=DEFAULT_DAYS - 1)).isoformat(),
            "until": today.isoformat(),
        }
        data.update(
            {key: query[key] for key in ("since", "until", "bot", "include_test") if query.get(key, "").strip()}
        )
        super().__init__(data)
        self.organization = organization
        self.fields["bot"].queryset = Bot.objects.for_organization(organization)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        since: date | None = cleaned.get("since")
        until: date | None = cleaned.get("until")
        if since is not None and until is not None:
            if since < FIRST_DAY or until > LAST_DAY:
                self.add_error("since", f"Choose dates from {FIRST_DAY} to {LAST_DAY}.")
            elif since > until:
                self.add_error("until", "The end date is before the start date.")
            elif (until - since).days >= MAX_DAYS:
                self.add_error("since", f"Choose at most {MAX_DAYS} days.")
        return cleaned

    def analytics_filter(self) -> AnalyticsFilter:
        chosen = self.cleaned_data
        return AnalyticsFilter(
            organization=self.organization,
            since=chosen["since"],
            until=chosen["until"],
            bot=chosen["bot"],
            include_test=chosen["include_test"],
        )

    def query(self) -> str:
        """The valid filters, re-encoded for links (the export, the next visit)."""
        chosen = self.cleaned_data
        kept = {"since": chosen["since"].isoformat(), "until": chosen["until"].isoformat()}
        if chosen["bot"] is not None:
            kept["bot"] = str(chosen["bot"].pk)
        if chosen["include_test"]:
            kept["include_test"] = "on"  # what the checkbox itself sends
        return urlencode(kept)


@dashboard_area(Area.ANALYTICS)
@require_GET
def analytics_page(request: HttpRequest) -> HttpResponse:
    """Figures, charts and the learning loop's question clusters; roles that may read analytics."""
    membership = membership_current(user=request.user, session=request.session)
    if membership is None:
        return render(request, "dashboard/no_organization.html", status=403)
    form = AnalyticsFilterForm(request.GET, organization=membership.organization)
    if not form.is_valid():
        return render(request, "dashboard/analytics.html", {"form": form, "summary": None}, status=400)
    summary = analytics_summary(form.analytics_filter())
    can_draft = membership.role in DRAFT_ROLES
    actions = [action for action in TAKEN_ACTIONS if any(action in row["actions"] for row in summary["moderation"])]
    return render(
        request,
        "dashboard/analytics.html",
        {
            "form": form,
            "summary": summary,
            "cards": figure_cards(summary),
            "charts": {key: summary[key] for key in ("daily", "moderation", "totals")},
            "moderation_actions": actions,
            "moderation_rows": [
                {"filter": row["filter"], "counts": [row["actions"].get(a, 0) for a in actions], "total": row["total"]}
                for row in summary["moderation"]
            ],
            "clusters": [
                {**cluster, "draft_url": draft_url(cluster) if can_draft else ""} for cluster in summary["clusters"]
            ],
            "can_draft": can_draft,
            "export_url": f"{reverse('analytics:export')}?{form.query()}",
        },
    )


@dashboard_area(Area.ANALYTICS)
@require_GET
def analytics_export(request: HttpRequest) -> HttpResponse:
    """The daily figures as CSV, for the same filters as the page."""
    membership = membership_current(user=request.user, session=request.session)
    if membership is None:
        return render(request, "dashboard/no_organization.html", status=403)
    form = AnalyticsFilterForm(request.GET, organization=membership.organization)
    if not form.is_valid():
        problems = "; ".join(f"{name}: {' '.join(errors)}" for name, errors in form.errors.items())
        return HttpResponse(problems, status=400, content_type="text/plain; charset=utf-8")
    chosen = form.analytics_filter()
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="analytics-{chosen.since}-{chosen.until}.csv"'
    csv.writer(response).writerows(analytics_csv_rows(chosen))
    audit.record(
        organization=membership.organization,
        action="export.analytics_csv",
        target_kind="analytics",
        after={"query": request.GET.urlencode()},
    )
    return response


def draft_url(cluster: dict[str, Any]) -> str:
    """The knowledge base's add-text form, prefilled with the cluster's draft article."""
    if cluster["knowledge_base_id"] is None:
        return ""
    query = urlencode({"draft_title": cluster["draft_title"], "draft_text": cluster["draft_text"]})
    return f"{reverse('knowledge-bases:detail', args=[cluster['knowledge_base_id']])}?{query}#add-documents"


def _percent(rate: float | None) -> str:
    return "–" if rate is None else f"{rate * 100:.1f} %"


def _milliseconds(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f} ms"


def figure_cards(summary: dict[str, Any]) -> list[dict[str, str]]:
    """The page's headline figures as text: what the charts show, readable without them."""
    totals, rates, latency = summary["totals"], summary["rates"], summary["latency"]
    engaged = totals["engaged_conversations"]
    rated = totals["thumbs_up"] + totals["thumbs_down"]
    first, whole = latency["first_token_ms"], latency["total_ms"]
    return [
        {
            "label": "Conversations",
            "value": f"{totals['conversations']:,}",
            "detail": f"{engaged:,} with a visitor question · {_count(totals['visitor_messages'], 'visitor message')}",
        },
        {
            "label": "Deflection rate",
            "value": _percent(rates["deflection"]),
            "detail": f"{totals['deflected']:,} of {engaged:,} answered by the bot with no person involved",
        },
        {
            "label": "Handoff rate",
            "value": _percent(rates["handoff"]),
            "detail": f"{totals['handed_off']:,} of {engaged:,} reached a person (handoff, ticket or agent reply)",
        },
        {
            "label": "CSAT",
            "value": _percent(rates["csat"]),
            "detail": f"Share of thumbs up among rated answers: {totals['thumbs_up']:,} up, "
            f"{totals['thumbs_down']:,} down ({rated:,} rated)",
        },
        {
            "label": "First token",
            "value": f"{_milliseconds(first['p50'])} p50",
            "detail": f"{_milliseconds(first['p95'])} p95 over {_count(first['count'], 'answer')}",
        },
        {
            "label": "Total reply time",
            "value": f"{_milliseconds(whole['p50'])} p50",
            "detail": f"{_milliseconds(whole['p95'])} p95 over {_count(whole['count'], 'answer')}",
        },
        {
            "label": "Low-confidence answers",
            "value": f"{totals['low_confidence_answers']:,}",
            "detail": f"of {totals['bot_answers']:,} bot answers; {totals['moderated_messages']:,} messages moderated",
        },
    ]


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'' if number == 1 else 's'}"
