"""Stopping a reply mid-stream: a flag the decode loop checks between tokens.

In Redis when workers run elsewhere, in this process otherwise.
"""

from __future__ import annotations

import threading

from django.conf import settings

from neo_support.redis_client import get_redis

TTL_SECONDS = 600
_local: set[int] = set()
_lock = threading.Lock()


def _key(message_id: int) -> str:
    return f"neo:cancel:{message_id}"


def reply_cancel(*, message_id: int) -> None:
    """Ask the worker streaming `message_id` to stop after its current token."""
    if settings.REDIS_URL:
        get_redis().set(_key(message_id), 1, ex=TTL_SECONDS)
        return
    with _lock:
        _local.add(message_id)


def reply_is_cancelled(message_id: int) -> bool:
    if settings.REDIS_URL:
        return bool(get_redis().exists(_key(message_id)))
    with _lock:
        return message_id in _local
