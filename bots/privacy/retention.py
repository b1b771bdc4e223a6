"""Retention: how long each kind of record is kept, per organization, and the beat task's
pass that deletes what has expired, in batches, with a count per kind recorded
(RetentionRun). Analytics keeps per-day counts of deleted conversations; their event
logs, attachment files and examples in stored training datasets go with them."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from bots.chat import event_log
from bots.models import (
    MAX_RETENTION_DAYS,
    Attachment,
    Conversation,
    Message,
    ModelVersion,
    RetentionPolicy,
    RetentionRun,
)
from bots.privacy import deletion
from bots.privacy.audit_hooks import audit
from bots.privacy.deletion import dataset_scrub, expired_counts_add, files_delete
from neo_support import audit as audit_log
from neo_support.models import Organization

logger = logging.getLogger(__name__)

# Kind -> the policy's field. "audit_log" is purged by whatever PURGES holds for it.
KINDS = {
    "conversations": "conversations_days",
    "tickets": "tickets_days",
    "attachments": "attachments_days",
    "moderation": "moderation_days",
    "audit_log": "audit_log_days",
}
LABELS = {
    "conversations": "Conversations (chats without a ticket), after their last activity",
    "tickets": "Tickets with their conversations, after their last update",
    "attachments": "Attachments (the files), after they were received",
    "moderation": "Moderation records (the verdicts' details on messages)",
    "audit_log": "Event log (audit log of staff actions)",
}


class RetentionRefused(ValueError):  # noqa: N818 - shown to the person, not a crash
    """A retention setting that cannot be saved; the message says why."""


def retention_days_check(kind: str, days: Any) -> int | None:
    """`days` as the policy stores it (None: forever); raises RetentionRefused."""
    if kind not in KINDS:
        raise RetentionRefused(f"Unknown kind {kind!r}; expected one of {', '.join(KINDS)}.")
    if days is None or days == "" or days == "forever":
        return None
    if isinstance(days, bool) or not isinstance(days, int | str):
        raise RetentionRefused(f'{kind}: days must be a whole number or "forever".')
    try:
        value = int(days)
    except ValueError:
        raise RetentionRefused(f'{kind}: days must be a whole number or "forever".') from None
    if value <= 0:
        raise RetentionRefused(
            f'{kind}: {value} days would delete everything at once; keep at least 1 day, or "forever".'
        )
    if value > MAX_RETENTION_DAYS:
        raise RetentionRefused(f'{kind}: at most {MAX_RETENTION_DAYS} days; for longer choose "forever".')
    return value


def retention_policy_update(*, organization: Organization, days: dict[str, Any], by: Any = None) -> RetentionPolicy:
    """Set the days of the kinds named in `days` (the rest unchanged). Every value is
    checked before anything is saved."""
    checked = {KINDS[kind]: retention_days_check(kind, value) for kind, value in days.items()}
    with transaction.atomic():
        policy, _ = RetentionPolicy.objects.select_for_update().get_or_create(organization=organization)
        before = retention_days(policy)
        for name, value in checked.items():
            setattr(policy, name, value)
        policy.save()
    after = retention_days(policy)
    if after != before:
        audit("retention.update", organization=organization, by=by, details={"before": before, "after": after})
    return cast(RetentionPolicy, policy)


def retention_days(policy: RetentionPolicy) -> dict[str, int | None]:
    return {kind: getattr(policy, name) for kind, name in KINDS.items()}


@dataclass
class _Pass:
    """One retention pass over an organization: its recorded run, and the conversations
    it deleted (their examples leave the stored training datasets at the end)."""

    run: RetentionRun
    conversation_ids: list[int] = field(default_factory=list)


# Purges of kinds other modules own: (organization, cut-off) -> rows deleted.
PURGES: dict[str, Callable[[Organization, datetime], int]] = {"audit_log": audit_log.delete_expired}


def _conversations_delete(organization: Organization, current: _Pass, conversations: Any) -> int:
    """Delete these conversations (tickets, messages, feedback, attachments with them),
    batch by batch, keeping their analytics counts; their files, event logs and dataset
    examples follow."""
    run = current.run
    total = 0
    while True:
        with transaction.atomic():
            ids = list(conversations.order_by("pk").values_list("pk", flat=True)[: deletion.BATCH])
            if not ids:
                break
            files = [
                name
                for name in Attachment.objects.filter(message__conversation_id__in=ids).values_list("file", flat=True)
            ]
            expired_counts_add(organization=organization, conversation_ids=ids)
            Conversation.objects.filter(pk__in=ids).delete()
            RetentionRun.objects.filter(pk=run.pk).update(pending_files=[*run.pending_files, *files])
            run.pending_files = [*run.pending_files, *files]
        _pending_files_delete(run)
        event_log.forget(ids)
        current.conversation_ids.extend(ids)
        total += len(ids)
    return total


def _pending_files_delete(run: RetentionRun) -> None:
    files_delete(run.pending_files)
    RetentionRun.objects.filter(pk=run.pk).update(pending_files=[])
    run.pending_files = []


def _purge_conversations(organization: Organization, current: _Pass, before: datetime) -> int:
    expired = Conversation.objects.for_organization(organization).filter(
        ticket__isnull=True, last_activity_at__lt=before
    )
    return _conversations_delete(organization, current, expired)


def _purge_tickets(organization: Organization, current: _Pass, before: datetime) -> int:
    expired = Conversation.objects.for_organization(organization).filter(ticket__updated_at__lt=before)
    return _conversations_delete(organization, current, expired)


def _purge_attachments(organization: Organization, current: _Pass, before: datetime) -> int:
    run = current.run
    expired = Attachment.objects.for_organization(organization).filter(created_at__lt=before)
    total = 0
    while True:
        with transaction.atomic():
            rows = list(expired.order_by("pk").values_list("pk", "file")[: deletion.BATCH])
            if not rows:
                return total
            Attachment.objects.filter(pk__in=[pk for pk, _ in rows]).delete()
            files = [name for _, name in rows]
            RetentionRun.objects.filter(pk=run.pk).update(pending_files=[*run.pending_files, *files])
            run.pending_files = [*run.pending_files, *files]
        _pending_files_delete(run)
        total += len(rows)


def _purge_moderation(organization: Organization, current: _Pass, before: datetime) -> int:
    """Clear the verdicts' details (what was found, where, the review); the one-word
    action stays, so the moderation counts of analytics stay."""
    expired = Message.objects.for_organization(organization).filter(created_at__lt=before)
    expired = expired.filter(~Q(moderation=[]) | ~Q(moderation_review={}))
    total = 0
    while True:
        with transaction.atomic():
            ids = list(expired.order_by("pk").values_list("pk", flat=True)[: deletion.BATCH])
            if not ids:
                return total
            Message.objects.filter(pk__in=ids).update(moderation=[], moderation_review={})
        total += len(ids)


_OWN_PURGES: dict[str, Callable[[Organization, _Pass, datetime], int]] = {
    "conversations": _purge_conversations,
    "tickets": _purge_tickets,
    "attachments": _purge_attachments,
    "moderation": _purge_moderation,
}


def retention_apply(*, organization: Organization, now: datetime | None = None) -> RetentionRun:
    """Delete what the organization's policy says has expired; records a RetentionRun
    with the count per kind. Files left by a killed earlier run are deleted first."""
    now = now or timezone.now()
    for unfinished in RetentionRun.objects.for_organization(organization).exclude(pending_files=[]):
        _pending_files_delete(unfinished)
    policy = RetentionPolicy.objects.filter(organization=organization).first()
    run: RetentionRun = RetentionRun.objects.create(organization=organization)
    current = _Pass(run)
    deleted: dict[str, int] = {}
    if policy is not None:
        for kind, days in retention_days(policy).items():
            if days is None:
                continue
            before = now - timedelta(days=days)
            if kind in _OWN_PURGES:
                deleted[kind] = _OWN_PURGES[kind](organization, current, before)
            elif kind in PURGES:
                deleted[kind] = PURGES[kind](organization, before)
            else:
                continue
            RetentionRun.objects.filter(pk=run.pk).update(deleted=deleted)
    gone = current.conversation_ids
    if gone:
        versions = ModelVersion.objects.for_organization(organization).order_by("pk")
        if scrubbed := sum(dataset_scrub(version, gone) for version in versions):
            deleted["training_examples"] = scrubbed
    RetentionRun.objects.filter(pk=run.pk).update(deleted=deleted, finished_at=timezone.now())
    run.deleted, run.finished_at = deleted, timezone.now()
    if any(deleted.values()):
        logger.info("retention for organization %s: %s", organization.pk, deleted)
    return run


def retention_apply_all(*, now: datetime | None = None) -> dict[int, dict[str, int]]:
    """Every organization with a policy that keeps something for a limited time."""
    limited = Q()
    for name in KINDS.values():
        limited |= Q(**{f"{name}__isnull": False})
    results = {}
    for policy in RetentionPolicy.objects.filter(limited).select_related("organization").order_by("pk"):
        results[policy.organization_id] = retention_apply(organization=policy.organization, now=now).deleted
    return results
