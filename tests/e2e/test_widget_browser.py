"""The widget in real headless Chromium, on the demo page, against the real stack: an
ASGI server and a Celery worker as separate processes, Postgres and Redis."""

from __future__ import annotations

import json
import os
import subprocess
import sys
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
    assert done.text.split("\n")[0][:40] in shown


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
