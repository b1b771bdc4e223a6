"""The one way workers send events to the browsers watching a conversation.

`async_to_sync(group_send)` from a worker thread starts an event loop (and a thread) per
call, and channels-redis opens its connections per loop: 2.4 ms a delta against Redis,
most of it holding the GIL the decode loop needs. Instead each process keeps one event
loop thread that sends events in the order they were published; deltas are handed over
without waiting, and the events that end a reply (`done`, `error`, `reset`) wait until
everything before them has been sent. Each conversation's events go out in order;
conversations do not wait for one another. Each event is first written to the conversation's
event log (`bots.chat.event_log`), which gives it the `id` clients resume from.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import threading
from typing import Any

from channels.layers import get_channel_layer

from bots.chat import event_log
from bots.chat.events import ReplyEvent, conversation_group

logger = logging.getLogger(__name__)

SEND_TIMEOUT_SECONDS = 10
_WAIT_FOR = {"done", "error", "reset", "status"}


Pending = tuple[dict[str, Any], "concurrent.futures.Future[None] | None"]


class _Publisher:
    """Events of one conversation are sent one after the other, in order; different
    conversations are sent concurrently, so one slow round trip holds up no one else."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.queues: dict[int, asyncio.Queue[Pending]] = {}
        self.thread = threading.Thread(target=self.loop.run_forever, name="neo-publisher", daemon=True)
        self.thread.start()

    def _enqueue(self, conversation_id: int, pending: Pending) -> None:
        queue = self.queues.get(conversation_id)
        if queue is None:
            queue = self.queues[conversation_id] = asyncio.Queue()
            self.loop.create_task(self._drain(conversation_id, queue))
        queue.put_nowait(pending)

    async def _drain(self, conversation_id: int, queue: asyncio.Queue[Pending]) -> None:
        while not queue.empty():
            event, delivered = queue.get_nowait()
            try:
                await asyncio.wait_for(deliver(conversation_id, event), SEND_TIMEOUT_SECONDS)
            except Exception as error:  # noqa: BLE001 - reported to a waiting caller, else logged
                if delivered is not None:
                    delivered.set_exception(error)
                else:
                    logger.warning("could not publish to conversation %s: %s", conversation_id, error)
                continue
            if delivered is not None:
                delivered.set_result(None)
        del self.queues[conversation_id]  # nothing was added meanwhile: this loop is the only writer

    def send(self, conversation_id: int, event: dict[str, Any], *, wait: bool) -> None:
        delivered: concurrent.futures.Future[None] | None = concurrent.futures.Future() if wait else None
        self.loop.call_soon_threadsafe(self._enqueue, conversation_id, (event, delivered))
        if delivered is not None:
            delivered.result(timeout=SEND_TIMEOUT_SECONDS + 5)


_publisher: _Publisher | None = None
_publisher_pid = 0
_publisher_lock = threading.Lock()


def _get_publisher() -> _Publisher:
    """This process's publisher (a forked worker child starts its own)."""
    global _publisher, _publisher_pid
    with _publisher_lock:
        if _publisher is None or _publisher_pid != os.getpid():
            _publisher, _publisher_pid = _Publisher(), os.getpid()
        return _publisher


async def deliver(conversation_id: int, event: dict[str, Any], *, logged: bool = True) -> None:
    """Log `event` (giving it its id) and send it to every socket of the conversation,
    whose consumers handle messages of type `chat.event`. For code already in a loop."""
    if logged:
        await event_log.append(conversation_id, event)
    layer = get_channel_layer()
    if layer is not None:
        await layer.group_send(conversation_group(conversation_id), {"type": "chat.event", "event": event})


def publish(conversation_id: int, event: ReplyEvent) -> None:
    """Send `event` to every socket of the conversation, from a worker thread. Events of
    one process arrive in the order they were published."""
    _get_publisher().send(conversation_id, dict(event), wait=event["type"] in _WAIT_FOR)
