"""Writing the audit log, and retention's one way to shorten it."""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import models

from neo_support.audit.actions import ACTIONS
from neo_support.audit.context import ANONYMOUS, SYSTEM, Actor, client_ip, current_request
from neo_support.models import ApiKey, AuditEntry, Organization

Json = dict[str, Any]


def _actor_of(actor: AbstractBaseUser | AnonymousUser | ApiKey | None) -> Actor:
    if isinstance(actor, ApiKey):
        return Actor(kind="api_key", id=actor.pk, label=f"API key {actor.name} ({actor.prefix}…)")
    if actor is None:
        return SYSTEM
    if not actor.is_authenticated:
        return ANONYMOUS
    return Actor(kind="user", id=actor.pk, label=str(actor.get_username())[:200])


def _request_actor() -> tuple[Actor, str | None]:
    request = current_request()
    if request is None:
        return SYSTEM, None
    api_key = getattr(request, "auth", None)  # set by DRF's authentication on the HttpRequest too
    user = getattr(request, "user", None)
    return _actor_of(api_key if isinstance(api_key, ApiKey) else user), client_ip(request)


def plain(value: Any) -> Any:
    """`value` as JSON: a model as its primary key, a collection as a list, anything else
    unusual (a date, a decimal, a file) as text."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, enum.Enum):
        return plain(value.value)
    if isinstance(value, models.Model):
        return value.pk
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset | models.QuerySet):
        return [plain(item) for item in value]
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    return str(value)


def snapshot(instance: models.Model, fields: Iterable[str]) -> Json:
    """The named fields of `instance`, as JSON, for a `before` or an `after`."""
    return {name: plain(getattr(instance, name)) for name in fields}


def changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> tuple[Json, Json]:
    """Only the fields whose value differs, from each side: what a settings change changed."""
    names = [name for name in after if plain(before.get(name)) != plain(after.get(name))]
    return {name: plain(before.get(name)) for name in names}, {name: plain(after.get(name)) for name in names}


def record(
    *,
    organization: Organization | int,
    action: str,
    target: models.Model | None = None,
    target_kind: str = "",
    target_id: str | int | None = None,
    target_label: str = "",
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    actor: AbstractBaseUser | AnonymousUser | ApiKey | None = None,
    ip: str | None = None,
) -> AuditEntry:
    """Append one entry to `organization`'s audit log and return it.

    `action` is a dotted name such as "bot.update" (neo_support.audit.actions lists the
    known ones). `target` names the object acted on (its model name, id and text are kept,
    so the entry outlives it); or give `target_kind`/`target_id`/`target_label` directly.
    `before`/`after` hold the fields as they were and are (JSON; see `changes`). The actor
    and the IP default to those of the request being served: the signed-in user or the
    API key, else "system". An action missing from ACTIONS is a ValueError, so the page's
    filter always offers every action recorded."""
    if action not in ACTIONS:
        raise ValueError(f"Unknown audit action {action!r}: add it to neo_support.audit.actions.ACTIONS.")
    who, address = _request_actor()
    if actor is not None:
        who = _actor_of(actor)
    if target is not None:
        target_kind = target_kind or target._meta.model_name or ""
        target_id = target.pk if target_id is None else target_id
        target_label = target_label or str(target)
    entry: AuditEntry = AuditEntry.objects.create(
        organization_id=organization if isinstance(organization, int) else organization.pk,
        actor_kind=who.kind,
        actor_id=who.id,
        actor_label=who.label,
        action=action,
        target_kind=target_kind[:40],
        target_id="" if target_id is None else str(target_id)[:64],
        target_label=target_label[:200],
        before=plain(before) if before is not None else None,
        after=plain(after) if after is not None else None,
        ip=ip if ip is not None else address,
    )
    return entry


def delete_expired(organization: Organization, before: dt.datetime) -> int:
    """Delete `organization`'s audit entries recorded before `before`; return how many.
    The only deletion path of the audit log, for the retention policy's beat task."""
    expired = AuditEntry.objects.for_organization(organization).filter(created_at__lt=before)
    # AuditEntryQuerySet refuses delete(); retention alone goes around it, on purpose.
    deleted, _ = models.QuerySet.delete(expired)
    return int(deleted)
