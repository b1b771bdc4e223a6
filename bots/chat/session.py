"""One widget client's side of the chat protocol, whatever carries it (a websocket, or
the HTTP fallback's POST + Server-Sent Events). docs/protocol.md is the contract.

The session checks frames, applies rate limits, calls the chat services, and sends the
client events through `send`; events published to the conversation arrive through
`forward`, which drops any the client already has (replay and live events overlap).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from bots.chat import event_log
from bots.chat.events import conversation_group
from bots.chat.protocol import PROTOCOL_VERSION, FrameError
from bots.chat.publishing import deliver
from bots.chat.selectors import conversation_for_visitor, conversation_history, message_payload
from bots.chat.services import (
    IDENTITY_FIELDS,
    MessageRejected,
    ReplyInProgress,
    conversation_ask,
    conversation_identify,
    conversation_request_handoff,
    conversation_start,
    feedback_record,
    reply_in_progress,
)
from bots.chat.visitors import Visitor, VisitorTokenError, new_visitor_id, visitor_token_issue, visitor_token_read
from bots.models import Bot, Conversation, MessageStatus
from neo_support.rate_limits import rate_hit
from workers.generation.cancellation import reply_cancel

logger = logging.getLogger(__name__)

Send = Callable[[dict[str, Any]], Awaitable[None]]

# Visitors of the dashboard's test chat get ids with this prefix. The id travels in the
# signed visitor token, so every conversation they start (over a websocket or the HTTP
# fallback, after any reconnect) is marked `is_test`, and no other page can claim it.
TEST_VISITOR_PREFIX = "t_"


def is_test_visitor(visitor_id: str) -> bool:
    return visitor_id.startswith(TEST_VISITOR_PREFIX)


def error_event(code: str, message: str, **details: Any) -> dict[str, Any]:
    event: dict[str, Any] = {"type": "error", "code": code, "message": message}
    if details:
        event["details"] = details
    return event


class ChatSession:
    def __init__(
        self, *, bot: Bot, client_ip: str, channel_name: str | None, send: Send, own_origin: bool = False
    ) -> None:
        """`channel_name` is the layer channel that receives the conversation's events;
        None for a session that only handles frames (the HTTP fallback's POST).
        `own_origin`: the client is a page of this server (its `Origin` is this host),
        the only place `hello.test` is honoured."""
        self.bot = bot
        self.client_ip = client_ip
        self.own_origin = own_origin
        self.is_test = False
        self.channel_name = channel_name
        self.send = send
        self.visitor: Visitor | None = None
        self.conversation: Conversation | None = None
        self.last_sent: tuple[int, int] = (0, 0)
        self.traits: dict[str, str] = {}  # identify() before the first message

    # Frames from the client ------------------------------------------------------------

    async def handle(self, frame: dict[str, Any]) -> None:
        kind = frame["type"]
        if kind == "ping":
            await self.send({"type": "pong"})
            return
        if kind == "hello":
            if self.visitor is not None:
                raise FrameError("hello_repeated", "`hello` was already sent on this connection.")
            await self.hello(frame)
            return
        if self.visitor is None:
            raise FrameError("hello_required", "Send `hello` first.")
        handler = {
            "message": self.message,
            "feedback": self.feedback,
            "handoff_request": self.handoff_request,
            "stop": self.stop,
            "identify": self.identify,
            "typing": self.typing,
        }[kind]
        await handler(frame)

    async def restore(self, token: str) -> None:
        """Take up the visitor a token names, without a `hello` (HTTP fallback)."""
        try:
            visitor = visitor_token_read(token, bot_id=self.bot.pk)
        except VisitorTokenError as invalid:
            raise FrameError(invalid.code, invalid.message) from None
        self.conversation = await database_sync_to_async(conversation_for_visitor)(
            bot=self.bot, visitor_id=visitor.visitor_id, conversation_id=visitor.conversation_id
        )
        conversation_id = self.conversation.pk if self.conversation else None
        self.visitor = Visitor(self.bot.pk, visitor.visitor_id, conversation_id)
        self.is_test = is_test_visitor(visitor.visitor_id)
        if self.conversation is not None:
            await self._join()

    async def hello(self, frame: dict[str, Any]) -> None:
        version = frame.get("v", PROTOCOL_VERSION)
        if version != PROTOCOL_VERSION:
            raise FrameError(
                "unsupported_version", f"This server speaks protocol version {PROTOCOL_VERSION}.", supported=[1]
            )
        token = frame.get("visitor_token")
        visitor = None
        if token:
            try:
                visitor = visitor_token_read(token, bot_id=self.bot.pk)
            except VisitorTokenError as invalid:
                await self.send(error_event(invalid.code, invalid.message))
        # A test chat is only the dashboard's: the flag is ignored from any other page.
        test = frame.get("test") is True and self.own_origin
        if visitor is None:
            visitor_id = f"{TEST_VISITOR_PREFIX}{secrets.token_urlsafe(12)}" if test else new_visitor_id()
            visitor = Visitor(bot_id=self.bot.pk, visitor_id=visitor_id, conversation_id=None)
        self.is_test = test or is_test_visitor(visitor.visitor_id)
        conversation = await database_sync_to_async(conversation_for_visitor)(
            bot=self.bot, visitor_id=visitor.visitor_id, conversation_id=visitor.conversation_id
        )
        if conversation is None and visitor.conversation_id is not None:
            visitor = Visitor(bot_id=self.bot.pk, visitor_id=visitor.visitor_id, conversation_id=None)
        self.visitor, self.conversation = visitor, conversation
        if conversation is not None:
            await self._join()
        await self._welcome(frame.get("last_event_id"))

    async def _welcome(self, last_event_id: str | None) -> None:
        assert self.visitor is not None
        welcome: dict[str, Any] = {
            "type": "welcome",
            "v": PROTOCOL_VERSION,
            "conversation_id": self.conversation.pk if self.conversation else None,
            "conversation_status": self.conversation.status if self.conversation else None,
            "visitor_token": visitor_token_issue(self.visitor),
            "bot": {
                "name": self.bot.name,
                "welcome_message": self.bot.welcome_message,
                "starter_questions": self.bot.starter_questions,
                "theme": self.bot.theme,
            },
            "resumed": False,
            "history": [],
            "last_event_id": "0-0",
        }
        if self.conversation is None:
            await self.send(welcome)
            return
        replay = await event_log.read_after(self.conversation.pk, last_event_id) if last_event_id else None
        if replay is not None:
            # The client keeps its transcript; it is sent only what it missed.
            welcome["resumed"] = True
            welcome["last_event_id"] = last_event_id
            self.last_sent = event_log.parse_event_id(last_event_id) or (0, 0)
            await self.send(welcome)
            for event in replay:
                await self.forward(event)
            return
        history = await database_sync_to_async(conversation_history)(conversation=self.conversation)
        events = await event_log.read_after(self.conversation.pk, "0-0") or []
        _fill_streaming_text(history, events)
        welcome["history"] = history
        if events:
            welcome["last_event_id"] = events[-1]["id"]
            self.last_sent = event_log.parse_event_id(events[-1]["id"]) or (0, 0)
        await self.send(welcome)

    async def message(self, frame: dict[str, Any]) -> None:
        assert self.visitor is not None
        retry = await rate_hit("NEO_RATE_MESSAGES_PER_VISITOR", str(self.bot.pk), self.visitor.visitor_id)
        retry = retry or await rate_hit("NEO_RATE_MESSAGES_PER_IP", self.client_ip)
        if retry:
            raise FrameError(
                "rate_limited",
                f"Too many messages; try again in {int(retry)} s.",
                retry_after=int(retry),
                client_id=frame["client_id"],
            )
        created = False
        if self.conversation is None:
            self.conversation = await database_sync_to_async(conversation_start)(
                bot=self.bot, visitor_id=self.visitor.visitor_id, is_test=self.is_test
            )
            self.visitor = Visitor(self.bot.pk, self.visitor.visitor_id, self.conversation.pk)
            created = True
            if self.traits:
                await database_sync_to_async(conversation_identify)(conversation=self.conversation, traits=self.traits)
            await self._join()  # before the reply is queued, so no event is missed
        try:
            question, reply = await database_sync_to_async(conversation_ask)(
                conversation=self.conversation,
                text=frame["text"],
                client_id=frame["client_id"],
                refuse_while_replying=True,
            )
        except ReplyInProgress as busy:
            raise FrameError(
                "reply_in_progress", str(busy), message_id=busy.message_id, client_id=frame["client_id"]
            ) from None
        except MessageRejected as rejected:
            raise FrameError("message_rejected", str(rejected), client_id=frame["client_id"]) from None
        ack: dict[str, Any] = {
            "type": "ack",
            "client_id": frame["client_id"],
            "message_id": question.pk,
            "reply_id": reply.pk if reply is not None else None,  # None: a person holds the conversation
            "conversation_id": self.conversation.pk,
        }
        if created:
            ack["visitor_token"] = visitor_token_issue(self.visitor)
        await self.send(ack)
        # Other tabs of the same visitor show the question too.
        await deliver(self.conversation.pk, {"type": "visitor_message", "message": message_payload(question)})

    async def feedback(self, frame: dict[str, Any]) -> None:
        if self.conversation is None:
            raise FrameError("not_found", "There is no such bot reply in this conversation.")
        try:
            await database_sync_to_async(feedback_record)(
                conversation=self.conversation,
                message_id=frame["message_id"],
                rating=frame["rating"],
                comment=frame.get("comment", ""),
            )
        except MessageRejected as rejected:
            raise FrameError("not_found", str(rejected)) from None
        await self.send({"type": "feedback_saved", "message_id": frame["message_id"], "rating": frame["rating"]})

    async def handoff_request(self, frame: dict[str, Any]) -> None:
        if self.conversation is None:
            raise FrameError("no_conversation", "Ask a question first; then a person can take over.")
        changed = await database_sync_to_async(conversation_request_handoff)(
            conversation=self.conversation, reason=frame.get("reason", "")
        )
        if changed:
            await deliver(self.conversation.pk, {"type": "status", "status": "handed_off"})
        else:
            # Already waiting for (or with) a person: tell this client which.
            status = await database_sync_to_async(_current_status)(self.conversation)
            await self.send({"type": "status", "status": "agent_joined" if status == "agent" else "handed_off"})

    async def stop(self, frame: dict[str, Any]) -> None:
        if self.conversation is None:
            return
        busy = await database_sync_to_async(reply_in_progress)(conversation=self.conversation)
        if busy is not None and frame.get("message_id", busy.pk) == busy.pk:
            await database_sync_to_async(reply_cancel)(message_id=busy.pk)

    async def identify(self, frame: dict[str, Any]) -> None:
        traits = {name: frame[name] for name in IDENTITY_FIELDS if name in frame}
        if "email" in traits:
            try:
                validate_email(traits["email"])
            except ValidationError:
                raise FrameError("invalid_frame", "That email address is not valid.", field="email") from None
        self.traits.update(traits)
        if self.conversation is not None:
            try:
                await database_sync_to_async(conversation_identify)(conversation=self.conversation, traits=traits)
            except MessageRejected as rejected:
                raise FrameError("invalid_frame", str(rejected), field="email") from None
        await self.send({"type": "identified"})

    async def typing(self, frame: dict[str, Any]) -> None:
        if self.conversation is not None:  # for agents watching; not logged
            await deliver(self.conversation.pk, {"type": "status", "status": "visitor_typing"}, logged=False)

    # Events for the conversation --------------------------------------------------------

    async def forward(self, event: dict[str, Any]) -> None:
        ident = event_log.parse_event_id(event.get("id"))
        if ident is not None:
            if ident <= self.last_sent:
                return  # already sent (replay and live events overlap)
            self.last_sent = ident
        elif event.get("status") == "visitor_typing":
            return  # the visitor's own typing, echoed back
        await self.send(event)

    async def _join(self) -> None:
        assert self.conversation is not None
        layer = get_channel_layer()
        if layer is not None and self.channel_name is not None:
            await layer.group_add(conversation_group(self.conversation.pk), self.channel_name)

    async def leave(self) -> None:
        layer = get_channel_layer()
        if layer is not None and self.conversation is not None and self.channel_name is not None:
            await layer.group_discard(conversation_group(self.conversation.pk), self.channel_name)


def _current_status(conversation: Conversation) -> str:
    conversation.refresh_from_db(fields=["status"])
    return str(conversation.status)


def _fill_streaming_text(history: list[dict[str, Any]], events: list[dict[str, Any]]) -> None:
    """Give replies still streaming the text sent so far (from the event log), and the
    `seq` their next delta will carry."""
    streaming = {
        item["id"]: item for item in history if item["status"] in (MessageStatus.PENDING, MessageStatus.STREAMING)
    }
    for reply in streaming.values():
        reply["text"], reply["seq"] = "", 0
    for event in events:
        item = streaming.get(event.get("message_id"))
        if item is None:
            continue
        if event["type"] == "reset":
            item["text"], item["seq"] = "", 0
        elif event["type"] == "delta" and event["seq"] == item["seq"]:
            item["text"] += event["text"]
            item["seq"] += 1
