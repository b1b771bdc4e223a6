"""Every task names one of our queues (a task on the default route would be a silent misroute)."""

from __future__ import annotations

import pytest
from django.conf import settings

from neo_support.celery import app
from neo_support.tasking import TASK_QUEUES, task

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
