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
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt

from bots.chat import event_log
from bots.chat.origins import origin_allowed
from bots.chat.protocol import FrameError, parse_frame
from bots.chat.session import ChatSession, error_event
from bots.models import Bot, Channel
from bots.selectors import bot_get_by_public_key
from bots.tickets.services import ticket_create
from neo_support.rate_limits import rate_hit

KEEPALIVE_SECONDS = 15
STREAM_SECONDS = 300  # then the browser's EventSource reconnects with Last-Event-ID


def _client_ip(request: HttpRequest) -> str:
    return str(request.META.get("REMOTE_ADDR") or "unknown")


async def _checked_bot(request: HttpRequest, public_key: str) -> tuple[Bot | None, HttpResponse | None]:
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


def _cors(response: HttpResponse, request: HttpRequest) -> HttpResponse:
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
    bot, refusal = await _checked_bot(request, public_key)
    if refusal is not None:
        return refusal
    assert bot is not None
    if request.method == "OPTIONS":
        return _cors(HttpResponse(status=204), request)
    if request.method != "POST":
        return JsonResponse(error_event("method_not_allowed", "POST a frame."), status=405)
    out: list[dict[str, Any]] = []

    async def collect(event: dict[str, Any]) -> None:
        out.append(event)

    session = ChatSession(bot=bot, client_ip=_client_ip(request), channel_name=None, send=collect)
    status = 200
    try:
        retry = await rate_hit("NEO_RATE_FRAMES_PER_SOCKET", "http", _client_ip(request))
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
    return _cors(JsonResponse(out, safe=False, status=status), request)


async def events(request: HttpRequest, public_key: str) -> HttpResponse:
    """The conversation's events as Server-Sent Events, from `last_event_id` on."""
    bot, refusal = await _checked_bot(request, public_key)
    if refusal is not None:
        return refusal
    assert bot is not None
    if await rate_hit("NEO_RATE_CONNECTIONS_PER_IP", _client_ip(request)):
        return _cors(JsonResponse(error_event("rate_limited", "Too many connections."), status=429), request)
    layer = get_channel_layer()
    channel = await layer.new_channel() if layer is not None else None
    queued: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def collect(event: dict[str, Any]) -> None:
        queued.put_nowait(event)

    session = ChatSession(bot=bot, client_ip=_client_ip(request), channel_name=channel, send=collect)
    try:
        await session.restore(request.GET.get("token", ""))
    except FrameError as error:
        return _cors(JsonResponse(error_event(error.code, error.message), status=401), request)
    if session.conversation is None:
        await session.leave()
        return _cors(JsonResponse(error_event("no_conversation", "Send a message first."), status=409), request)
    after = request.headers.get("Last-Event-ID") or request.GET.get("last_event_id") or "0-0"
    session.last_sent = event_log.parse_event_id(after) or (0, 0)
    missed = await event_log.read_after(session.conversation.pk, after)
    for event in missed or []:
        await session.forward(event)
    response = StreamingHttpResponse(_stream(session, layer, channel, queued), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return _cors(response, request)


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


@csrf_exempt  # no cookies are involved; the bot's allowed origins are checked
async def contact(request: HttpRequest, public_key: str) -> HttpResponse:
    """The widget's contact form: `{"email", "name"?, "subject"?, "text"}` becomes an email
    ticket, answered by email (when no agent is online, or the visitor prefers it)."""
    bot, refusal = await _checked_bot(request, public_key)
    if refusal is not None:
        return refusal
    assert bot is not None
    if request.method == "OPTIONS":
        return _cors(HttpResponse(status=204), request)
    if request.method != "POST":
        return _cors(JsonResponse(error_event("method_not_allowed", "POST the form."), status=405), request)
    if await rate_hit("NEO_RATE_MESSAGES_PER_IP", "contact", _client_ip(request)):
        limited = JsonResponse(error_event("rate_limited", "Too many messages; try again later."), status=429)
        return _cors(limited, request)
    try:
        form = json.loads(request.body.decode("utf-8", "replace")[: settings.NEO_WS_MAX_FRAME_BYTES])
        if not isinstance(form, dict):
            raise ValueError
    except ValueError:
        return _cors(JsonResponse(error_event("invalid_form", "Send the form as a JSON object."), status=400), request)
    email = str(form.get("email", "")).strip()
    text = str(form.get("text", "")).strip()
    problems = []
    try:
        validate_email(email)
    except ValidationError:
        problems.append("a valid email address")
    if not text:
        problems.append("a message")
    elif len(text) > settings.NEO_MAX_MESSAGE_CHARS:
        problems.append(f"a message of at most {settings.NEO_MAX_MESSAGE_CHARS} characters")
    if problems:
        message = "Please give " + " and ".join(problems) + "."
        return _cors(JsonResponse(error_event("invalid_form", message), status=400), request)
    ticket, _ = await database_sync_to_async(ticket_create)(
        bot=bot,
        subject=str(form.get("subject", ""))[:300],
        text=text,
        email=email,
        name=str(form.get("name", ""))[:200],
        channel=Channel.EMAIL,
    )
    return _cors(JsonResponse({"type": "contact_received", "ticket": ticket.token}, status=201), request)
