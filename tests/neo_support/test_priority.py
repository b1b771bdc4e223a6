"""Bulk work runs at a lower CPU priority than interactive work (issue 23: a big upload
stalled every chat), in-process and in a worker that consumes only bulk queues."""

from __future__ import annotations

import os
import sys

import pytest

from neo_support import tasking
from neo_support.priority import BULK_NICE, BULK_QUEUES
from tests.conftest import clean_env, run_python

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice values are Linux's")


def thread_nice() -> int:
    return os.getpriority(os.PRIO_PROCESS, 0)


def test_the_bulk_queues_are_ingest_and_training_and_nothing_people_wait_for() -> None:
    assert frozenset({"indexing", "training"}) == BULK_QUEUES


def test_in_process_a_bulk_queues_threads_run_below_an_interactive_queues() -> None:
    bulk = tasking._pool_for("indexing").submit(thread_nice).result(timeout=30)
    interactive = tasking._pool_for("generation").submit(thread_nice).result(timeout=30)
    assert bulk == interactive + BULK_NICE
    assert thread_nice() == interactive  # the caller's own thread is left alone


def test_a_bulk_worker_lowers_every_thread_of_its_process() -> None:
    code = (
        "import os, threading, time\n"
        "from neo_support.priority import process_priority_lower\n"
        "ready = threading.Event(); stop = threading.Event()\n"
        "def other(): ready.set(); stop.wait(30)\n"
        "thread = threading.Thread(target=other); thread.start(); ready.wait(30)\n"
        "before = os.getpriority(os.PRIO_PROCESS, 0)\n"
        "process_priority_lower()\n"
        "later = []\n"
        "spawned = threading.Thread(target=lambda: later.append(os.getpriority(os.PRIO_PROCESS, 0)))\n"
        "spawned.start(); spawned.join()\n"
        "def nice_of(t):\n"
        "    try: return os.getpriority(os.PRIO_PROCESS, int(t)) - before\n"
        "    except ProcessLookupError: return None  # a thread that ended after the listing\n"
        "nices = {n for t in os.listdir('/proc/self/task') if (n := nice_of(t)) is not None}\n"
        "stop.set(); thread.join()\n"
        "print(sorted(nices), later[0] - before)\n"
    )
    result = run_python(code, clean_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[0] == f"[{BULK_NICE}] {BULK_NICE}"


@pytest.mark.parametrize(
    "command",
    [
        "ingest",
        "reindex",
        "evaluate_retrieval",
        "evaluate_answers",
        "tune_bot",
        "evaluate_moderation",
        "evaluate_triage",
        "train_moderation",
    ],
)
def test_a_bulk_command_run_from_the_command_line_lowers_its_process(command: str, tmp_path) -> None:
    code = (
        "import os, django, contextlib\n"
        "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'neo_support.settings'); django.setup()\n"
        "from django.core.management import execute_from_command_line\n"
        "before = os.getpriority(os.PRIO_PROCESS, 0)\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(open(os.devnull, 'w')):\n"
        f"    execute_from_command_line(['manage.py', '{command}', '--help'])\n"
        "print(before, os.getpriority(os.PRIO_PROCESS, 0))\n"
    )
    result = run_python(code, clean_env(NEO_VAR_DIR=str(tmp_path), HF_HUB_OFFLINE="1"))
    assert result.returncode == 0, result.stderr
    before, after = map(int, result.stdout.split())
    assert after == min(19, before + BULK_NICE)
