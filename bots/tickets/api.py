"""REST endpoints for tickets, and the inbound-email webhook."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from bots.models import Bot, Message, Role, Ticket, TicketStatus
from bots.selectors import bot_get_by_public_key
from bots.tickets.email_parsing import EmailParseError
from bots.tickets.services import TicketRejected, inbound_signature_valid, ticket_create, ticket_receive_email
from neo_support import audit
from neo_support.api import ApiPages, api_error
from neo_support.api_auth import acting_organization
from neo_support.api_schema import paginated
from neo_support.permissions import Area
from retrieval.loaders.base import LoaderError

logger = logging.getLogger(__name__)


class MessageOut(serializers.ModelSerializer):
    delivery = serializers.CharField(read_only=True, help_text="Tickets: draft, sent or failed; blank in chat.")

    class Meta:
        model = Message
        fields = ["id", "role", "text", "status", "delivery", "citations", "confidence", "created_at"]


class TicketOut(serializers.ModelSerializer):
    bot = serializers.IntegerField(source="conversation.bot_id")
    channel = serializers.CharField(source="conversation.channel")

    class Meta:
        model = Ticket
        fields = [
            "id", "token", "bot", "channel", "subject", "requester_email", "requester_name", "status", "priority",
            "category", "category_source", "category_confidence", "language", "due_at", "triage", "auto_answer",
            "created_at", "updated_at",
        ]  # fmt: skip


class TicketIn(serializers.Serializer):
    bot = serializers.IntegerField()
    subject = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")
    text = serializers.CharField(max_length=50_000)
    email = serializers.EmailField()
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class TicketDetailOut(TicketOut):
    messages = MessageOut(many=True)

    class Meta(TicketOut.Meta):
        fields = [*TicketOut.Meta.fields, "messages"]


class TicketListApi(APIView):
    api_area = Area.TICKETS

    @extend_schema(
        operation_id="tickets_list",
        responses=paginated(TicketOut),
        parameters=[OpenApiParameter("status", str, enum=list(TicketStatus.values))],
    )
    def get(self, request: Request) -> Response:
        tickets = Ticket.objects.for_organization(acting_organization(request)).select_related("conversation")
        if request.query_params.get("status"):
            tickets = tickets.filter(status=request.query_params["status"])
        pages = ApiPages()
        page = pages.paginate_queryset(tickets.order_by("-created_at"), request, view=self)
        return pages.get_paginated_response(TicketOut(page, many=True).data)

    @extend_schema(request=TicketIn, responses={201: TicketOut})
    def post(self, request: Request) -> Response:
        incoming = TicketIn(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        organization = acting_organization(request)
        bot = get_object_or_404(Bot.objects.for_organization(organization), pk=data["bot"])
        try:
            ticket, _ = ticket_create(
                bot=bot, subject=data["subject"], text=data["text"], email=data["email"], name=data["name"]
            )
        except TicketRejected as error:
            return api_error("rejected", str(error), status.HTTP_400_BAD_REQUEST)
        audit.record(
            organization=organization, action="ticket.create", target=ticket, target_label=f"ticket {ticket.pk}"
        )
        return Response(TicketOut(ticket).data, status=status.HTTP_201_CREATED)


class TicketDetailApi(APIView):
    api_area = Area.TICKETS

    @extend_schema(responses=TicketDetailOut)
    def get(self, request: Request, ticket_id: int) -> Response:
        organization = acting_organization(request)
        ticket = get_object_or_404(
            Ticket.objects.for_organization(organization).select_related("conversation"), pk=ticket_id
        )
        messages = ticket.conversation.messages.exclude(role=Role.SYSTEM).order_by("created_at", "pk")
        return Response({**TicketOut(ticket).data, "messages": MessageOut(messages, many=True).data})


def _error(code: str, message: str, http_status: int) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message}}, status=http_status)


@csrf_exempt
@require_POST
def inbound_email(request: HttpRequest, public_key: str) -> JsonResponse:
    """A raw MIME message (any content type) posted by a mail provider's inbound hook,
    signed: `X-Neo-Signature: sha256=<hex HMAC-SHA256 of the body under the bot's
    inbound secret>`. 201 with the ticket when stored, 200 when it was a duplicate or
    machine-sent mail that is ignored."""
    bot = bot_get_by_public_key(public_key=public_key[:40])
    if bot is None:
        return _error("not_found", "No bot has this key.", 404)
    length = int(request.META.get("CONTENT_LENGTH") or 0)
    if length > settings.NEO_EMAIL_MAX_BYTES:
        return _error("too_large", f"The message is over {settings.NEO_EMAIL_MAX_BYTES} bytes.", 413)
    body = request.read(settings.NEO_EMAIL_MAX_BYTES + 1)
    if len(body) > settings.NEO_EMAIL_MAX_BYTES:
        return _error("too_large", f"The message is over {settings.NEO_EMAIL_MAX_BYTES} bytes.", 413)
    signature = request.headers.get("X-Neo-Signature", "")
    if not signature or not inbound_signature_valid(bot=bot, body=body, signature=signature):
        return _error("bad_signature", "X-Neo-Signature is missing or does not match this bot's inbound secret.", 401)
    try:
        outcome = ticket_receive_email(bot=bot, raw=body)
    except EmailParseError as error:
        return _error("not_an_email", str(error), 400)
    except LoaderError as error:  # the parser crashed or outran its limits on this message
        logger.warning("inbound email for bot %s could not be parsed: %s", bot.pk, error)
        if error.retryable:
            return _error("unavailable", str(error), 503)
        return _error("unreadable", str(error), 422)
    result: dict[str, Any] = {"status": outcome.status, "reason": outcome.reason}
    if outcome.ticket is not None:
        result["ticket"] = {"id": outcome.ticket.pk, "token": outcome.ticket.token}
    if outcome.message is not None:
        result["message_id"] = outcome.message.pk
    return JsonResponse(result, status=201 if outcome.status in {"created", "follow_up"} else 200)
