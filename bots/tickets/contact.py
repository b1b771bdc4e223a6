"""The widget's contact form: a visitor's email and message become an email ticket, answered by email."""

from __future__ import annotations

import json

from channels.db import database_sync_to_async
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from bots.chat.http_fallback import checked_bot, client_ip, cors
from bots.chat.session import error_event
from bots.models import Channel
from bots.tickets.services import ticket_create
from neo_support.rate_limits import rate_hit


@csrf_exempt  # no cookies are involved; the bot's allowed origins are checked
async def contact(request: HttpRequest, public_key: str) -> HttpResponse:
    """The widget's contact form: `{"email", "name"?, "subject"?, "text"}` becomes an email
    ticket, answered by email (when no agent is online, or the visitor prefers it)."""
    bot, refusal = await checked_bot(request, public_key)
    if refusal is not None:
        return refusal
    assert bot is not None
    if request.method == "OPTIONS":
        return cors(HttpResponse(status=204), request)
    if request.method != "POST":
        return cors(JsonResponse(error_event("method_not_allowed", "POST the form."), status=405), request)
    if await rate_hit("NEO_RATE_MESSAGES_PER_IP", "contact", client_ip(request)):
        limited = JsonResponse(error_event("rate_limited", "Too many messages; try again later."), status=429)
        return cors(limited, request)
    try:
        form = json.loads(request.body.decode("utf-8", "replace")[: settings.NEO_WS_MAX_FRAME_BYTES])
        if not isinstance(form, dict):
            raise ValueError
    except ValueError:
        return cors(JsonResponse(error_event("invalid_form", "Send the form as a JSON object."), status=400), request)
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
        return cors(JsonResponse(error_event("invalid_form", message), status=400), request)
    ticket, _ = await database_sync_to_async(ticket_create)(
        bot=bot,
        subject=str(form.get("subject", ""))[:300],
        text=text,
        email=email,
        name=str(form.get("name", ""))[:200],
        channel=Channel.EMAIL,
    )
    return cors(JsonResponse({"type": "contact_received", "ticket": ticket.token}, status=201), request)
