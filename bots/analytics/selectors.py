"""Analytics reads for the dashboard and the API: figures per day, rates, latency,
moderation, top questions, and the learning loop's clusters of questions the bot
could not answer well.

Conversation figures count conversations started in the range; message, feedback and
latency figures count what was sent in the range. Days are in the current time zone.
Conversations from the dashboard's test chat (`Conversation.is_test`), with their
messages and feedback, count only when the filter asks for them (`include_test`).
Everything `analytics_summary` returns is plain JSON (dates as ISO strings).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import numpy as np
from django.conf import settings
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import TruncDate
from django.utils import timezone

from bots.analytics.metrics import (
    QUESTION_CHARS,
    TAKEN_ACTIONS,
    article_draft,
    cluster_questions,
    latency_figures,
    milliseconds,
    moderation_pairs,
    normalise_question,
    ratio,
)
from bots.models import (
    Bot,
    Conversation,
    ConversationStatus,
    Delivery,
    ExpiredDailyCount,
    Feedback,
    Message,
    MessageStatus,
    ModelVersion,
    Rating,
    Role,
    Ticket,
)
from neo_support.models import Organization
from retrieval.models import KnowledgeBase

TOP_QUESTIONS = 10
CLUSTER_QUESTION_LIMIT = 500  # the newest low-confidence questions are clustered
CLUSTER_LIMIT = 25
DAILY_FIELDS = (
    "conversations",
    "engaged_conversations",
    "deflected",
    "handed_off",
    "visitor_messages",
    "bot_answers",
    "low_confidence_answers",
    "moderated_messages",
    "thumbs_up",
    "thumbs_down",
)


DEFAULT_DAYS = 30  # shown when no range is chosen
MAX_DAYS = 366
# Days the figures can be asked for: the end bound is the day after `until`.
FIRST_DAY = date(1970, 1, 1)
LAST_DAY = date(9998, 12, 31)


@dataclass(frozen=True)
class AnalyticsFilter:
    """What to count: one organization, `since` to `until` inclusive, one bot or all;
    the dashboard's test chats only with `include_test` (they are the staff trying the
    bot, not visitors, and would skew deflection and the top questions)."""

    organization: Organization
    since: date
    until: date
    bot: Bot | None = None
    include_test: bool = False

    def __post_init__(self) -> None:
        if self.bot is not None and self.bot.organization_id != self.organization.pk:
            raise ValueError("The bot belongs to another organization.")
        if self.since > self.until:
            raise ValueError("`since` is after `until`.")
        if self.since < FIRST_DAY or self.until > LAST_DAY:
            raise ValueError(f"Dates run from {FIRST_DAY} to {LAST_DAY}.")

    def days(self) -> list[date]:
        return [self.since + timedelta(days=n) for n in range((self.until - self.since).days + 1)]


# Reads


def _bounds(chosen: AnalyticsFilter) -> tuple[datetime, datetime]:
    """The range as aware datetimes in the current time zone, the end exclusive, so the
    created_at indexes are used."""
    zone = timezone.get_current_timezone()
    start = datetime.combine(chosen.since, time.min, tzinfo=zone)
    end = datetime.combine(chosen.until + timedelta(days=1), time.min, tzinfo=zone)
    return start, end


def _chosen(rows: QuerySet[Any], chosen: AnalyticsFilter, *, conversation: str) -> QuerySet[Any]:
    """`rows` (of this organization) created in the range, of the chosen bot, test chats left
    out unless asked for; `conversation` is the lookup from a row to its conversation."""
    start, end = _bounds(chosen)
    rows = rows.filter(created_at__gte=start, created_at__lt=end)
    if not chosen.include_test:
        rows = rows.filter(**{f"{conversation}is_test": False})
    return rows if chosen.bot is None else rows.filter(**{f"{conversation}bot": chosen.bot})


# Every figure reads through these three, so test chats are left out everywhere alike.
def _conversations(chosen: AnalyticsFilter) -> QuerySet[Conversation]:
    return _chosen(Conversation.objects.for_organization(chosen.organization), chosen, conversation="")


def _messages(chosen: AnalyticsFilter) -> QuerySet[Message]:
    return _chosen(Message.objects.for_organization(chosen.organization), chosen, conversation="conversation__")


def _feedback(chosen: AnalyticsFilter) -> QuerySet[Feedback]:
    rows = Feedback.objects.for_organization(chosen.organization)
    return _chosen(rows, chosen, conversation="message__conversation__")


BOT_ANSWER = Q(role=Role.BOT, status=MessageStatus.DONE) & ~Q(delivery=Delivery.DRAFT)
LOW_CONFIDENCE = Q(role=Role.BOT) & (
    Q(confidence__lt=F("conversation__bot__answer_threshold"))
    | Q(confidence__isnull=True, status__in=[MessageStatus.FAILED, MessageStatus.BLOCKED])
)
REACHED_HUMAN = (
    Q(status__in=[ConversationStatus.PENDING_AGENT, ConversationStatus.AGENT]) | Q(has_agent=True) | Q(has_ticket=True)
)
ENGAGED = Q(has_visitor=True)
DEFLECTED = ENGAGED & Q(has_answer=True) & ~REACHED_HUMAN
HANDED_OFF = ENGAGED & REACHED_HUMAN


def _with_flags(conversations: QuerySet[Conversation]) -> QuerySet[Conversation]:
    def any_message(condition: Q) -> Exists:
        return Exists(Message.objects.filter(condition, conversation=OuterRef("pk")))

    return conversations.alias(
        has_visitor=any_message(Q(role=Role.VISITOR)),
        has_answer=any_message(BOT_ANSWER),
        has_agent=any_message(Q(role=Role.AGENT)),
        has_ticket=Exists(Ticket.objects.filter(conversation=OuterRef("pk"))),
    )


def _per_day(queryset: QuerySet[Any], **counts: Count) -> dict[date, dict[str, int]]:
    rows = queryset.annotate(day=TruncDate("created_at")).values("day").annotate(**counts).order_by("day")
    return {row.pop("day"): row for row in rows}


def _expired_per_day(chosen: AnalyticsFilter) -> dict[date, dict[str, int]]:
    """The per-day counts kept of rows that retention or an erasure deleted."""
    rows = ExpiredDailyCount.objects.for_organization(chosen.organization).filter(
        day__gte=chosen.since, day__lte=chosen.until
    )
    if not chosen.include_test:
        rows = rows.filter(is_test=False)
    if chosen.bot is not None:
        rows = rows.filter(bot=chosen.bot)
    found: dict[date, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for day, counts in rows.values_list("day", "counts"):
        for name, value in counts.items():
            found[day][name] += int(value)
    return found


CountKey = tuple[int, bool, date]  # bot id, test chat, day


def daily_counts_of(conversation_ids: list[int]) -> dict[CountKey, dict[str, int]]:
    """The DAILY_FIELDS these conversations (with their messages and feedback) add to the
    figures, by bot, test flag and day: what is kept when they are deleted."""
    found: dict[CountKey, dict[str, int]] = defaultdict(lambda: defaultdict(int))

    def add(queryset: QuerySet[Any], prefix: str, **counts: Count) -> None:
        rows = (
            queryset.annotate(day=TruncDate("created_at"))
            .values("day", f"{prefix}bot_id", f"{prefix}is_test")
            .annotate(**counts)
            .order_by()
        )
        for row in rows:
            key = (row.pop(f"{prefix}bot_id"), row.pop(f"{prefix}is_test"), row.pop("day"))
            for name, value in row.items():
                if value:
                    found[key][name] += int(value)

    add(
        _with_flags(Conversation.objects.filter(pk__in=conversation_ids)),
        "",
        conversations=Count("pk"),
        engaged_conversations=Count("pk", filter=ENGAGED),
        deflected=Count("pk", filter=DEFLECTED),
        handed_off=Count("pk", filter=HANDED_OFF),
    )
    add(
        Message.objects.filter(conversation_id__in=conversation_ids),
        "conversation__",
        visitor_messages=Count("pk", filter=Q(role=Role.VISITOR)),
        bot_answers=Count("pk", filter=BOT_ANSWER),
        low_confidence_answers=Count("pk", filter=LOW_CONFIDENCE),
        moderated_messages=Count("pk", filter=Q(moderation_action__in=TAKEN_ACTIONS)),
    )
    add(
        Feedback.objects.filter(message__conversation_id__in=conversation_ids),
        "message__conversation__",
        thumbs_up=Count("pk", filter=Q(rating=Rating.UP)),
        thumbs_down=Count("pk", filter=Q(rating=Rating.DOWN)),
    )
    return {key: dict(counts) for key, counts in found.items() if counts}


def analytics_daily(chosen: AnalyticsFilter) -> list[dict[str, Any]]:
    """One row per day of the range, every day present: the counts of DAILY_FIELDS and
    that day's latency percentiles."""
    return _daily_rows(chosen, _latencies(chosen))


Latencies = dict[str, dict[date, list[float]]]  # timing key -> day -> milliseconds
LATENCY_KEYS = ("first_token_ms", "total_ms")


def _latencies(chosen: AnalyticsFilter) -> Latencies:
    """The bot answers' timings in the range, by day."""
    found: Latencies = {key: defaultdict(list) for key in LATENCY_KEYS}
    bot_messages = _messages(chosen).filter(role=Role.BOT).exclude(timings={})
    rows = bot_messages.annotate(day=TruncDate("created_at")).values_list("day", "timings")
    for day, timings in rows.iterator(chunk_size=2000):
        for key in LATENCY_KEYS:
            if (value := milliseconds(timings, key)) is not None:
                found[key][day].append(value)
    return found


def _daily_rows(chosen: AnalyticsFilter, latencies: Latencies) -> list[dict[str, Any]]:
    conversations = _per_day(
        _with_flags(_conversations(chosen)),
        conversations=Count("pk"),
        engaged_conversations=Count("pk", filter=ENGAGED),
        deflected=Count("pk", filter=DEFLECTED),
        handed_off=Count("pk", filter=HANDED_OFF),
    )
    messages = _per_day(
        _messages(chosen),
        visitor_messages=Count("pk", filter=Q(role=Role.VISITOR)),
        bot_answers=Count("pk", filter=BOT_ANSWER),
        low_confidence_answers=Count("pk", filter=LOW_CONFIDENCE),
        moderated_messages=Count("pk", filter=Q(moderation_action__in=TAKEN_ACTIONS)),
    )
    feedback = _per_day(
        _feedback(chosen),
        thumbs_up=Count("pk", filter=Q(rating=Rating.UP)),
        thumbs_down=Count("pk", filter=Q(rating=Rating.DOWN)),
    )
    expired = _expired_per_day(chosen)
    rows: list[dict[str, Any]] = []
    for day in chosen.days():
        counted = {**conversations.get(day, {}), **messages.get(day, {}), **feedback.get(day, {})}
        kept = expired.get(day, {})
        row: dict[str, Any] = {"date": day.isoformat()}
        row.update({name: int(counted.get(name, 0)) + int(kept.get(name, 0)) for name in DAILY_FIELDS})
        first = latency_figures(latencies["first_token_ms"].get(day, []))
        whole = latency_figures(latencies["total_ms"].get(day, []))
        row.update(
            first_token_p50_ms=first["p50"],
            first_token_p95_ms=first["p95"],
            total_p50_ms=whole["p50"],
            total_p95_ms=whole["p95"],
        )
        rows.append(row)
    return rows


def analytics_moderation(chosen: AnalyticsFilter) -> list[dict[str, Any]]:
    """Messages each filter acted on, by action: [{"filter", "total", "actions": {action: n}}],
    the busiest filter first."""
    counts: Counter[tuple[str, str]] = Counter()
    verdicts = _messages(chosen).filter(moderation_action__in=TAKEN_ACTIONS).values_list("moderation", flat=True)
    for moderation in verdicts.iterator(chunk_size=2000):
        counts.update(moderation_pairs(moderation))
    by_filter: dict[str, dict[str, int]] = defaultdict(dict)
    for (name, action), count in counts.items():
        by_filter[name][action] = count
    rows = [
        {
            "filter": name,
            "total": sum(actions.values()),
            "actions": {action: actions[action] for action in TAKEN_ACTIONS if action in actions},
        }
        for name, actions in by_filter.items()
    ]
    return sorted(rows, key=lambda row: (-row["total"], row["filter"]))


def analytics_top_questions(chosen: AnalyticsFilter, *, limit: int = TOP_QUESTIONS) -> list[dict[str, Any]]:
    """The visitor messages asked most often, compared normalised; each shown as its
    newest wording."""
    counts: Counter[str] = Counter()
    wording: dict[str, str] = {}
    texts = _messages(chosen).filter(role=Role.VISITOR).order_by("-created_at", "-pk").values_list("text", flat=True)
    for text in texts.iterator(chunk_size=2000):
        key = normalise_question(text)
        if key:
            counts[key] += 1
            wording.setdefault(key, " ".join(text.split())[:QUESTION_CHARS])
    ranked = sorted(counts.items(), key=lambda item: -item[1])  # stable: newest first among equals
    return [{"question": wording[key], "normalised": key, "count": count} for key, count in ranked[:limit]]


@dataclass(frozen=True)
class LowConfidenceQuestion:
    text: str
    bot_id: int
    message_id: int  # the bot's answer


def low_confidence_questions(
    chosen: AnalyticsFilter, *, limit: int = CLUSTER_QUESTION_LIMIT
) -> list[LowConfidenceQuestion]:
    """The visitor questions behind the newest `limit` bot answers below their bot's
    answer threshold (or failed or blocked with no confidence): the question is the
    visitor message just before the answer in its conversation."""
    question = (
        Message.objects.filter(conversation=OuterRef("conversation"), role=Role.VISITOR, pk__lt=OuterRef("pk"))
        .order_by("-pk")
        .values("text")[:1]
    )
    answers = (
        _messages(chosen)
        .filter(LOW_CONFIDENCE)
        .annotate(question=Subquery(question))
        .order_by("-created_at", "-pk")
        .values_list("question", "conversation__bot_id", "pk")[:limit]
    )
    return [
        LowConfidenceQuestion(text=" ".join(text.split())[:QUESTION_CHARS], bot_id=bot_id, message_id=pk)
        for text, bot_id, pk in answers
        if text and text.strip()
    ]


def analytics_clusters(chosen: AnalyticsFilter) -> list[dict[str, Any]]:
    """The learning loop: low-confidence questions grouped by topic (see
    `cluster_questions`), each with a knowledge base to write the missing article in
    (the first of its most frequent bot's, else the organization's first) and a draft.
    Raises retrieval.embeddings.EmbeddingModelError when the model cannot be loaded."""
    from retrieval.embeddings import embed

    questions = low_confidence_questions(chosen)
    unique: dict[str, list[LowConfidenceQuestion]] = {}
    for asked in questions:
        unique.setdefault(normalise_question(asked.text), []).append(asked)
    groups = [group for key, group in unique.items() if key]
    texts = [_wording(group) for group in groups]
    vectors = embed(texts, settings.EMBEDDING_MODEL) if texts else np.zeros((0, 1), dtype=np.float32)
    clusters = cluster_questions(texts, vectors, weights=[len(group) for group in groups])[:CLUSTER_LIMIT]
    knowledge_bases = _first_knowledge_bases(chosen.organization)
    rows: list[dict[str, Any]] = []
    for cluster in clusters:
        bots = Counter(asked.bot_id for i in cluster.members for asked in groups[i])
        bot_id = bots.most_common(1)[0][0]
        title, text = article_draft(questions=cluster.questions, terms=cluster.terms)
        rows.append(
            {
                "label": ", ".join(cluster.terms) or cluster.questions[0],
                "terms": cluster.terms,
                "size": cluster.size,
                "questions": cluster.questions,
                "bot_id": bot_id,
                "knowledge_base_id": knowledge_bases.get(bot_id, knowledge_bases.get(None)),
                "draft_title": title,
                "draft_text": text,
            }
        )
    return rows


def _wording(asked: list[LowConfidenceQuestion]) -> str:
    """How a question is shown: its most frequent wording, one starting with a capital
    letter before one that does not, else the newest."""
    counts = Counter(question.text for question in asked)
    return max(counts, key=lambda text: (counts[text], text[:1].isupper()))


def _first_knowledge_bases(organization: Organization) -> dict[int | None, int]:
    """bot id -> the id of its first knowledge base (by name); None -> the organization's first."""
    first: dict[int | None, int] = {}
    links = Bot.knowledge_bases.through.objects.filter(bot__organization=organization).order_by(
        "knowledgebase__name", "knowledgebase_id"
    )
    for bot_id, knowledge_base_id in links.values_list("bot_id", "knowledgebase_id"):
        first.setdefault(bot_id, knowledge_base_id)
    organization_first = KnowledgeBase.objects.for_organization(organization).order_by("name", "pk").first()
    if organization_first is not None:
        first[None] = organization_first.pk
    return first


def analytics_compute(chosen: AnalyticsFilter) -> dict[str, Any]:
    """What answering and tuning cost, by bot and model version.

    An answer's compute is its worker time (`timings.total_ms`: retrieval, generation
    and screening; `generation_ms` of it on the model's device); "per answered question"
    divides by the bot answers, "per resolved conversation" by the resolved or closed
    conversations those answers were in. Training is each tuning run's time."""
    rows: dict[tuple[int, str], dict[str, Any]] = {}
    resolved: dict[tuple[int, str], set[int]] = {}
    answers = _messages(chosen).filter(BOT_ANSWER)
    for bot_id, bot_name, version, timings, prompt, completion, conversation, status in answers.values_list(
        "conversation__bot_id",
        "conversation__bot__name",
        "model_version",
        "timings",
        "prompt_tokens",
        "completion_tokens",
        "conversation_id",
        "conversation__status",
    ):
        key = (bot_id, version or "quoted")
        row = rows.setdefault(
            key,
            {"bot": bot_id, "bot_name": bot_name, "model_version": key[1], "answers": 0, "tokens": 0,
             "compute_seconds": 0.0, "generation_seconds": 0.0, "devices": set()},
        )  # fmt: skip
        timings = timings if isinstance(timings, dict) else {}
        row["answers"] += 1
        row["tokens"] += prompt + completion
        row["compute_seconds"] += float(timings.get("total_ms") or 0) / 1000
        row["generation_seconds"] += float(timings.get("generation_ms") or 0) / 1000
        if timings.get("device"):
            row["devices"].add(timings["device"])
        if status in (ConversationStatus.RESOLVED, ConversationStatus.CLOSED):
            resolved.setdefault(key, set()).add(conversation)
    result = []
    for key, row in sorted(rows.items(), key=lambda item: (item[1]["bot_name"], item[0][1])):
        count = len(resolved.get(key, ()))
        result.append(
            {
                **row,
                "devices": sorted(row["devices"]),
                "compute_seconds": round(row["compute_seconds"], 3),
                "generation_seconds": round(row["generation_seconds"], 3),
                "resolved_conversations": count,
                "seconds_per_answer": round(row["compute_seconds"] / row["answers"], 3),
                "seconds_per_resolved": round(row["compute_seconds"] / count, 3) if count else None,
            }
        )
    start, end = _bounds(chosen)
    runs = ModelVersion.objects.for_organization(chosen.organization).filter(created_at__gte=start, created_at__lt=end)
    if chosen.bot is not None:
        runs = runs.filter(bot=chosen.bot)
    training = [
        {
            "bot": bot_id,
            "bot_name": name,
            "model_version": f"v{number}",
            "status": status,
            "seconds": (compute or {}).get("seconds"),
            "tokens": (compute or {}).get("tokens"),
            "device": (compute or {}).get("device"),
        }
        for bot_id, name, number, status, compute in runs.order_by("bot__name", "number").values_list(
            "bot_id", "bot__name", "number", "status", "compute"
        )
    ]
    return {"answers": result, "training": training}


def bot_answer_costs(*, bot: Bot, days: int = DEFAULT_DAYS) -> list[dict[str, Any]]:
    """What one of the bot's answers cost over the last `days` days, by the model that
    wrote it (the base model's name and the version: `base`, `v3`) and for quoted answers:
    answers, worker seconds per answer (`timings.total_ms`), of them the model's own
    (`generation_ms`), tokens per answer and the devices. Test chats count: they cost the
    same compute. The most used model first."""
    today = timezone.localdate()
    chosen = AnalyticsFilter(
        organization=bot.organization, since=today - timedelta(days=days - 1), until=today, bot=bot, include_test=True
    )
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    answers = _messages(chosen).filter(BOT_ANSWER)
    for version, timings, prompt, completion in answers.values_list(
        "model_version", "timings", "prompt_tokens", "completion_tokens"
    ):
        timings = timings if isinstance(timings, dict) else {}
        generated = timings.get("mode") == "generative"
        # Answers from before the model was recorded name only their version.
        key = (str(timings.get("model") or "") if generated else "", (version or "base") if generated else "quoted")
        row = rows.setdefault(
            key,
            {"model": key[0], "model_version": key[1], "answers": 0, "seconds": 0.0, "generation_seconds": 0.0,
             "tokens": 0, "devices": set()},
        )  # fmt: skip
        row["answers"] += 1
        row["seconds"] += float(timings.get("total_ms") or 0) / 1000
        row["generation_seconds"] += float(timings.get("generation_ms") or 0) / 1000
        row["tokens"] += prompt + completion
        if timings.get("device"):
            row["devices"].add(timings["device"])
    return [
        {
            "model": row["model"],
            "model_version": row["model_version"],
            "answers": row["answers"],
            "seconds_per_answer": round(row["seconds"] / row["answers"], 3),
            "generation_seconds_per_answer": round(row["generation_seconds"] / row["answers"], 3),
            "tokens_per_answer": round(row["tokens"] / row["answers"]),
            "devices": sorted(row["devices"]),
        }
        for row in sorted(rows.values(), key=lambda row: (-row["answers"], row["model"], row["model_version"]))
    ]


def analytics_summary(chosen: AnalyticsFilter, *, with_clusters: bool = True) -> dict[str, Any]:
    """Every figure of the analytics page for `chosen`, as plain JSON types.

    Deflection: conversations with a visitor message, a bot answer and no person
    involved (no agent message, no ticket, never waiting for or with an agent), over
    conversations with a visitor message; handoff: those that reached a person, over
    the same. CSAT: the share of thumbs up among rated answers. Rates are 0-1, None
    when there is nothing to divide by. Clustering embeds up to 500 questions, so
    `with_clusters=False` skips it where it is not shown."""
    latencies = _latencies(chosen)
    daily = _daily_rows(chosen, latencies)
    totals = {name: sum(row[name] for row in daily) for name in DAILY_FIELDS}
    clusters: list[dict[str, Any]] = []
    clusters_error = ""
    if with_clusters:
        from retrieval.embeddings import EmbeddingModelError

        try:
            clusters = analytics_clusters(chosen)
        except EmbeddingModelError as error:
            clusters_error = str(error)
    return {
        "filter": {
            "since": chosen.since.isoformat(),
            "until": chosen.until.isoformat(),
            "bot": chosen.bot.pk if chosen.bot is not None else None,
            "include_test": chosen.include_test,
        },
        "totals": totals,
        "rates": {
            "deflection": ratio(totals["deflected"], totals["engaged_conversations"]),
            "handoff": ratio(totals["handed_off"], totals["engaged_conversations"]),
            "csat": ratio(totals["thumbs_up"], totals["thumbs_up"] + totals["thumbs_down"]),
        },
        "latency": {
            key: latency_figures([value for values in latencies[key].values() for value in values])
            for key in LATENCY_KEYS
        },
        "daily": daily,
        "moderation": analytics_moderation(chosen),
        "top_questions": analytics_top_questions(chosen),
        "clusters": clusters,
        "clusters_error": clusters_error,
        "compute": analytics_compute(chosen),
    }


CSV_COLUMNS = (
    "date",
    *DAILY_FIELDS,
    "first_token_p50_ms",
    "first_token_p95_ms",
    "total_p50_ms",
    "total_p95_ms",
)


def analytics_csv_rows(chosen: AnalyticsFilter) -> list[list[Any]]:
    """The CSV export: a header, then one row per day (blank where a day has no latency)."""
    rows: list[list[Any]] = [list(CSV_COLUMNS)]
    for day in analytics_daily(chosen):
        rows.append(["" if day[column] is None else day[column] for column in CSV_COLUMNS])
    return rows
