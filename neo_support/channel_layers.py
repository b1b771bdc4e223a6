"""Channel layers: the embedded default's in-memory layer, safe to send to from
another thread's event loop, and the Redis pub/sub layer, always listening.

In the embedded default the reply tasks run on worker threads of the web process and
publish from their own event loop, while the sockets wait on the ASGI server's loop;
`asyncio.Queue` is not thread-safe, so a send from the publisher's loop would wake a
receiver on the server's loop late or never. Here every operation runs on the loop that
receives (the first loop to call `receive`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from channels.layers import InMemoryChannelLayer
from channels_redis.pubsub import RedisPubSubChannelLayer

STANDING_GROUP = "neo.standing"  # nothing is ever sent to it

T = TypeVar("T")


class ThreadSafeInMemoryChannelLayer(InMemoryChannelLayer):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._home: asyncio.AbstractEventLoop | None = None

    async def _at_home(self, operation: Callable[[], Awaitable[T]]) -> T:
        home = self._home
        if home is None or home.is_closed() or not home.is_running():
            return await operation()
        if asyncio.get_running_loop() is home:
            return await operation()

        async def run() -> T:
            return await operation()

        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(run(), home))

    async def receive(self, channel: str) -> Any:
        running = asyncio.get_running_loop()
        if self._home is None or self._home.is_closed() or not self._home.is_running():
            self._home = running
        if running is not self._home:
            return await self._at_home(lambda: super(ThreadSafeInMemoryChannelLayer, self).receive(channel))
        return await super().receive(channel)

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        await self._at_home(lambda: super(ThreadSafeInMemoryChannelLayer, self).send(channel, message))

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        await self._at_home(lambda: super(ThreadSafeInMemoryChannelLayer, self).group_send(group, message))

    async def group_add(self, group: str, channel: str) -> None:
        await self._at_home(lambda: super(ThreadSafeInMemoryChannelLayer, self).group_add(group, channel))

    async def group_discard(self, group: str, channel: str) -> None:
        await self._at_home(lambda: super(ThreadSafeInMemoryChannelLayer, self).group_discard(group, channel))


class StandingRedisPubSubChannelLayer(RedisPubSubChannelLayer):
    """channels-redis's pub/sub layer, always listening.

    Its receive loop sleeps 0.1 s at a time while the process has no subscription, so
    the first event for the first socket of an idle process waited up to 100 ms (half
    the end-to-end overhead measured by bench/websocket.py). One standing subscription,
    taken with the first channel of each event loop's layer, keeps it on the socket.
    """

    async def new_channel(self, prefix: str = "specific.") -> str:
        layer = self._get_layer()  # one per event loop
        channel = await layer.new_channel(prefix)
        if not getattr(layer, "neo_standing", False):
            layer.neo_standing = True
            await layer.group_add(STANDING_GROUP, await layer.new_channel("standing."))
        return str(channel)
