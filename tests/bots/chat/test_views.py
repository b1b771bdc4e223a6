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
    ChunkFactory,
    ConversationFactory,
    DocumentFactory,
    FeedbackFactory,
    KnowledgeBaseFactory,
    MembershipFactory,
    MessageFactory,
    OrganizationFactory,
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
    document = DocumentFactory(
        knowledge_base=KnowledgeBaseFactory(organization=member.organization), title="Refund policy"
    )
    foreign_document = DocumentFactory(title="Someone else's doc", source_url="https://theirs.example.com/secret")
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
    # Citations are shown in words; an uploaded document with no public help centre has
    # no link, a deleted one keeps the link it was saved with, another organization's
    # document is not read.
    assert "[1] Refund policy — Refunds</li>" in page
    assert '<a href="https://shop.example.com/shipping" target="_blank" rel="noopener noreferrer">Shipping</a>' in page
    assert "[3] Elsewhere</li>" in page and "theirs.example.com" not in page
    assert "confidence 0.83" in page and "first token 123 ms" in page and "total 988 ms" in page
    assert "👎" in page and "Too slow!" in page


def test_text_is_escaped_in_the_transcript(client) -> None:
    member = logged_in(client)
    conversation = ConversationFactory(bot=BotFactory(organization=member.organization))
    MessageFactory(conversation=conversation, text="<script>alert(1)</script>")
    page = client.get(f"/dashboard/conversations/{conversation.pk}/").content.decode()
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_bot_and_agent_text_render_as_the_widget_shows_it_and_stay_escaped(client) -> None:
    # Regression: transcripts showed the reply's raw Markdown ("**full refund**") to agents.
    member = logged_in(client)
    conversation = ConversationFactory(bot=BotFactory(organization=member.organization))
    MessageFactory(conversation=conversation, role="visitor", text="Can I get a **refund**? <b>now</b>")
    MessageFactory(
        conversation=conversation,
        role="bot",
        text="You get a **full refund**.\n\n- Open *Orders*\n- Press `Return` <script>alert(1)</script>",
    )
    MessageFactory(conversation=conversation, role="agent", text="Done, see [the guide](https://help.example.com/r).")
    page = client.get(f"/dashboard/conversations/{conversation.pk}/").content.decode()
    assert "You get a <strong>full refund</strong>." in page and "**full refund**" not in page
    assert "<ul><li>Open <em>Orders</em></li><li>Press <code>Return</code> &lt;script&gt;" in page
    assert "<script>alert(1)</script>" not in page
    guide = '<a href="https://help.example.com/r" target="_blank" rel="noopener noreferrer nofollow">the guide</a>'
    assert guide in page
    # What a visitor typed is shown as typed, escaped.
    assert "Can I get a **refund**? &lt;b&gt;now&lt;/b&gt;" in page


def test_citations_show_their_heading_in_words_and_link_where_the_document_is_published(client) -> None:
    member = logged_in(client)
    organization = member.organization
    published = KnowledgeBaseFactory(organization=organization, public_base_url="https://help.example.com/")
    private = KnowledgeBaseFactory(organization=organization)
    from_web = DocumentFactory(
        knowledge_base=private, source_type="url", title="Account help", source_url="https://example.com/account"
    )
    chunk = ChunkFactory(document=from_web, heading_path=["Signing in", "I lost my phone, how do I sign in?"])
    uploaded = DocumentFactory(knowledge_base=published, source_type="file", title="Billing")
    unpublished = DocumentFactory(knowledge_base=private, source_type="file", title="Internal notes")
    conversation = ConversationFactory(bot=BotFactory(organization=organization))
    MessageFactory(
        conversation=conversation,
        role="bot",
        text="Use a backup code [1]. Refunds take five days [2]. Ask us [3].",
        citations=[  # saved before citations carried these links
            {
                "number": 1,
                "chunk_id": chunk.pk,
                "document_id": from_web.pk,
                "title": "Account help",
                "location": "#i-lost-my-phone-how-do-i-sign-in",
                "url": "https://example.com/account",
            },
            {"number": 2, "chunk_id": 0, "document_id": uploaded.pk, "title": "Billing", "location": "#refunds"},
            {
                "number": 3,
                "chunk_id": 0,
                "document_id": unpublished.pk,
                "title": "Internal notes",
                "location": "page 2",
            },
        ],
    )
    page = client.get(f"/dashboard/conversations/{conversation.pk}/").content.decode()
    assert "#i-lost-my-phone-how-do-i-sign-in</" not in page  # no raw anchors shown
    assert (
        '[1] <a href="https://example.com/account#i-lost-my-phone-how-do-i-sign-in" target="_blank" '
        'rel="noopener noreferrer">Account help — I lost my phone, how do I sign in?</a>' in page
    )
    assert (
        '[2] <a href="https://help.example.com/#refunds" target="_blank" rel="noopener noreferrer">'
        "Billing — Refunds</a>" in page
    )
    assert "[3] Internal notes — page 2</li>" in page
    # The markers in the text link the same way.
    assert '<a class="cite" href="https://help.example.com/#refunds" title="Billing — Refunds"' in page
    assert '<span class="cite" title="Internal notes — page 2">3</span>' in page


def test_a_malformed_stored_citation_does_not_break_the_page(client) -> None:
    member = logged_in(client)
    conversation = ConversationFactory(bot=BotFactory(organization=member.organization))
    citations = [{"number": 1, "document_id": [1], "chunk_id": {"a": 1}, "title": "Odd", "url": "javascript:x"}, "x"]
    MessageFactory(conversation=conversation, role="bot", text="Hm [1].", citations=citations)
    page = client.get(f"/dashboard/conversations/{conversation.pk}/").content.decode()
    assert "[1] Odd</li>" in page and "javascript:" not in page


def test_a_thumbs_down_comment_is_shown_beside_its_reply(client) -> None:
    member = logged_in(client)
    conversation = ConversationFactory(bot=BotFactory(organization=member.organization))
    helpful = MessageFactory(conversation=conversation, role="bot", text="Five working days [1].")
    unhelpful = MessageFactory(conversation=conversation, role="bot", text="Set up an authenticator app.")
    FeedbackFactory(message=helpful, rating=1)
    FeedbackFactory(message=unhelpful, rating=-1, comment="I <i>lost</i> my phone, this doesn't help")
    page = client.get(f"/dashboard/conversations/{conversation.pk}/").content.decode()
    reply = page[page.index(f'id="message-{unhelpful.pk}"') :]
    reply = reply[: reply.index("</article>")]
    assert "👎" in reply and "Thumbs down" in reply
    assert "“I &lt;i&gt;lost&lt;/i&gt; my phone, this doesn&#x27;t help”" in reply
    first = page[page.index(f'id="message-{helpful.pk}"') : page.index(f'id="message-{unhelpful.pk}"')]
    assert "👍" in first and "lost" not in first


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
    OrganizationFactory()  # someone else's: with none at all, the dashboard leads to /setup/
    response = client.get("/dashboard/conversations/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/?next=")
    client.force_login(UserFactory())
    assert client.get("/dashboard/conversations/").status_code == 403
    assert client.get("/dashboard/conversations/1/").status_code == 403
