"""Reads for tickets, scoped to one organization."""

from __future__ import annotations

from django.db.models import QuerySet

from bots.models import Ticket
from neo_support.models import Organization


def ticket_list(*, organization: Organization) -> QuerySet[Ticket]:
    return Ticket.objects.for_organization(organization).select_related("conversation__bot", "assignee")
