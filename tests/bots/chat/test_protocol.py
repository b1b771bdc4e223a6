"""The chat socket against the real ASGI application (docs/protocol.md): refusals with
their close codes, bad frames answered with errors, rate limits, streamed replies,
resume after a disconnect, and two tabs of one visitor."""

from __future__ import annotations

import asyncio
import json

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from bots.chat.protocol import PROTOCOL_VERSION
from bots.models import Feedback, Message
from neo_support import rate_limits
from neo_support.asgi import application
from retrieval.services.documents import document_create_from_text
from retrieval.services.ingestion import documents_ingest_all
from tests.factories import BotFactory, KnowledgeBaseFactory

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("in_process_tasks"),
]

ORIGIN = "https://shop.example"
REFUNDS = "# Billing\n\n## Refunds\n\nRefunds reach your card within five working days. Gift cards are not refunded."


@pytest.fixture(autouse=True)
def fresh_limits(settings):
    settings.NEO_MODEL = "/nonexistent/model"  # extractive answers: fast and deterministic
    rate_limits.rate_reset()
    rate_limits._items.cache_clear()
    yield
    rate_limits.rate_reset()
    rate_limits._items.cache_clear()


@pytest.fixture
def bot(db):
    knowledge_base = KnowledgeBaseFactory()
    document = document_create_from_text(knowledge_base=knowledge_base, title="Billing", text=REFUNDS, queue=False)
    documents_ingest_all(documents=[document])
    bot = BotFactory(
        organization=knowledge_base.organization,
        allowed_origins=[ORIGIN, "https://*.example.org"],
        answer_threshold=0.0,
        handoff_threshold=0.0,
    )
    bot.knowledge_bases.add(knowledge_base)
    return bot


class Client:
    def __init__(self, key: str, *, origin: str | None = ORIGIN) -> None:
        headers = [(b"host", b"testserver")]
        if origin:
            headers.append((b"origin", origin.encode()))
        self.socket = WebsocketCommunicator(application, f"/ws/chat/?key={key}", headers=headers)

    async def __aenter__(self) -> Client:
        connected, _ = await self.socket.connect(timeout=30)
        assert connected
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.socket.disconnect(timeout=30)

    async def send(self, frame: dict | str) -> None:
        await self.socket.send_to(text_data=frame if isinstance(frame, str) else json.dumps(frame))

    async def event(self, timeout: float = 30) -> dict:
        return json.loads(await self.socket.receive_from(timeout=timeout))

    async def until(self, kind: str, timeout: float = 60) -> list[dict]:
        events: list[dict] = []
        async with asyncio.timeout(timeout):
            while not events or events[-1]["type"] != kind:
                events.append(await self.event(timeout=timeout))
        return events

    async def closed_with(self) -> int:
        output = await self.socket.receive_output(timeout=5)
        while output["type"] != "websocket.close":
            output = await self.socket.receive_output(timeout=5)
        return int(output["code"])

    async def hello(self, **fields: object) -> dict:
        await self.send({"type": "hello", "v": PROTOCOL_VERSION, **fields})
        events = await self.until("welcome")
        return events[-1]


async def test_refusals_close_with_their_documented_codes(bot) -> None:
    cases = [
        (Client(""), 4400),
        (Client("pk_nope"), 4404),
        (Client(bot.public_key, origin="https://evil.example"), 4403),
        (Client(bot.public_key, origin=None), 4403),
        (Client(bot.public_key, origin="https://example.org"), 4403),  # the wildcard is for subdomains only
    ]
    for client, code in cases:
        async with client:
            error = await client.event()
            assert error["type"] == "error"
            assert await client.closed_with() == code


async def test_allowed_origins_and_the_servers_own_pages_may_connect(bot) -> None:
    for origin in (ORIGIN, "https://help.example.org", "http://testserver"):
        async with Client(bot.public_key, origin=origin) as client:
            welcome = await client.hello()
            assert welcome["conversation_id"] is None and welcome["bot"]["name"] == bot.name


async def test_bad_frames_get_errors_and_the_socket_keeps_serving(bot, settings) -> None:
    settings.NEO_WS_MAX_FRAME_BYTES = 2048
    async with Client(bot.public_key) as client:
        await client.send({"type": "message", "client_id": "c1", "text": "hi"})
        assert (await client.event())["code"] == "hello_required"
        await client.hello()
        bad = [
            ("not json", "invalid_json"),
            ("[1, 2]", "invalid_frame"),
            (json.dumps({"type": "launch_missiles"}), "unknown_type"),
            (json.dumps({"type": "message", "text": "no client id"}), "invalid_frame"),
            (json.dumps({"type": "message", "client_id": "c", "text": 5}), "invalid_frame"),
            (json.dumps({"type": "feedback", "message_id": True, "rating": 1}), "invalid_frame"),
            (json.dumps({"type": "message", "client_id": "c", "text": "x" * 5000}), "frame_too_large"),
            (json.dumps({"type": "hello"}), "hello_repeated"),
            (json.dumps({"type": "message", "client_id": "c", "text": "   "}), "message_rejected"),
        ]
        for frame, code in bad:
            await client.send(frame)
            event = await client.event()
            assert (event["type"], event["code"]) == ("error", code), frame
        await client.send({"type": "ping"})
        assert (await client.event())["type"] == "pong"


async def test_forged_and_foreign_tokens_start_afresh(bot) -> None:
    other = await database_sync_to_async(BotFactory)(allowed_origins=[ORIGIN])
    async with Client(other.public_key) as client:
        foreign = (await client.hello())["visitor_token"]
    async with Client(bot.public_key) as client:
        await client.send({"type": "hello", "visitor_token": foreign[:-3] + "abc"})
        assert (await client.event())["code"] == "token_invalid"
        welcome = await client.event()
        assert welcome["type"] == "welcome" and welcome["visitor_token"] != foreign
    async with Client(bot.public_key) as client:
        await client.send({"type": "hello", "visitor_token": foreign})
        assert (await client.event())["code"] == "token_invalid"


async def test_an_expired_token_is_refused_and_a_new_visitor_starts(bot) -> None:
    import time
    from unittest import mock

    from bots.chat.visitors import Visitor, visitor_token_issue

    with mock.patch("django.core.signing.time.time", return_value=time.time() - 31 * 86400):
        old = visitor_token_issue(Visitor(bot_id=bot.pk, visitor_id="v_old", conversation_id=None))
    async with Client(bot.public_key) as client:
        await client.send({"type": "hello", "visitor_token": old})
        assert (await client.event())["code"] == "token_expired"
        welcome = await client.event()
        assert welcome["type"] == "welcome" and welcome["visitor_token"] != old


async def ask(client: Client, text: str = "How long do refunds take?", client_id: str = "c1") -> list[dict]:
    await client.send({"type": "message", "client_id": client_id, "text": text})
    return await client.until("done")


async def test_a_question_is_acknowledged_and_answered_with_streamed_text(bot) -> None:
    async with Client(bot.public_key) as client:
        await client.hello()
        events = await ask(client)
        ack = events[0]
        assert ack["type"] == "ack" and ack["client_id"] == "c1" and ack["visitor_token"]
        deltas = [e for e in events if e["type"] == "delta"]
        done = events[-1]
        assert "".join(d["text"] for d in deltas) == done["text"]
        assert "five working days" in done["text"] and done["citations"]
        await client.send({"type": "feedback", "message_id": done["message_id"], "rating": 1})
        assert (await client.until("feedback_saved"))[-1]["rating"] == 1
    assert await database_sync_to_async(Feedback.objects.filter(message_id=done["message_id"]).count)() == 1

    async with Client(bot.public_key) as client:
        welcome = await client.hello(visitor_token=ack["visitor_token"])
        assert welcome["conversation_id"] == ack["conversation_id"]
        assert [m["role"] for m in welcome["history"]] == ["visitor", "bot"]
        assert welcome["history"][1]["text"] == done["text"]


async def test_resume_after_a_disconnect_mid_stream_receives_exactly_the_missing_text(bot) -> None:
    async with Client(bot.public_key) as client:
        await client.hello()
        await client.send({"type": "message", "client_id": "c1", "text": "How long do refunds take?"})
        seen = await client.until("delta")
        token = seen[0]["visitor_token"]
        last_id = seen[-1]["id"]
        shown = seen[-1]["text"]
    async with Client(bot.public_key) as client:
        welcome = await client.hello(visitor_token=token, last_event_id=last_id)
        assert welcome["resumed"] is True
        rest = await client.until("done")
    deltas = [e for e in rest if e["type"] == "delta"]
    assert [d["seq"] for d in deltas] == list(range(1, len(deltas) + 1))
    assert shown + "".join(d["text"] for d in deltas) == rest[-1]["text"]

    # A client whose last event the log no longer has gets the full history instead.
    async with Client(bot.public_key) as client:
        welcome = await client.hello(visitor_token=token, last_event_id="1-0")
        assert welcome["resumed"] is False and welcome["history"][-1]["text"] == rest[-1]["text"]


async def test_two_tabs_of_one_visitor_both_receive_the_reply(bot) -> None:
    async with Client(bot.public_key) as first:
        await first.hello()
        events = await ask(first)
        token = events[0]["visitor_token"]
        async with Client(bot.public_key) as second:
            await second.hello(visitor_token=token)
            await first.send({"type": "message", "client_id": "c2", "text": "Are gift cards refunded?"})
            in_first = await first.until("done")
            in_second = await second.until("done")
    # The visitor's message (published by the first tab's socket) and the reply's status
    # (published by the reply task) come by two paths, so either may reach the second tab first.
    shown = next(event for event in in_second if event["type"] == "visitor_message")
    assert shown["message"]["text"] == "Are gift cards refunded?"
    assert in_first[-1] == in_second[-1]


async def test_a_message_while_the_bot_is_replying_is_refused_and_resending_is_idempotent(bot) -> None:
    async with Client(bot.public_key) as client:
        await client.hello()
        first = await ask(client)
        # A reply still being written (as a slow model's would be).
        busy = await database_sync_to_async(Message.objects.create)(
            conversation_id=first[0]["conversation_id"], role="bot", status="streaming"
        )
        await client.send({"type": "message", "client_id": "c2", "text": "And gift cards?"})
        error = await client.event()
        assert error["code"] == "reply_in_progress"
        assert error["details"] == {"message_id": busy.pk, "client_id": "c2"}
        # The first question resent (a reconnecting widget) is acknowledged again, not stored twice.
        await client.send({"type": "message", "client_id": "c1", "text": "How long do refunds take?"})
        again = await client.until("ack")
        assert again[-1]["message_id"] == first[0]["message_id"]
    texts = await database_sync_to_async(list)(Message.objects.filter(role="visitor").values_list("text", flat=True))
    assert texts == ["How long do refunds take?"]


async def test_a_flood_of_messages_is_rate_limited_with_a_retry_after(bot, settings) -> None:
    settings.NEO_RATE_MESSAGES_PER_VISITOR = "2/minute"
    rate_limits._items.cache_clear()
    async with Client(bot.public_key) as client:
        await client.hello()
        await ask(client, client_id="a")
        await ask(client, "Are gift cards refunded?", client_id="b")
        await client.send({"type": "message", "client_id": "c", "text": "again"})
        error = await client.event()
        assert error["code"] == "rate_limited" and error["details"]["retry_after"] >= 1
        await client.send({"type": "ping"})
        assert (await client.event())["type"] == "pong"


async def test_an_idle_socket_outlives_the_redis_read_timeout(bot, redis_url) -> None:
    # channels-redis blocks 5 s per receive; redis-py's default read timeout is also 5 s.
    async with Client(bot.public_key) as client:
        await client.hello()
        await asyncio.sleep(11)
        await client.send({"type": "ping"})
        assert (await client.event())["type"] == "pong"
