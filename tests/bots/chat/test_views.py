"""The conversations pages: the list with its filters, and a transcript showing each
message's citations, moderation marks, confidence, timings, feedback and ticket;
every role reads, other organizations' conversations answer 404."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from bots.models import Conversation
from tests.factories import (
    BotFactory,
    ConversationFactory,
    DocumentFactory,
    FeedbackFactory,
    KnowledgeBaseFactory,
    MembershipFactory,
    MessageFactory,
    TicketFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def logged_in(client, role: str = "agent", organization=None):  # type: ignore[no-untyped-def]
    membership = MembershipFactory(role=role, **({"organization": organization} if organization else {}))
    client.force_login(membership.user)
    return membership


def test_a_transcript_shows_citations_moderation_timings_confidence_and_feedback(client) -> None:
    member = logged_in(client, "viewer")
    bot = BotFactory(organization=member.organization, name="Billing helper")
    conversation = ConversationFactory(bot=bot, visitor_info={"name": "Ada"})
    ticket = TicketFactory(conversation=conversation)
    knowledge_base = KnowledgeBaseFactory(organization=member.organization)
    document = DocumentFactory(knowledge_base=knowledge_base, title="Refund policy")
    foreign_document = DocumentFactory(title="Someone else's doc")
    MessageFactory(
        conversation=conversation,
        role="visitor",
        text="You idiots, where is my refund?",
        moderation=[
            {
                "action": "flag",
                "findings": [{"filter": "toxicity", "action": "flag", "reason": "insult", "span": [4, 10]}],
            }
        ],
        moderation_action="flag",
    )
    reply = MessageFactory(
        conversation=conversation,
        role="bot",
        text="Refunds take five working days [1][2][3].",
        confidence=0.8312,
        timings={"first_token_ms": 123.4, "total_ms": 987.6, "mode": "generative"},
        citations=[
            {"number": 1, "document_id": document.pk, "title": "Refund policy", "location": "Refunds", "url": ""},
            {"number": 2, "document_id": 999999, "title": "Shipping", "url": "https://shop.example.com/shipping"},
            {"number": 3, "document_id": foreign_document.pk, "title": "Elsewhere", "url": ""},
        ],
        moderation=[
            {
                "action": "flag",
                "excerpt": "Refunds take five working days.",
                "findings": [{"filter": "grounding", "action": "flag", "reason": "weakly supported", "span": [0, 7]}],
            },
            {"action": "allow", "excerpt": "Nothing to see here.", "findings": []},
        ],
        moderation_action="flag",
    )
    FeedbackFactory(message=reply, rating=-1, comment="Too slow!")

    response = client.get(f"/dashboard/conversations/{conversation.pk}/")
    page = response.content.decode()
    assert response.status_code == 200
    assert "Ada" in page and "Billing helper" in page
    assert f'href="/dashboard/inbox/{ticket.pk}/"' in page and ticket.token in page
    # The visitor's flagged words are marked in their own text, with the reason.
    assert 'You <mark title="insult">idiots</mark>, where is my refund?' in page
    assert "toxicity" in page
    # The reply's screened sentence is marked; verdicts that found nothing add no line.
    assert '<mark title="weakly supported">Refunds</mark> take five working days.' in page
    assert "Nothing to see here." not in page
    # Citations link to the source page, else to the knowledge base holding the document.
    assert (
        f'<a href="/dashboard/knowledge-bases/{knowledge_base.pk}/" rel="noopener noreferrer">Refund policy</a>' in page
    )
    assert '<a href="https://shop.example.com/shipping" rel="noopener noreferrer">Shipping</a>' in page
    assert f"/dashboard/knowledge-bases/{foreign_document.knowledge_base_id}/" not in page
    assert "Elsewhere" in page
    assert "confidence 0.83" in page and "first token 123 ms" in page and "total 988 ms" in page
    assert "👎" in page and "Too slow!" in page


def test_text_is_escaped_in_the_transcript(client) -> None:
    member = logged_in(client)
    conversation = ConversationFactory(bot=BotFactory(organization=member.organization))
    MessageFactory(conversation=conversation, text="<script>alert(1)</script>")
    page = client.get(f"/dashboard/conversations/{conversation.pk}/").content.decode()
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_the_list_filters_by_bot_status_channel_dates_and_message_text(client) -> None:
    member = logged_in(client)
    organization = member.organization
    shop, docs = BotFactory(organization=organization, name="Shop"), BotFactory(organization=organization, name="Docs")
    refund = ConversationFactory(bot=shop, visitor_id="v-refund", status="resolved", channel="widget")
    MessageFactory(conversation=refund, text="Where is my REFUND?")
    invoice = ConversationFactory(bot=docs, visitor_id="v-invoice", status="bot", channel="email")
    MessageFactory(conversation=invoice, text="My invoice is wrong")
    old = ConversationFactory(bot=shop, visitor_id="v-old")
    Conversation.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=30))
    theirs = ConversationFactory(visitor_id="v-theirs")
    MessageFactory(conversation=theirs, text="refund please")

    def listed(query: str = "") -> set[str]:
        page = client.get(f"/dashboard/conversations/{query}").content.decode()
        return {visitor for visitor in ("v-refund", "v-invoice", "v-old", "v-theirs") if visitor in page}

    assert listed() == {"v-refund", "v-invoice", "v-old"}
    assert listed("?q=refund") == {"v-refund"}
    assert listed(f"?bot={docs.pk}") == {"v-invoice"}
    assert listed("?status=resolved") == {"v-refund"}
    assert listed("?channel=email") == {"v-invoice"}
    since = (timezone.now() - timedelta(days=2)).date().isoformat()
    assert listed(f"?started_from={since}") == {"v-refund", "v-invoice"}
    until = (timezone.now() - timedelta(days=10)).date().isoformat()
    assert listed(f"?started_to={until}") == {"v-old"}
    assert listed(f"?bot={theirs.bot_id}") == {"v-refund", "v-invoice", "v-old"}  # not a choice: ignored
    assert listed("?started_from=not-a-date&status=resolved") == {"v-refund"}
    page = client.get("/dashboard/conversations/?q=refund").content.decode()
    assert 'value="refund"' in page


def test_the_list_is_paginated_by_fifty(client) -> None:
    member = logged_in(client)
    bot = BotFactory(organization=member.organization)
    ConversationFactory.create_batch(51, bot=bot)
    first = client.get("/dashboard/conversations/").content.decode()
    assert "Page 1 of 2" in first and "51 conversations" in first and first.count('id="conversation-') == 50
    assert client.get("/dashboard/conversations/?page=2").content.decode().count('id="conversation-') == 1


def test_another_organizations_conversation_answers_404(client) -> None:
    logged_in(client, "owner")
    theirs = ConversationFactory()
    assert client.get(f"/dashboard/conversations/{theirs.pk}/").status_code == 404


@pytest.mark.parametrize("role", ["owner", "admin", "agent", "viewer"])
def test_every_role_reads_conversations(client, role: str) -> None:
    member = logged_in(client, role)
    conversation = ConversationFactory(bot=BotFactory(organization=member.organization))
    assert client.get("/dashboard/conversations/").status_code == 200
    assert client.get(f"/dashboard/conversations/{conversation.pk}/").status_code == 200
    assert client.post(f"/dashboard/conversations/{conversation.pk}/").status_code == 405


def test_the_pages_need_a_login_and_an_organization(client) -> None:
    response = client.get("/dashboard/conversations/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/?next=")
    client.force_login(UserFactory())
    assert client.get("/dashboard/conversations/").status_code == 403
    assert client.get("/dashboard/conversations/1/").status_code == 403
