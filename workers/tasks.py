"""Generation tasks. Thin: reload the row, return quietly if it is gone, call one service."""

from __future__ import annotations

from bots.models import Message, Role
from neo_support.tasking import task
from workers.generation.reply import reply_generate


@task(queue="generation", soft_time_limit=120, time_limit=150)
def generate_reply(message_id: int) -> str:
    """Answer with the bot message `message_id` (created pending). A redelivered task for a
    finished reply does nothing; for a half-streamed one it restarts the reply."""
    message = Message.objects.select_related("conversation__bot").filter(pk=message_id, role=Role.BOT).first()
    if message is None:
        return "gone"
    reply_generate(message=message)
    return Message.objects.filter(pk=message_id).values_list("status", flat=True).first() or "gone"
