"""Redis and Postgres restarted under a running stack: the web server (uvicorn) and
Celery workers as separate processes, a widget-like client on a real socket, and
services of our own (tests/own_services.py), since restarting the shared ones would
break the rest of the suite."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bots.models import Message
from retrieval.services.documents import document_create_from_text
from retrieval.services.ingestion import documents_ingest_all
from tests.conftest import clean_env, run_manage
from tests.e2e.test_widget_browser import as_read
from tests.e2e.test_worker_process import database_url
from tests.factories import BotFactory, KnowledgeBaseFactory
from tests.own_services import OwnPostgres, OwnRedis, Processes, Visitor, http_get, wait_until

pytestmark = pytest.mark.slow

REFUNDS = "# Billing\n\n## Refunds\n\nRefunds reach your card within five working days."
QUESTION = "How long do refunds take?"
GENEROUS_LIMITS = {
    "NEO_RATE_CONNECTIONS_PER_IP": "10000/minute",
    "NEO_RATE_MESSAGES_PER_IP": "10000/minute",
    "NEO_RATE_MESSAGES_PER_VISITOR": "10000/minute",
}


def replies_of(visitor: Visitor, reply_id: int, kind: str) -> list[dict]:  # type: ignore[type-arg]
    return [e for e in visitor.events if e["type"] == kind and e.get("message_id") == reply_id]


def assert_streamed_once(visitor: Visitor, reply_id: int) -> None:
    """Every delta of the reply arrived exactly once, in order, and spells its final text."""
    deltas = replies_of(visitor, reply_id, "delta")
    assert [d["seq"] for d in deltas] == list(range(len(deltas))), "a delta was lost or repeated"
    (done,) = replies_of(visitor, reply_id, "done")
    assert "".join(d["text"] for d in deltas).strip() == done["text"].strip()
    assert done["text"] == Message.objects.get(pk=reply_id).text


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[OwnRedis]:
    directory = tmp_path / "redis"
    directory.mkdir()
    server = OwnRedis(directory)
    server.start()
    yield server
    server.stop()


@pytest.mark.django_db(transaction=True)
def test_redis_restart_mid_conversation_loses_no_question_and_no_queued_task(
    redis_server: OwnRedis, settings, tmp_path: Path
) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.NEO_MODEL = "/nonexistent/model"
    knowledge_base = KnowledgeBaseFactory()
    documents_ingest_all(
        documents=[document_create_from_text(knowledge_base=knowledge_base, title="Billing", text=REFUNDS, queue=False)]
    )
    bot = BotFactory(organization=knowledge_base.organization, answer_threshold=0.0, handoff_threshold=0.0)
    bot.knowledge_bases.add(knowledge_base)

    env = clean_env(
        DATABASE_URL=database_url(), REDIS_URL=redis_server.url, NEO_MODEL="/nonexistent/model",
        MEDIA_ROOT=str(settings.MEDIA_ROOT), **GENEROUS_LIMITS,
    )  # fmt: skip
    stack = Processes(env, tmp_path)
    try:
        stack.web()
        worker = stack.worker()
        visitor = Visitor(stack.base, bot.public_key)
        visitor.connect()
        _, first = visitor.ask(QUESTION, "q1")
        assert first["status"] == "done" and "five working days" in first["text"]

        # While Redis is down a question is refused, clearly, and nothing is stored for it.
        time.sleep(1)  # the worker acknowledges the finished task (a crash mid-ack can kill Celery: docs/operations.md)
        redis_server.crash()
        visitor.send({"type": "message", "client_id": "q-down", "text": "Can I get a refund to PayPal?"})
        refused = visitor.wait_for(lambda e: e["type"] == "error", 60)
        assert refused["code"] == "unavailable" and refused["details"]["client_id"] == "q-down"
        assert not Message.objects.filter(client_id="q-down").exists()
        # Back up, the widget sends it again and it is answered.
        redis_server.start()
        visitor.send({"type": "message", "client_id": "q-down", "text": "Can I get a refund to PayPal?"})
        resent = visitor.wait_for(lambda e: e["type"] == "ack" and e.get("client_id") == "q-down", 60)
        visitor.wait_for(lambda e: e["type"] == "done" and e.get("message_id") == resent["reply_id"], 120)
        assert worker.poll() is None, "the worker reconnected to Redis by itself"

        # No worker now: the next question's task waits in Redis's queue, and Redis crashes.
        worker.terminate()
        worker.wait(timeout=60)
        visitor.send({"type": "message", "client_id": "q2", "text": "And refunds to a card?"})
        queued = visitor.wait_for(lambda e: e["type"] == "ack" and e.get("client_id") == "q2", 30)
        time.sleep(1.5)  # the append-only file is written every second
        redis_server.crash()
        redis_server.start()
        # The task survived; a worker started after the crash answers it.
        stack.worker()
        second = visitor.wait_for(lambda e: e["type"] == "done" and e.get("message_id") == queued["reply_id"], 120)
        assert second["status"] == "done" and "five working days" in second["text"]

        # The conversation goes on.
        _, third = visitor.ask(QUESTION, "q3")
        assert third["status"] == "done"

        transcript = list(
            Message.objects.filter(conversation_id=queued["conversation_id"])
            .order_by("created_at", "pk")
            .values_list("role", "status")
        )
        assert transcript == [("visitor", "done"), ("bot", "done")] * 4
        for reply_id in (first["message_id"], resent["reply_id"], queued["reply_id"], third["message_id"]):
            assert_streamed_once(visitor, reply_id)
    finally:
        stack.stop_all()


def shell(env: dict[str, str], code: str) -> str:
    done = run_manage("shell", "-c", code, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]  # after anything else the command printed


TRANSCRIPT = (
    "import json; from bots.models import Message; "
    "print(json.dumps(list(Message.objects.order_by('created_at', 'pk').values_list('role', 'status', 'text'))))"
)


def test_postgres_restart_fails_requests_cleanly_and_recovers(redis_server: OwnRedis, tmp_path: Path) -> None:
    """Everything on a Postgres of its own (the shared one holds the suite's database),
    stopped with `immediate` (no checkpoint: recovery replays the WAL) under a running
    web server and worker."""
    postgres = OwnPostgres()
    env = clean_env(
        DATABASE_URL=postgres.url, REDIS_URL=redis_server.url, NEO_VAR_DIR=str(tmp_path / "var"),
        NEO_MODEL="/nonexistent/model", **GENEROUS_LIMITS,
    )  # fmt: skip
    stack = Processes(env, tmp_path)
    try:
        postgres.create()
        assert run_manage("migrate", "--noinput", env=env, timeout=300).returncode == 0
        demo = run_manage("load_demo", "--port", str(stack.port), env=env, timeout=300)
        assert demo.returncode == 0, demo.stderr
        bot_key = shell(env, "from bots.models import Bot; print(Bot.objects.get().public_key)")
        api_key = shell(
            env,
            "from neo_support.models import Organization; from neo_support.services import api_key_create; "
            "print(api_key_create(organization=Organization.objects.get(), name='ops')[1])",
        )
        stack.web()
        stack.worker("generation,default,indexing,training")
        visitor = Visitor(stack.base, bot_key)
        visitor.connect()
        _, first = visitor.ask("How do I export my invoices?", "q1")
        assert first["status"] == "done"
        before = json.loads(shell(env, TRANSCRIPT))

        postgres.crash()

        # Down: every kind of request fails fast and clearly; nothing hangs, nothing is a 500.
        status, body = http_get(f"{stack.base}/healthz")
        assert status == 503 and json.loads(body)["checks"]["database"]["ok"] is False
        status, body = http_get(f"{stack.base}/demo/")
        assert status == 503 and b"Briefly unavailable" in body
        status, body = http_get(f"{stack.base}/api/bots/", {"Authorization": f"Bearer {api_key}"})
        assert status == 503 and json.loads(body)["error"]["code"] == "unavailable"
        visitor.send({"type": "message", "client_id": "q-down", "text": "Can I pay by invoice?"})
        refused = visitor.wait_for(lambda e: e["type"] == "error", 60)
        assert refused["code"] == "unavailable" and refused["details"]["client_id"] == "q-down"
        newcomer = Visitor(stack.base, bot_key)
        with pytest.raises(AssertionError, match="'code': 'unavailable'"):
            newcomer.connect()  # an `unavailable` event instead of `welcome`, then close 1013

        postgres.start()

        # Back: the same socket, the same worker, the question sent again is answered.
        wait_until(lambda: http_get(f"{stack.base}/healthz")[0] == 200, 60, "healthz to recover")
        visitor.send({"type": "message", "client_id": "q-down", "text": "Can I pay by invoice?"})
        resent = visitor.wait_for(lambda e: e["type"] == "ack" and e.get("client_id") == "q-down", 60)
        again = visitor.wait_for(lambda e: e["type"] == "done" and e.get("message_id") == resent["reply_id"], 120)
        assert again["status"] == "done"
        status, body = http_get(f"{stack.base}/api/bots/", {"Authorization": f"Bearer {api_key}"})
        assert status == 200 and json.loads(body)["count"] == 1
        newcomer.connect()

        after = json.loads(shell(env, TRANSCRIPT))
        assert after[: len(before)] == before, "what was stored before the crash is intact"
        assert [(role, status) for role, status, _ in after[len(before) :]] == [("visitor", "done"), ("bot", "done")]
        assert after[len(before)][2] == "Can I pay by invoice?"
    finally:
        stack.stop_all()
        postgres.stop()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_widget_in_chromium_keeps_a_question_asked_while_redis_is_down(
    redis_server: OwnRedis, settings, tmp_path: Path, page
) -> None:  # type: ignore[no-untyped-def]
    """The visitor asks while Redis is down: the widget shows that the chat is briefly
    unavailable, keeps the question, sends it again by itself, and the answer appears
    once Redis is back."""
    from django.core.management import call_command

    from bots.models import Bot

    settings.MEDIA_ROOT = tmp_path / "media"
    call_command("load_demo", verbosity=0)
    bot = Bot.objects.get(organization__slug="tallyho-demo")
    env = clean_env(
        DATABASE_URL=database_url(), REDIS_URL=redis_server.url, MEDIA_ROOT=str(settings.MEDIA_ROOT),
        NEO_VAR_DIR=str(tmp_path / "var"), NEO_MODEL="/nonexistent/model", **GENEROUS_LIMITS,
    )  # fmt: skip
    stack = Processes(env, tmp_path)
    try:
        stack.web()
        stack.worker()
        widget = "[data-neo-support]"
        page.goto(f"{stack.base}/demo/{bot.public_key}/")
        page.click(f"{widget} .launcher")
        page.wait_for_selector(f"{widget} .panel:not([hidden])")
        page.fill(f"{widget} textarea", "How do I turn on two-factor authentication?")
        page.keyboard.press("Enter")
        page.wait_for_selector(f"{widget} .msg.bot .sources", timeout=120_000)
        page.wait_for_timeout(1000)  # the worker acknowledges the finished task

        redis_server.crash()
        page.fill(f"{widget} textarea", "How do I get a refund?")
        page.keyboard.press("Enter")
        page.wait_for_selector(f"{widget} .msg.system:has-text('briefly unavailable')", timeout=60_000)
        assert page.locator(f"{widget} .msg.visitor").last.inner_text() == "How do I get a refund?"

        redis_server.start()
        page.locator(f"{widget} .msg.bot .sources").nth(1).wait_for(timeout=120_000)
        asked = list(Message.objects.filter(conversation__bot=bot, role="visitor").values_list("text", flat=True))
        assert asked == ["How do I turn on two-factor authentication?", "How do I get a refund?"], "each stored once"
        replies = list(Message.objects.filter(conversation__bot=bot, role="bot").values_list("status", "text"))
        assert [status for status, _ in replies] == ["done", "done"]
        shown = page.locator(f"{widget} .msg.bot").last.inner_text()
        assert as_read(replies[-1][1]).split("\n")[0][:40] in shown
        assert page.locator(f"{widget} .msg.visitor").count() == 2
    finally:
        stack.stop_all()
