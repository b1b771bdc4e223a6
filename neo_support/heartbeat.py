"""Worker heartbeats in Redis: one expiring key per worker process.

A worker writes its key every `interval` seconds with a time-to-live of three
intervals, so a killed worker disappears on its own. Pure Python over a
redis-py client.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

KEY_PREFIX = "neo:heartbeat:"


@dataclass(frozen=True)
class WorkerBeat:
    hostname: str
    pid: int
    queues: list[str]
    seen_at: float = field(default_factory=time.time)
    # What the worker reports about itself, e.g. its generation model's state.
    details: dict[str, Any] = field(default_factory=dict)


def heartbeat_key(beat: WorkerBeat) -> str:
    return f"{KEY_PREFIX}{beat.hostname}:{beat.pid}"


def heartbeat_write(client: Any, *, beat: WorkerBeat, ttl_seconds: int, details: dict[str, Any] | None = None) -> None:
    payload = asdict(beat) | {"seen_at": time.time(), "details": details or beat.details}
    client.set(heartbeat_key(beat), json.dumps(payload), ex=ttl_seconds)


def heartbeat_clear(client: Any, *, beat: WorkerBeat) -> None:
    client.delete(heartbeat_key(beat))


def heartbeat_read(client: Any) -> list[WorkerBeat]:
    """Every live worker's last beat, skipping keys that vanished or are unreadable."""
    beats = []
    for key in client.scan_iter(match=f"{KEY_PREFIX}*", count=100):
        raw = client.get(key)
        if raw is None:
            continue
        try:
            data = json.loads(raw)
            beats.append(
                WorkerBeat(
                    hostname=str(data["hostname"]),
                    pid=int(data["pid"]),
                    queues=[str(queue) for queue in data["queues"]],
                    seen_at=float(data["seen_at"]),
                    details=dict(data.get("details") or {}),
                )
            )
        except (ValueError, KeyError, TypeError):
            logger.warning("ignoring a malformed heartbeat under %s", key)
    return beats


def heartbeat_loop(
    *,
    client: Any,
    beat: WorkerBeat,
    interval: int,
    stop: threading.Event,
    describe: Callable[[], dict[str, Any]] | None = None,
) -> None:
    """Beat until `stop` is set, then remove the key; Redis outages are logged, not fatal.
    `describe` adds fresh details to every beat."""
    while not stop.is_set():
        try:
            details = describe() if describe is not None else None
            heartbeat_write(client, beat=beat, ttl_seconds=interval * 3, details=details)
        except Exception:  # noqa: BLE001 - a Redis hiccup must not kill the worker
            logger.warning("could not write the worker heartbeat", exc_info=True)
        stop.wait(interval)
    try:
        heartbeat_clear(client, beat=beat)
    except Exception:  # noqa: BLE001
        logger.warning("could not clear the worker heartbeat", exc_info=True)
