"""Listening to a conversation's group from synchronous test code, as a widget socket
would: one event loop in a thread of its own for the whole listen (Redis pub/sub
subscriptions belong to the loop that made them)."""

from __future__ import annotations

import asyncio
import queue
import threading

from channels.layers import get_channel_layer

from bots.chat.event_log import parse_event_id
from bots.chat.events import conversation_group


class ConversationListener:
    def __init__(self, conversation_id: int) -> None:
        self._events: queue.Queue[dict] = queue.Queue()
        subscribed = threading.Event()
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._listen(conversation_id, subscribed)), daemon=True
        )
        self._thread.start()
        assert subscribed.wait(30), "could not subscribe to the conversation's group"

    async def _listen(self, conversation_id: int, subscribed: threading.Event) -> None:
        layer = get_channel_layer()
        channel = await layer.new_channel()
        await layer.group_add(conversation_group(conversation_id), channel)
        subscribed.set()
        while True:  # until the test process ends (a daemon thread)
            self._events.put((await layer.receive(channel))["event"])

    def events_until_done(self, timeout: float = 120) -> list[dict]:
        """Every event up to `done`, without their ids (checked to increase)."""
        events: list[dict] = []
        while not events or events[-1]["type"] != "done":
            events.append(self._events.get(timeout=timeout))
        ids = [parse_event_id(event.pop("id")) for event in events]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)
        return events
