"""Outgoing webhooks: ticket and message events POSTed, signed, to the organization's URLs.

`webhooks_emit` stores one pending WebhookDelivery per active endpoint subscribed to
the event and enqueues `deliver_webhook` for it once the transaction commits.
`webhook_deliver` makes one attempt: a 2xx answer delivers it; anything else is
recorded and retried with exponential backoff, up to MAX_ATTEMPTS attempts.

Every request is signed: `X-Neo-Signature: sha256=<hex HMAC-SHA256 of the exact body
bytes under the endpoint's secret>`. Private, loopback and link-local addresses are
refused (SSRF) unless NEO_WEBHOOK_ALLOW_PRIVATE is on, and the connection goes to the
address that was checked, so a second DNS answer never gets a say.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import socket
import time
from datetime import timedelta
from typing import Literal, TypedDict, cast

import httpx
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from bots.models import (
    Message,
    Ticket,
    WebhookDelivery,
    WebhookDeliveryStatus,
    WebhookEndpoint,
    WebhookEvent,
)
from neo_support import audit
from neo_support.models import Organization
from neo_support.tasking import dispatch_now, enqueue, registered_task
from retrieval.loaders.safe_http import is_public_address

logger = logging.getLogger(__name__)

EventName = Literal["ticket.created", "ticket.updated", "message.created"]

TIMEOUT_SECONDS = 10.0
MAX_ATTEMPTS = 8
BACKOFF_BASE_SECONDS = 30
BACKOFF_CAP_SECONDS = 3600
# An attempt claims its delivery for this long, so a duplicate task (a beat sweep, a
# redelivered message) finds it not due and leaves it alone. Longer than TIMEOUT_SECONDS.
ATTEMPT_LEASE = timedelta(seconds=60)
# A task scheduled with a countdown may start a little before next_attempt_at.
EARLY_SLACK = timedelta(seconds=5)
USER_AGENT = "NeoSupport-Webhooks/1.0"


class TicketData(TypedDict):
    id: int
    token: str
    subject: str
    status: str
    priority: str
    category: str
    requester_email: str
    bot: int
    channel: str
    created_at: str
    updated_at: str


class MessageData(TypedDict):
    id: int
    ticket: int
    role: str
    text: str
    delivery: str
    created_at: str


class WebhookPayload(TypedDict):
    event: EventName
    created_at: str
    data: TicketData | MessageData


class WebhookRejected(Exception):  # noqa: N818 - shown to the caller, not a crash
    """The endpoint cannot be used; the message says why."""


class WebhookRefused(Exception):  # noqa: N818 - recorded on the delivery
    """The URL leads to an address we do not send to (private, loopback, link-local)."""


# Events ----------------------------------------------------------------------


def ticket_data(ticket: Ticket) -> TicketData:
    return {
        "id": ticket.pk,
        "token": ticket.token,
        "subject": ticket.subject,
        "status": ticket.status,
        "priority": ticket.priority,
        "category": ticket.category,
        "requester_email": ticket.requester_email,
        "bot": ticket.conversation.bot_id,
        "channel": ticket.conversation.channel,
        "created_at": ticket.created_at.isoformat(),
        "updated_at": ticket.updated_at.isoformat(),
    }


def message_data(message: Message, *, ticket_id: int) -> MessageData:
    return {
        "id": message.pk,
        "ticket": ticket_id,
        "role": message.role,
        "text": message.text,
        "delivery": message.delivery,
        "created_at": message.created_at.isoformat(),
    }


def webhooks_emit(
    *, organization: Organization | int, event: EventName, payload: TicketData | MessageData
) -> list[WebhookDelivery]:
    """Store a pending delivery of `event` (with `payload` as its data) for each active
    endpoint of `organization` that subscribes to it, and send each once the current
    transaction commits. Costs one query when the organization has no endpoints."""
    if event not in WebhookEvent.values:
        raise ValueError(f"Unknown webhook event {event!r}.")
    endpoints = [
        endpoint
        for endpoint in WebhookEndpoint.objects.filter(organization=organization, active=True)
        if endpoint.subscribes_to(event)
    ]
    if not endpoints:
        return []

    now = timezone.now()
    envelope: WebhookPayload = {"event": event, "created_at": now.isoformat(), "data": payload}
    deliveries = []
    with transaction.atomic():
        for endpoint in endpoints:
            delivery = WebhookDelivery.objects.create(
                endpoint=endpoint, event=event, payload=envelope, next_attempt_at=now
            )
            enqueue("workers.tasks.deliver_webhook", delivery.pk)
            deliveries.append(delivery)
    return deliveries


def webhooks_emit_ticket(*, ticket: Ticket, event: EventName) -> list[WebhookDelivery]:
    """`event` with the ticket as it is in the database now (callers update it with
    queryset updates, so their instance may be stale)."""
    organization_id = ticket.conversation.bot.organization_id
    if not _has_endpoints(organization_id):
        return []
    current = Ticket.objects.select_related("conversation").filter(pk=ticket.pk).first()
    if current is None:
        return []
    return webhooks_emit(organization=organization_id, event=event, payload=ticket_data(current))


def webhooks_emit_message(*, ticket: Ticket, message: Message) -> list[WebhookDelivery]:
    """message.created for `message` of `ticket`, as it is in the database now."""
    organization_id = ticket.conversation.bot.organization_id
    if not _has_endpoints(organization_id):
        return []
    current = Message.objects.filter(pk=message.pk).first()
    if current is None:
        return []
    data = message_data(current, ticket_id=ticket.pk)
    return webhooks_emit(organization=organization_id, event="message.created", payload=data)


def _has_endpoints(organization_id: int) -> bool:
    return cast(bool, WebhookEndpoint.objects.filter(organization_id=organization_id, active=True).exists())


# Endpoints -------------------------------------------------------------------


def webhook_endpoint_create(
    *, organization: Organization, url: str, events: list[str], active: bool = True
) -> WebhookEndpoint:
    """A new endpoint with a fresh secret. Refused when its host resolves to a private
    address (unless NEO_WEBHOOK_ALLOW_PRIVATE); a host that does not resolve yet is
    accepted, and its deliveries record the error."""
    unknown = sorted(set(events) - set(WebhookEvent.values))
    if unknown:
        raise WebhookRejected(f"Unknown events: {', '.join(unknown)}.")
    try:
        _checked_addresses(url)
    except WebhookRefused as error:
        raise WebhookRejected(str(error)) from None
    except OSError:
        pass
    with transaction.atomic():
        endpoint: WebhookEndpoint = WebhookEndpoint.objects.create(
            organization=organization, url=url, events=list(dict.fromkeys(events)), active=active
        )
        audit.record(
            organization=organization,
            action="webhook.create",
            target=endpoint,
            target_label=url,
            after={"url": url, "events": endpoint.events, "active": active},
        )
    return endpoint


def webhook_endpoint_delete(*, endpoint: WebhookEndpoint) -> None:
    """Delete the endpoint and its deliveries; tasks still queued for them find nothing."""
    with transaction.atomic():
        audit.record(
            organization=endpoint.organization_id, action="webhook.delete", target=endpoint, target_label=endpoint.url
        )
        endpoint.delete()


def webhook_endpoint_set_active(*, endpoint: WebhookEndpoint, active: bool) -> WebhookEndpoint:
    """Pause or resume an endpoint; a paused one is sent nothing."""
    before = {"active": endpoint.active}
    with transaction.atomic():
        if endpoint.active != active:
            endpoint.active = active
            endpoint.save(update_fields=["active"])
        audit.record(
            organization=endpoint.organization_id,
            action="webhook.active_change",
            target=endpoint,
            target_label=endpoint.url,
            before=before,
            after={"active": active},
        )
    return endpoint


# Delivery --------------------------------------------------------------------


def webhook_signature(*, secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_deliver(*, delivery_id: int) -> str:
    """One attempt at a pending delivery; returns its status afterwards, or "not due"
    when it is not pending, another attempt holds it, or its retry time is still ahead."""
    now = timezone.now()
    claimed = (
        WebhookDelivery.objects.filter(pk=delivery_id, status=WebhookDeliveryStatus.PENDING)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now + EARLY_SLACK))
        .update(next_attempt_at=now + ATTEMPT_LEASE)
    )
    if not claimed:
        return "not due"
    delivery = WebhookDelivery.objects.select_related("endpoint").get(pk=delivery_id)
    endpoint = delivery.endpoint
    body = json.dumps(delivery.payload, separators=(",", ":"), ensure_ascii=False).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Neo-Event": delivery.event,
        "X-Neo-Delivery": str(delivery.pk),
        "X-Neo-Signature": webhook_signature(secret=endpoint.secret, body=body),
        "X-Neo-Timestamp": str(int(time.time())),
    }
    delivery.attempts += 1
    try:
        status_code = _post(endpoint.url, body=body, headers=headers)
    except WebhookRefused as error:
        # Sending again would be refused again: fail now.
        _record(delivery, status=WebhookDeliveryStatus.FAILED, code=None, error=str(error))
        return cast(str, delivery.status)
    except (httpx.HTTPError, OSError) as error:
        _record_failure(delivery, code=None, error=f"{type(error).__name__}: {error}"[:1000])
        return cast(str, delivery.status)
    if 200 <= status_code < 300:
        delivery.delivered_at = timezone.now()
        _record(delivery, status=WebhookDeliveryStatus.DELIVERED, code=status_code, error="")
    else:
        _record_failure(delivery, code=status_code, error=f"HTTP {status_code}")
    return cast(str, delivery.status)


def webhooks_retry_due() -> int:
    """Send every pending delivery whose time has come (Celery beat; a safety net for
    retries scheduled with a countdown). Returns how many were queued."""

    due = WebhookDelivery.objects.filter(
        status=WebhookDeliveryStatus.PENDING, next_attempt_at__lte=timezone.now()
    ).values_list("pk", flat=True)
    ids = list(due[:1000])
    for delivery_id in ids:
        enqueue("workers.tasks.deliver_webhook", delivery_id)
    return len(ids)


def retry_delay(attempts: int) -> float:
    """Seconds before the next attempt after `attempts` failed ones: 30 s doubling,
    capped at an hour, with up to 10% jitter so a recovering receiver is not hit at once."""
    delay = min(BACKOFF_BASE_SECONDS * 2 ** max(attempts - 1, 0), BACKOFF_CAP_SECONDS)
    return float(min(delay * (1 + random.uniform(0, 0.1)), BACKOFF_CAP_SECONDS))


def _record(delivery: WebhookDelivery, *, status: str, code: int | None, error: str) -> None:
    delivery.status = status
    delivery.last_status_code = code
    delivery.last_error = error
    if status != WebhookDeliveryStatus.PENDING:
        delivery.next_attempt_at = None
    delivery.save(
        update_fields=["status", "attempts", "last_status_code", "last_error", "next_attempt_at", "delivered_at"]
    )


def _record_failure(delivery: WebhookDelivery, *, code: int | None, error: str) -> None:
    """Record a failed attempt and schedule the next one, or give up after MAX_ATTEMPTS."""

    logger.info("webhook delivery %s attempt %s failed: %s", delivery.pk, delivery.attempts, error)
    if delivery.attempts >= MAX_ATTEMPTS:
        _record(delivery, status=WebhookDeliveryStatus.FAILED, code=code, error=error)
        return
    delay = retry_delay(delivery.attempts)
    inline = float(settings.NEO_WEBHOOK_INLINE_RETRY_SECONDS)
    if settings.NEO_TASKS_IN_PROCESS and inline > 0:
        # No broker to hold a countdown: wait here (briefly), then queue the retry.
        delay = min(delay, inline)
    delivery.next_attempt_at = timezone.now() + timedelta(seconds=delay)
    _record(delivery, status=WebhookDeliveryStatus.PENDING, code=code, error=error)
    if not settings.NEO_TASKS_IN_PROCESS:
        registered_task("workers.tasks.deliver_webhook").apply_async(args=[delivery.pk], countdown=delay)
    elif inline > 0:
        time.sleep(delay)
        dispatch_now("workers.tasks.deliver_webhook", delivery.pk)
    # Else it stays pending until `webhooks_retry_due` runs.


def _checked_addresses(url: str) -> tuple[httpx.URL, list[str]]:
    """The URL and the addresses its host resolves to; WebhookRefused for a non-http(s)
    URL or a private address, OSError when the host cannot be resolved."""
    try:
        parsed = httpx.URL(url.strip())
        host = parsed.raw_host.decode("ascii")
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
    except (httpx.InvalidURL, ValueError, UnicodeError) as error:
        raise WebhookRefused(f"{url} is not a valid web address.") from error
    if parsed.scheme not in ("http", "https") or not host or not 0 < port < 65536:
        raise WebhookRefused("Webhooks go to http:// or https:// addresses only.")
    answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = list(dict.fromkeys(str(answer[4][0]) for answer in answers))
    if not addresses:
        raise OSError(f"The host {host} could not be found.")
    if not settings.NEO_WEBHOOK_ALLOW_PRIVATE:
        for address in addresses:
            if not is_public_address(address):
                raise WebhookRefused(
                    f"{host} points at a private or internal address ({address}); webhooks go to public addresses."
                )
    return parsed, addresses


def _post(url: str, *, body: bytes, headers: dict[str, str]) -> int:
    """POST to the first checked address that connects; the answer's status code. The
    response body is never read, and redirects are not followed."""
    parsed, addresses = _checked_addresses(url)
    headers = {**headers, "Host": parsed.netloc.decode("ascii")}
    # TLS still checks the certificate against the host name, sent as SNI, not against the address.
    extensions = {"sni_hostname": parsed.raw_host.decode("ascii")} if parsed.scheme == "https" else {}
    failure: httpx.ConnectError | None = None
    with httpx.Client(timeout=TIMEOUT_SECONDS, follow_redirects=False, trust_env=False) as client:
        for address in addresses:
            try:
                with client.stream(
                    "POST", parsed.copy_with(host=address), content=body, headers=headers, extensions=extensions
                ) as response:
                    return response.status_code
            except httpx.ConnectError as error:
                failure = error
    raise failure or httpx.ConnectError(f"Could not connect to {parsed.raw_host.decode('ascii')}.")
