"""The Celery application: queues `generation`, `indexing` and `default`.

Workers publish a heartbeat to Redis (neo_support.heartbeat) so `/healthz`
can tell which queues have a live worker.
"""

from __future__ import annotations

import contextlib
import os
import threading
from typing import Any

from celery import Celery
from celery.signals import worker_ready, worker_shutdown

from neo_support.model_queues import queue_models

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "neo_support.settings")

app = Celery("neo_support")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Task modules come from CELERY_IMPORTS (settings): tasks live beside their domain.

_heartbeat_stop = threading.Event()
_heartbeat_threads: list[threading.Thread] = []


@worker_ready.connect
def _start_heartbeat(sender: Any, **_: Any) -> None:
    from django.conf import settings

    from neo_support.heartbeat import WorkerBeat, heartbeat_loop
    from neo_support.priority import BULK_QUEUES, process_priority_lower
    from neo_support.redis_client import get_redis

    queues = sorted(sender.app.amqp.queues.consume_from)
    if queues and set(queues) <= BULK_QUEUES:
        process_priority_lower()  # ingest and tuning take only what replies and searches leave
    beat = WorkerBeat(hostname=sender.hostname, pid=os.getpid(), queues=queues)
    describe = None
    served = queue_models(settings.NEO_MODEL, settings.NEO_MODELS)
    models = [served[queue] for queue in queues if queue in served]
    if models:
        from workers.generation.loading import holder_for

        # Load and warm the models now rather than on the first visitor's question.
        threading.Thread(target=_load_models_quietly, args=(models,), name="neo-model-load", daemon=True).start()

        def describe() -> dict[str, object]:
            # "model": NEO_MODEL's state, as /healthz reads it; "models": every model served here.
            statuses = {model: holder_for(model).status() for model in models}
            details: dict[str, object] = {"models": list(statuses.values())}
            if settings.NEO_MODEL in statuses:
                details["model"] = statuses[settings.NEO_MODEL]
            return details

    thread = threading.Thread(
        target=heartbeat_loop,
        kwargs={
            "client": get_redis(),
            "beat": beat,
            "interval": settings.NEO_HEARTBEAT_SECONDS,
            "stop": _heartbeat_stop,
            "describe": describe,
        },
        name="neo-heartbeat",
        daemon=True,
    )
    thread.start()
    _heartbeat_threads.append(thread)


def _load_models_quietly(models: list[str]) -> None:
    from workers.generation.loading import holder_for
    from workers.generation.model import ModelUnavailable

    # A failure is logged once by the holder; replies then fall back to extractive answers.
    for model in models:
        with contextlib.suppress(ModelUnavailable):
            holder_for(model).get()
    from workers.moderation.pii import warm_up

    warm_up()  # the answers' personal-data screen, a few seconds to build
    from workers.moderation.injection_encoder import default_encoder

    default_encoder()  # the questions' injection classifier, a second or two to build


@worker_shutdown.connect
def _stop_heartbeat(sender: Any = None, **_: Any) -> None:
    """Stop beating and wait for the key to be removed, so /healthz drops this worker at once."""
    _heartbeat_stop.set()
    for thread in _heartbeat_threads:
        thread.join(timeout=5)
