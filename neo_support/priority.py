"""CPU priority of bulk work: interactive work (a visitor's search, a reply, an agent's
page) gets the cores first, bulk work (ingest, reindex, site import, tuning) what is left.

In the embedded default the threads of the bulk queues' pools are niced
(neo_support.tasking); a Celery worker that consumes only bulk queues nices itself
(neo_support.celery). Pure Python: no Django.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from pathlib import Path

logger = logging.getLogger(__name__)

BULK_QUEUES = frozenset({"indexing", "training"})
# Added to the nice value of bulk threads: at +10 a busy bulk thread gets about a tenth
# of a core that an interactive thread also wants (Linux CFS weights 1024 against 110).
BULK_NICE = 10
_BASE_NICE = os.getpriority(os.PRIO_PROCESS, 0) if hasattr(os, "getpriority") else 0


def thread_priority_set(bulk: bool) -> None:
    """Give the calling thread the CPU priority of its work: BULK_NICE below the process
    for bulk, the process's own for interactive. Threads (and torch's OpenMP helpers)
    started by this thread later inherit it. A pool thread inherits the nice value of
    whichever thread started it, so an interactive one started from a bulk thread is
    raised back where the OS allows (raising needs privilege; it is skipped otherwise)."""
    if not hasattr(os, "setpriority"):
        return
    thread = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, thread, _BASE_NICE + BULK_NICE if bulk else _BASE_NICE)
    except OSError as error:
        logger.debug("could not set the CPU priority of thread %s: %s", thread, error)


def process_priority_lower() -> None:
    """Lower the CPU priority of this whole process (a worker that consumes only bulk
    queues) by BULK_NICE: every thread it has now, the threads those start later, and
    its autogroup, since Linux weighs processes in separate sessions by their autogroup's
    nice value rather than their own."""
    if not hasattr(os, "setpriority"):
        return
    tasks = Path("/proc/self/task")
    threads = [int(name) for name in os.listdir(tasks)] if tasks.is_dir() else [0]
    for thread in threads:
        try:
            os.setpriority(os.PRIO_PROCESS, thread, _BASE_NICE + BULK_NICE)
        except OSError as error:
            logger.debug("could not lower the CPU priority of thread %s: %s", thread, error)
    # No autogroups here, or not ours to change: the threads' nice value still counts.
    with contextlib.suppress(OSError):
        Path("/proc/self/autogroup").write_text(str(BULK_NICE))
