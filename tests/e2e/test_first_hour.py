"""A new company's first hour, in a real headless Chromium against the whole ASGI app,
from the pages a person starts on. No model weights are on this server, so answers are
quoted.

An owner builds a knowledge base from a PDF and a help page (the PDF shows its real
title), gives it its public address, creates a bot, sets its theme and tries it in the
test chat; the theme reaches a plain page of the company's site that embeds only the
snippet copied from the bot page; a visitor there gets a quoted answer at once, rates it
down with a comment and asks for a person; an agent answers from the inbox and appears
in the widget by name; the transcript shows rendered Markdown, readable citation links
and the comment; analytics leave the test chat out; a knowledge base is renamed and
deleted.

With NEO_SCREENSHOTS=1 it saves the themed widget, the widget after an agent joined and
the transcript to docs/screenshots/.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from bots.models import Conversation, Feedback
from retrieval.models import KnowledgeBase
from tests.e2e.test_bot_page_browser import server  # noqa: F401 (the uvicorn fixture, reused)
from tests.e2e.test_widget_browser import Shop, launcher_look, shop  # noqa: F401 (fixture)
from tests.e2e.test_worker_process import wait_for
from tests.factories import MembershipFactory
from tests.retrieval.test_pdf_titles import fpdf_document

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
SAVE_SCREENSHOTS = os.environ.get("NEO_SCREENSHOTS") == "1"
W = "[data-neo-support]"
PASSWORD = "correct horse battery staple"
REFUNDS_PAGE = (
    "# Refunds\n\n"
    "## How long do refunds take\n\n"
    "Refunds are paid back to the card you used. They reach your card within five working days "
    "of the return arriving at our warehouse.\n\n"
    "## Returning an item\n\n"
    "To return an item:\n\n"
    "1. Open Orders in your account.\n"
    "2. Choose the item and press Return.\n"
    "3. Print the label and drop the parcel at any post office.\n"
)
QUESTION = "How long do refunds take to reach my card?"


def shot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    if SAVE_SCREENSHOTS:
        page.screenshot(path=str(SCREENSHOTS / name))


def sign_in(page, base: str, username: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{base}/accounts/login/")
    page.fill("#id_login", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/dashboard/")


def test_a_new_company_goes_from_documents_to_a_themed_widget_a_person_and_analytics(
    server,  # noqa: F811
    shop: Shop,  # noqa: F811
    page,
    tmp_path: Path,
) -> None:
    owner = MembershipFactory(
        role="owner", user__username="kim", organization__name="Tallyho", organization__slug="tallyho"
    )
    MembershipFactory(
        organization=owner.organization, role="agent",
        user__username="sam", user__first_name="Sam", user__last_name="Rivera",
    )  # fmt: skip
    pdf = tmp_path / "scan_0042.pdf"
    pdf.write_bytes(
        fpdf_document(
            (20, "Shipping and delivery"),
            (11, "Orders leave our warehouse within two working days. Tracking links arrive by email."),
            title="Tallyho Shipping Guide",
        )
    )
    help_page = tmp_path / "refunds.md"
    help_page.write_text(REFUNDS_PAGE)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.set_viewport_size({"width": 1280, "height": 860})
    sign_in(page, server, "kim")

    # A knowledge base from a PDF and a help page; the PDF shows its real title.
    page.click("header nav a:text-is('Knowledge bases')")
    page.fill("#kb-name", "Help centre")
    page.click("button:text-is('Create')")
    page.wait_for_selector("h1:text-is('Help centre')")
    knowledge_base_url = page.url
    page.set_input_files("#files", [str(pdf), str(help_page)])
    page.click("#add-documents button[type=submit]")
    page.wait_for_selector("text=2 document(s) added; processing has started.")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#documents td.status')].every(td => td.textContent.trim() === 'Ready')",
        timeout=120_000,
    )
    titles = page.locator("#documents td.title").all_inner_texts()
    assert sorted(titles) == ["Refunds", "Tallyho Shipping Guide"]
    assert page.locator("#index-version").inner_text() != "0"  # updated live, no reload

    # Its public address, so citations of uploaded documents link to the published page.
    page.fill("#settings input[name=public_base_url]", "https://help.tallyho.example/refunds")
    page.click("#settings button:text-is('Save settings')")
    page.wait_for_selector("h1:text-is('Help centre')")
    assert KnowledgeBase.objects.get(name="Help centre").public_base_url == "https://help.tallyho.example/refunds"

    # A bot: with no model on this server it starts out quoting the documents.
    page.click("header nav a:text-is('Overview')")
    page.click("text=New bot")
    page.fill("#id_name", "Tally")
    assert page.locator("#id_answer_mode").input_value() == "extractive"
    page.get_by_label("Help centre").check()
    page.click("button:text-is('Create bot')")
    page.wait_for_selector("h1:text-is('Tally')")
    bot_url = page.url

    # Theme and the company's site, saved on the bot page.
    page.fill("#theme input[name=accent]", "#0a7d32")
    page.select_option("#theme select[name=position]", "left")
    page.fill("#theme input[name=title]", "Tallyho help")
    page.click("#theme button:text-is('Save')")
    page.wait_for_selector("#theme .notice")
    page.fill("#origins textarea[name=allowed_origins]", shop.origin)
    page.click("#origins button:text-is('Save')")
    page.wait_for_selector("#origins .notice")
    snippet = page.locator("#embed-code").inner_text()
    assert "data-color" not in snippet and "data-position" not in snippet

    # The owner tries the test chat first: the real widget, with the saved theme.
    page.click("#open-test-chat:enabled")
    page.wait_for_selector(f"{W} .panel:not([hidden])")
    assert page.locator(f"{W} header h2").inner_text() == "Tallyho help"
    page.fill(f"{W} textarea", "Where is my parcel?")
    page.keyboard.press("Enter")
    page.wait_for_selector(f"{W} .msg.bot .rate", timeout=60_000)

    # The company's own site: a plain page with nothing of ours but the copied snippet.
    path = "/help.html"
    shop.pages[path] = f"<!doctype html><html lang='en'><title>Tallyho</title><h1>Tallyho</h1>{snippet}</html>"
    visitor = page.context.new_page()
    visitor.on("pageerror", lambda error: errors.append(str(error)))
    visitor.set_viewport_size({"width": 1280, "height": 860})
    visitor.goto(shop.origin + path)
    assert launcher_look(visitor) == {"colour": "rgb(10, 125, 50)", "side": "left"}
    visitor.click(f"{W} .launcher")
    visitor.wait_for_selector(f"{W} .panel:not([hidden])")
    assert visitor.locator(f"{W} header h2").inner_text() == "Tallyho help"

    # A question gets a quoted, cited answer at once (no model, no 50 s of retries).
    visitor.fill(f"{W} textarea", QUESTION)
    asked = time.monotonic()
    visitor.keyboard.press("Enter")
    visitor.wait_for_selector(f"{W} .msg.bot .rate", timeout=30_000)
    answered_in = time.monotonic() - asked
    assert answered_in < 2.0, f"the quoted answer took {answered_in:.1f} s"
    answer = visitor.locator(f"{W} .msg.bot").last
    assert "five working days" in answer.inner_text()
    shot(visitor, "widget-theme.png")

    # Thumbs down with a comment.
    answer.locator(".rate button[aria-label='Not helpful']").click()
    assert answer.locator(".thanks").inner_text() == "Thanks for the feedback."
    answer.locator(".comment textarea").fill("I paid with PayPal, not a card.")
    answer.locator(".comment button").click()
    wait_for(lambda: Feedback.objects.filter(comment="I paid with PayPal, not a card.").exists(), 10, "the comment")

    # A person, please: the agent answers from the inbox and shows up by name.
    human = visitor.locator(f"{W} button.human:not(.email)")
    human.click()
    visitor.wait_for_selector(f"{W} .msg.system:text('A person will take over this conversation.')")
    assert human.is_hidden()
    conversation = Conversation.objects.get(bot__name="Tally", is_test=False)
    agent = page.context.browser.new_context().new_page()  # the agent's own browser session
    sign_in(agent, server, "sam")
    agent.click("header nav a:text-is('Inbox')")
    agent.click(f"a[href='/dashboard/inbox/{conversation.ticket.pk}/']")
    agent.fill("#reply-text", "Hi, I'm Sam. A PayPal refund reaches your **PayPal balance** within a day.")
    agent.click("text=Send")
    agent.wait_for_selector("text=Reply sent.")
    said = visitor.locator(f"{W} .msg.agent")
    said.wait_for(timeout=30_000)
    assert said.locator(".who strong").inner_text() == "Sam Rivera"
    assert said.locator(".person").inner_text() == "person"
    assert said.locator("strong:text-is('PayPal balance')").count() == 1  # rendered, not **raw**
    sources = answer.locator(".sources").inner_text()
    assert "Refunds — How long do refunds take" in sources and "#" not in sources
    shot(visitor, "widget-agent.png")
    agent.click("text=Hand back to the bot")
    visitor.wait_for_selector(f"{W} .msg.system:text('You are talking to the assistant again.')", timeout=30_000)
    assert human.is_visible()

    # The transcript reads as people read it.
    page.bring_to_front()
    page.click("header nav a:text-is('Conversations')")
    page.click(f"a[href='/dashboard/conversations/{conversation.pk}/']")
    page.wait_for_selector("h2:text-is('Transcript')")
    transcript = page.locator("section.transcript")
    assert transcript.locator("article.role-agent header strong").inner_text() == "Sam Rivera"
    assert transcript.locator("article.role-agent .text strong").inner_text() == "PayPal balance"
    assert "**" not in transcript.locator("article.role-agent").inner_text()
    citation = transcript.locator("article.role-bot ol.citations a").first
    assert citation.inner_text() == "Refunds — How long do refunds take"
    assert citation.get_attribute("href") == "https://help.tallyho.example/refunds#how-long-do-refunds-take"
    assert "Thumbs down: “I paid with PayPal, not a card.”" in transcript.locator(".feedback").inner_text()
    shot(page, "transcript.png")

    # Analytics count the site's conversation, not the test chat (unless asked to).
    page.click("header nav a:text-is('Analytics')")
    figure = page.locator(".figure", has=page.locator("h2:text-is('Conversations')")).locator(".value")
    assert figure.inner_text() == "1"
    page.get_by_label("Include test chats").check()
    page.click("form.filters button[type=submit]")
    page.wait_for_url("**include_test=on**")
    assert figure.inner_text() == "2"

    # A knowledge base is renamed and deleted from its page.
    page.goto(knowledge_base_url)
    page.fill("#settings input[name=name]", "Help centre (2026)")
    page.click("#settings button:text-is('Save settings')")
    page.wait_for_selector("h1:text-is('Help centre (2026)')")
    assert "Tally" in page.locator("#delete").inner_text()  # says which bots use it
    page.fill("#delete input[name=confirm_name]", "Help centre (2026)")
    page.click("#delete button.danger")
    page.wait_for_selector("h1:text-is('Knowledge bases')")
    assert not KnowledgeBase.objects.filter(organization=owner.organization).exists()
    page.goto(bot_url)
    assert page.locator("h1").inner_text() == "Tally"  # the bot keeps working without it

    assert errors == []
