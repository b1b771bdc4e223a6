"""Background work for conversations. Thin: each task calls one service."""

from __future__ import annotations

import logging

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
