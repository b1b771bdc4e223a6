"""Every task names one of our queues (a task on the default route would be a silent misroute),
and every name the source enqueues is a registered task."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from django.conf import settings

from neo_support.celery import app
from neo_support.tasking import TASK_QUEUES, UnknownTaskError, enqueue, task

ROOT = Path(__file__).resolve().parents[2]
DISPATCHERS = {"enqueue", "enqueue_for_model", "dispatch_now", "registered_task"}

PROJECT_PREFIXES = ("neo_support.", "bots.", "retrieval.", "workers.")


def project_tasks() -> list[str]:
    app.loader.import_default_modules()
    return [name for name in app.tasks if name.startswith(PROJECT_PREFIXES)]


def test_the_project_registers_tasks() -> None:
    assert "bots.tasks.close_idle_conversations" in project_tasks()


def test_every_task_names_a_known_queue_and_is_routed_there() -> None:
    for name in project_tasks():
        assert TASK_QUEUES.get(name) in settings.CELERY_QUEUES, f"{name} must be declared with @task(queue=...)"
        assert app.amqp.router.route({}, name)["queue"].name == TASK_QUEUES[name]


def test_declaring_a_task_on_an_unknown_queue_fails() -> None:
    with pytest.raises(ValueError, match="Unknown queue 'gpu'"):
        task(queue="gpu")


def test_the_three_queues_are_declared_with_late_acknowledgement() -> None:
    assert [queue.name for queue in app.conf.task_queues] == ["generation", "indexing", "default", "training"]
    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True


def test_every_beat_entry_runs_a_registered_task() -> None:
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        assert entry["task"] in project_tasks()


def enqueued_names() -> set[str]:
    """Every task name the source enqueues, dispatches or looks up by name."""
    found: set[str] = set()
    for package in ("neo_support", "bots", "retrieval", "workers"):
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if (
                    isinstance(node, ast.Call)
                    and getattr(node.func, "id", getattr(node.func, "attr", None)) in DISPATCHERS
                    and node.args
                    and isinstance(node.args[0], ast.Constant)
                    and isinstance(node.args[0].value, str)
                ):
                    found.add(node.args[0].value)
    return found


def test_every_name_the_source_enqueues_is_a_registered_task() -> None:
    names = enqueued_names()
    assert "workers.tasks.generate_reply" in names and "retrieval.tasks.ingest_document" in names
    assert sorted(names - set(project_tasks())) == []


def test_enqueueing_an_unknown_name_fails_at_once() -> None:
    with pytest.raises(UnknownTaskError, match="No task is registered as 'bots.tasks.nothing'"):
        enqueue("bots.tasks.nothing")


def test_task_modules_do_not_import_each_other_and_services_import_no_task_module() -> None:
    for package in ("neo_support", "bots", "retrieval", "workers"):
        for path in (ROOT / package).rglob("*.py"):
            text = path.read_text()
            assert not re.search(r"^\s*from [\w.]*tasks import|^\s*import [\w.]*\.tasks\b", text, re.M), path
