"""Rate limits for chat clients, on the `limits` library: a moving window in Redis
when REDIS_URL is set (shared by every ASGI process), in this process otherwise."""

from __future__ import annotations

import math
import time
from functools import cache

from django.conf import settings
from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import MemoryStorage as SyncMemoryStorage
from limits.storage import RedisStorage as SyncRedisStorage
from limits.storage import Storage as SyncStorage
from limits.strategies import MovingWindowRateLimiter as SyncMovingWindowRateLimiter

from neo_support.redis_client import reconnecting


@cache
def _limiter() -> MovingWindowRateLimiter:
    storage: Storage
    if settings.REDIS_URL:
        uri = settings.REDIS_URL.replace("redis://", "async+redis://", 1).replace("rediss://", "async+rediss://", 1)
        storage = RedisStorage(
            uri,
            implementation="redispy",
            key_prefix=f"{settings.NEO_CHANNEL_PREFIX}:rate",
            **reconnecting(asynchronous=True),
        )
    else:
        storage = MemoryStorage()
    return MovingWindowRateLimiter(storage)


@cache
def _items(setting: str) -> tuple[RateLimitItem, ...]:
    return tuple(parse_many(getattr(settings, setting)))


async def rate_hit(setting: str, *identifiers: str) -> float:
    """Count one hit against every limit in `setting` for `identifiers`; 0 when allowed,
    else the seconds to wait before trying again."""
    limiter = _limiter()
    for item in _items(setting):
        if not await limiter.hit(item, setting, *identifiers):
            stats = await limiter.get_window_stats(item, setting, *identifiers)
            return max(1.0, math.ceil(stats.reset_time - time.time()))
    return 0.0


def rate_reset() -> None:
    """Forget every count and re-read the settings (tests)."""
    _limiter.cache_clear()
    _sync_limiter.cache_clear()
    _items.cache_clear()


@cache
def _sync_limiter() -> SyncMovingWindowRateLimiter:
    """The same windows for synchronous callers (the REST API's throttle)."""
    storage: SyncStorage
    if settings.REDIS_URL:
        storage = SyncRedisStorage(
            settings.REDIS_URL, key_prefix=f"{settings.NEO_CHANNEL_PREFIX}:rate", **reconnecting()
        )
    else:
        storage = SyncMemoryStorage()
    return SyncMovingWindowRateLimiter(storage)


def rate_hit_sync(setting: str, *identifiers: str) -> float:
    """`rate_hit` for synchronous code."""
    limiter = _sync_limiter()
    for item in _items(setting):
        if not limiter.hit(item, setting, *identifiers):
            stats = limiter.get_window_stats(item, setting, *identifiers)
            return max(1.0, math.ceil(stats.reset_time - time.time()))
    return 0.0
