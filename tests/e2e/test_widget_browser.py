"""The widget in real headless Chromium, on the demo page, against the real stack: an
ASGI server and a Celery worker as separate processes, Postgres and Redis."""

from __future__ import annotations

import http.server
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.core.management import call_command

from bots.models import Bot, Message
from retrieval.services.documents import document_create_from_text
from retrieval.services.ingestion import documents_ingest_all
from tests.conftest import ROOT, clean_env, free_port
from tests.e2e.test_bot_page_browser import serving
from tests.e2e.test_worker_process import database_url, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SHOTS = Path(os.environ.get("NEO_SCREENSHOT_DIR", "")) if os.environ.get("NEO_SCREENSHOT_DIR") else None
HOSTILE = (
    "# Security notes\n\n## Hostile markup\n\nThe word xylophone appears in this page. "
    '<img src=x onerror="window.__xss=1"> <script>window.__xss=2</script> '
    "[click me](javascript:window.__xss=3) and xylophone again."
)


@dataclass
class Stack:
    url: str
    bot: Bot
    env: dict[str, str]
    worker: subprocess.Popen[bytes] | None = None

    def start_worker(self) -> None:
        self.worker = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "neo_support", "worker",
                "-Q", "generation,indexing,default,training",
                "--pool", "threads", "--concurrency", "2", "--without-gossip", "--without-mingle",
                "--loglevel", "WARNING",
            ],
            cwd=ROOT, env=self.env,
        )  # fmt: skip


def stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def stack(redis_url, settings, tmp_path) -> Iterator[Stack]:
    media = tmp_path / "media"
    settings.MEDIA_ROOT = media
    call_command("load_demo", verbosity=0)
    bot = Bot.objects.get(organization__slug="tallyho-demo")
    document = document_create_from_text(
        knowledge_base=bot.knowledge_bases.get(), title="Security notes", text=HOSTILE, queue=False
    )
    documents_ingest_all(documents=[document])
    env = clean_env(
        DATABASE_URL=database_url(), REDIS_URL=redis_url, MEDIA_ROOT=str(media), NEO_VAR_DIR=str(tmp_path / "var"),
        NEO_MODEL=str(tmp_path / "no-model"),  # extractive answers: what a fresh install without weights gives
        NEO_HEARTBEAT_SECONDS="1",
    )  # fmt: skip
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "neo_support.asgi:application", "--port", str(port),
         "--log-level", "warning"],
        cwd=ROOT, env=env,
    )  # fmt: skip
    running = Stack(url=f"http://127.0.0.1:{port}", bot=bot, env=env)
    try:
        wait_for(lambda: _answers(f"{running.url}/healthz/live"), 60, "the ASGI server")
        yield running
    finally:
        stop(server)
        stop(running.worker)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def open_widget(page, stack: Stack) -> None:
    page.goto(f"{stack.url}/demo/{stack.bot.public_key}/")
    page.click("[data-neo-support] .launcher")
    page.wait_for_selector("[data-neo-support] .panel:not([hidden])")


def ask(page, text: str) -> None:
    page.fill("[data-neo-support] textarea", text)
    page.keyboard.press("Enter")


def as_read(text: str) -> str:
    """A reply's stored Markdown as the widget shows it: emphasis and code marks rendered away."""
    return re.sub(r"\*\*|\*|`", "", text)


def test_a_visitor_asks_sees_the_streamed_cited_answer_and_finds_it_after_a_reload(stack, page) -> None:
    stack.start_worker()
    frames: list[dict] = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda data: frames.append(json.loads(data))))
    page.set_viewport_size({"width": 1280, "height": 800})
    open_widget(page, stack)
    assert page.locator("[data-neo-support] .msg.bot").first.inner_text().startswith("Hi! I'm Tallyho's assistant")
    ask(page, "How do I turn on two-factor authentication?")

    answer = page.locator("[data-neo-support] .msg.bot").last
    page.wait_for_selector("[data-neo-support] .msg.bot .sources", timeout=60_000)
    assert "two-factor" in answer.inner_text().lower()
    assert answer.locator(".cite").count() >= 1
    assert page.locator("[data-neo-support] .sources li").first.inner_text()
    assert [f for f in frames if f["type"] == "delta"], "the answer arrived in streamed pieces"
    if SHOTS:
        page.screenshot(path=str(SHOTS / "widget-desktop.png"))

    page.reload()
    page.wait_for_selector("[data-neo-support] .launcher")
    page.click("[data-neo-support] .launcher")
    page.wait_for_selector("[data-neo-support] .msg.visitor")
    assert page.locator("[data-neo-support] .msg.visitor").inner_text() == "How do I turn on two-factor authentication?"
    page.wait_for_selector("[data-neo-support] .msg.bot .sources")

    # Keyboard: Escape closes the window and gives focus back to the launcher.
    page.keyboard.press("Escape")
    assert page.locator("[data-neo-support] .panel").is_hidden()


def test_a_reply_written_while_the_visitor_was_offline_completes_when_they_return(stack, page) -> None:
    acks: list[dict] = []

    def on_socket(ws) -> None:  # type: ignore[no-untyped-def]
        ws.on("framereceived", lambda data: acks.append(json.loads(data)) if '"ack"' in data else None)

    page.on("websocket", on_socket)
    open_widget(page, stack)
    ask(page, "How do I get a refund?")
    for _ in range(300):  # Playwright delivers websocket events only while it is called
        if acks:
            break
        page.wait_for_timeout(100)
    assert acks, "the question was not acknowledged"
    page.context.set_offline(True)
    stack.start_worker()  # the reply is written while the visitor is away
    wait_for(lambda: Message.objects.filter(role="bot", status="done").exists(), 60, "the reply")
    done = Message.objects.get(role="bot", status="done")
    page.context.set_offline(False)
    page.wait_for_selector("[data-neo-support] .msg.bot .sources", timeout=60_000)
    shown = page.locator("[data-neo-support] .msg.bot").last.inner_text()
    assert as_read(done.text).split("\n")[0][:40] in shown


def test_markup_in_questions_and_documents_is_shown_as_text_and_never_runs(stack, page) -> None:
    stack.start_worker()
    open_widget(page, stack)
    question = '<img src=x onerror="window.__xss=1"> what about the xylophone?'
    ask(page, question)
    page.wait_for_selector("[data-neo-support] .msg.bot .sources", timeout=60_000)
    assert page.locator("[data-neo-support] .msg.visitor").inner_text() == question
    time.sleep(0.5)
    assert page.evaluate("window.__xss") is None
    widget = page.locator("[data-neo-support] .log")
    assert widget.locator("img, script").count() == 0
    hrefs = widget.locator("a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    assert not [href for href in hrefs if href and not href.startswith(("http://", "https://"))]
    assert "xylophone" in page.locator("[data-neo-support] .msg.bot").last.inner_text()


def test_on_a_phone_the_widget_fills_the_screen(stack, page) -> None:
    stack.start_worker()
    page.set_viewport_size({"width": 390, "height": 760})
    open_widget(page, stack)
    box = page.locator("[data-neo-support] .panel").bounding_box()
    assert box is not None and box["width"] == 390 and box["height"] == 760
    ask(page, "What does the Team plan cost?")
    page.wait_for_selector("[data-neo-support] .msg.bot .sources", timeout=60_000)
    if SHOTS:
        page.screenshot(path=str(SHOTS / "widget-phone.png"))


# The widget on a customer's own page (another origin), against the ASGI application served
# by uvicorn in this process (as on the bot page's browser test): no Redis needed.

W = "[data-neo-support]"


@pytest.fixture
def live(in_process_tasks, settings) -> Iterator[str]:
    with serving(settings) as url:
        yield url


@pytest.fixture
def shop() -> Iterator[Shop]:
    """A customer's own site on another origin (another port of this machine): plain pages
    with nothing of ours but the snippet."""
    pages: dict[str, str] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the standard library's name
            body = pages.get(self.path, "").encode()
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    site = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=site.serve_forever, daemon=True).start()
    try:
        yield Shop(origin=f"http://127.0.0.1:{site.server_address[1]}", pages=pages)
    finally:
        site.shutdown()
        site.server_close()


@dataclass
class Shop:
    origin: str
    pages: dict[str, str]

    def page_with(self, server: str, bot: Bot, attributes: str = "") -> str:
        """A page embedding `bot` with the snippet (and any extra attributes); its address."""
        path = f"/page{len(self.pages)}.html"
        self.pages[path] = (
            "<!doctype html><html lang='en'><head><title>Shop</title></head><body><h1>Shop</h1>"
            f'<script src="{server}/widget.js" data-bot-key="{bot.public_key}"{attributes} async></script>'
            "</body></html>"
        )
        return self.origin + path


def launcher_look(page) -> dict[str, str]:  # type: ignore[no-untyped-def]
    page.wait_for_selector(f"{W} .launcher", state="visible")
    launcher = page.locator(f"{W} .launcher")
    box = launcher.bounding_box()
    width = page.viewport_size["width"]
    return {
        "colour": launcher.evaluate("b => getComputedStyle(b).backgroundColor"),
        "side": "left" if box["x"] + box["width"] / 2 < width / 2 else "right",
    }


def themed_bot(shop: Shop, **fields: object) -> Bot:
    from tests.factories import BotFactory

    return BotFactory(  # type: ignore[no-untyped-call, return-value]
        allowed_origins=[shop.origin], theme={"accent": "#0a7d32", "position": "left", "title": "Garden help"}, **fields
    )


def test_the_widget_takes_its_theme_from_the_bots_saved_settings(live, shop, page) -> None:
    bot = themed_bot(shop)
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(shop.page_with(live, bot))
    assert launcher_look(page) == {"colour": "rgb(10, 125, 50)", "side": "left"}
    page.click(f"{W} .launcher")
    page.wait_for_selector(f"{W} .panel:not([hidden])")
    assert page.locator(f"{W} header h2").inner_text() == "Garden help"
    header = page.locator(f"{W} header").evaluate("h => getComputedStyle(h).backgroundColor")
    assert header == "rgb(10, 125, 50)"
    panel = page.locator(f"{W} .panel").bounding_box()
    assert panel is not None and panel["x"] < 100  # the window opens on the left too

    # A new theme reaches the site without touching the snippet...
    bot.theme = {"accent": "#aa0000", "position": "right", "title": ""}
    bot.save(update_fields=["theme"])
    # ...though a reload that cannot reach the server shows the cached one at once.
    page.route(f"{live}/chat/**", lambda route: route.abort())
    page.route_web_socket("**/ws/chat/**", lambda ws: None)  # a socket that never answers
    page.reload()
    assert launcher_look(page) == {"colour": "rgb(10, 125, 50)", "side": "left"}

    later = page.context.new_page()  # the same visitor on another page of the site
    later.set_viewport_size({"width": 1280, "height": 800})
    later.goto(page.url)
    later.wait_for_function(
        "() => getComputedStyle(document.querySelector('[data-neo-support]').shadowRoot"
        ".querySelector('.launcher')).backgroundColor === 'rgb(170, 0, 0)'"
    )
    assert launcher_look(later)["side"] == "right"
    later.click(f"{W} .launcher")
    assert later.locator(f"{W} header h2").inner_text() == bot.name  # a blank title: the bot's name

    # On a phone the window still fills the screen, whichever side it opens on.
    later.set_viewport_size({"width": 390, "height": 760})
    box = later.locator(f"{W} .panel").bounding_box()
    assert box is not None and (box["x"], box["width"], box["height"]) == (0, 390, 760)


def test_data_attributes_on_the_script_tag_override_the_theme(live, shop, page) -> None:
    bot = themed_bot(shop)
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(shop.page_with(live, bot, ' data-color="#ff0000"'))
    page.wait_for_function(  # the saved position arrives; the colour stays the page's own
        "() => document.querySelector('[data-neo-support]').getAttribute('data-position') === 'left'"
    )
    assert launcher_look(page) == {"colour": "rgb(255, 0, 0)", "side": "left"}
    page.click(f"{W} .launcher")
    assert page.locator(f"{W} header h2").inner_text() == "Garden help"


ROSES = "# Roses\n\n## Pruning\n\nPrune roses in late winter, just above an outward bud."


def test_a_visitor_rates_an_answer_talks_to_a_person_and_gets_the_bot_back(live, shop, page) -> None:
    from bots.models import Conversation, Feedback
    from tests.factories import KnowledgeBaseFactory, MembershipFactory

    agent = MembershipFactory(
        role="agent", user__username="sam@tallyho.example", user__first_name="Sam", user__last_name="Rivera"
    )
    knowledge_base = KnowledgeBaseFactory(organization=agent.organization)
    documents_ingest_all(
        documents=[document_create_from_text(knowledge_base=knowledge_base, title="Roses", text=ROSES, queue=False)]
    )
    bot = themed_bot(shop, organization=agent.organization, answer_threshold=0.0, handoff_threshold=0.0)
    bot.knowledge_bases.add(knowledge_base)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(shop.page_with(live, bot))
    page.click(f"{W} .launcher")
    ask(page, "When should I prune roses?")
    page.wait_for_selector(f"{W} .msg.bot .rate", timeout=120_000)

    # Thumbs down: thanks, and a box for what was wrong, sent as a second feedback frame.
    page.click(f"{W} .msg.bot .rate button[aria-label='Not helpful']")
    assert page.locator(f"{W} .msg.bot .thanks").inner_text() == "Thanks for the feedback."
    page.fill(f"{W} .msg.bot .comment textarea", "I wanted to know about summer pruning.")
    page.click(f"{W} .msg.bot .comment button")
    page.wait_for_selector(f"{W} .msg.bot .comment", state="detached")
    wait_for(lambda: Feedback.objects.filter(comment__startswith="I wanted").exists(), 10, "the comment")
    assert list(Feedback.objects.values_list("rating", "comment")) == [(-1, "I wanted to know about summer pruning.")]

    # Talk to a person: the button goes while one is wanted or holds the chat.
    human = page.locator(f"{W} button.human:not(.email)")
    human.click()
    page.wait_for_selector(f"{W} .msg.system:text('A person will take over this conversation.')")
    assert human.is_hidden()
    conversation = Conversation.objects.get(bot=bot)

    # The agent answers from the inbox, in a tab of their own.
    inbox = page.context.new_page()
    inbox.goto(f"{live}/accounts/login/")
    inbox.fill("#id_login", "sam@tallyho.example")
    inbox.fill("#id_password", "correct horse battery staple")
    inbox.click("button[type=submit]")
    inbox.wait_for_url(f"{live}/dashboard/")
    inbox.goto(f"{live}/dashboard/inbox/{conversation.ticket.pk}/")
    inbox.fill("#reply-text", "Hi, I'm Sam. Summer pruning is light: dead heads only.")
    inbox.click("text=Send")
    inbox.wait_for_selector("text=Reply sent.")

    said = page.locator(f"{W} .msg.agent")
    said.wait_for(timeout=30_000)
    assert said.locator(".who strong").inner_text() == "Sam Rivera"
    assert said.locator(".person").inner_text() == "person"
    assert "Summer pruning is light" in said.inner_text() and "@" not in said.inner_text()
    assert page.locator(f"{W} .msg.system:text('Sam Rivera joined the chat.')").count() == 1
    assert human.is_hidden()

    inbox.click("text=Hand back to the bot")
    inbox.wait_for_selector("text=The chat is back with the bot")
    page.wait_for_selector(f"{W} .msg.system:text('You are talking to the assistant again.')", timeout=30_000)
    assert human.is_visible()
    conversation.refresh_from_db()
    assert conversation.status == "bot"

    # After a reload the person is still named, from the conversation's history.
    page.reload()
    page.click(f"{W} .launcher")
    page.wait_for_selector(f"{W} .msg.agent .who")
    assert page.locator(f"{W} .msg.agent .who strong").inner_text() == "Sam Rivera"
    assert page.locator(f"{W} button.human:not(.email)").is_visible()
    assert errors == []
