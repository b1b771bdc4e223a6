"""Generation tasks. Thin: reload the row, return quietly if it is gone, call one service."""

from __future__ import annotations

from bots.models import Message, Role
from neo_support.tasking import task
from workers.generation.reply import replies_fail_stalled, reply_generate


@task(queue="generation", soft_time_limit=120, time_limit=150)
def generate_reply(message_id: int) -> str:
    """Answer with the bot message `message_id` (created pending). A redelivered task for a
    finished reply does nothing; for a half-streamed one it restarts the reply."""
    message = Message.objects.select_related("conversation__bot").filter(pk=message_id, role=Role.BOT).first()
    if message is None:
        return "gone"
    reply_generate(message=message)
    return Message.objects.filter(pk=message_id).values_list("status", flat=True).first() or "gone"


@task(queue="default", soft_time_limit=60, time_limit=90)
def recover_stalled_replies() -> int:
    """Beat, every minute: fail the replies whose worker died (workers.generation.reply)."""
    return len(replies_fail_stalled())


@task(queue="default", soft_time_limit=60, time_limit=90)
def triage_ticket(ticket_id: int) -> str:
    """Category, priority, SLA and language of a new ticket; then its automatic answer."""
    from bots.models import Ticket
    from bots.tickets import ticket_triage

    ticket = Ticket.objects.select_related("conversation__bot").filter(pk=ticket_id).first()
    if ticket is None:
        return "gone"
    return str(ticket_triage(ticket=ticket).get("priority"))


@task(queue="generation", soft_time_limit=120, time_limit=150)
def answer_ticket_task(ticket_id: int) -> str:
    """Draft (and, when allowed, send) the bot's answer to a new ticket."""
    from bots.models import Ticket
    from bots.tickets import ticket_answer

    ticket = Ticket.objects.select_related("conversation__bot").filter(pk=ticket_id).first()
    if ticket is None:
        return "gone"
    return str(ticket_answer(ticket=ticket).get("decision"))


@task(queue="default", soft_time_limit=60, time_limit=90)
def deliver_webhook(delivery_id: int) -> str:
    """One attempt at a webhook delivery (bots.webhooks); a failed one schedules its retry.
    A delivery that is gone, already settled or not yet due is left alone."""
    from bots.webhooks import webhook_deliver

    return webhook_deliver(delivery_id=delivery_id)


@task(queue="default")
def retry_due_webhooks() -> int:
    """Periodic (Celery beat): queue the pending webhook deliveries whose retry time has come."""
    from bots.webhooks import webhooks_retry_due

    return webhooks_retry_due()


@task(queue="generation", soft_time_limit=60, time_limit=90)
def summarize_ticket(ticket_id: int) -> str:
    """The agent's summary at the top of a new ticket (workers/generation/summary.py)."""
    from bots.models import Ticket
    from workers.generation.summary import ticket_summarize

    ticket = Ticket.objects.select_related("conversation__bot__model_version").filter(pk=ticket_id).first()
    if ticket is None:
        return "gone"
    return str(ticket_summarize(ticket=ticket)["mode"])


@task(queue="training")
def train_model_version(version_id: int) -> str:
    """Tune a bot's adapter (workers/training/run.py). Delivered again after a worker
    died, it resumes from the checkpoint; for a finished version it does nothing."""
    from bots.models import ModelVersion
    from workers.training.run import model_version_train

    version = ModelVersion.objects.select_related("bot").filter(pk=version_id).first()
    if version is None:
        return "gone"
    return model_version_train(version)
