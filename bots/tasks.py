"""Background work for conversations. Thin: each task calls one service."""

from __future__ import annotations

import logging
from dataclasses import asdict

from bots import services
from neo_support.tasking import task

logger = logging.getLogger(__name__)


@task(queue="default")
def close_idle_conversations() -> dict[str, int]:
    """Periodic (Celery beat): resolve idle bot conversations, close old resolved ones."""
    resolved, closed = services.conversations_close_idle()
    if resolved or closed:
        logger.info("idle conversations: %d resolved, %d closed", resolved, closed)
    return {"resolved": resolved, "closed": closed}


@task(queue="default")
def poll_mailboxes() -> dict[str, dict[str, object]]:
    """Periodic (Celery beat, every NEO_IMAP_POLL_SECONDS): fetch unseen mail from each
    mailbox in NEO_IMAP_MAILBOXES into tickets. A mailbox another run is polling is
    skipped; one that cannot be reached is logged and the others are still polled."""
    from django.conf import settings

    from bots.imap_poll import MailboxError, mailbox_lock, mailbox_poll

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
