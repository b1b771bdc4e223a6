"""A short log of each conversation's events, so a reconnecting client can be sent
exactly what it missed, a reply still streaming included.

Every event published to a conversation gets an id here first (`<ms>-<n>`, increasing
within a conversation) and is kept for `NEO_EVENT_LOG_SECONDS` (at most
`NEO_EVENT_LOG_EVENTS` events): a Redis stream per conversation when Redis is
configured, a deque in this process otherwise. Stored messages remain the source of
truth; the log only bridges the time a socket was away.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import deque
from typing import Any
from weakref import WeakKeyDictionary

from django.conf import settings

from neo_support.redis_client import reconnecting

Event = dict[str, Any]


def _key(conversation_id: int) -> str:
    return f"{settings.NEO_CHANNEL_PREFIX}:events:{conversation_id}"


def parse_event_id(value: object) -> tuple[int, int] | None:
    """(milliseconds, sequence) of an id like `1732630000000-3`; None when malformed."""
    if not isinstance(value, str) or len(value) > 40:
        return None
    first, _, second = value.partition("-")
    if not (first.isdigit() and second.isdigit()):
        return None
    return int(first), int(second)


class _MemoryLog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: dict[int, deque[tuple[tuple[int, int], float, Event]]] = {}
        self._last: tuple[int, int] = (0, 0)

    def append(self, conversation_id: int, event: Event) -> str:
        now = time.time()
        with self._lock:
            milliseconds = int(now * 1000)
            last_ms, last_n = self._last
            ident = (milliseconds, 0) if milliseconds > last_ms else (last_ms, last_n + 1)
            self._last = ident
            events = self._events.setdefault(conversation_id, deque(maxlen=settings.NEO_EVENT_LOG_EVENTS))
            events.append((ident, now, event))
            return f"{ident[0]}-{ident[1]}"

    def read_after(self, conversation_id: int, after: tuple[int, int]) -> list[Event] | None:
        horizon = time.time() - settings.NEO_EVENT_LOG_SECONDS
        with self._lock:
            events = [item for item in self._events.get(conversation_id, ()) if item[1] >= horizon]
        if after != (0, 0) and (not events or events[0][0] > after):
            return None  # the log no longer reaches back to `after`
        return [event for ident, _, event in events if ident > after]

    def forget(self, conversation_ids: list[int]) -> int:
        with self._lock:
            return sum(self._events.pop(pk, None) is not None for pk in conversation_ids)


_memory = _MemoryLog()
_clients: WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = WeakKeyDictionary()


def _redis() -> Any:
    """An asyncio Redis client for the running event loop (connections belong to a loop)."""
    import redis.asyncio

    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        client = redis.asyncio.from_url(settings.REDIS_URL, decode_responses=True, **reconnecting(asynchronous=True))
        _clients[loop] = client
    return client


async def append(conversation_id: int, event: Event) -> str:
    """Store `event` and return its id; the id is also written into the event."""
    if not settings.REDIS_URL:
        ident = _memory.append(conversation_id, event)
        event["id"] = ident
        return ident
    client = _redis()
    key = _key(conversation_id)
    async with client.pipeline(transaction=False) as pipe:
        pipe.xadd(key, {"e": json.dumps(event)}, maxlen=settings.NEO_EVENT_LOG_EVENTS, approximate=True)
        pipe.expire(key, settings.NEO_EVENT_LOG_SECONDS)
        ident, _ = await pipe.execute()
    event["id"] = ident
    return str(ident)


async def read_after(conversation_id: int, after_id: str) -> list[Event] | None:
    """Events after `after_id`, oldest first; None when the log no longer reaches back
    that far (the client must reload the history instead)."""
    after = parse_event_id(after_id)
    if after is None:
        return None
    if not settings.REDIS_URL:
        return _memory.read_after(conversation_id, after)
    client = _redis()
    key = _key(conversation_id)
    if after != (0, 0):
        first = await client.xrange(key, count=1)
        if not first or parse_event_id(first[0][0]) > after:  # type: ignore[operator]
            return None
    entries = await client.xrange(key, min=f"({after[0]}-{after[1]}", count=settings.NEO_EVENT_LOG_EVENTS)
    events = []
    for ident, fields in entries:
        event = json.loads(fields["e"])
        event["id"] = ident
        events.append(event)
    return events


def forget(conversation_ids: list[int]) -> int:
    """Drop the logs of these conversations now, rather than when they expire (an erasure,
    retention); returns how many logs there were. Synchronous: called from tasks."""
    if not conversation_ids:
        return 0
    if not settings.REDIS_URL:
        return _memory.forget(conversation_ids)
    from neo_support.redis_client import get_redis

    return int(get_redis().delete(*(_key(pk) for pk in conversation_ids)))


def memory_reset() -> None:
    """Forget every event of the in-process log (tests: a rolled-back test's conversation
    ids are used again by the next, and their events must not be replayed to it)."""
    global _memory
    _memory = _MemoryLog()
