"""REST endpoints for conversations: read transcripts, send a message and get the bot's
reply as JSON or as Server-Sent Events, and rate replies."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from asgiref.sync import sync_to_async
from django import forms as django_forms
from django.conf import settings
from django.db.models import Count, QuerySet
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django_filters import rest_framework as filters
from django_filters.fields import IsoDateTimeField
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from bots.chat import event_log
from bots.chat.services import MessageRejected, ReplyInProgress, conversation_ask, conversation_start, feedback_record
from bots.models import Channel, Conversation, ConversationStatus, Feedback, Message, MessageStatus, Rating
from bots.models import Role as MessageRole
from neo_support import audit
from neo_support.api import EventStreamRenderer, api_error
from neo_support.api_auth import acting_organization
from neo_support.permissions import Area

FINISHED = {MessageStatus.DONE, MessageStatus.FAILED, MessageStatus.BLOCKED}
POLL_SECONDS = 0.1


class MessageSerializer(serializers.ModelSerializer):
    delivery = serializers.CharField(read_only=True, help_text="Tickets: draft, sent or failed; blank in chat.")

    class Meta:
        model = Message
        fields = [
            "id", "conversation", "role", "text", "status", "citations", "confidence", "moderation_action",
            "timings", "prompt_tokens", "completion_tokens", "delivery", "created_at",
        ]  # fmt: skip
        read_only_fields = fields


class ConversationSerializer(serializers.ModelSerializer):
    message_count = serializers.IntegerField(read_only=True)
    ticket = serializers.SerializerMethodField()

    class Meta:
        model = Conversation
        fields = [
            "id", "bot", "channel", "visitor_id", "visitor_info", "status", "message_count", "ticket",
            "created_at", "last_activity_at", "resolved_at", "closed_at",
        ]  # fmt: skip
        read_only_fields = fields

    def get_ticket(self, conversation: Conversation) -> int | None:
        ticket = getattr(conversation, "ticket", None)
        return ticket.pk if ticket is not None else None


class ConversationDetailSerializer(ConversationSerializer):
    messages = serializers.SerializerMethodField()

    class Meta(ConversationSerializer.Meta):
        fields = [*ConversationSerializer.Meta.fields, "messages"]
        read_only_fields = fields

    @extend_schema(responses=MessageSerializer(many=True))
    def get_messages(self, conversation: Conversation) -> list[dict[str, Any]]:
        messages = conversation.messages.exclude(role=MessageRole.SYSTEM).order_by("created_at", "pk")
        return list(MessageSerializer(messages, many=True).data)


class AskIn(serializers.Serializer):
    text = serializers.CharField(max_length=settings.NEO_MAX_MESSAGE_CHARS, trim_whitespace=True)
    client_id = serializers.CharField(max_length=64, required=False, allow_blank=False)
    stream = serializers.BooleanField(
        default=False, help_text="Answer with Server-Sent Events (also chosen by Accept: text/event-stream)."
    )


class StartIn(AskIn):
    bot = serializers.IntegerField(min_value=1)
    visitor_id = serializers.CharField(
        max_length=64, required=False, help_text="Your id for the person asking; one is made up when left out."
    )


class AskOut(serializers.Serializer):
    conversation = serializers.IntegerField()
    question = MessageSerializer()
    reply = MessageSerializer(allow_null=True, help_text="null while an agent holds the conversation.")


class SseEventOut(serializers.Serializer):
    event = serializers.CharField(required=False)
    data = serializers.CharField(required=False)
    id = serializers.CharField(required=False)


class FeedbackIn(serializers.Serializer):
    rating = serializers.ChoiceField(choices=["up", "down"])
    comment = serializers.CharField(max_length=1000, required=False, allow_blank=True, default="")


class FeedbackOut(serializers.ModelSerializer):
    class Meta:
        model = Feedback
        fields = ["id", "message", "rating", "comment", "created_at"]


class UtcDateTimeField(IsoDateTimeField):
    """An ISO 8601 time, in UTC: the database takes offsets of at most ±15:59."""

    def clean(self, value: Any) -> datetime | None:
        cleaned: datetime | None = super().clean(value)
        if cleaned is None:
            return None
        try:
            return cleaned.astimezone(UTC)
        except (OverflowError, ValueError):
            raise django_forms.ValidationError("This time is out of range.") from None


class UtcDateTimeFilter(filters.IsoDateTimeFilter):
    field_class = UtcDateTimeField


class ConversationFilter(filters.FilterSet):
    since = UtcDateTimeFilter(field_name="created_at", lookup_expr="gte")
    until = UtcDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Conversation
        fields = ["bot", "status", "channel", "visitor_id"]


def _audit(conversation: Conversation, action: str, *, after: dict[str, Any]) -> None:
    audit.record(
        organization=conversation.bot.organization_id,
        action=action,
        target=conversation,
        target_label=f"conversation {conversation.pk}",
        after=after,
    )


def _ask(conversation: Conversation, data: dict[str, Any], request: Request) -> Response | StreamingHttpResponse:
    try:
        question, reply = conversation_ask(
            conversation=conversation,
            text=data["text"],
            client_id=data.get("client_id"),
            refuse_while_replying=True,
        )
    except ReplyInProgress as busy:
        return api_error("reply_in_progress", str(busy), status.HTTP_409_CONFLICT, message_id=busy.message_id)
    except MessageRejected as rejected:
        return api_error("rejected", str(rejected), status.HTTP_400_BAD_REQUEST)
    # An integrator's write through the API (the widget's visitors are not audited).
    _audit(conversation, "conversation.message", after={"message": question.pk})
    streaming = data.get("stream") or "text/event-stream" in request.headers.get("Accept", "")
    if streaming:
        response = StreamingHttpResponse(
            _reply_events(conversation.pk, question, reply), content_type="text/event-stream"
        )
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"
        return response
    if reply is not None:
        reply = _wait_for(reply, settings.NEO_API_REPLY_WAIT_SECONDS)
    finished = reply is None or reply.status in FINISHED
    body = {
        "conversation": conversation.pk,
        "question": MessageSerializer(question).data,
        "reply": MessageSerializer(reply).data if reply is not None else None,
    }
    return Response(body, status=status.HTTP_200_OK if finished else status.HTTP_202_ACCEPTED)


def _wait_for(reply: Message, seconds: float) -> Message:
    """The reply once finished, or as it stands after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        reply.refresh_from_db()
        if reply.status in FINISHED or time.monotonic() >= deadline:
            return reply
        time.sleep(POLL_SECONDS)


def _sse(name: str, data: dict[str, Any], ident: str | None = None) -> str:
    head = f"id: {ident}\n" if ident else ""
    return f"{head}event: {name}\ndata: {json.dumps(data, ensure_ascii=False, default=str)}\n\n"


async def _reply_events(conversation_id: int, question: Message, reply: Message | None) -> AsyncIterator[str]:
    """`accepted`, then the reply's `delta` events, then `done` (or `error`): the same
    events the widget gets (docs/protocol.md), read from the conversation's event log."""
    yield _sse(
        "accepted",
        {"conversation": conversation_id, "question_id": question.pk, "reply_id": reply.pk if reply else None},
    )
    if reply is None:
        yield _sse("done", {"message_id": None, "status": "agent_holds", "text": ""})
        return
    after = "0-0"
    # Ends when the reply does, or when nothing new came for NEO_API_REPLY_WAIT_SECONDS
    # (the reply goes on; GET the conversation for it).
    idle_seconds = settings.NEO_API_REPLY_WAIT_SECONDS
    quiet_since = last_checked = time.monotonic()
    while time.monotonic() - quiet_since <= idle_seconds:
        events = await event_log.read_after(conversation_id, after)
        if events is None:  # the log moved on: read it from the start again
            after = "0-0"
            continue
        for event in events:
            after = event.get("id") or after
            if event.get("message_id") != reply.pk:
                continue
            quiet_since = time.monotonic()
            kind = str(event.get("type", "event"))
            yield _sse(kind, event, event.get("id"))
            if kind in ("done", "error"):
                return
        if time.monotonic() - last_checked > 2:
            # The log keeps events an hour; the stored message is the truth if it ended unseen.
            last_checked = time.monotonic()
            stored = await sync_to_async(Message.objects.get)(pk=reply.pk)
            if stored.status in FINISHED and not events:
                yield _sse("done", {**MessageSerializer(stored).data, "message_id": stored.pk})
                return
        await asyncio.sleep(POLL_SECONDS)
    message = "No progress for a while; the reply goes on, GET the conversation for it."
    yield _sse("error", {"code": "timeout", "message": message, "message_id": reply.pk})


ASK_RESPONSES = {
    200: AskOut,
    202: OpenApiResponse(AskOut, description="The reply is still being written; GET the conversation later."),
    (200, "text/event-stream"): OpenApiResponse(
        SseEventOut, description="Events `accepted`, then `delta`…, then `done` or `error`; `data` is JSON."
    ),
}


class ConversationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Conversations of the organization's bots, from the widget, email and this API."""

    api_area = Area.CONVERSATIONS
    serializer_class = ConversationSerializer

    def get_renderers(self) -> list[BaseRenderer]:
        if self.action in ("create", "messages"):
            return [JSONRenderer(), EventStreamRenderer()]
        return [JSONRenderer()]

    filterset_class = ConversationFilter

    def get_queryset(self) -> QuerySet[Conversation]:
        if getattr(self, "swagger_fake_view", False):
            return Conversation.objects.none()
        organization = acting_organization(self.request)
        return (
            Conversation.objects.for_organization(organization)
            .select_related("ticket")
            .annotate(message_count=Count("messages"))
            .order_by("-last_activity_at", "-pk")
        )

    def get_serializer_class(self) -> type[serializers.BaseSerializer]:
        return ConversationDetailSerializer if self.action == "retrieve" else ConversationSerializer

    @extend_schema(request=StartIn, responses=ASK_RESPONSES)
    def create(self, request: Request) -> Response | StreamingHttpResponse:
        """Start a conversation (channel "api") with its first message."""
        from bots.models import Bot

        incoming = StartIn(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        bot = get_object_or_404(Bot.objects.for_organization(acting_organization(request)), pk=data["bot"])
        visitor_id = data.get("visitor_id") or f"api-{secrets.token_hex(8)}"
        conversation = conversation_start(bot=bot, visitor_id=visitor_id, channel=Channel.API)
        _audit(conversation, "conversation.create", after={"bot": bot.pk})
        return _ask(conversation, data, request)

    @extend_schema(request=AskIn, responses=ASK_RESPONSES)
    @action(detail=True, methods=["post"])
    def messages(self, request: Request, pk: str) -> Response | StreamingHttpResponse:
        """Ask in a conversation. 409 while the bot is still answering the last message."""
        conversation = self.get_object()
        if conversation.status == ConversationStatus.CLOSED:
            return api_error("closed", "This conversation is closed; start a new one.", status.HTTP_409_CONFLICT)
        incoming = AskIn(data=request.data)
        incoming.is_valid(raise_exception=True)
        return _ask(conversation, incoming.validated_data, request)


class FeedbackApi(APIView):
    """Thumbs up or down on a bot reply; a second rating replaces the first."""

    api_area = Area.CONVERSATIONS

    @extend_schema(
        request=FeedbackIn,
        responses={201: FeedbackOut},
        parameters=[OpenApiParameter("message_id", int, OpenApiParameter.PATH)],
    )
    def post(self, request: Request, message_id: int) -> Response:
        organization = acting_organization(request)
        message = get_object_or_404(Message.objects.for_organization(organization), pk=message_id)
        incoming = FeedbackIn(data=request.data)
        incoming.is_valid(raise_exception=True)
        rating = Rating.UP if incoming.validated_data["rating"] == "up" else Rating.DOWN
        try:
            feedback = feedback_record(
                conversation=message.conversation,
                message_id=message.pk,
                rating=rating,
                comment=incoming.validated_data["comment"],
            )
        except MessageRejected as rejected:
            return api_error("rejected", str(rejected), status.HTTP_400_BAD_REQUEST)
        _audit(message.conversation, "message.feedback", after={"message": message.pk, "rating": rating})
        return Response(FeedbackOut(feedback).data, status=status.HTTP_201_CREATED)
