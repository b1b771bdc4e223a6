"""The audit log's dashboard page and its CSV export, for owners and admins
(neo_support.permissions: Area.AUDIT)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from typing import Any

from django import forms
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from neo_support.access import dashboard_area, member_required
from neo_support.audit.actions import ACTIONS, TARGET_KINDS
from neo_support.audit.recording import record
from neo_support.audit.selectors import AuditFilter, audit_entries
from neo_support.models import AuditEntry, Membership
from neo_support.permissions import Area

PAGE_SIZE = 50
CSV_COLUMNS = ["time", "actor_kind", "actor", "action", "target_kind", "target_id", "target", "before", "after", "ip"]


class AuditFilterForm(forms.Form):
    actor = forms.CharField(required=False, max_length=200, label="Actor")
    action = forms.ChoiceField(required=False, choices=[("", "Any action"), *ACTIONS.items()], label="Action")
    target_kind = forms.ChoiceField(required=False, choices=[("", "Anything"), *TARGET_KINDS.items()], label="Target")
    since = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and since > until:
            raise forms.ValidationError("The first day comes after the last.")
        return cleaned

    def audit_filter(self) -> AuditFilter:
        chosen = self.cleaned_data
        return AuditFilter(
            actor=(chosen.get("actor") or "").strip(),
            action=chosen.get("action") or "",
            target_kind=chosen.get("target_kind") or "",
            since=chosen.get("since"),
            until=chosen.get("until"),
        )


def _problems(form: forms.Form) -> str:
    return "; ".join(f"{name}: {' '.join(errors)}" for name, errors in form.errors.items())


@dashboard_area(Area.AUDIT)
@member_required
@require_GET
def audit_page(request: HttpRequest, membership: Membership) -> HttpResponse:
    """Who did what, newest first, filtered by actor, action, target and days."""
    form = AuditFilterForm(request.GET)
    if not form.is_valid():
        context: dict[str, Any] = {"form": form, "page": None, "rows": []}
        return render(request, "dashboard/audit.html", context, status=400)
    entries = audit_entries(organization=membership.organization, chosen=form.audit_filter())
    page = Paginator(entries, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [
        {"entry": entry, "label": ACTIONS.get(entry.action, entry.action), "fields": field_changes(entry)}
        for entry in page
    ]
    return render(request, "dashboard/audit.html", {"form": form, "page": page, "rows": rows})


def field_changes(entry: AuditEntry) -> list[tuple[str, str, str]]:
    """(field, before, after) for each field the entry holds, as short JSON text."""
    before = entry.before if isinstance(entry.before, dict) else {}
    after = entry.after if isinstance(entry.after, dict) else {}
    names = list(dict.fromkeys([*before, *after]))
    return [(name, _json(before.get(name)) if name in before else "", _json(after.get(name))) for name in names]


class _Echo:
    """A file-like object whose write hands the line back, so csv.writer can stream."""

    def write(self, value: str) -> str:
        return value


def _cell(value: str) -> str:
    # A name typed by a user must not run as a spreadsheet formula when the file is opened.
    return f"'{value}" if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def _json(value: Any) -> str:
    return "" if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)


def _csv_lines(entries: Any) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    entry: AuditEntry
    for entry in entries.iterator(chunk_size=500):
        yield writer.writerow(
            [
                entry.created_at.isoformat(),
                entry.actor_kind,
                _cell(entry.actor_label),
                entry.action,
                entry.target_kind,
                entry.target_id,
                _cell(entry.target_label),
                _json(entry.before),
                _json(entry.after),
                entry.ip or "",
            ]
        )


@dashboard_area(Area.AUDIT)
@member_required
@require_GET
def audit_export(request: HttpRequest, membership: Membership) -> HttpResponse:
    """The page's entries (same filters, every page) as CSV, streamed row by row."""
    form = AuditFilterForm(request.GET)
    if not form.is_valid():
        return HttpResponse(_problems(form), status=400, content_type="text/plain; charset=utf-8")
    organization = membership.organization
    record(
        organization=organization,
        action="export.audit_csv",
        target_kind="audit",
        after={"query": request.GET.urlencode()},
    )
    entries = audit_entries(organization=organization, chosen=form.audit_filter())
    response = StreamingHttpResponse(_csv_lines(entries), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="audit-{organization.slug}.csv"'
    return response
