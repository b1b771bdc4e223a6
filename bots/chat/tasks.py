"""Chat tasks. Thin: reload the row, return quietly if it is gone, call one service.

Names are fixed (`name=`) and predate this package, so messages already queued under
them still route after an upgrade.
"""

from __future__ import annotations

import logging

from bots.chat import services
from bots.chat.replies import replies_fail_stalled, reply_generate
from bots.models import Message, Role
from neo_support.tasking import task

logger = logging.getLogger(__name__)


@task(queue="generation", name="workers.tasks.generate_reply", soft_time_limit=120, time_limit=150)
def generate_reply(message_id: int) -> str:
    """Answer with the bot message `message_id` (created pending). A redelivered task for a
    finished reply does nothing; for a half-streamed one it restarts the reply."""
    message = Message.objects.select_related("conversation__bot").filter(pk=message_id, role=Role.BOT).first()
    if message is None:
        return "gone"
    reply_generate(message=message)
    return Message.objects.filter(pk=message_id).values_list("status", flat=True).first() or "gone"


@task(queue="default", name="workers.tasks.recover_stalled_replies", soft_time_limit=60, time_limit=90)
def recover_stalled_replies() -> int:
    """Beat, every minute: fail the replies whose worker died (bots.chat.replies)."""
    return len(replies_fail_stalled())


@task(queue="default", name="bots.tasks.close_idle_conversations")
def close_idle_conversations() -> dict[str, int]:
    """Periodic (Celery beat): resolve idle bot conversations, close old resolved ones."""
    resolved, closed = services.conversations_close_idle()
    if resolved or closed:
        logger.info("idle conversations: %d resolved, %d closed", resolved, closed)
    return {"resolved": resolved, "closed": closed}
