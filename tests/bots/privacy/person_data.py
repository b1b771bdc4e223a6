"""One person with data everywhere, and the scans that look for any trace of them."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from email.message import EmailMessage
from pathlib import Path

from asgiref.sync import async_to_sync
from django.apps import apps
from django.conf import settings
from django.db import models
from django.db.models import TextField
from django.db.models.functions import Cast

from bots.chat import event_log
from bots.models import Bot, Conversation, ModelVersion
from bots.privacy.selectors import dataset_path
from bots.tickets.services import ticket_receive_email
from bots.tuning.examples import build_examples
from bots.webhooks.services import message_data, ticket_data, webhooks_emit
from tests.factories import FeedbackFactory, MessageFactory, WebhookEndpointFactory
from workers.training.dataset import write_jsonl

EMAIL = "jane.roe@example.com"
NAME = "Jane Roe"
VISITOR = "visitor-jane-7f3a"
CHAT_TEXT = "My parcel with the blue kettle never arrived"
BOT_TEXT = "Parcels reach you within five working days"
EMAIL_TEXT = "The invoice for the walnut bookshelf is wrong"
FEEDBACK_TEXT = "Very helpful about the kettle"
ATTACHMENT_BYTES = b"%PDF-1.4 invoice of Jane for the walnut bookshelf"
NEEDLES = [EMAIL, NAME, VISITOR, CHAT_TEXT, BOT_TEXT, EMAIL_TEXT, FEEDBACK_TEXT, "walnut bookshelf"]
OTHER_TEXT = "Someone else asks about gift cards"


@dataclass
class Seeded:
    bot: Bot
    chat: Conversation
    other: Conversation
    version: ModelVersion


def raw_email() -> bytes:
    mail = EmailMessage()
    mail["From"] = f"{NAME} <{EMAIL}>"
    mail["To"] = "support@shop.example.com"
    mail["Subject"] = "Wrong invoice"
    mail["Message-ID"] = "<jane-1@example.com>"
    mail.set_content(EMAIL_TEXT + ".")
    mail.add_attachment(ATTACHMENT_BYTES, maintype="application", subtype="pdf", filename="jane-invoice.pdf")
    return bytes(mail)


def seed_person(bot: Bot) -> Seeded:
    """A chat (identified, rated, moderated, in the event log), an emailed ticket with an
    attachment and webhook deliveries, and a tuned version whose dataset holds them."""
    WebhookEndpointFactory(organization=bot.organization)
    chat = Conversation.objects.create(
        bot=bot, visitor_id=VISITOR, visitor_info={"email": EMAIL, "name": NAME}, status="resolved"
    )
    MessageFactory(
        conversation=chat,
        role="visitor",
        text=CHAT_TEXT,
        moderation=[{"stage": "input", "findings": [{"filter": "pii", "detail": CHAT_TEXT[:20]}]}],
        moderation_action="flag",
    )
    FeedbackFactory(message=MessageFactory(conversation=chat, role="bot", text=BOT_TEXT), comment=FEEDBACK_TEXT)
    async_to_sync(event_log.append)(chat.pk, {"type": "delta", "text": BOT_TEXT})
    outcome = ticket_receive_email(bot=bot, raw=raw_email())
    assert outcome.status == "created", outcome
    ticket = outcome.ticket
    assert ticket is not None and ticket.conversation.messages.first().attachments.count() == 1
    # Emitted again by hand so the payloads exist whichever way tasks run in this test.
    webhooks_emit(organization=bot.organization, event="ticket.created", payload=ticket_data(ticket))
    webhooks_emit(
        organization=bot.organization,
        event="message.created",
        payload=message_data(ticket.conversation.messages.first(), ticket_id=ticket.pk),
    )
    other = Conversation.objects.create(bot=bot, visitor_id="visitor-someone-else", status="resolved")
    MessageFactory(conversation=other, role="visitor", text=OTHER_TEXT)
    FeedbackFactory(message=MessageFactory(conversation=other, role="bot", text="Gift cards never expire"))
    version = ModelVersion.objects.create(bot=bot, number=1, base_model="tiny", status="ready")
    write_jsonl(build_examples(bot, minimum=1, with_knowledge=False), dataset_path(version))
    assert BOT_TEXT in dataset_path(version).read_text()
    return Seeded(bot, chat, other, version)


def text_columns(model: type[models.Model]) -> list[str]:
    return [
        field.name
        for field in model._meta.concrete_fields
        if isinstance(field, models.CharField | models.TextField | models.JSONField | models.FileField)
    ]


def traces_in_tables(needles: list[str]) -> list[str]:
    """Every model's text and JSON columns, read through the database: a new table is
    scanned without a change here."""
    found = []
    for model in apps.get_models():
        for name in text_columns(model):
            for needle in needles:
                rows = model._default_manager.annotate(_text=Cast(name, TextField())).filter(_text__icontains=needle)
                if rows.exists():
                    found.append(f"{model._meta.label}.{name} holds {needle!r}")
    return found


def traces_in_media(needles: list[str]) -> list[str]:
    found = []
    for path in Path(settings.MEDIA_ROOT).rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            found += [f"{path} holds {needle!r}" for needle in needles if needle.encode() in data]
            if ATTACHMENT_BYTES in data:
                found.append(f"{path} is the attachment")
    return found


def traces_in_event_log(conversation_ids: list[int], needles: list[str]) -> list[str]:
    found = []
    for pk in conversation_ids:
        events = async_to_sync(event_log.read_after)(pk, "0-0") or []
        text = json.dumps(events)
        found += [f"event log of {pk} holds {needle!r}" for needle in needles if needle in text]
    return found


def traces_in_training_export(bot: Bot, needles: list[str]) -> list[str]:
    text = json.dumps([asdict(example) for example in build_examples(bot, minimum=1, with_knowledge=False)])
    return [f"the next training export holds {needle!r}" for needle in needles if needle in text]


def all_traces(seeded: Seeded, conversation_ids: list[int]) -> list[str]:
    return (
        traces_in_tables(NEEDLES)
        + traces_in_media(NEEDLES)
        + traces_in_event_log(conversation_ids, NEEDLES)
        + traces_in_training_export(seeded.bot, NEEDLES)
    )
