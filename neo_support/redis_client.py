"""Redis clients built from REDIS_URL, all with the same reconnect policy.

After Redis restarts, every pooled connection is dead; redis-py retries a command on
a dead connection only for the errors named in `retry_on_error`, and by default names
none, so the first command on each stale connection failed (a chat message refused
with `internal_error` right after a restart: tests/test_service_restarts.py). Here a
connection error is retried three times, reconnecting, with a short backoff.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import redis
import redis.asyncio.retry
import redis.retry
from django.conf import settings
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

RETRIES = 3


def reconnecting(*, asynchronous: bool = False) -> dict[str, Any]:
    """Keyword arguments for a redis-py client (sync or asyncio) that reconnects and retries."""
    backoff = ExponentialBackoff(cap=1.0, base=0.1)
    retry = redis.asyncio.retry.Retry(backoff, RETRIES) if asynchronous else redis.retry.Retry(backoff, RETRIES)
    return {
        "retry": retry,
        "retry_on_error": [RedisConnectionError, RedisTimeoutError, ConnectionResetError],
        "socket_connect_timeout": 2,
        "health_check_interval": 30,
    }


@cache
def get_redis() -> redis.Redis:
    if not settings.REDIS_URL:
        raise RuntimeError("REDIS_URL is not set")
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5, **reconnecting())
