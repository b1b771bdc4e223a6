"""A real Celery worker process against Redis and the test database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from bots.chat.tasks import close_idle_conversations
from bots.models import Conversation
from neo_support import tasking
from neo_support.redis_client import get_redis
from tests.conftest import ROOT, clean_env, database_url
from tests.factories import ConversationFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


@pytest.fixture
def worker(redis_url: str) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    name = f"test-{uuid.uuid4().hex[:8]}"
    env = clean_env(DATABASE_URL=database_url(), REDIS_URL=redis_url, NEO_HEARTBEAT_SECONDS="1")
    process = subprocess.Popen(
        [
            sys.executable, "-m", "celery", "-A", "neo_support", "worker",
            "-Q", "generation,indexing,default,training", "-n", f"{name}@%h",
            "--pool", "threads", "--concurrency", "2", "--without-gossip", "--without-mingle", "--loglevel", "INFO",
        ],
        cwd=ROOT, env=env,
    )  # fmt: skip
    hostname = f"{name}@{os.uname().nodename}"
    try:
        yield process, hostname
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_worker_beats_runs_queued_tasks_and_leaves_cleanly(client, settings, worker) -> None:
    process, hostname = worker
    settings.NEO_TASKS_IN_PROCESS = False
    get_redis.cache_clear()

    def live_queues() -> dict[str, list[str]]:
        workers = client.get("/healthz").json()["checks"]["workers"]
        return {q: hosts for q, hosts in workers.get("queues", {}).items() if any(hostname in h for h in hosts)}

    assert set(wait_for(live_queues, 60, "the worker's heartbeat")) == {"generation", "indexing", "default", "training"}
    assert client.get("/healthz").status_code == 200

    conversation = ConversationFactory()
    Conversation.objects.filter(pk=conversation.pk).update(last_activity_at=timezone.now() - timedelta(days=2))
    tasking.dispatch_now(close_idle_conversations.name)

    def resolved() -> bool:
        conversation.refresh_from_db()
        return conversation.status == "resolved"

    wait_for(resolved, 30, "the worker to run the task")

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    assert live_queues() == {}, "a stopped worker removes its heartbeat"
