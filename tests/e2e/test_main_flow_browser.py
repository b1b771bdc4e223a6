"""A new customer's first session in a real headless Chromium, against the whole ASGI app:
sign in, create a knowledge base and a bot, upload a document and watch it become ready,
ask the bot in the test chat, and find the conversation in analytics and conversations.

With NEO_SCREENSHOTS=1 the flow also saves the main pages to docs/screenshots/."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from bots.models import Bot
from tests.e2e.test_bot_page_browser import server  # noqa: F401 (the uvicorn fixture, reused)
from tests.factories import MembershipFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
SAVE_SCREENSHOTS = os.environ.get("NEO_SCREENSHOTS") == "1"
REFUNDS = (
    "# Refunds\n\n## How long refunds take\n\n"
    "Refunds are paid back to the card you used and take five working days to arrive.\n"
)
QUESTION = "How long do refunds take?"


@pytest.fixture
def model_not_loaded(server, settings) -> Iterator[None]:  # noqa: F811
    """The default model name, never loaded (the bot answers extractively), so the pages
    show a fresh server rather than the server fixture's made-up path and its load error."""
    from workers.generation.loading import holder

    settings.NEO_MODEL = "EleutherAI/gpt-neo-125M"
    holder.reset()
    yield
    holder.reset()


def favicon(url: str) -> bool:
    # Chromium asks every site for /favicon.ico; the app has none and its 404 is no failure.
    return url.endswith("/favicon.ico")


def shot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    if SAVE_SCREENSHOTS:
        page.screenshot(path=str(SCREENSHOTS / name), full_page=True)


def test_a_new_customer_signs_in_builds_a_bot_asks_it_and_finds_the_conversation_in_analytics(
    server,  # noqa: F811
    model_not_loaded,
    page,
    tmp_path,
) -> None:
    MembershipFactory(
        user__username="kim", user__email="kim@tallyho.example", role="owner",
        organization__name="Tallyho", organization__slug="tallyho",
    )  # fmt: skip
    document = tmp_path / "refunds.md"
    document.write_text(REFUNDS)
    problems: list[str] = []  # console errors, failed or off-site requests, error responses
    origin = urlsplit(server).netloc

    def on_console(message) -> None:  # type: ignore[no-untyped-def]
        if message.type == "error" and not favicon(message.location["url"]):
            problems.append(f"console: {message.text} ({message.location['url']})")

    def on_request(request) -> None:  # type: ignore[no-untyped-def]
        url = urlsplit(request.url)
        if url.scheme in ("http", "https", "ws", "wss") and url.netloc != origin:
            problems.append(f"off-site: {request.method} {request.url}")

    def on_response(response) -> None:  # type: ignore[no-untyped-def]
        if response.status >= 400 and not favicon(response.url):
            problems.append(f"{response.status}: {response.request.method} {response.url}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("request", on_request)
    page.on("requestfailed", lambda request: problems.append(f"failed: {request.method} {request.url}"))
    page.on("response", on_response)
    page.set_viewport_size({"width": 1280, "height": 800})
    page.emulate_media(reduced_motion="reduce")  # charts drawn at once, without animation

    page.goto(f"{server}/accounts/login/")
    page.fill("#id_login", "kim")
    page.fill("#id_password", "correct horse battery staple")
    page.click("button[type=submit]")
    page.wait_for_url(f"{server}/dashboard/")

    page.click("header nav a:text-is('Knowledge bases')")
    page.fill("#kb-name", "Help centre")
    page.click("button:text-is('Create')")
    page.wait_for_selector("h1:text-is('Help centre')")
    knowledge_base_url = page.url

    page.click("header nav a:text-is('Overview')")
    page.click("text=New bot")
    page.fill("#id_name", "Tally")
    page.fill("#id_instructions", "You are Tally, Tallyho's support assistant.")
    page.get_by_label("Help centre").check()
    page.select_option("#id_answer_mode", "extractive")  # no model weights on this server
    page.click("button:text-is('Create bot')")
    page.wait_for_selector("h1:text-is('Tally')")
    bot = Bot.objects.get(name="Tally")
    bot_url = page.url
    assert bot_url == f"{server}/dashboard/bots/{bot.pk}/"
    assert "knowledge bases: Help centre" in page.locator("main").inner_text()

    page.goto(knowledge_base_url)
    page.set_input_files("#files", str(document))
    page.click("#add-documents button[type=submit]")
    page.wait_for_selector("text=1 document(s) added; processing has started.")
    # progress.js updates the row in place; the page is not reloaded.
    page.evaluate("window.__notReloaded = true")
    page.wait_for_selector("#documents td.status:text-is('Ready')", timeout=120_000)
    assert page.evaluate("window.__notReloaded") is True
    assert page.locator("#documents td.title").inner_text() == "Refunds"
    assert int(page.locator("#documents td.chunks").inner_text()) >= 1
    shot(page, "knowledge-base.png")

    page.goto(bot_url)
    page.click("#open-test-chat:enabled")
    page.wait_for_selector("[data-neo-support] .panel:not([hidden])")
    page.fill("[data-neo-support] textarea", QUESTION)
    page.keyboard.press("Enter")
    page.wait_for_selector("[data-neo-support] .msg.bot .sources", timeout=120_000)
    answer = page.locator("[data-neo-support] .msg.bot").last
    assert "five working days" in answer.inner_text()
    assert "Refunds" in answer.locator(".sources").inner_text()
    shot(page, "bot.png")

    page.click("header nav a:text-is('Analytics')")
    page.wait_for_selector("h1:text-is('Analytics')")
    conversations_card = page.locator(".figure", has=page.locator("h2:text-is('Conversations')"))
    assert conversations_card.locator(".value").inner_text() == "0"  # the test chat is left out by default
    page.get_by_label("Include test chats").check()
    page.locator("form", has=page.get_by_label("Include test chats")).locator("button[type=submit]").click()
    page.wait_for_url("**include_test=on**")
    assert conversations_card.locator(".value").inner_text() == "1"
    assert QUESTION in page.locator("table.analytics-questions").inner_text()
    page.wait_for_function("window.Chart && Chart.getChart(document.getElementById('chart-daily'))")
    shot(page, "analytics.png")

    page.click("header nav a:text-is('Conversations')")
    page.wait_for_selector("h1:text-is('Conversations')")
    rows = page.locator("table.conversations tbody tr")
    assert rows.count() == 1 and "Tally" in rows.first.inner_text()
    shot(page, "conversations.png")
    rows.first.get_by_role("link").first.click()
    page.wait_for_selector("h2:text-is('Transcript')")
    transcript = page.locator("section.transcript")
    assert QUESTION in transcript.locator("article.role-visitor").inner_text()
    assert "five working days" in transcript.locator("article.role-bot").inner_text()
    shot(page, "conversation.png")

    page.click("header nav a:text-is('Overview')")
    page.wait_for_selector("h1:text-is('Tallyho')")
    assert page.get_by_role("cell", name="Tally").is_visible()
    assert "1 conversation so far" in page.locator("main").inner_text()
    shot(page, "overview.png")

    for link, heading, name in [
        ("Team", "Team", "team.png"),
        ("API keys", "API keys", "api-keys.png"),
        ("Webhooks", "Webhooks", "webhooks.png"),
        ("Settings", "Settings", "settings.png"),
    ]:
        page.click(f"header nav a:text-is('{link}')")
        page.wait_for_selector(f"h1:has-text('{heading}')")
        shot(page, name)

    page.click("header nav a:text-is('API')")
    page.wait_for_selector(".swagger-ui .opblock", timeout=30_000)
    assert "Neo Support API" in page.locator(".swagger-ui .info").inner_text()
    shot(page, "api-docs.png")

    assert problems == []
