"""Ticket tasks: triage, the automatic answer, the agent's summary, mailbox polling.
Thin: reload the row, return quietly if it is gone, call one service.

Names are fixed (`name=`) and predate this package, so messages already queued under
them still route after an upgrade.
"""

from __future__ import annotations

import logging
from dataclasses import asdict

from django.conf import settings

from bots.models import Ticket
from bots.tickets.imap_poll import MailboxError, mailbox_lock, mailbox_poll
from bots.tickets.services import ticket_answer, ticket_triage
from bots.tickets.summaries import ticket_summarize
from neo_support.tasking import task

logger = logging.getLogger(__name__)


@task(queue="default", name="workers.tasks.triage_ticket", soft_time_limit=60, time_limit=90)
def triage_ticket(ticket_id: int) -> str:
    """Category, priority, SLA and language of a new ticket; then its automatic answer."""
    ticket = Ticket.objects.select_related("conversation__bot").filter(pk=ticket_id).first()
    if ticket is None:
        return "gone"
    return str(ticket_triage(ticket=ticket).get("priority"))


@task(queue="generation", name="workers.tasks.answer_ticket_task", soft_time_limit=120, time_limit=150)
def answer_ticket_task(ticket_id: int) -> str:
    """Draft (and, when allowed, send) the bot's answer to a new ticket."""
    ticket = Ticket.objects.select_related("conversation__bot").filter(pk=ticket_id).first()
    if ticket is None:
        return "gone"
    return str(ticket_answer(ticket=ticket).get("decision"))


@task(queue="generation", name="workers.tasks.summarize_ticket", soft_time_limit=60, time_limit=90)
def summarize_ticket(ticket_id: int) -> str:
    """The agent's summary at the top of a new ticket (bots.tickets.summaries)."""
    ticket = Ticket.objects.select_related("conversation__bot__model_version").filter(pk=ticket_id).first()
    if ticket is None:
        return "gone"
    return str(ticket_summarize(ticket=ticket)["mode"])


@task(queue="default", name="bots.tasks.poll_mailboxes")
def poll_mailboxes() -> dict[str, dict[str, object]]:
    """Periodic (Celery beat, every NEO_IMAP_POLL_SECONDS): fetch unseen mail from each
    mailbox in NEO_IMAP_MAILBOXES into tickets. A mailbox another run is polling is
    skipped; one that cannot be reached is logged and the others are still polled."""
    results: dict[str, dict[str, object]] = {}
    for config in settings.NEO_IMAP_MAILBOXES:
        with mailbox_lock(config) as held:
            if not held:
                logger.info("IMAP %s: still being polled by another run; skipped", config.label)
                results[config.key] = {"skipped": "busy"}
                continue
            try:
                result = mailbox_poll(config)
            except MailboxError as error:
                logger.error("IMAP poll failed: %s", error)
                results[config.key] = {"error": str(error)}
                continue
        if result.fetched or result.failed:
            logger.info("IMAP %s: %s", config.label, result)
        results[config.key] = asdict(result)
    return results
