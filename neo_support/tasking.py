"""Dispatch of Celery tasks, the same in both runtime modes.

With REDIS_URL set a task goes to its queue on the broker. Without it (the
embedded default) the very same task runs in this process, on a thread pool
per queue, so a slow generation never holds up indexing or email.
Either way it is sent only once the current transaction commits, so the
task never looks for a row that is not there yet.

Tasks are enqueued by their registered name (`enqueue("retrieval.tasks.sync_index", 7)`),
so a service never imports a task module and a task module, which imports its services,
is never imported back (tests/test_layers.py). The task modules are listed in
CELERY_IMPORTS and loaded on the first dispatch in any process.

In-process, the threads of bulk queues (neo_support.priority.BULK_QUEUES: ingest,
reindex, site import, tuning) run at a lower CPU priority than the rest.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from functools import partial
from typing import Any

from celery import Task, current_app, shared_task
from django.conf import settings
from django.db import close_old_connections, connections, transaction
from kombu.exceptions import OperationalError as KombuOperationalError
from redis.exceptions import RedisError

from neo_support.model_queues import DEFAULT_QUEUE, generation_queue
from neo_support.priority import BULK_QUEUES, thread_priority_set

logger = logging.getLogger(__name__)

# Task name -> queue, filled by `@task(queue=...)`; Celery routes through `route_task`.
TASK_QUEUES: dict[str, str] = {}
_pools: dict[str, ThreadPoolExecutor] = {}
_pending: set[Future[Any]] = set()
_lock = threading.Lock()


def task(*, queue: str, **options: Any) -> Callable[[Callable[..., Any]], Task]:
    """Declare a Celery task on `queue`. Every project task is declared this way, so
    none can land on a queue by accident (a test checks it)."""
    if queue not in settings.CELERY_QUEUES:
        raise ValueError(f"Unknown queue {queue!r}; expected one of {', '.join(settings.CELERY_QUEUES)}.")

    def declare(function: Callable[..., Any]) -> Task:
        name = options.pop("name", None) or f"{function.__module__}.{function.__name__}"
        TASK_QUEUES[name] = queue
        declared: Task = shared_task(name=name, **options)(function)
        return declared

    return declare


def route_task(name: str, *args: Any, **kwargs: Any) -> dict[str, str] | None:
    """Celery router (CELERY_TASK_ROUTES): each task goes to the queue it declared."""
    queue = TASK_QUEUES.get(name)
    return {"queue": queue} if queue else None


def enqueue(name: str, *args: Any, **kwargs: Any) -> None:
    """Run the task registered as `name` with `(*args, **kwargs)` on its queue after the
    current transaction commits."""
    registered_task(name)  # an unknown name fails here, in the caller, not after the commit
    transaction.on_commit(partial(dispatch_now, name, *args, **kwargs))


def enqueue_for_model(name: str, *args: Any, model: str) -> None:
    """`enqueue` a generation task on the queue of base model `model` (the bot's
    `answering_model`): `generation` for NEO_MODEL, its own queue for one of NEO_MODELS
    (neo_support.model_queues), whose workers load that model."""
    queue = generation_queue(model, default_model=settings.NEO_MODEL)
    if queue == DEFAULT_QUEUE:
        enqueue(name, *args)
        return
    registered_task(name)
    transaction.on_commit(partial(_dispatch, name, args, {}, queue))


class UnknownTaskError(LookupError):
    """No task is registered under this name."""


def registered_task(name: str) -> Task:
    """The task registered as `name`, importing the task modules (CELERY_IMPORTS) first
    if this process has not yet."""
    tasks = current_app.tasks
    if name not in tasks:
        current_app.loader.import_default_modules()
    try:
        found: Task = tasks[name]
    except KeyError:
        raise UnknownTaskError(f"No task is registered as {name!r}.") from None
    return found


class QueueUnavailable(Exception):  # noqa: N818 - a service outage, reported to users as such
    """The broker (Redis) could not take the task, after kombu's own retries."""


def dispatch_now(name: str, *args: Any, **kwargs: Any) -> None:
    """Send the task registered as `name` now (or run it on this process's pool)."""
    _dispatch(name, args, kwargs, None)


def _dispatch(name: str, args: tuple[Any, ...], kwargs: dict[str, Any], queue: str | None) -> None:
    task = registered_task(name)
    if not settings.NEO_TASKS_IN_PROCESS:
        try:
            task.apply_async(args=args, kwargs=kwargs, **({"queue": queue} if queue else {}))
        except (KombuOperationalError, RedisError, OSError) as error:
            raise QueueUnavailable(f"could not queue {task.name}: {error}") from error
        return
    queue = queue or TASK_QUEUES.get(task.name, settings.CELERY_TASK_DEFAULT_QUEUE)
    future = _pool_for(queue).submit(_run_in_process, task, args, kwargs)
    with _lock:
        _pending.add(future)
    future.add_done_callback(_forget)


def wait_for_in_process_tasks(timeout: float = 60.0) -> None:
    """Block until every in-process task has finished, including tasks those tasks
    enqueue (tests, shutdown)."""
    deadline = time.monotonic() + timeout
    while True:
        with _lock:
            futures = {future for future in _pending if not future.done()}
        if not futures:
            return
        _done, not_done = wait(futures, timeout=max(0.0, deadline - time.monotonic()))
        if not_done:
            raise TimeoutError(f"{len(not_done)} in-process task(s) still running after {timeout}s")


def _pool_for(queue: str) -> ThreadPoolExecutor:
    with _lock:
        if queue not in _pools:
            _pools[queue] = ThreadPoolExecutor(
                max_workers=settings.NEO_IN_PROCESS_THREADS,
                thread_name_prefix=f"neo-{queue}",
                initializer=thread_priority_set,
                initargs=(queue in BULK_QUEUES,),
            )
        return _pools[queue]


def _run_in_process(task: Task, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    close_old_connections()
    try:
        result = task.apply(args=args, kwargs=kwargs)
        if result.failed():
            logger.error("task %s failed: %r", task.name, result.result)
    finally:
        # Pool threads are long-lived: never keep a connection between tasks.
        connections.close_all()


def _forget(future: Future[Any]) -> None:
    with _lock:
        _pending.discard(future)
