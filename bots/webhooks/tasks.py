"""Webhook delivery tasks. Thin: each calls one service.

Names are fixed (`name=`) and predate this package, so messages already queued under
them still route after an upgrade.
"""

from __future__ import annotations

from bots.webhooks.services import webhook_deliver, webhooks_retry_due
from neo_support.tasking import task


@task(queue="default", name="workers.tasks.deliver_webhook", soft_time_limit=60, time_limit=90)
def deliver_webhook(delivery_id: int) -> str:
    """One attempt at a webhook delivery (bots.webhooks.services); a failed one schedules its
    retry. A delivery that is gone, already settled or not yet due is left alone."""
    return webhook_deliver(delivery_id=delivery_id)


@task(queue="default", name="workers.tasks.retry_due_webhooks")
def retry_due_webhooks() -> int:
    """Periodic (Celery beat): queue the pending webhook deliveries whose retry time has come."""
    return webhooks_retry_due()
