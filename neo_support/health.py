"""Checks behind /healthz: the database, Redis and live workers per queue."""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.db import connection

from neo_support.heartbeat import heartbeat_read
from neo_support.redis_client import get_redis

Check = dict[str, Any]


def _timed(check: Check, started: float) -> Check:
    return check | {"latency_ms": round((time.perf_counter() - started) * 1000, 1)}


def check_database() -> Check:
    started = time.perf_counter()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as error:  # noqa: BLE001 - any failure means unhealthy
        return _timed({"ok": False, "error": f"{type(error).__name__}: {error}".strip()}, started)
    return _timed({"ok": True, "vendor": connection.vendor}, started)


def check_redis() -> Check:
    started = time.perf_counter()
    try:
        get_redis().ping()
    except Exception as error:  # noqa: BLE001
        return _timed({"ok": False, "error": f"{type(error).__name__}: {error}"}, started)
    return _timed({"ok": True}, started)


def check_workers() -> Check:
    """Which queues have a live worker. Unhealthy if any queue has none."""
    if settings.NEO_TASKS_IN_PROCESS:
        return {"ok": True, "mode": "in-process", "queues": {q: ["in-process"] for q in settings.CELERY_QUEUES}}
    try:
        beats = heartbeat_read(get_redis())
    except Exception as error:  # noqa: BLE001
        return {"ok": False, "mode": "celery", "error": f"{type(error).__name__}: {error}"}
    queues: dict[str, list[str]] = {queue: [] for queue in settings.CELERY_QUEUES}
    for beat in beats:
        for queue in beat.queues:
            queues.setdefault(queue, []).append(f"{beat.hostname}:{beat.pid}")
    missing = [queue for queue in settings.CELERY_QUEUES if not queues[queue]]
    check: Check = {"ok": not missing, "mode": "celery", "queues": queues}
    if missing:
        check["error"] = f"no live worker for queue(s): {', '.join(missing)}"
    return check


def check_model(model: str = "") -> Check:
    """The state of generation model `model` (NEO_MODEL when blank) on the generation
    workers (or in this process when tasks run here). Never unhealthy by itself: without
    a model bots answer extractively."""
    name = model or settings.NEO_MODEL
    if settings.NEO_TASKS_IN_PROCESS:
        from workers.generation.loading import holder_for

        return {"ok": True, **holder_for(name).status()}
    try:
        beats = heartbeat_read(get_redis())
    except Exception as error:  # noqa: BLE001
        return {"ok": True, "state": "unknown", "message": f"{type(error).__name__}: {error}"}
    if name == settings.NEO_MODEL:  # the default model: each generation worker's first
        states = [beat.details["model"] for beat in beats if "model" in beat.details]
    else:  # another served model: the workers of its queue report it by name
        states = [state for beat in beats for state in beat.details.get("models", []) if state.get("name") == name]
    if not states:
        return {"ok": True, "state": "unknown", "name": name, "message": "no generation worker reported"}
    for wanted in ("loaded", "unavailable", "not_loaded"):
        for state in states:
            if state.get("state") == wanted:
                return {"ok": True, **state}
    return {"ok": True, **states[0]}


def health_report() -> tuple[bool, dict[str, Check]]:
    checks = {"database": check_database()}
    if settings.REDIS_URL:
        checks["redis"] = check_redis()
    checks["workers"] = check_workers()
    checks["model"] = check_model()
    return all(check["ok"] for check in checks.values()), checks
