"""The chat protocol over plain HTTP, for networks that block websockets
(docs/protocol.md, "HTTP fallback"): frames by POST, events as Server-Sent Events."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt

from bots.chat import event_log
from bots.chat.origins import origin_allowed
from bots.chat.protocol import FrameError, parse_frame
from bots.chat.session import ChatSession, error_event
from bots.models import Bot
from bots.selectors import bot_get_by_public_key
from neo_support.rate_limits import rate_hit

KEEPALIVE_SECONDS = 15
STREAM_SECONDS = 300  # then the browser's EventSource reconnects with Last-Event-ID


def client_ip(request: HttpRequest) -> str:
    return str(request.META.get("REMOTE_ADDR") or "unknown")


async def checked_bot(request: HttpRequest, public_key: str) -> tuple[Bot | None, HttpResponse | None]:
    bot = await database_sync_to_async(bot_get_by_public_key)(public_key=public_key[:40])
    if bot is None:
        return None, JsonResponse(error_event("unknown_bot", "No bot has this key."), status=404)
    if not origin_allowed(
        request.headers.get("Origin"),
        allowed=bot.allowed_origins,
        own_host=request.get_host(),
        secure=request.is_secure(),
    ):
        return None, JsonResponse(error_event("origin_refused", "This site may not use this bot."), status=403)
    return bot, None


def own_origin(request: HttpRequest) -> bool:
    """The request comes from a page of this server (the dashboard, the demo page)."""
    return origin_allowed(
        request.headers.get("Origin"), allowed=[], own_host=request.get_host(), secure=request.is_secure()
    )


def cors(response: HttpResponse, request: HttpRequest) -> HttpResponse:
    # Only reached once the origin passed the bot's check.
    origin = request.headers.get("Origin")
    if origin:
        response["Access-Control-Allow-Origin"] = origin
        response["Access-Control-Allow-Headers"] = "Content-Type, X-Visitor-Token, Last-Event-ID"
        response["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
        response["Vary"] = "Origin"
    return response


@csrf_exempt  # no cookies are involved: the visitor token travels in a header
async def frames(request: HttpRequest, public_key: str) -> HttpResponse:
    """One client frame in; the events it produced directly out, as a JSON list."""
    bot, refusal = await checked_bot(request, public_key)
    if refusal is not None:
        return refusal
    assert bot is not None
    if request.method == "OPTIONS":
        return cors(HttpResponse(status=204), request)
    if request.method != "POST":
        return JsonResponse(error_event("method_not_allowed", "POST a frame."), status=405)
    out: list[dict[str, Any]] = []

    async def collect(event: dict[str, Any]) -> None:
        out.append(event)

    session = ChatSession(
        bot=bot, client_ip=client_ip(request), channel_name=None, send=collect, own_origin=own_origin(request)
    )
    status = 200
    try:
        retry = await rate_hit("NEO_RATE_FRAMES_PER_SOCKET", "http", client_ip(request))
        if retry:
            raise FrameError("rate_limited", "Too many frames; slow down.", retry_after=int(retry))
        body = request.body.decode("utf-8", "replace")
        frame = parse_frame(body, max_bytes=settings.NEO_WS_MAX_FRAME_BYTES)
        token = request.headers.get("X-Visitor-Token", "")
        if frame["type"] != "hello":
            if not token:
                raise FrameError("hello_required", "Send `hello` first, then the visitor token in X-Visitor-Token.")
            await session.restore(token)
        await session.handle(frame)
    except FrameError as error:
        out.append(error_event(error.code, error.message, **error.details))
        status = 429 if error.code == "rate_limited" else 400
    return cors(JsonResponse(out, safe=False, status=status), request)


async def events(request: HttpRequest, public_key: str) -> HttpResponse:
    """The conversation's events as Server-Sent Events, from `last_event_id` on."""
    bot, refusal = await checked_bot(request, public_key)
    if refusal is not None:
        return refusal
    assert bot is not None
    if await rate_hit("NEO_RATE_CONNECTIONS_PER_IP", client_ip(request)):
        return cors(JsonResponse(error_event("rate_limited", "Too many connections."), status=429), request)
    layer = get_channel_layer()
    channel = await layer.new_channel() if layer is not None else None
    queued: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def collect(event: dict[str, Any]) -> None:
        queued.put_nowait(event)

    session = ChatSession(bot=bot, client_ip=client_ip(request), channel_name=channel, send=collect)
    try:
        await session.restore(request.GET.get("token", ""))
    except FrameError as error:
        return cors(JsonResponse(error_event(error.code, error.message), status=401), request)
    if session.conversation is None:
        await session.leave()
        return cors(JsonResponse(error_event("no_conversation", "Send a message first."), status=409), request)
    after = request.headers.get("Last-Event-ID") or request.GET.get("last_event_id") or "0-0"
    session.last_sent = event_log.parse_event_id(after) or (0, 0)
    missed = await event_log.read_after(session.conversation.pk, after)
    for event in missed or []:
        await session.forward(event)
    response = StreamingHttpResponse(_stream(session, layer, channel, queued), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return cors(response, request)


async def _stream(
    session: ChatSession, layer: Any, channel: str | None, queued: asyncio.Queue[dict[str, Any]]
) -> AsyncIterator[str]:
    deadline = time.monotonic() + STREAM_SECONDS
    try:
        yield "retry: 2000\n\n"
        while time.monotonic() < deadline:
            while not queued.empty():
                yield _sse(queued.get_nowait())
            if layer is None or channel is None:
                return
            try:
                message = await asyncio.wait_for(layer.receive(channel), KEEPALIVE_SECONDS)
            except TimeoutError:
                yield ": keep-alive\n\n"
                continue
            await session.forward(dict(message["event"]))
    finally:
        await session.leave()


def _sse(event: dict[str, Any]) -> str:
    lines = f"data: {json.dumps(event, ensure_ascii=False)}\n\n"
    return f"id: {event['id']}\n{lines}" if event.get("id") else lines
