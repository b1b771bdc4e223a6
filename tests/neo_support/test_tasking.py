"""Task dispatch: in-process thread pool without Redis, Celery with it."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from bots.chat.tasks import close_idle_conversations
from bots.models import Conversation
from neo_support import tasking
from tests.factories import ConversationFactory


@pytest.mark.django_db(transaction=True)
def test_without_redis_a_task_runs_on_the_in_process_pool_after_commit(settings) -> None:
    settings.NEO_TASKS_IN_PROCESS = True
    conversation = ConversationFactory()
    with transaction.atomic():
        Conversation.objects.filter(pk=conversation.pk).update(last_activity_at=timezone.now() - timedelta(days=3))
        tasking.enqueue(close_idle_conversations.name)
        tasking.wait_for_in_process_tasks()
        conversation.refresh_from_db()
        assert conversation.status == "bot", "nothing may run before the transaction commits"

    tasking.wait_for_in_process_tasks(timeout=30)
    conversation.refresh_from_db()
    assert conversation.status == "resolved"


@pytest.mark.django_db(transaction=True)
def test_in_process_tasks_run_on_their_queues_pool_thread(settings, monkeypatch) -> None:
    settings.NEO_TASKS_IN_PROCESS = True
    seen: list[str] = []
    monkeypatch.setattr(
        "bots.chat.services.conversations_close_idle", lambda: seen.append(threading.current_thread().name) or (0, 0)
    )
    tasking.dispatch_now(close_idle_conversations.name)
    tasking.wait_for_in_process_tasks(timeout=30)
    assert len(seen) == 1 and seen[0].startswith("neo-default")


@pytest.mark.django_db(transaction=True)
def test_a_failing_in_process_task_is_logged_and_the_pool_lives_on(settings, monkeypatch, caplog) -> None:
    settings.NEO_TASKS_IN_PROCESS = True

    def explode() -> tuple[int, int]:
        raise RuntimeError("boom")

    monkeypatch.setattr("bots.chat.services.conversations_close_idle", explode)
    tasking.dispatch_now(close_idle_conversations.name)
    tasking.wait_for_in_process_tasks(timeout=30)
    assert "bots.tasks.close_idle_conversations failed" in caplog.text

    monkeypatch.setattr("bots.chat.services.conversations_close_idle", lambda: (0, 0))
    tasking.dispatch_now(close_idle_conversations.name)
    tasking.wait_for_in_process_tasks(timeout=30)


@pytest.mark.django_db(transaction=True)
def test_with_redis_a_task_is_sent_to_its_queue(settings, monkeypatch) -> None:
    settings.NEO_TASKS_IN_PROCESS = False
    sent: list[tuple[tuple[object, ...], dict[str, object]]] = []
    monkeypatch.setattr(close_idle_conversations, "apply_async", lambda args, kwargs: sent.append((args, kwargs)))
    with transaction.atomic():
        tasking.enqueue(close_idle_conversations.name)
        assert sent == []
    assert sent == [((), {})]
