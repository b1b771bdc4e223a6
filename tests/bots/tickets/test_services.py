"""Tickets end to end: an email posted to the inbound webhook becomes a triaged ticket,
the bot's answer reaches a real SMTP server on loopback threaded under the customer's
email, and the customer's reply comes back to the same ticket for a person."""

from __future__ import annotations

import hashlib
import hmac
import time
from email.message import EmailMessage
from typing import Any

import pytest
from django.test import Client

from bots.models import Conversation, Delivery, Message, Role, Ticket, TicketStatus
from neo_support.services import api_key_create
from neo_support.tasking import wait_for_in_process_tasks
from retrieval.services.documents import document_create_from_text
from retrieval.services.ingestion import documents_ingest_all
from tests.factories import BotFactory, KnowledgeBaseFactory

REFUNDS = (
    "# Refunds\n\n## Annual plans\n\nAnnual plans can be refunded within 30 days of purchase. "
    "Open Settings, then Billing, and click Request refund. The money reaches your card within 5 working days."
)


@pytest.fixture
def inbox(smtp):  # type: ignore[no-untyped-def]
    """The tickets tests' name for the loopback SMTP server (tests/conftest.py `smtp`)."""
    return smtp


def customer_email(*, subject: str, body: str, message_id: str, in_reply_to: str = "", **headers: str) -> bytes:
    mail = EmailMessage()
    mail["From"] = "Jo Customer <jo@customer.example>"
    mail["To"] = "help@tallyho.example"
    mail["Subject"] = subject
    mail["Message-ID"] = f"<{message_id}>"
    if in_reply_to:
        mail["In-Reply-To"] = f"<{in_reply_to}>"
        mail["References"] = f"<{in_reply_to}>"
    for name, value in headers.items():
        mail[name.replace("_", "-")] = value
    mail.set_content(body)
    return mail.as_bytes()


def post_email(client: Client, bot: Any, raw: bytes, *, secret: str | None = None) -> Any:
    signature = "sha256=" + hmac.new((secret or bot.inbound_secret).encode(), raw, hashlib.sha256).hexdigest()
    return client.post(
        f"/api/bots/{bot.public_key}/inbound-email",
        data=raw,
        content_type="message/rfc822",
        headers={"X-Neo-Signature": signature},
    )


def support_bot(**fields: Any) -> Any:
    knowledge_base = KnowledgeBaseFactory()
    documents_ingest_all(
        documents=[document_create_from_text(knowledge_base=knowledge_base, title="Refunds", text=REFUNDS, queue=False)]
    )
    bot = BotFactory(organization=knowledge_base.organization, answer_threshold=0.2, handoff_threshold=0.0, **fields)
    bot.knowledge_bases.add(knowledge_base)
    return bot


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("in_process_tasks")
def test_an_email_is_answered_automatically_and_the_customers_reply_goes_to_a_person(settings, inbox) -> None:
    settings.NEO_MODEL = "/nonexistent/model"  # extractive answers, quoted and cited
    bot = support_bot(ticket_mode="auto", support_email="help@tallyho.example")
    client = Client()

    raw = customer_email(
        subject="Refund for my annual plan",
        body="Hello, how can I get a refund for my annual plan? I bought it last week.\n\nThanks, Jo",
        message_id="first@customer.example",
    )
    response = post_email(client, bot, raw)
    assert response.status_code == 201, response.content
    token = response.json()["ticket"]["token"]
    wait_for_in_process_tasks(timeout=120)
    assert inbox.arrived.wait(10)

    sent = inbox.messages[0]
    assert sent["To"] == "jo@customer.example"
    assert sent["In-Reply-To"] == "<first@customer.example>"
    assert f"[#{token}]" in sent["Subject"] and sent["Auto-Submitted"] == "auto-replied"
    body = sent.get_content()
    assert "30 days" in body and "[1] Refunds" in body and "written automatically" in body

    ticket = Ticket.objects.get(token=token)
    assert ticket.status == TicketStatus.PENDING and ticket.auto_answer["decision"] == "sent"
    assert ticket.priority and ticket.language == "en" and ticket.due_at is not None
    reply = Message.objects.get(pk=ticket.auto_answer["message_id"])
    assert reply.delivery == Delivery.SENT and reply.external_id == sent["Message-ID"].strip("<>")

    # The customer answers the automatic reply: the same ticket, now for a person.
    again = customer_email(
        subject=f"Re: Refund for my annual plan [#{token}]",
        body=(
            "That did not help, the button is missing.\n\n"
            "On Tue, 3 Jun 2025 at 10:00, Tallyho Help <help@tallyho.example> wrote:\n> old text"
        ),
        message_id="second@customer.example",
        in_reply_to=reply.external_id,
    )
    response = post_email(client, bot, again)
    assert response.status_code == 200 and response.json()["status"] == "reopened"
    wait_for_in_process_tasks(timeout=60)
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.OPEN
    assert Conversation.objects.get(pk=ticket.conversation_id).status == "pending_agent"
    assert len(inbox.messages) == 1  # the bot answers a ticket once
    last = ticket.conversation.messages.filter(role=Role.VISITOR).last()
    assert last is not None and last.text == "That did not help, the button is missing."


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("in_process_tasks")
def test_in_draft_mode_the_answer_waits_for_an_agent(settings, inbox) -> None:
    settings.NEO_MODEL = "/nonexistent/model"
    bot = support_bot(ticket_mode="draft")
    response = post_email(
        Client(),
        bot,
        customer_email(subject="Refund", body="How do I get a refund for my annual plan?", message_id="d@c.example"),
    )
    assert response.status_code == 201
    wait_for_in_process_tasks(timeout=120)
    ticket = Ticket.objects.get()
    assert ticket.auto_answer["decision"] == "draft"
    assert Message.objects.get(pk=ticket.auto_answer["message_id"]).delivery == Delivery.DRAFT
    time.sleep(0.5)
    assert inbox.messages == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("in_process_tasks")
def test_bad_mail_and_bad_calls_are_refused_or_ignored_and_nothing_is_stored_twice(settings) -> None:
    settings.NEO_MODEL = "/nonexistent/model"
    bot = BotFactory(ticket_mode="off")
    client = Client()
    raw = customer_email(subject="Hi", body="My invoice is wrong", message_id="dup@c.example")

    assert post_email(client, bot, raw, secret="wrong").status_code == 401
    assert (
        client.post(f"/api/bots/{bot.public_key}/inbound-email", data=raw, content_type="message/rfc822").status_code
        == 401
    )
    assert post_email(client, BotFactory.build(public_key="pk_nobody"), raw).status_code == 404
    assert Ticket.objects.count() == 0

    assert post_email(client, bot, raw).status_code == 201
    second = post_email(client, bot, raw)
    assert second.status_code == 200 and second.json()["status"] == "duplicate"
    assert Ticket.objects.count() == 1 and Message.objects.filter(role=Role.VISITOR).count() == 1

    auto = customer_email(
        subject="Out of Office", body="I am away", message_id="ooo@c.example", Auto_Submitted="auto-replied"
    )
    response = post_email(client, bot, auto)
    assert response.status_code == 200 and response.json()["status"] == "ignored"
    assert post_email(client, bot, b"").status_code == 400
    assert Ticket.objects.count() == 1
    wait_for_in_process_tasks(timeout=60)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("in_process_tasks")
def test_tickets_through_the_rest_api(settings) -> None:
    settings.NEO_MODEL = "/nonexistent/model"
    bot = BotFactory(ticket_mode="off")
    _, raw_key = api_key_create(organization=bot.organization, name="CRM")
    client = Client(headers={"Authorization": f"Bearer {raw_key}"})

    response = client.post(
        "/api/tickets/",
        {
            "bot": bot.pk,
            "subject": "Export",
            "text": "My export to CSV fails. Call me on +44 20 7946 0958.",
            "email": "jo@c.example",
        },
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    ticket_id = response.json()["id"]
    wait_for_in_process_tasks(timeout=60)
    detail = client.get(f"/api/tickets/{ticket_id}/").json()
    assert detail["messages"][0]["text"].endswith("Call me on [phone].")
    assert detail["status"] == "open" and detail["priority"] in {"low", "normal", "high", "urgent"}
    assert client.get("/api/tickets/").json()["count"] == 1

    invalid = client.post(
        "/api/tickets/", {"bot": bot.pk, "text": "", "email": "nope"}, content_type="application/json"
    )
    assert invalid.status_code == 400 and {"text", "email"} <= set(invalid.json()["error"]["details"]["fields"])
    other = BotFactory()
    assert (
        client.post(
            "/api/tickets/", {"bot": other.pk, "text": "x", "email": "a@b.example"}, content_type="application/json"
        ).status_code
        == 404
    )
    assert Client().get("/api/tickets/").status_code in {401, 403}


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("in_process_tasks")
def test_a_chat_handed_off_to_a_person_becomes_a_triaged_ticket(settings) -> None:
    from bots.chat.services import conversation_identify, conversation_request_handoff, conversation_start

    settings.NEO_MODEL = "/nonexistent/model"
    bot = BotFactory(ticket_mode="auto")
    conversation = conversation_start(bot=bot, visitor_id="v1")
    Message.objects.create(conversation=conversation, role=Role.VISITOR, text="Our whole team is locked out, urgent!")
    conversation_identify(conversation=conversation, traits={"email": "lead@customer.example", "name": "Lee"})
    assert conversation_request_handoff(conversation=conversation, reason="bot did not help")
    assert not conversation_request_handoff(conversation=conversation)  # once
    wait_for_in_process_tasks(timeout=60)
    ticket = Ticket.objects.get(conversation=conversation)
    assert ticket.requester_email == "lead@customer.example" and ticket.subject.startswith("Our whole team")
    assert ticket.priority in {"high", "urgent"} and ticket.auto_answer == {}  # a person answers a handed-off chat


def _mime_cases() -> dict[str, bytes]:
    from email.mime.application import MIMEApplication
    from email.mime.multipart import MIMEMultipart
    from email.mime.text import MIMEText

    cases = {}
    mixed = MIMEMultipart("mixed")
    alternative = MIMEMultipart("alternative")
    alternative.attach(MIMEText("The PDF invoice is attached, the total is wrong.", "plain", "utf-8"))
    alternative.attach(MIMEText("<p>The PDF invoice is attached, the <b>total</b> is wrong.</p>", "html", "utf-8"))
    mixed.attach(alternative)
    pdf = MIMEApplication(b"%PDF-1.4 invoice", _subtype="pdf")
    pdf.add_header("Content-Disposition", "attachment", filename="../../invoice 42.pdf")
    mixed.attach(pdf)
    cases["multipart with attachment"] = mixed
    cases["html only"] = MIMEText(
        "<html><body><p>Where is my <i>refund</i>?</p><script>x()</script></body></html>", "html"
    )
    cases["latin-1"] = MIMEText("Ma facture est erronée, merci de vérifier.", "plain", "iso-8859-1")
    forwarded = MIMEText(
        "Can you help with this?\n\n---------- Forwarded message ---------\nFrom: Boss <b@c.example>\n"
        "Subject: Invoice\n\nThe invoice total is wrong.",
        "plain",
        "utf-8",
    )
    cases["forwarded"] = forwarded
    raw = {}
    for n, (name, mail) in enumerate(cases.items()):
        mail["From"] = "Jo <jo@customer.example>"
        mail["To"] = "help@tallyho.example"
        mail["Subject"] = f"Case {n}"
        mail["Message-ID"] = f"<case-{n}@customer.example>"
        raw[name] = mail.as_bytes()
    return raw


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("in_process_tasks")
@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("multipart with attachment", "The PDF invoice is attached, the total is wrong."),
        ("html only", "Where is my refund?"),
        ("latin-1", "Ma facture est erronée, merci de vérifier."),
        ("forwarded", "The invoice total is wrong."),
    ],
)
def test_real_mime_through_the_webhook(settings, tmp_path, case: str, expected: str) -> None:
    settings.NEO_MODEL = "/nonexistent/model"
    settings.MEDIA_ROOT = tmp_path
    bot = BotFactory(ticket_mode="off")
    response = post_email(Client(), bot, _mime_cases()[case])
    assert response.status_code == 201, response.content
    message = Message.objects.get(pk=response.json()["message_id"])
    assert expected in message.text and "<p>" not in message.text and "x()" not in message.text
    if case == "multipart with attachment":
        attachment = message.attachments.get()
        assert attachment.filename == "invoice 42.pdf" and attachment.file.read() == b"%PDF-1.4 invoice"
        assert str(tmp_path) in attachment.file.path
    wait_for_in_process_tasks(timeout=60)
