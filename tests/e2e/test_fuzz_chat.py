"""Hypothesis-generated websocket frames against the chat consumer, through the real
ASGI application: whatever arrives, the consumer answers with protocol events or closes
with a documented code, never crashes, and no reply is left pending.

A bounded run here (NEO_FUZZ_EXAMPLES, 25 by default); `bench/fuzz.py` runs it long."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bots.chat.protocol import PROTOCOL_VERSION
from bots.models import Message, MessageStatus
from neo_support import rate_limits
from neo_support.asgi import application
from neo_support.tasking import wait_for_in_process_tasks
from tests.factories import BotFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("in_process_tasks")]

ORIGIN = "https://shop.example"
EXAMPLES = int(os.environ.get("NEO_FUZZ_EXAMPLES", "25"))
# Close codes of docs/protocol.md; anything else (1011: the application crashed) fails.
DOCUMENTED_CLOSES = {1000, 4400, 4403, 4404, 4408, 4409, 4429}
# Far above normal (well under a second): a busy CI machine, with earlier examples'
# replies still running on the task threads, once took over the communicator's 1 s default.
SOCKET_TIMEOUT = 30
FRAME_TYPES = [
    "hello", "message", "feedback", "handoff", "identify", "stop", "typing", "ping", "resume", "launch", "",
]  # fmt: skip

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=8,
)
shaped_frames = st.fixed_dictionaries(
    {"type": st.sampled_from(FRAME_TYPES)},
    optional={
        "v": st.just(PROTOCOL_VERSION) | json_values,
        "client_id": st.text(max_size=70) | json_values,
        "text": st.text(max_size=300) | json_values,
        "message_id": st.integers() | json_values,
        "rating": st.sampled_from([1, -1, 0, 2]) | json_values,
        "token": st.text(max_size=60) | json_values,
        "last_event_id": st.text(max_size=30) | json_values,
        "conversation_id": st.integers() | json_values,
        "traits": json_values,
    },
).map(json.dumps)
# Well-formed messages with any text reach screening, storage and the reply worker.
valid_messages = st.fixed_dictionaries(
    {
        "type": st.just("message"),
        "client_id": st.text(st.characters(codec="ascii", categories=["L", "N"]), min_size=1, max_size=20),
        "text": st.text(min_size=1, max_size=400),
    }
).map(json.dumps)
frames = st.one_of(st.text(max_size=200), json_values.map(json.dumps), shaped_frames, valid_messages)


@pytest.fixture
def bot(db, settings):  # type: ignore[no-untyped-def]
    settings.NEO_MODEL = "/nonexistent/model"  # extractive answers
    for name in ("MESSAGES_PER_VISITOR", "MESSAGES_PER_IP", "FRAMES_PER_SOCKET", "CONNECTIONS_PER_IP"):
        setattr(settings, f"NEO_RATE_{name}", "100000/minute")
    rate_limits.rate_reset()
    yield BotFactory(allowed_origins=[ORIGIN])
    rate_limits.rate_reset()


async def converse(public_key: str, hello_first: bool, sent: list[str]) -> list[dict[str, Any]]:
    socket = WebsocketCommunicator(
        application, f"/ws/chat/?key={public_key}", headers=[(b"host", b"testserver"), (b"origin", ORIGIN.encode())]
    )
    connected, _ = await socket.connect(timeout=SOCKET_TIMEOUT)
    assert connected
    if hello_first:
        sent = [json.dumps({"type": "hello", "v": PROTOCOL_VERSION}), *sent]
    received: list[dict[str, Any]] = []
    closed = False
    for frame in sent:
        await socket.send_input({"type": "websocket.receive", "text": frame})
        while not await socket.receive_nothing(timeout=0.05):
            output = await socket.receive_output(timeout=SOCKET_TIMEOUT)
            if output["type"] == "websocket.close":
                assert output.get("code", 1000) in DOCUMENTED_CLOSES, output
                closed = True
                break
            received.append(json.loads(output["text"]))
        if closed:
            break
    if not closed:
        await socket.send_to(text_data=json.dumps({"type": "ping"}))
        await socket.disconnect(timeout=SOCKET_TIMEOUT)
    return received


def test_any_frames_get_protocol_events_and_leave_nothing_pending(bot) -> None:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(sent=st.lists(frames, min_size=1, max_size=6), hello_first=st.booleans())
    def run(sent: list[str], hello_first: bool) -> None:
        # Each example runs on a new event loop; the rate limiter's Redis connections
        # belong to the loop that opened them (a server has one loop for its life).
        rate_limits.rate_reset()
        for event in async_to_sync(converse)(bot.public_key, hello_first, sent):
            assert isinstance(event, dict) and isinstance(event.get("type"), str), event
            if event["type"] == "error":
                assert event["code"] and event["message"], event

    run()
    wait_for_in_process_tasks(timeout=120)
    stuck = Message.objects.filter(status__in=[MessageStatus.PENDING, MessageStatus.STREAMING])
    assert list(stuck.values_list("pk", "text")) == []
    # The generated frames do reach the reply path, not only the frame checks.
    assert Message.objects.filter(role="bot").exists()
