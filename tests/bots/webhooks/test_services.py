"""Outgoing webhooks: ticket and message events reach a real HTTP server on loopback,
signed; failures are recorded and retried; other organizations' and unsubscribed
endpoints hear nothing; private addresses are refused; the REST API is scoped."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from bots.models import Ticket, WebhookDelivery
from bots.tickets.services import ticket_create, ticket_receive_email
from bots.webhooks.services import WebhookRejected, webhook_deliver, webhook_endpoint_create
from bots.webhooks.tasks import deliver_webhook, retry_due_webhooks
from neo_support.services import api_key_create
from neo_support.tasking import wait_for_in_process_tasks
from tests.factories import BotFactory, WebhookDeliveryFactory, WebhookEndpointFactory


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> str:
        return self.headers["X-Neo-Event"]

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """An HTTP server on loopback that keeps every request and answers with the next
    status code of `statuses` (200 once they run out)."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.statuses: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's hook
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append(Received(self.path, dict(self.headers.items()), body))
                self.send_response(receiver.statuses.pop(0) if receiver.statuses else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def events(self, path: str = "/hook") -> list[str]:
        return [request.event for request in self.requests if request.path == path]


@pytest.fixture
def receiver(settings) -> Iterator[Receiver]:  # type: ignore[no-untyped-def]
    settings.NEO_WEBHOOK_ALLOW_PRIVATE = True
    settings.NEO_WEBHOOK_INLINE_RETRY_SECONDS = 0
    settings.NEO_MODEL = "/nonexistent/model"
    server = Receiver()
    thread = threading.Thread(target=server.server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


def new_ticket(bot: Any) -> Ticket:
    ticket, _ = ticket_create(
        bot=bot, subject="Export fails", text="My CSV export fails. Call me on +44 20 7946 0958.", email="jo@c.example"
    )
    wait_for_in_process_tasks(timeout=60)
    return ticket


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("in_process_tasks")
def test_a_new_ticket_and_its_message_reach_the_endpoint_signed(receiver: Receiver) -> None:
    bot = BotFactory(ticket_mode="off")
    endpoint = WebhookEndpointFactory(organization=bot.organization, url=f"{receiver.url}/hook")

    ticket = new_ticket(bot)

    # Triage changes the ticket after it was created: ticket.updated follows.
    assert sorted(receiver.events()) == ["message.created", "ticket.created", "ticket.updated"]
    for request in receiver.requests:
        expected = "sha256=" + hmac.new(endpoint.secret.encode(), request.body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(request.headers["X-Neo-Signature"], expected)
        assert request.headers["Content-Type"] == "application/json"
        assert request.headers["X-Neo-Timestamp"].isdigit()
        delivery = WebhookDelivery.objects.get(pk=int(request.headers["X-Neo-Delivery"]))
        assert delivery.event == request.event and delivery.status == "delivered" and delivery.attempts == 1
        assert delivery.last_status_code == 200 and delivery.delivered_at is not None

    created = next(r.json() for r in receiver.requests if r.event == "ticket.created")
    assert created["event"] == "ticket.created" and created["created_at"]
    assert created["data"] | {"created_at": None, "updated_at": None} == {
        "id": ticket.pk, "token": ticket.token, "subject": "Export fails", "status": "new", "priority": "normal",
        "category": "", "requester_email": "jo@c.example", "bot": bot.pk, "channel": "api",
        "created_at": None, "updated_at": None,
    }  # fmt: skip
    message = next(r.json()["data"] for r in receiver.requests if r.event == "message.created")
    assert message["ticket"] == ticket.pk and message["role"] == "visitor" and message["delivery"] == ""
    assert message["text"].endswith("Call me on [phone].")  # what was stored, screened
    updated = next(r.json()["data"] for r in receiver.requests if r.event == "ticket.updated")
    assert updated["status"] == "open"


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("in_process_tasks")
def test_a_customer_reply_reopening_a_solved_ticket_is_a_message_and_an_update(receiver: Receiver) -> None:
    bot = BotFactory(ticket_mode="off")
    ticket = new_ticket(bot)
    Ticket.objects.filter(pk=ticket.pk).update(status="solved")
    WebhookEndpointFactory(organization=bot.organization, url=f"{receiver.url}/hook")
    mail = EmailMessage()
    mail["From"], mail["To"] = "jo@c.example", "help@example.com"
    mail["Subject"], mail["Message-ID"] = f"Re: Export fails [#{ticket.token}]", "<again@c.example>"
    mail.set_content("It fails again.")

    assert ticket_receive_email(bot=bot, raw=mail.as_bytes()).status == "reopened"
    wait_for_in_process_tasks(timeout=30)

    assert sorted(receiver.events()) == ["message.created", "ticket.updated"]
    payloads = {request.event: request.json()["data"] for request in receiver.requests}
    assert payloads["ticket.updated"]["status"] == "open"
    assert payloads["message.created"]["text"] == "It fails again."


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("in_process_tasks")
def test_a_failed_attempt_is_recorded_and_the_retry_delivers(receiver: Receiver) -> None:
    bot = BotFactory(ticket_mode="off")
    WebhookEndpointFactory(organization=bot.organization, url=f"{receiver.url}/hook", events=["ticket.created"])
    receiver.statuses = [500]

    new_ticket(bot)

    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("pending", 1, 500)
    assert delivery.last_error == "HTTP 500"
    assert delivery.next_attempt_at is not None and delivery.next_attempt_at > timezone.now() + timedelta(seconds=25)

    assert retry_due_webhooks() == 0  # not due yet
    WebhookDelivery.objects.update(next_attempt_at=timezone.now())
    assert retry_due_webhooks() == 1
    wait_for_in_process_tasks(timeout=30)

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code, delivery.last_error) == (
        "delivered",
        2,
        200,
        "",
    )
    assert receiver.events() == ["ticket.created", "ticket.created"]
    assert {r.headers["X-Neo-Delivery"] for r in receiver.requests} == {str(delivery.pk)}
    assert deliver_webhook(delivery.pk) == "not due"  # a duplicate task sends nothing twice
    assert len(receiver.requests) == 2


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("in_process_tasks")
def test_without_a_broker_the_retry_can_run_in_process(receiver: Receiver, settings) -> None:
    settings.NEO_WEBHOOK_INLINE_RETRY_SECONDS = 0.2
    bot = BotFactory(ticket_mode="off")
    WebhookEndpointFactory(organization=bot.organization, url=f"{receiver.url}/hook", events=["ticket.created"])
    receiver.statuses = [503]

    new_ticket(bot)

    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("delivered", 2)
    assert receiver.events() == ["ticket.created", "ticket.created"]


@pytest.mark.django_db
def test_with_a_broker_the_retry_is_scheduled_with_backoff_and_gives_up_after_eight_attempts(
    receiver: Receiver, settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.NEO_TASKS_IN_PROCESS = False
    scheduled: list[dict[str, Any]] = []
    monkeypatch.setattr(deliver_webhook, "apply_async", lambda **kwargs: scheduled.append(kwargs))
    receiver.statuses = [500, 502]
    delivery = WebhookDeliveryFactory(endpoint=WebhookEndpointFactory(url=f"{receiver.url}/hook"))

    assert webhook_deliver(delivery_id=delivery.pk) == "pending"
    [retry] = scheduled
    assert retry["args"] == [delivery.pk] and 30 <= retry["countdown"] <= 33

    WebhookDelivery.objects.filter(pk=delivery.pk).update(attempts=7, next_attempt_at=None)
    assert webhook_deliver(delivery_id=delivery.pk) == "failed"
    delivery.refresh_from_db()
    assert (delivery.attempts, delivery.last_status_code, delivery.next_attempt_at) == (8, 502, None)
    assert len(scheduled) == 1
    assert webhook_deliver(delivery_id=delivery.pk) == "not due"  # settled


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("in_process_tasks")
def test_unsubscribed_inactive_and_other_organizations_endpoints_hear_nothing(receiver: Receiver) -> None:
    bot = BotFactory(ticket_mode="off")
    WebhookEndpointFactory(organization=bot.organization, url=f"{receiver.url}/hook", events=["message.created"])
    WebhookEndpointFactory(organization=bot.organization, url=f"{receiver.url}/inactive", active=False)
    WebhookEndpointFactory(url=f"{receiver.url}/theirs")  # another organization's, subscribed to everything

    new_ticket(bot)

    assert receiver.events() == ["message.created"]
    assert {request.path for request in receiver.requests} == {"/hook"}
    assert WebhookDelivery.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("host", ["127.0.0.1", "10.0.0.7", "169.254.169.254", "[::1]"])
def test_private_addresses_are_refused_unless_allowed(host: str, settings, organization) -> None:
    settings.NEO_WEBHOOK_ALLOW_PRIVATE = False
    with pytest.raises(WebhookRejected, match="private or internal address"):
        webhook_endpoint_create(organization=organization, url=f"http://{host}:8080/hook", events=[])

    # One stored before (or whose DNS changed since) is refused when sending, and not retried.
    delivery = WebhookDeliveryFactory(endpoint=WebhookEndpointFactory(url=f"http://{host}:9/hook"))
    assert webhook_deliver(delivery_id=delivery.pk) == "failed"
    delivery.refresh_from_db()
    assert delivery.attempts == 1 and "private or internal address" in delivery.last_error

    settings.NEO_WEBHOOK_ALLOW_PRIVATE = True
    assert webhook_endpoint_create(organization=organization, url=f"http://{host}:8080/hook", events=[]).pk


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("in_process_tasks")
def test_a_private_address_is_delivered_to_when_allowed(receiver: Receiver) -> None:
    delivery = WebhookDeliveryFactory(endpoint=WebhookEndpointFactory(url=f"{receiver.url}/hook"))
    assert webhook_deliver(delivery_id=delivery.pk) == "delivered"
    assert receiver.events() == ["ticket.created"]


@pytest.mark.urls("tests.bots.webhooks.urls")
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("in_process_tasks")
def test_endpoints_through_the_rest_api_are_scoped_to_the_organization(receiver: Receiver) -> None:
    bot = BotFactory(ticket_mode="off")
    _, raw_key = api_key_create(organization=bot.organization, name="CRM")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")

    response = api.post("/api/webhooks/", {"url": f"{receiver.url}/hook", "events": ["ticket.created"]}, format="json")
    assert response.status_code == 201, response.json()
    created = response.json()
    assert created["events"] == ["ticket.created"] and created["active"] is True
    endpoint_id, secret = created["id"], created["secret"]
    assert len(secret) >= 32

    listed = api.get("/api/webhooks/").json()["results"]
    assert [e["id"] for e in listed] == [endpoint_id] and "secret" not in listed[0]
    assert "secret" not in api.get(f"/api/webhooks/{endpoint_id}/").json()

    new_ticket(bot)
    [request] = receiver.requests
    assert request.headers["X-Neo-Signature"] == (
        "sha256=" + hmac.new(secret.encode(), request.body, hashlib.sha256).hexdigest()
    )
    deliveries = api.get(f"/api/webhooks/{endpoint_id}/deliveries/").json()
    assert deliveries["count"] == 1 and deliveries["results"][0]["status"] == "delivered"
    assert api.get(f"/api/webhooks/{endpoint_id}/deliveries/?status=failed").json()["count"] == 0

    bad = api.post("/api/webhooks/", {"url": "not a url", "events": ["ticket.deleted"]}, format="json")
    assert bad.status_code == 400 and {"url", "events"} <= set(bad.json()["error"]["details"]["fields"])

    theirs = WebhookEndpointFactory()
    assert api.get(f"/api/webhooks/{theirs.pk}/").status_code == 404
    assert api.get(f"/api/webhooks/{theirs.pk}/deliveries/").status_code == 404
    assert api.delete(f"/api/webhooks/{theirs.pk}/").status_code == 404
    assert [e["id"] for e in api.get("/api/webhooks/").json()["results"]] == [endpoint_id]

    assert api.delete(f"/api/webhooks/{endpoint_id}/").status_code == 204
    assert api.get("/api/webhooks/").json()["count"] == 0
    assert WebhookDelivery.objects.count() == 0
    assert theirs.__class__.objects.filter(pk=theirs.pk).exists()
    assert APIClient().get("/api/webhooks/").status_code in {401, 403}
