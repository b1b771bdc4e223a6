"""Markup in every field that reaches a page, rendered in a real Chromium: bot name and
welcome message, knowledge base and document titles and text, visitor messages, ticket
subject and requester, feedback comments, in the widget and on every dashboard page.
Nothing executes and no element is made from it: the payload shows as text.

The pages' Content-Security-Policy would stop inline handlers anyway; these checks look
at the DOM, so they hold for the escaping itself."""

from __future__ import annotations

import pytest

from bots.chat.services import conversation_ask, conversation_start
from bots.models import Feedback, Message
from neo_support.tasking import wait_for_in_process_tasks
from retrieval.services.documents import document_create_from_text
from retrieval.services.ingestion import documents_ingest_all
from tests.e2e.test_bot_page_browser import server  # noqa: F401 (the uvicorn fixture, reused)
from tests.factories import BotFactory, KnowledgeBaseFactory, MembershipFactory, TicketFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MARK = "xss-probe"
# Short enough for a 200-character name with a word in front; the link probe goes in text.
PAYLOAD = (
    f"<img src=x class={MARK} onerror=window.__xss=1>"
    f"<svg class={MARK} onload=window.__xss=1></svg>"
    f"<script>window.__xss=1</script>"
)
LINK = f'<a class="{MARK}" href="javascript:window.__xss=1">link</a> [link](javascript:window.__xss=1)'
INJECTED = f".{MARK}, img[src='x'], svg[onload], a[href^='javascript:']"


@pytest.fixture
def hostile_tenant(server):  # type: ignore[no-untyped-def]  # noqa: F811
    owner = MembershipFactory(user__username="mal", role="owner", organization__name=f"Org {PAYLOAD}")
    knowledge_base = KnowledgeBaseFactory(organization=owner.organization, name=f"KB {PAYLOAD}")
    text = f"# Refunds {PAYLOAD}\n\nRefunds take five working days. {PAYLOAD} {LINK}\n"
    documents_ingest_all(
        documents=[
            document_create_from_text(knowledge_base=knowledge_base, title=f"Refunds {PAYLOAD}", text=text, queue=False)
        ]
    )
    bot = BotFactory(
        organization=owner.organization,
        name=f"Bot {PAYLOAD}",
        welcome_message=f"Hello {PAYLOAD}",
        starter_questions=[f"Refunds {PAYLOAD}"],
        answer_mode="extractive",
        answer_threshold=0.0,
        handoff_threshold=0.0,
        allowed_origins=[server],
    )
    bot.knowledge_bases.add(knowledge_base)
    conversation = conversation_start(bot=bot, visitor_id="visitor-xss")
    _, reply = conversation_ask(conversation=conversation, text=f"How long do refunds take? {PAYLOAD} {LINK}")
    wait_for_in_process_tasks(timeout=120)
    assert reply is not None
    Message.objects.filter(pk=reply.pk).update(moderation_action="flag")  # so the moderation log lists it
    Feedback.objects.create(message_id=reply.pk, rating=-1, comment=f"Bad {PAYLOAD} {LINK}")
    ticket = TicketFactory(
        conversation=conversation_start(bot=bot, visitor_id="mail-xss", channel="email"),
        subject=f"Help {PAYLOAD}",
        requester_name=f"Eve {PAYLOAD}",
    )
    Message.objects.create(conversation=ticket.conversation, role="visitor", text=f"Body {PAYLOAD} {LINK}")
    return {"bot": bot, "knowledge_base": knowledge_base, "conversation": conversation, "ticket": ticket}


def assert_inert(page, where: str) -> None:  # type: ignore[no-untyped-def]
    assert page.evaluate("window.__xss") is None, f"a payload ran on {where}"
    assert page.locator(INJECTED).count() == 0, f"markup from data became elements on {where}"


def test_markup_in_data_never_runs_or_becomes_elements(server, hostile_tenant, page) -> None:  # noqa: F811
    bot, ticket = hostile_tenant["bot"], hostile_tenant["ticket"]
    page.goto(f"{server}/accounts/login/")
    page.fill("#id_login", "mal")
    page.fill("#id_password", "correct horse battery staple")
    page.click("button[type=submit]")
    page.wait_for_url(f"{server}/dashboard/")

    pages = [
        "/dashboard/",
        f"/dashboard/bots/{bot.pk}/",
        "/dashboard/knowledge-bases/",
        f"/dashboard/knowledge-bases/{hostile_tenant['knowledge_base'].pk}/",
        f"/dashboard/knowledge-bases/{hostile_tenant['knowledge_base'].pk}/playground/?q=refunds",
        "/dashboard/conversations/",
        f"/dashboard/conversations/{hostile_tenant['conversation'].pk}/",
        "/dashboard/inbox/",
        f"/dashboard/inbox/{ticket.pk}/",
        "/dashboard/moderation/",
        "/dashboard/analytics/",
        "/dashboard/team/",
        "/dashboard/settings/",
    ]
    for path in pages:
        response = page.goto(f"{server}{path}")
        assert response is not None and response.status == 200, path
        page.wait_for_load_state("networkidle")
        assert_inert(page, path)
    page.goto(f"{server}/dashboard/conversations/{hostile_tenant['conversation'].pk}/")
    assert "<img src=x" in page.inner_text("main")  # shown as the text it is

    # The widget: the bot's name, welcome, starter question, and an answer citing the document.
    page.goto(f"{server}/demo/{bot.public_key}/")
    page.click("[data-neo-support] .launcher")
    page.wait_for_selector("[data-neo-support] .panel:not([hidden])")
    assert "<img src=x" in page.locator("[data-neo-support] .msg.bot").first.inner_text()
    page.fill("[data-neo-support] textarea", "How long do refunds take?")
    page.keyboard.press("Enter")
    page.wait_for_selector("[data-neo-support] .msg.bot .sources", timeout=60_000)
    assert "five working days" in page.locator("[data-neo-support] .msg.bot").last.inner_text()
    widget = page.locator("[data-neo-support]")
    assert widget.locator(INJECTED).count() == 0
    hrefs = widget.locator("a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    assert not [href for href in hrefs if href and href.lower().startswith("javascript:")]
    assert_inert(page, "the widget")
