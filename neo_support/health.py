"""Checks behind /healthz: the database, Redis, live workers per queue and the state of
every served generation model."""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.db import connection

from neo_support.heartbeat import WorkerBeat, heartbeat_read
from neo_support.model_queues import queue_models
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
        return {"ok": True, "state": "unknown", "name": name, "message": f"{type(error).__name__}: {error}"}
    states = [state for beat in beats if (state := _reported_state(beat, name)) is not None]
    if not states:
        return {"ok": True, "state": "unknown", "name": name, "message": "no generation worker reported"}
    return {"ok": True, **_most_telling(states)}


def check_models() -> Check:
    """Every served base model (NEO_MODEL first, then NEO_MODELS) with its queue, its
    state, and each live worker of its queue with the state that worker reports (from
    heartbeats). Never unhealthy by itself: a queue without a worker makes the workers
    check fail, and a bot whose model is missing answers extractively."""
    served = queue_models(settings.NEO_MODEL, settings.NEO_MODELS)
    if settings.NEO_TASKS_IN_PROCESS:
        from workers.generation.loading import holder_for

        models = [
            _served(model, queue) | holder_for(model).status() | {"workers": []} for queue, model in served.items()
        ]
        return {"ok": True, "mode": "in-process", "models": models}
    try:
        beats = heartbeat_read(get_redis())
    except Exception as error:  # noqa: BLE001
        unknown = {"state": "unknown", "workers": []}
        models = [_served(model, queue) | unknown for queue, model in served.items()]
        return {"ok": True, "mode": "celery", "message": f"{type(error).__name__}: {error}", "models": models}
    now = time.time()
    models = []
    for queue, model in served.items():
        workers = [
            {
                "worker": f"{beat.hostname}:{beat.pid}",
                "seen_seconds_ago": round(max(0.0, now - beat.seen_at), 1),
                **(_reported_state(beat, model) or {"state": "unknown", "message": "not reported yet"}),
            }
            for beat in beats
            if queue in beat.queues
        ]
        summary = _most_telling(workers) if workers else {"message": f"no live worker consumes queue {queue}"}
        state = {key: value for key, value in summary.items() if key not in ("worker", "seen_seconds_ago")}
        models.append(_served(model, queue) | {"state": "unknown"} | state | {"workers": workers})
    return {"ok": True, "mode": "celery", "models": models}


def _served(model: str, queue: str) -> Check:
    return {"name": model, "queue": queue, "default": model == settings.NEO_MODEL}


def _reported_state(beat: WorkerBeat, model: str) -> dict[str, Any] | None:
    """`model`'s state as worker `beat` reports it; None when it does not report it.
    Every generation worker lists its models under "models"; NEO_MODEL's is also "model"."""
    for state in beat.details.get("models", []):
        if isinstance(state, dict) and state.get("name") == model:
            return state
    if model == settings.NEO_MODEL and isinstance(beat.details.get("model"), dict):
        return dict(beat.details["model"])
    return None


def _most_telling(states: list[dict[str, Any]]) -> dict[str, Any]:
    """One state for a model reported by several workers: loaded anywhere, else why not."""
    for wanted in ("loaded", "unavailable", "not_loaded"):
        for state in states:
            if state.get("state") == wanted:
                return state
    return states[0]


def health_report() -> tuple[bool, dict[str, Check]]:
    checks = {"database": check_database()}
    if settings.REDIS_URL:
        checks["redis"] = check_redis()
    checks["workers"] = check_workers()
    checks["model"] = check_model()  # NEO_MODEL alone, as before "models"
    checks["models"] = check_models()
    return all(check["ok"] for check in checks.values()), checks
