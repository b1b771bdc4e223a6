"""factory_boy factories, one per model; each builds a full chain up to its Organization."""

from __future__ import annotations

import datetime

import factory
from django.contrib.auth import get_user_model

from bots.models import (
    Attachment,
    Bot,
    Conversation,
    ExpiredDailyCount,
    Feedback,
    Message,
    ModelVersion,
    ModerationExample,
    PersonErasure,
    RetentionPolicy,
    RetentionRun,
    Ticket,
    WebhookDelivery,
    WebhookEndpoint,
)
from neo_support.models import ApiKey, AuditEntry, Membership, Organization
from retrieval.models import Chunk, Document, KnowledgeBase


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")
    password = factory.django.Password("correct horse battery staple")


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization

    name = factory.Sequence(lambda n: f"Company {n}")
    slug = factory.Sequence(lambda n: f"company-{n}")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    organization = factory.SubFactory(OrganizationFactory)
    role = "admin"


class ApiKeyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ApiKey

    organization = factory.SubFactory(OrganizationFactory)
    name = "Integration"
    prefix = factory.Sequence(lambda n: f"{n:08x}")
    key_hash = factory.Sequence(lambda n: f"{n:064x}")


class InvitationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "neo_support.Invitation"

    organization = factory.SubFactory(OrganizationFactory)
    email = factory.Sequence(lambda n: f"invitee{n}@example.com")
    role = "agent"


class KnowledgeBaseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = KnowledgeBase

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"Help centre {n}")


class DocumentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Document

    knowledge_base = factory.SubFactory(KnowledgeBaseFactory)
    source_type = "text"
    title = factory.Sequence(lambda n: f"Article {n}")
    text = "# Refunds\n\nRefunds take five working days."


class ChunkFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Chunk

    document = factory.SubFactory(DocumentFactory)
    ordinal = factory.Sequence(int)
    text = "Refunds take five working days."
    heading_path = ["Refunds"]
    token_count = 6


class BotFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Bot

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"Helper {n}")
    allowed_origins = ["https://shop.example.com"]


class ConversationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Conversation

    bot = factory.SubFactory(BotFactory)
    visitor_id = factory.Sequence(lambda n: f"visitor-{n}")


class MessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Message

    conversation = factory.SubFactory(ConversationFactory)
    role = "visitor"
    text = "How long do refunds take?"


class TicketFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Ticket

    conversation = factory.SubFactory(ConversationFactory, channel="email")
    subject = "Refund not received"
    requester_email = "customer@example.com"


class AttachmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Attachment

    message = factory.SubFactory(MessageFactory)
    file = factory.django.FileField(filename="invoice.pdf", data=b"%PDF-1.4 test")
    filename = "invoice.pdf"
    content_type = "application/pdf"
    size_bytes = 13


class FeedbackFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Feedback

    message = factory.SubFactory(MessageFactory, role="bot", text="Five working days [1].")
    rating = 1


class WebhookEndpointFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WebhookEndpoint

    organization = factory.SubFactory(OrganizationFactory)
    url = "https://hooks.example.com/neo"


class WebhookDeliveryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WebhookDelivery

    endpoint = factory.SubFactory(WebhookEndpointFactory)
    event = "ticket.created"
    payload = factory.LazyFunction(lambda: {"event": "ticket.created", "created_at": "", "data": {}})


class ModelVersionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ModelVersion

    bot = factory.SubFactory(BotFactory)
    number = factory.Sequence(lambda n: n + 1)
    base_model = "EleutherAI/gpt-neo-125M"


class AuditEntryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AuditEntry

    organization = factory.SubFactory(OrganizationFactory)
    action = "bot.update"
    actor_kind = "user"
    actor_label = factory.Sequence(lambda n: f"user{n}")
    target_kind = "bot"
    target_id = "1"
    target_label = "Support bot"


class RetentionPolicyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RetentionPolicy

    organization = factory.SubFactory(OrganizationFactory)
    conversations_days = 365


class RetentionRunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RetentionRun

    organization = factory.SubFactory(OrganizationFactory)


class ExpiredDailyCountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ExpiredDailyCount

    organization = factory.SubFactory(OrganizationFactory)
    day = factory.Sequence(lambda n: datetime.date(2026, 1, 1) + datetime.timedelta(days=n))
    counts = factory.LazyFunction(lambda: {"conversations": 1})


class PersonErasureFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PersonErasure

    organization = factory.SubFactory(OrganizationFactory)
    subject_hash = factory.Sequence(lambda n: f"{n:064x}")
    subject_hint = "j***@e***.com"


class ModerationExampleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ModerationExample

    message = factory.SubFactory(MessageFactory, text="those people are vermin, said my uncle; I told him off")
    organization = factory.SelfAttribute("message.conversation.bot.organization")
    filter = "toxicity"
    text = factory.SelfAttribute("message.text")
    embedding = b"\x00" * 16
    score = 0.8
