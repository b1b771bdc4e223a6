"""Reading the audit log: one organization's entries, filtered."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import QuerySet
from django.utils import timezone

from neo_support.models import AuditEntry, Organization


@dataclass(frozen=True)
class AuditFilter:
    actor: str = ""  # part of the actor's name (a username, an API key's name or prefix, "system")
    action: str = ""  # an exact action ("bot.update")
    target_kind: str = ""  # what was acted on ("bot", "apikey", "document")
    since: dt.date | None = None  # first day, inclusive
    until: dt.date | None = None  # last day, inclusive


def _start_of(day: dt.date) -> dt.datetime:
    start: dt.datetime = timezone.make_aware(dt.datetime.combine(day, dt.time.min))
    return start


def audit_entries(*, organization: Organization, chosen: AuditFilter) -> QuerySet[AuditEntry]:
    """`organization`'s entries that match `chosen`, newest first."""
    entries = AuditEntry.objects.for_organization(organization)
    if chosen.actor:
        entries = entries.filter(actor_label__icontains=chosen.actor)
    if chosen.action:
        entries = entries.filter(action=chosen.action)
    if chosen.target_kind:
        entries = entries.filter(target_kind=chosen.target_kind)
    if chosen.since is not None:
        entries = entries.filter(created_at__gte=_start_of(chosen.since))
    if chosen.until is not None:
        entries = entries.filter(created_at__lt=_start_of(chosen.until + dt.timedelta(days=1)))
    return entries.order_by("-created_at", "-id")
