"""Reads for the moderation log, scoped to one organization."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any, cast

from django.db.models import Count, Max, Q, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone

from bots.models import Message, ModerationExample, Role
from bots.moderation_log.findings import FILTERS, REVIEWED_ACTIONS, FindingGroup, finding_groups
from neo_support.models import Organization
from workers.moderation.taught import TAUGHT_REASON, Taught

GROUPED_MESSAGES = 5000  # the newest messages of the log the grouped view reads
SHARE_DAYS = 30


class ReviewState:
    UNREVIEWED = "unreviewed"
    FALSE_POSITIVE = "false_positive"


def moderation_log_list(
    *,
    organization: Organization,
    bot_id: int | None = None,
    action: str | None = None,
    filter_name: str | None = None,
    review: str | None = None,
    reason: str | None = None,
) -> QuerySet[Message]:
    """The organization's flagged, blocked (and withheld) messages, newest first, optionally
    only one bot's, one action's, one filter's (any finding of it), one reason's, or one
    review state's."""
    messages = (
        Message.objects.for_organization(organization)
        .filter(moderation_action__in=REVIEWED_ACTIONS)
        .select_related("conversation__bot")
        .order_by("-created_at", "-pk")
    )
    if bot_id is not None:
        messages = messages.filter(conversation__bot_id=bot_id)
    if action is not None:
        messages = messages.filter(moderation_action=action)
    if filter_name is not None:
        # The stored JSON as text, on SQLite and Postgres alike: json.dumps and jsonb both
        # write `"key": "value"`, and a quote inside a string is escaped, so a reason or an
        # excerpt cannot fake the match.
        messages = messages.filter(moderation__icontains=f'"filter": "{filter_name}"')
    if reason is not None:
        # As written on SQLite (non-ASCII escaped) or as jsonb prints it (non-ASCII kept).
        messages = messages.filter(
            Q(moderation__icontains=f'"reason": {json.dumps(reason)}')
            | Q(moderation__icontains=f'"reason": {json.dumps(reason, ensure_ascii=False)}')
        )
    if review == ReviewState.FALSE_POSITIVE:
        messages = messages.filter(moderation_review__has_key="false_positive")
    elif review == ReviewState.UNREVIEWED:
        messages = messages.exclude(moderation_review__has_key="false_positive")
    return messages


def moderation_log_message_get(*, organization: Organization, message_id: int) -> Message | None:
    return cast("Message | None", moderation_log_list(organization=organization).filter(pk=message_id).first())


def moderation_log_groups(*, messages: QuerySet[Message]) -> tuple[list[FindingGroup], bool]:
    """`messages` (the filtered log) grouped by filter and reason, over its newest
    GROUPED_MESSAGES; the flag says the log held more than that."""
    rows = list(messages.values_list("moderation", "moderation_review", "created_at")[: GROUPED_MESSAGES + 1])
    groups = finding_groups(
        (verdicts, isinstance(review, dict) and bool(review.get("false_positive")), created_at)
        for verdicts, review, created_at in rows[:GROUPED_MESSAGES]
    )
    return groups, len(rows) > GROUPED_MESSAGES


def _finding_of(filter_name: str, actions: tuple[str, ...], reason_start: str = "") -> Q:
    """Messages with a finding of `filter_name` at one of `actions` (and a reason starting
    with `reason_start`), matched in the stored JSON as text. A finding's keys are in the
    order written on SQLite (filter, action, reason) and in jsonb's order on Postgres (by
    length, then name: action, filter, reason)."""
    reason = f', "reason": {json.dumps(reason_start)[:-1]}' if reason_start else ""
    matched = Q()
    for action in actions:
        matched |= Q(moderation__icontains=f'"filter": "{filter_name}", "action": "{action}"{reason}')
        matched |= Q(moderation__icontains=f'"action": "{action}", "filter": "{filter_name}"{reason}')
    return matched


def moderation_daily_shares(
    *, organization: Organization, bot_id: int | None = None, until: date | None = None, days: int = SHARE_DAYS
) -> list[dict[str, Any]]:
    """Per day of the last `days` (every day present, oldest first): the messages screened
    (visitor messages and bot replies) and, per filter, how many it flagged, withheld or
    blocked (`flagged`), blocked (`blocked`), and allowed because they were like a message
    an owner marked not a problem (`taught_allowed`), with the shares of the screened.
    One aggregate query."""
    until = until or timezone.localdate()
    since = until - timedelta(days=days - 1)
    messages = Message.objects.for_organization(organization).filter(
        role__in=(Role.VISITOR, Role.BOT), created_at__date__gte=since, created_at__date__lte=until
    )
    if bot_id is not None:
        messages = messages.filter(conversation__bot_id=bot_id)
    counts: dict[str, Count] = {"screened": Count("pk")}
    for name in FILTERS:
        counts[f"{name}.flagged"] = Count("pk", filter=_finding_of(name, REVIEWED_ACTIONS))
        counts[f"{name}.blocked"] = Count("pk", filter=_finding_of(name, ("block",)))
        counts[f"{name}.taught_allowed"] = Count("pk", filter=_finding_of(name, ("allow",), TAUGHT_REASON))
    found = {row.pop("day"): row for row in messages.values(day=TruncDate("created_at")).annotate(**counts).order_by()}
    rows: list[dict[str, Any]] = []
    for offset in range(days):
        day = since + timedelta(days=offset)
        counted = found.get(day, {})
        screened = int(counted.get("screened", 0))
        filters: dict[str, dict[str, Any]] = {}
        for name in FILTERS:
            figures: dict[str, float] = {
                kind: int(counted.get(f"{name}.{kind}", 0)) for kind in ("flagged", "blocked", "taught_allowed")
            }
            figures["flagged_share"] = round(figures["flagged"] / screened, 4) if screened else 0.0
            figures["blocked_share"] = round(figures["blocked"] / screened, 4) if screened else 0.0
            filters[name] = figures
        rows.append({"date": day.isoformat(), "screened": screened, "filters": filters})
    return rows


def moderation_examples(*, organization: Organization) -> QuerySet[ModerationExample]:
    """What the organization taught the filters, newest first."""
    return cast(
        "QuerySet[ModerationExample]",
        ModerationExample.objects.for_organization(organization).select_related("message__conversation__bot"),
    )


def moderation_example_get(*, organization: Organization, example_id: int) -> ModerationExample | None:
    return cast(
        "ModerationExample | None", moderation_examples(organization=organization).filter(pk=example_id).first()
    )


# organization id -> (the examples' count, newest id and newest time when read, what they teach)
_taught: dict[int, tuple[tuple[object, ...], Taught]] = {}


def moderation_taught(*, organization_id: int) -> Taught:
    """What the organization taught the filters, as the screening reads it: built once per
    process and re-read when an example is added or removed (the count, the newest id or
    the newest time changes)."""
    examples = ModerationExample.objects.filter(organization_id=organization_id)
    stamp = examples.aggregate(count=Count("pk"), newest=Max("pk"), latest=Max("created_at"))
    key = (stamp["count"], stamp["newest"], stamp["latest"])
    cached = _taught.get(organization_id)
    if cached is not None and cached[0] == key:
        return cached[1]
    taught = Taught.from_rows(examples.values_list("pk", "filter", "embedding"))
    _taught[organization_id] = (key, taught)
    return taught
