"""A fresh install in a real headless Chromium, against the whole ASGI app: the first
visitor is led from a dashboard page to /setup/, creates the organization, the owner, a
knowledge base from an uploaded Markdown file and a bot, and the bot's test chat answers
by quoting (no model on this server). The owner then starts a second organization from
the header and switches between the two, seeing only each one's bots and knowledge bases.

With NEO_SCREENSHOTS=1 it saves the setup page and the open switcher to docs/screenshots/."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from bots.models import AnswerMode, Bot
from neo_support.models import Membership, Organization, Role
from retrieval.models import Document
from tests.e2e.test_bot_page_browser import server  # noqa: F401 (the uvicorn fixture, reused)
from tests.e2e.test_main_flow_browser import favicon, shot
from tests.factories import BotFactory, KnowledgeBaseFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

REFUNDS = (
    "# Refunds\n\n## How long refunds take\n\n"
    "Refunds are paid back to the card you used and take five working days to arrive.\n"
)
PASSWORD = "a long enough passphrase 42"


def test_a_fresh_install_is_set_up_in_the_browser_and_the_owner_switches_organizations(
    server,  # noqa: F811
    page,
    tmp_path,
) -> None:
    assert not Organization.objects.exists()
    document = tmp_path / "refunds.md"
    document.write_text(REFUNDS)
    problems: list[str] = []
    origin = urlsplit(server).netloc
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on(
        "response",
        lambda response: (
            problems.append(f"{response.status}: {response.url}")
            if response.status >= 400 and not favicon(response.url)
            else None
        ),
    )
    page.on(
        "request",
        lambda request: (
            problems.append(f"off-site: {request.url}")
            if urlsplit(request.url).scheme in ("http", "https", "ws", "wss") and urlsplit(request.url).netloc != origin
            else None
        ),
    )
    page.set_viewport_size({"width": 1280, "height": 800})

    # Any dashboard page leads a first visitor to the setup page.
    page.goto(f"{server}/dashboard/knowledge-bases/")
    page.wait_for_url(f"{server}/setup/")
    assert page.locator("h1").inner_text() == "Set up Neo Support"
    page.fill("#id_organization_name", "Tallyho")
    page.fill("#id_owner-username", "kim")
    page.fill("#id_owner-email", "kim@tallyho.example")
    page.fill("#id_owner-password1", PASSWORD)
    page.fill("#id_owner-password2", PASSWORD)
    assert page.input_value("#id_knowledge_base_name") == "Help centre"
    page.set_input_files("#id_document", str(document))
    page.fill("#id_bot_name", "Tally")
    shot(page, "setup.png")
    page.click("button:text-is('Create the organization')")

    # The owner is signed in, on the new bot's page.
    page.wait_for_selector("h1:text-is('Tally')")
    bot = Bot.objects.get(name="Tally")
    assert page.url == f"{server}/dashboard/bots/{bot.pk}/"
    assert "Tallyho is ready, and you are its owner." in page.locator("main").inner_text()
    assert bot.answer_mode == AnswerMode.EXTRACTIVE
    owner = Membership.objects.get(role=Role.OWNER)
    assert (owner.user.username, owner.organization.name) == ("kim", "Tallyho")
    assert page.locator("#org-switcher summary").inner_text().strip().endswith("Tallyho")

    # The uploaded file becomes ready on the knowledge base's page, then the test chat quotes it.
    knowledge_base = Document.objects.get().knowledge_base
    page.goto(f"{server}/dashboard/knowledge-bases/{knowledge_base.pk}/")
    page.wait_for_selector("#documents td.status:text-is('Ready')", timeout=120_000)
    page.goto(f"{server}/dashboard/bots/{bot.pk}/")
    page.click("#open-test-chat:enabled")
    page.wait_for_selector("[data-neo-support] .panel:not([hidden])")
    page.fill("[data-neo-support] textarea", "How long do refunds take?")
    page.keyboard.press("Enter")
    page.wait_for_selector("[data-neo-support] .msg.bot .sources", timeout=120_000)
    answer = page.locator("[data-neo-support] .msg.bot").last
    assert "five working days" in answer.inner_text()

    # A second organization, started from the header's menu.
    page.click("#org-switcher summary")
    page.click("#org-switcher a:text-is('New organization')")
    page.fill("#id_name", "Beta Ltd")
    page.click("button:text-is('Create organization')")
    page.wait_for_selector("h1:text-is('Beta Ltd')")
    beta = Organization.objects.get(name="Beta Ltd")
    BotFactory(organization=beta, name="Beta helper")
    KnowledgeBaseFactory(organization=beta, name="Beta manuals")
    page.reload()
    main = page.locator("main").inner_text()
    assert "Beta helper" in main and "Beta manuals" in main
    assert "Tally" not in main and "Help centre" not in main

    # Switch back to Tallyho in the header: only its bots and knowledge bases show.
    page.click("#org-switcher summary")
    page.wait_for_selector("#org-switcher button[name=organization]:has-text('Tallyho')")
    shot(page, "organization-switcher.png")
    page.click("#org-switcher button[name=organization]:has-text('Tallyho')")
    page.wait_for_selector("h1:text-is('Tallyho')")
    main = page.locator("main").inner_text()
    assert "Tally" in main and "Help centre" in main
    assert "Beta helper" not in main and "Beta manuals" not in main
    page.click("header nav a:text-is('Knowledge bases')")
    page.wait_for_selector("h1:text-is('Knowledge bases')")
    main = page.locator("main").inner_text()
    assert "Help centre" in main and "Beta manuals" not in main

    # And to Beta again.
    page.click("#org-switcher summary")
    page.click("#org-switcher button[name=organization]:has-text('Beta Ltd')")
    page.wait_for_selector("h1:text-is('Beta Ltd')")
    assert page.locator("#org-switcher summary").inner_text().strip().endswith("Beta Ltd")
    page.click("header nav a:text-is('Knowledge bases')")
    page.wait_for_selector("h1:text-is('Knowledge bases')")
    main = page.locator("main").inner_text()
    assert "Beta manuals" in main and "Help centre" not in main

    assert problems == []
