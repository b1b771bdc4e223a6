"""Faults on the real stack: Postgres, Redis and Celery workers as separate processes.

A generation worker killed (SIGKILL) in the middle of a reply: the visitor's message is
kept, the stalled reply is failed visibly (`reply_interrupted`, ask again) rather than
left pending, asking again is answered by another worker, and the killed task delivered
again later changes nothing: no text is doubled and none is lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from asgiref.sync import async_to_sync

from bots.chat import event_log
from bots.chat.replies import replies_fail_stalled
from bots.chat.services import conversation_ask, conversation_start
from bots.chat.tasks import generate_reply
from bots.models import Message, MessageStatus
from neo_support.redis_client import get_redis
from retrieval.services.documents import document_create_from_text
from retrieval.services.ingestion import documents_ingest_all
from tests.conftest import ROOT, clean_env
from tests.e2e.test_worker_process import database_url
from tests.factories import BotFactory, KnowledgeBaseFactory
from tests.own_services import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

REFUNDS = "# Billing\n\n## Refunds\n\nRefunds reach your card within five working days."


@pytest.fixture
def start_worker(redis_url: str) -> Iterator[Callable[[], subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    env = clean_env(DATABASE_URL=database_url(), REDIS_URL=redis_url, NEO_MODEL="/nonexistent/model")

    def start() -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "neo_support", "worker", "-Q", "generation",
                "-n", f"fault-{uuid.uuid4().hex[:8]}@%h", "--pool", "threads", "--concurrency", "1",
                "--without-gossip", "--without-mingle", "--loglevel", "WARNING",
            ],
            cwd=ROOT, env=env,
        )  # fmt: skip
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.fixture
def bot(settings):  # type: ignore[no-untyped-def]
    settings.NEO_MODEL = "/nonexistent/model"  # extractive answers, in the workers too
    settings.NEO_TASKS_IN_PROCESS = False
    get_redis.cache_clear()
    knowledge_base = KnowledgeBaseFactory()
    documents_ingest_all(
        documents=[document_create_from_text(knowledge_base=knowledge_base, title="Billing", text=REFUNDS, queue=False)]
    )
    bot = BotFactory(organization=knowledge_base.organization, answer_threshold=0.0, handoff_threshold=0.0)
    bot.knowledge_bases.add(knowledge_base)
    return bot


def status_of(message: Message) -> str:
    return str(Message.objects.values_list("status", flat=True).get(pk=message.pk))


def test_a_generation_worker_killed_mid_reply_loses_nothing_and_doubles_nothing(bot, start_worker, settings) -> None:
    doomed = start_worker()
    conversation = conversation_start(bot=bot, visitor_id="visitor-fault")
    question, reply = conversation_ask(conversation=conversation, text="How long do refunds take?", client_id="q1")
    assert reply is not None

    # A fresh worker marks the reply streaming, then spends seconds loading the embedding model.
    wait_until(lambda: status_of(reply) == MessageStatus.STREAMING, 90, "the worker to start the reply", every=0.02)
    os.kill(doomed.pid, signal.SIGKILL)
    doomed.wait(timeout=30)
    assert status_of(reply) == MessageStatus.STREAMING, "the reply finished before the kill; nothing was tested"
    assert Message.objects.get(pk=question.pk).text == "How long do refunds take?"

    # Beat's check: once the reply has been still for NEO_REPLY_STALL_SECONDS it is failed, visibly.
    settings.NEO_REPLY_STALL_SECONDS = 1
    time.sleep(1.2)
    assert replies_fail_stalled() == [reply.pk]
    reply.refresh_from_db()
    assert (reply.status, reply.text) == (MessageStatus.FAILED, "")
    events = async_to_sync(event_log.read_after)(conversation.pk, "0-0") or []
    told = [e for e in events if e.get("message_id") == reply.pk and e["type"] in ("error", "done")]
    assert [(e["type"], e.get("code") or e.get("status")) for e in told[-2:]] == [
        ("error", "reply_interrupted"),
        ("done", "failed"),
    ]

    # The visitor asks again; another worker answers.
    start_worker()
    _, again = conversation_ask(conversation=conversation, text="How long do refunds take?", client_id="q2")
    assert again is not None
    wait_until(lambda: status_of(again) == MessageStatus.DONE, 120, "the second worker's answer", every=0.25)

    # The killed task, delivered again (after the broker's visibility timeout), changes nothing.
    assert generate_reply(reply.pk) == MessageStatus.FAILED
    transcript = list(conversation.messages.order_by("created_at", "pk").values_list("role", "status", "text"))
    assert [(role, status) for role, status, _ in transcript] == [
        ("visitor", "done"),
        ("bot", "failed"),
        ("visitor", "done"),
        ("bot", "done"),
    ]
    answer = transcript[-1][2]
    assert "five working days" in answer and answer.count("five working days") == 1
    assert transcript[1][2] == ""
