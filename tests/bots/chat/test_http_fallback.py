"""The HTTP fallback: the same frames by POST and the same events as Server-Sent
Events, against the real ASGI application."""

from __future__ import annotations

import json

import pytest
from channels.testing import ApplicationCommunicator, HttpCommunicator

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


@pytest.fixture
def bot(db, settings):
    settings.NEO_MODEL = "/nonexistent/model"
    rate_limits.rate_reset()
    knowledge_base = KnowledgeBaseFactory()
    text = "# Billing\n\n## Refunds\n\nRefunds reach your card within five working days."
    documents_ingest_all(
        documents=[document_create_from_text(knowledge_base=knowledge_base, title="Billing", text=text, queue=False)]
    )
    bot = BotFactory(
        organization=knowledge_base.organization, allowed_origins=[ORIGIN], answer_threshold=0.0, handoff_threshold=0.0
    )
    bot.knowledge_bases.add(knowledge_base)
    return bot


async def post(bot, frame: dict, token: str = "", origin: str = ORIGIN) -> tuple[int, list[dict]]:
    headers = [(b"host", b"testserver"), (b"origin", origin.encode()), (b"content-type", b"application/json")]
    if token:
        headers.append((b"x-visitor-token", token.encode()))
    communicator = HttpCommunicator(
        application, "POST", f"/chat/{bot.public_key}/frames", body=json.dumps(frame).encode(), headers=headers
    )
    response = await communicator.get_response(timeout=30)
    return response["status"], json.loads(response["body"])


async def read_events_until_done(bot, token: str, reply_id: int) -> list[dict]:
    """The stream's events up to the `done` of reply `reply_id`, that reply's only (in the
    embedded default the event log is this process's, and a rolled-back test may have
    logged events under a conversation id that is used again)."""
    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": "GET",
        "path": f"/chat/{bot.public_key}/events",
        "raw_path": f"/chat/{bot.public_key}/events".encode(),
        "query_string": f"token={token}".encode(),
        "headers": [(b"host", b"testserver"), (b"origin", ORIGIN.encode())],
        "scheme": "http",
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 5000),
    }
    communicator = ApplicationCommunicator(application, scope)
    await communicator.send_input({"type": "http.request", "body": b"", "more_body": False})
    start = await communicator.receive_output(timeout=30)
    assert start["status"] == 200
    assert {k.lower(): v for k, v in start["headers"]}[b"content-type"] == b"text/event-stream"
    buffer, events = "", []
    while not events or events[-1]["type"] != "done":
        chunk = await communicator.receive_output(timeout=60)
        buffer += chunk["body"].decode()
        while "\n\n" in buffer:
            block, buffer = buffer.split("\n\n", 1)
            data = [line[6:] for line in block.splitlines() if line.startswith("data: ")]
            if data and json.loads(data[0]).get("message_id") == reply_id:
                events.append(json.loads(data[0]))
    await communicator.send_input({"type": "http.disconnect"})
    return events


async def test_frames_by_post_and_the_reply_as_server_sent_events(bot) -> None:
    status, [welcome] = await post(bot, {"type": "hello", "v": 1})
    assert status == 200 and welcome["type"] == "welcome"
    status, [ack] = await post(bot, {"type": "message", "client_id": "c1", "text": "How long do refunds take?"},
                               token=welcome["visitor_token"])  # fmt: skip
    assert status == 200 and ack["type"] == "ack"
    events = await read_events_until_done(bot, ack["visitor_token"], ack["reply_id"])
    deltas = [e for e in events if e["type"] == "delta"]
    assert "".join(d["text"] for d in deltas) == events[-1]["text"]
    assert "five working days" in events[-1]["text"]


async def test_the_fallback_refuses_what_the_socket_refuses(bot) -> None:
    status, body = await post(bot, {"type": "hello"}, origin="https://evil.example")
    assert status == 403 and body["code"] == "origin_refused"
    status, [error] = await post(bot, {"type": "message", "client_id": "c", "text": "hi"})
    assert status == 400 and error["code"] == "hello_required"
    status, [error] = await post(bot, {"type": "message", "client_id": "c", "text": "hi"}, token="forged")
    assert status == 400 and error["code"] == "token_invalid"


async def contact(bot, form: object, origin: str = ORIGIN, method: str = "POST") -> tuple[int, dict]:
    headers = [(b"host", b"testserver"), (b"origin", origin.encode()), (b"content-type", b"application/json")]
    body = json.dumps(form).encode() if method == "POST" else b""
    communicator = HttpCommunicator(application, method, f"/chat/{bot.public_key}/contact", body=body, headers=headers)
    response = await communicator.get_response(timeout=30)
    return response["status"], json.loads(response["body"])


async def test_the_widgets_contact_form_opens_an_email_ticket(bot) -> None:
    from channels.db import database_sync_to_async

    from bots.models import Ticket

    status, body = await contact(bot, {"email": "jo@c.example", "text": "Please call me back about my invoice."})
    assert status == 201 and body["type"] == "contact_received"
    ticket = await database_sync_to_async(Ticket.objects.select_related("conversation").get)(token=body["ticket"])
    assert ticket.conversation.channel == "email" and ticket.requester_email == "jo@c.example"

    status, body = await contact(bot, {"email": "nope", "text": ""})
    assert status == 400 and body["message"] == "Please give a valid email address and a message."
    assert (await contact(bot, []))[0] == 400
    assert (await contact(bot, {}, method="GET"))[0] == 405
    assert (await contact(bot, {"email": "a@b.example", "text": "x"}, origin="https://evil.example"))[0] == 403
    assert await database_sync_to_async(Ticket.objects.count)() == 1


async def test_a_test_chat_over_the_fallback_is_marked_only_from_this_servers_pages(bot) -> None:
    from channels.db import database_sync_to_async

    from bots.models import Conversation

    for origin, marked in (("http://testserver", True), (ORIGIN, False)):
        status, [welcome] = await post(bot, {"type": "hello", "v": 1, "test": True}, origin=origin)
        assert status == 200 and welcome["bot"]["theme"] == bot.theme
        # Every POST is a session of its own: the mark travels in the signed visitor token.
        status, [ack] = await post(
            bot, {"type": "message", "client_id": "c1", "text": "hi"}, token=welcome["visitor_token"], origin=origin
        )
        assert status == 200 and ack["type"] == "ack"
        conversation = await database_sync_to_async(Conversation.objects.get)(pk=ack["conversation_id"])
        assert conversation.is_test is marked, origin
        await read_events_until_done(bot, ack["visitor_token"], ack["reply_id"])
