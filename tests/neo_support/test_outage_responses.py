"""While Postgres or Redis is unreachable, requests fail fast and say so: 503 with
Retry-After (JSON under /api/), an `unavailable` event on the chat socket, never a 500.
The real restarts are in tests/e2e/test_service_restarts.py; here the outage is one
exception from the data layer, so the answers are checked on every run."""

from __future__ import annotations

import pytest
from django.db import OperationalError
from redis.exceptions import ConnectionError as RedisConnectionError

from bots.models import Message
from neo_support.tasking import QueueUnavailable
from tests.bots.chat import test_protocol as test_chat_protocol
from tests.bots.chat.test_protocol import Client
from tests.neo_support.test_rest_api import key_client

# The chat tests' fixtures: their bot, and fresh rate limits with extractive answers.
bot = test_chat_protocol.bot
fresh_limits = test_chat_protocol.fresh_limits


def down(*args: object, **kwargs: object) -> None:
    raise OperationalError('connection to server at "127.0.0.1", port 5432 failed: Connection refused')


@pytest.mark.django_db
@pytest.mark.parametrize(
    "outage",
    [OperationalError("connection refused"), RedisConnectionError("Connection refused"), QueueUnavailable("x")],
)
def test_a_page_answers_503_with_retry_after(client, member, monkeypatch, outage) -> None:  # type: ignore[no-untyped-def]
    client.force_login(member)
    monkeypatch.setattr("retrieval.views.knowledge_base_list", _raiser(outage))
    response = client.get("/dashboard/knowledge-bases/")
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert b"Briefly unavailable" in response.content


def _raiser(error: Exception):  # type: ignore[no-untyped-def]
    def raise_it(*args: object, **kwargs: object) -> None:
        raise error

    return raise_it


@pytest.mark.django_db
def test_the_api_answers_503_json(organization, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    api = key_client(organization)
    monkeypatch.setattr("bots.api.BotViewSet.get_queryset", down)
    response = api.get("/api/bots/")
    assert response.status_code == 503 and response["Retry-After"] == "5"
    assert response.json()["error"]["code"] == "unavailable"


@pytest.mark.django_db
def test_a_real_bug_is_still_a_500(client, member, monkeypatch, settings) -> None:  # type: ignore[no-untyped-def]
    settings.DEBUG = False
    client.raise_request_exception = False
    client.force_login(member)
    monkeypatch.setattr("retrieval.views.knowledge_base_list", _raiser(ZeroDivisionError()))
    assert client.get("/dashboard/knowledge-bases/").status_code == 500


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_socket_opened_during_an_outage_is_told_and_closed_1013(monkeypatch) -> None:
    monkeypatch.setattr("bots.chat.consumers.bot_get_by_public_key", down)
    async with Client("pk_whatever") as socket:
        error = await socket.event()
        assert error["code"] == "unavailable" and error["details"]["retry_after"] == 3
        assert await socket.closed_with() == 1013


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("in_process_tasks")
async def test_a_message_during_an_outage_is_refused_with_its_client_id_and_stores_nothing(bot, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from channels.db import database_sync_to_async

    async with Client(bot.public_key) as socket:
        await socket.hello()
        monkeypatch.setattr("neo_support.tasking.dispatch_now", _raiser(QueueUnavailable("no broker")))
        await socket.send({"type": "message", "client_id": "c1", "text": "How long do refunds take?"})
        error = (await socket.until("error"))[-1]
        assert error["code"] == "unavailable" and error["details"]["client_id"] == "c1"
        assert not await database_sync_to_async(Message.objects.filter(client_id="c1").exists)()
        monkeypatch.undo()
        # The widget sends it again once the service is back: answered, stored once.
        await socket.send({"type": "message", "client_id": "c1", "text": "How long do refunds take?"})
        events = await socket.until("done")
        assert events[-1]["status"] == "done"
        assert await database_sync_to_async(Message.objects.filter(client_id="c1").count)() == 1
