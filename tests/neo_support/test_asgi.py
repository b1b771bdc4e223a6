"""The ASGI application serves HTTP through Django and routes websockets through Channels."""

from __future__ import annotations

import pytest
from channels.testing import HttpCommunicator, WebsocketCommunicator

from neo_support.asgi import application

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


async def test_http_goes_through_django() -> None:
    communicator = HttpCommunicator(application, "GET", "/healthz/live", headers=[(b"host", b"localhost")])
    response = await communicator.get_response(timeout=30)
    assert response["status"] == 200
    assert response["body"] == b'{"status": "ok"}'


async def test_a_websocket_on_an_unknown_path_is_closed_with_4404() -> None:
    communicator = WebsocketCommunicator(application, "/ws/nowhere/")
    connected, _ = await communicator.connect(timeout=30)
    assert connected
    closed = await communicator.receive_output(timeout=30)
    assert closed["type"] == "websocket.close" and closed["code"] == 4404
    await communicator.disconnect(timeout=30)
