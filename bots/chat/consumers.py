"""Websocket consumers: the widget's chat socket, and the fallback that turns away
sockets opened on unknown paths. Close and error codes: docs/protocol.md."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer, WebsocketConsumer
from django.conf import settings

from bots.chat.origins import origin_allowed
from bots.chat.protocol import (
    CLOSE_BAD_REQUEST,
    CLOSE_HELLO_TIMEOUT,
    CLOSE_ORIGIN_REFUSED,
    CLOSE_RATE_LIMITED,
    CLOSE_TOO_MANY_ERRORS,
    CLOSE_TRY_AGAIN_LATER,
    CLOSE_UNKNOWN_BOT,
    FrameError,
    parse_frame,
)
from bots.chat.session import ChatSession, error_event
from bots.selectors import bot_get_by_public_key
from neo_support.rate_limits import rate_hit
from neo_support.views import SERVICE_OUTAGES

logger = logging.getLogger(__name__)

MAX_ERRORS_IN_A_ROW = 10
UNAVAILABLE_RETRY_SECONDS = 3


class UnknownPathConsumer(WebsocketConsumer):
    """Accepts only to close at once with 4404, so clients can tell a wrong URL from a network fault."""

    def connect(self) -> None:
        self.accept()
        self.close(code=CLOSE_UNKNOWN_BOT)


def header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def client_ip(scope: dict[str, Any]) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


class ChatConsumer(AsyncWebsocketConsumer):
    """`/ws/chat/?key=<bot public key>`: one widget tab."""

    session: ChatSession | None = None
    hello_timer: asyncio.Task[None] | None = None
    errors_in_a_row = 0

    async def connect(self) -> None:
        # Accept first so every refusal reaches the client as a close code it can act on.
        await self.accept()
        try:
            await self._admit()
        except SERVICE_OUTAGES:  # Redis or Postgres down or restarting, after redis-py's retries
            logger.warning("chat socket refused: a service is unavailable", exc_info=True)
            await self._send_event(unavailable_event(None))
            await self.close(code=CLOSE_TRY_AGAIN_LATER)

    async def _admit(self) -> None:
        key = (parse_qs(self.scope.get("query_string", b"").decode("latin-1")).get("key") or [""])[0]
        if not key:
            await self._refuse(CLOSE_BAD_REQUEST, "bad_request", "The socket URL needs ?key=<bot public key>.")
            return
        retry = await rate_hit("NEO_RATE_CONNECTIONS_PER_IP", client_ip(self.scope))
        if retry:
            await self._refuse(
                CLOSE_RATE_LIMITED, "rate_limited", "Too many connections; try again later.", retry_after=int(retry)
            )
            return
        bot = await database_sync_to_async(bot_get_by_public_key)(public_key=key[:40])
        if bot is None:
            await self._refuse(CLOSE_UNKNOWN_BOT, "unknown_bot", "No bot has this key.")
            return
        secure = self.scope.get("scheme") in ("wss", "https")
        origin, host = header(self.scope, b"origin"), header(self.scope, b"host")
        if not origin_allowed(origin, allowed=bot.allowed_origins, own_host=host, secure=secure):
            await self._refuse(CLOSE_ORIGIN_REFUSED, "origin_refused", "This site may not use this bot.")
            return
        self.session = ChatSession(
            bot=bot,
            client_ip=client_ip(self.scope),
            channel_name=self.channel_name,
            send=self._send_event,
            own_origin=origin_allowed(origin, allowed=[], own_host=host, secure=secure),
        )
        self.hello_timer = asyncio.ensure_future(self._close_without_hello())

    async def _refuse(self, code: int, error: str, message: str, **details: Any) -> None:
        await self._send_event(error_event(error, message, **details))
        await self.close(code=code)

    async def _close_without_hello(self) -> None:
        await asyncio.sleep(settings.NEO_WS_HELLO_SECONDS)
        if self.session is not None and self.session.visitor is None:
            await self._refuse(CLOSE_HELLO_TIMEOUT, "hello_timeout", "No `hello` was received in time.")

    async def _send_event(self, event: dict[str, Any]) -> None:
        await self.send(text_data=_encode(event))

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        session = self.session
        if session is None:
            return  # refused; the close is on its way
        frame: dict[str, Any] | None = None
        try:
            frame = parse_frame(text_data, max_bytes=settings.NEO_WS_MAX_FRAME_BYTES)
            retry = await rate_hit("NEO_RATE_FRAMES_PER_SOCKET", self.channel_name)
            if retry:
                raise FrameError("rate_limited", "Too many frames; slow down.", retry_after=int(retry))
            await session.handle(frame)
        except SERVICE_OUTAGES:  # Redis or Postgres down or restarting, after redis-py's retries
            # Redis or Postgres is restarting: nothing was stored for a message, and the
            # client sends it again after `retry_after` (the widget does).
            logger.warning("chat frame refused: a service is unavailable", exc_info=True)
            await self._send_event(unavailable_event(frame))
            return
        except FrameError as error:
            self.errors_in_a_row += 1
            await self._send_event(error_event(error.code, error.message, **error.details))
            if self.errors_in_a_row >= MAX_ERRORS_IN_A_ROW:
                await self.close(code=CLOSE_TOO_MANY_ERRORS)
            return
        except Exception:  # noqa: BLE001 - one bad frame must not end everyone's chat
            logger.exception("chat frame failed")
            await self._send_event(error_event("internal_error", "Something went wrong; please try again."))
            return
        self.errors_in_a_row = 0

    async def chat_event(self, message: dict[str, Any]) -> None:
        if self.session is not None:
            await self.session.forward(dict(message["event"]))

    async def disconnect(self, code: int) -> None:
        if self.hello_timer is not None:
            self.hello_timer.cancel()
        if self.session is not None:
            await self.session.leave()


def unavailable_event(frame: dict[str, Any] | None) -> dict[str, Any]:
    details: dict[str, Any] = {"retry_after": UNAVAILABLE_RETRY_SECONDS}
    if frame is not None and frame.get("type") == "message":
        details["client_id"] = frame.get("client_id")
    return error_event(
        "unavailable", "The chat is briefly unavailable; your message will be sent again in a moment.", **details
    )


def _encode(event: dict[str, Any]) -> str:
    return json.dumps(event, ensure_ascii=False, separators=(",", ":"))
