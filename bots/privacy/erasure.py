"""Erasing a person (Art. 17 GDPR): every row and file about them, the copies derived
from them (training datasets, the conversation event log, webhook payloads), and a mark
on each tuned model version that learnt from them.

The erasure is a task (`bots.privacy.tasks.erase_person`, queue `default`) that runs
STEPS in order. Each step is idempotent and deletes in small batches, each batch
committed with the progress it made; files are deleted only after the rows that name
them, from the list saved when the erasure was requested. A worker killed halfway
leaves committed batches and a durable plan: the task delivered again (or started
again from the page) skips finished steps and finishes the rest. A second worker on the
same erasure waits for no one: it sees the lock held and returns.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from bots.chat import event_log
from bots.models import (
    Attachment,
    Conversation,
    ErasureStatus,
    Feedback,
    Message,
    ModelVersion,
    PersonErasure,
    Ticket,
    WebhookDelivery,
)
from bots.privacy.audit_hooks import audit
from bots.privacy.deletion import (
    counter_add,
    dataset_contains,
    dataset_scrub,
    expired_counts_add,
    files_delete,
    rows_delete_in_batches,
)
from bots.privacy.selectors import PersonKey, person_find
from neo_support.models import Organization
from neo_support.tasking import enqueue

logger = logging.getLogger(__name__)

STEPS = (
    "training",  # mark the tuned versions, take their examples out of the stored datasets
    "event_log",  # the conversations' recent events (Redis)
    "analytics",  # keep the per-day counts before the rows go
    "webhooks",  # deliveries whose payload is about them
    "feedback",
    "attachments",
    "tickets",
    "messages",  # with their moderation verdicts
    "conversations",  # with the identify data
    "files",  # attachment files, after the rows that named them are gone
)

# Called with (erasure, step, rows so far) after each committed batch: where the pages'
# progress comes from, and where a test stops a worker at a chosen point.
BATCH_HOOKS: list[Callable[[PersonErasure, str, int], None]] = []


@dataclass(frozen=True)
class ErasureStart:
    """What asking for an erasure did: `erasure` is None when nobody was found."""

    erasure: PersonErasure | None
    created: bool

    @property
    def found(self) -> bool:
        return self.erasure is not None


def person_erasure_start(*, organization: Organization, key: PersonKey, by: Any = None) -> ErasureStart:
    """Find the person and queue their erasure. Nobody found: nothing is created or
    changed. The same person already being erased: that erasure, not a second one."""
    person = person_find(organization=organization, key=key)
    subject_hash = key.hashed(organization)
    active = PersonErasure.objects.for_organization(organization).filter(
        subject_hash=subject_hash, status__in=[ErasureStatus.QUEUED, ErasureStatus.RUNNING]
    )
    unfinished = PersonErasure.objects.for_organization(organization).filter(subject_hash=subject_hash)
    unfinished = unfinished.exclude(status=ErasureStatus.DONE).order_by("-created_at", "-id")
    if (existing := unfinished.first()) is not None:
        # Queued again: a worker that died with no redelivery (the embedded default) or a
        # failed step resumes here; one still running answers "busy" and nothing doubles.
        with transaction.atomic():
            PersonErasure.objects.filter(pk=existing.pk, status=ErasureStatus.FAILED).update(
                status=ErasureStatus.QUEUED
            )
            enqueue("bots.privacy.tasks.erase_person", existing.pk)
        existing.refresh_from_db()
        return ErasureStart(existing, created=False)
    if not person.found:
        return ErasureStart(None, created=False)
    ids = sorted(person.conversation_ids)
    plan = {
        "conversation_ids": ids,
        "files": sorted(name for name in person.attachments().values_list("file", flat=True) if name),
        "webhook_delivery_ids": sorted(person.webhook_deliveries().values_list("pk", flat=True)),
        "bot_ids": sorted(set(person.conversations().values_list("bot_id", flat=True))),
    }
    try:
        with transaction.atomic():
            erasure = PersonErasure.objects.create(
                organization=organization,
                subject_hash=subject_hash,
                subject_hint=key.hint(),
                plan=plan,
                requested_by=by if getattr(by, "is_authenticated", False) else None,
            )
            enqueue("bots.privacy.tasks.erase_person", erasure.pk)
    except IntegrityError:  # the same person asked for at the same moment: one erasure
        return ErasureStart(active.get(), created=False)
    audit(
        "person.erase",
        organization=organization,
        by=by,
        details={"erasure": erasure.pk, "conversations": len(ids)},
    )
    return ErasureStart(erasure, created=True)


_local_locks: dict[int, threading.Lock] = {}
_local_guard = threading.Lock()


@contextlib.contextmanager
def _exclusive(erasure_id: int) -> Iterator[bool]:
    """Whether this worker may run the erasure now. On Postgres a session advisory lock,
    which the server releases when a killed worker's connection drops; elsewhere (SQLite,
    one process) a lock in this process."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [2020, erasure_id])
            acquired = bool(cursor.fetchone()[0])
        try:
            yield acquired
        finally:
            if acquired:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [2020, erasure_id])
        return
    with _local_guard:
        lock = _local_locks.setdefault(erasure_id, threading.Lock())
    acquired = lock.acquire(blocking=False)
    try:
        yield acquired
    finally:
        if acquired:
            lock.release()


def person_erasure_run(*, erasure: PersonErasure) -> str:
    """Run (or resume) the erasure; returns its status, or "busy" when another worker
    holds it."""
    with _exclusive(erasure.pk) as acquired:
        if not acquired:
            return "busy"
        erasure.refresh_from_db()
        if erasure.status == ErasureStatus.DONE:
            return str(erasure.status)
        PersonErasure.objects.filter(pk=erasure.pk).update(status=ErasureStatus.RUNNING, error="")
        for step in STEPS:
            if step in erasure.steps_done:
                continue
            try:
                _STEP_RUNNERS[step](erasure)
            except Exception as error:
                PersonErasure.objects.filter(pk=erasure.pk).update(
                    status=ErasureStatus.FAILED, error=f"{step}: {error}"
                )
                raise
            with transaction.atomic():
                locked = PersonErasure.objects.select_for_update().get(pk=erasure.pk)
                PersonErasure.objects.filter(pk=erasure.pk).update(steps_done=[*locked.steps_done, step])
            erasure.refresh_from_db()
        # The plan named the person's conversations and files; nothing of it is kept.
        PersonErasure.objects.filter(pk=erasure.pk).update(
            status=ErasureStatus.DONE, plan={}, finished_at=timezone.now()
        )
    logger.info("erasure %s done: %s", erasure.pk, erasure.counts)
    return ErasureStatus.DONE


def _count(erasure: PersonErasure, step: str) -> Callable[[int], None]:
    def record(rows: int) -> None:
        counter_add(PersonErasure, erasure.pk, "counts", step, rows)
        erasure.counts[step] = int(erasure.counts.get(step, 0)) + rows
        for hook in BATCH_HOOKS:
            transaction.on_commit(partial(hook, erasure, step, erasure.counts[step]))

    return record


def _ids(erasure: PersonErasure) -> list[int]:
    return [int(pk) for pk in erasure.plan.get("conversation_ids", [])]


def _training(erasure: PersonErasure) -> None:
    ids = _ids(erasure)
    # The bots' versions as they are now, not when the erasure was asked for: a run that
    # started in between wrote its dataset from rows that were still there.
    versions = ModelVersion.objects.for_organization(erasure.organization).filter(
        bot_id__in=erasure.plan.get("bot_ids", [])
    )
    for version in versions.order_by("pk"):
        # Marked before the file changes: a worker killed between the two marks it again
        # (no harm) and scrubs on the rerun; never a scrubbed file and no mark.
        if dataset_contains(version, ids):
            erasure.model_versions.add(version)
        removed = dataset_scrub(version, ids)
        if removed:
            with transaction.atomic():
                _count(erasure, "training")(removed)


def _event_log(erasure: PersonErasure) -> None:
    forgotten = event_log.forget(_ids(erasure))
    with transaction.atomic():
        _count(erasure, "event_log")(forgotten)


def _analytics(erasure: PersonErasure) -> None:
    # The counts are added and the step recorded in one transaction: never twice.
    with transaction.atomic():
        added = expired_counts_add(organization=erasure.organization, conversation_ids=_ids(erasure))
        _count(erasure, "analytics")(added)
        locked = PersonErasure.objects.select_for_update().get(pk=erasure.pk)
        PersonErasure.objects.filter(pk=erasure.pk).update(steps_done=[*locked.steps_done, "analytics_counted"])
    erasure.refresh_from_db()


def _analytics_once(erasure: PersonErasure) -> None:
    if "analytics_counted" not in erasure.steps_done:
        _analytics(erasure)


def _rows(step: str) -> Callable[[PersonErasure], None]:
    def run(erasure: PersonErasure) -> None:
        ids = _ids(erasure)
        querysets = {
            "webhooks": WebhookDelivery.objects.filter(pk__in=erasure.plan.get("webhook_delivery_ids", [])),
            "feedback": Feedback.objects.filter(message__conversation_id__in=ids),
            "attachments": Attachment.objects.filter(message__conversation_id__in=ids),
            "tickets": Ticket.objects.filter(conversation_id__in=ids),
            "messages": Message.objects.filter(conversation_id__in=ids),
            "conversations": Conversation.objects.filter(pk__in=ids),
        }
        rows_delete_in_batches(querysets[step], on_batch=_count(erasure, step))

    return run


def _files(erasure: PersonErasure) -> None:
    deleted = files_delete(erasure.plan.get("files", []))
    with transaction.atomic():
        _count(erasure, "files")(deleted)


_STEP_RUNNERS: dict[str, Callable[[PersonErasure], None]] = {
    "training": _training,
    "event_log": _event_log,
    "analytics": _analytics_once,
    **{step: _rows(step) for step in ("webhooks", "feedback", "attachments", "tickets", "messages", "conversations")},
    "files": _files,
}


def erasure_progress(erasure: PersonErasure) -> dict[str, Any]:
    """For the page and the API: status, the steps done of all, and the counts."""
    done = [step for step in STEPS if step in erasure.steps_done]
    return {
        "id": erasure.pk,
        "subject": erasure.subject_hint,
        "status": erasure.status,
        "steps_done": len(done),
        "steps_total": len(STEPS),
        "current_step": next((step for step in STEPS if step not in erasure.steps_done), None)
        if erasure.status != ErasureStatus.DONE
        else None,
        "counts": erasure.counts,
        "model_versions": [
            f"{version.bot.name} {version.label}" for version in erasure.model_versions.select_related("bot")
        ],
        "error": erasure.error,
        "created_at": erasure.created_at,
        "finished_at": erasure.finished_at,
    }
