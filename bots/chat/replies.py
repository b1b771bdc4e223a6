"""A bot reply's rows and events: load the question, history and bot, run the reply
engine (workers.generation.answer) with the real search, model and publisher, then save
the reply with its citations, scores, token counts and timings and publish `done`.

The decisions (blocked input, nothing found, generated or quoted, what the gate
removed, handoff, confidence) are the engine's; this module only reads and writes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.utils import timezone

from bots.chat.events import Citation, DeltaEvent, DoneEvent, ErrorEvent, ResetEvent, StatusEvent
from bots.chat.publishing import publish
from bots.chat.rendering import citation_link
from bots.chat.services import question_screened
from bots.models import AnswerMode, Bot, Message, MessageStatus, ModelVersionStatus, Role
from bots.moderation_log.selectors import moderation_taught
from bots.tuning.adapter_files import adapter_folder
from retrieval.embeddings import model_is_packaged
from retrieval.hits import SearchHit
from retrieval.models import Document, KnowledgeBase
from retrieval.search import IndexUnavailable, search
from workers.generation.adapters import AdapterRef
from workers.generation.answer import RETRIEVAL_K, BotSettings, ReplyOutcome, ReplyRequest, ReplyTools, reply_answer
from workers.generation.cancellation import reply_is_cancelled
from workers.generation.loading import holder_for
from workers.generation.model import LoadedModel, ModelUnavailable
from workers.generation.prompt import Passage, Turn
from workers.moderation.leakage import canary_for
from workers.moderation.verdicts import strongest_action

logger = logging.getLogger(__name__)

HISTORY_TURNS = 6
FINAL_STATUSES = {MessageStatus.DONE, MessageStatus.FAILED, MessageStatus.BLOCKED}


@dataclass
class _Deltas:
    """Numbers the reply's text pieces and publishes them as `delta` events."""

    message_id: int
    conversation_id: int
    seq: int = 0

    def send(self, piece: str) -> None:
        event: DeltaEvent = {"type": "delta", "message_id": self.message_id, "seq": self.seq, "text": piece}
        publish(self.conversation_id, event)
        self.seq += 1


def _question_and_turns(message: Message) -> tuple[Message | None, list[Turn]]:
    earlier = list(
        Message.objects.filter(
            conversation_id=message.conversation_id,
            created_at__lte=message.created_at,
            role__in=[Role.VISITOR, Role.BOT, Role.AGENT],
        )
        .exclude(pk=message.pk)
        .exclude(role=Role.BOT, status__in=[MessageStatus.PENDING, MessageStatus.STREAMING, MessageStatus.FAILED])
        .order_by("-created_at", "-pk")[: HISTORY_TURNS + 1]
    )
    earlier.reverse()
    question_index = max((i for i, m in enumerate(earlier) if m.role == Role.VISITOR), default=-1)
    if question_index < 0:
        return None, []
    turns = [
        Turn(role="customer" if m.role == Role.VISITOR else "assistant", text=m.text)
        for m in earlier[:question_index]
        if m.text.strip()
    ]
    return earlier[question_index], turns


def adapter_ref(bot: Bot) -> AdapterRef | None:
    """The bot's deployed model version as the engine takes it (None: the base model)."""
    version = bot.model_version
    if version is None:
        return None
    ready = version.status == ModelVersionStatus.READY
    return AdapterRef(
        key=f"version-{version.pk}",
        # A ready adapter is fetched from object storage if this host lacks it.
        folder=adapter_folder(version=version)
        if ready
        else Path(settings.MEDIA_ROOT) / version.adapter_dir / "adapter",
        label=version.label,
        base_model=version.base_model,
        ready=ready,
    )


def bot_settings(bot: Bot) -> BotSettings:
    return BotSettings(
        instructions=bot.instructions,
        generative=bot.answer_mode == AnswerMode.GENERATIVE,
        handoff_threshold=bot.handoff_threshold,
        answer_threshold=bot.answer_threshold,
        moderation_policy=bot.moderation_policy if isinstance(bot.moderation_policy, dict) else {},
        generation=bot.generation if isinstance(bot.generation, dict) else {},
        adapter=adapter_ref(bot),
        packaged_knowledge_bases=frozenset(
            kb.pk for kb in bot.knowledge_bases.all() if model_is_packaged(kb.embedding_model)
        ),
        taught=moderation_taught(organization_id=bot.organization_id),
    )


def loaded_model(bot: Bot | None = None) -> LoadedModel | None:
    """The bot's base model (NEO_MODEL without a bot) as this process holds it, or None
    when it cannot be loaded (replies are then quoted)."""
    try:
        return holder_for(bot.answering_model if bot is not None else "").get()
    except ModelUnavailable:
        return None


def reply_to_question(*, bot: Bot, question: str) -> ReplyOutcome:
    """The reply `bot` would write to `question` asked on its own, through the same
    screening, search, generation or quoting, and gate as a chat reply, with nothing
    stored or sent (evaluate_answers)."""
    text, verdicts = question_screened(bot=bot, text=question)
    request = ReplyRequest(
        question=text,
        turns=[],
        bot=bot_settings(bot),
        canary=canary_for(settings.SECRET_KEY, bot.pk),
        question_verdicts=verdicts,
    )

    find = _bot_search(list(bot.knowledge_bases.all()), what=f"an evaluated question of bot {bot.pk}")
    return reply_answer(request, ReplyTools(search=find, emit=lambda _: None, model=partial(loaded_model, bot)))


def _bot_search(
    knowledge_bases: list[KnowledgeBase], *, what: str
) -> Callable[[str, dict[str, np.ndarray]], list[SearchHit]]:
    """The reply engine's search over the bot's knowledge bases: an index that cannot be
    read is logged and answered as no passages (the reply says it does not know)."""

    def find(query: str, query_vectors: dict[str, np.ndarray]) -> list[SearchHit]:
        try:
            return search(knowledge_bases=knowledge_bases, query=query, k=RETRIEVAL_K, query_vectors=query_vectors)
        except IndexUnavailable:
            logger.exception("retrieval failed for %s", what)
            return []

    return find


def reply_generate(*, message: Message) -> None:
    """Produce the bot's reply `message` (pending). Idempotent: a finished reply is left
    alone; a half-streamed one (a redelivered task) is reset and produced again."""
    if message.status in FINAL_STATUSES:
        return
    conversation_id = message.conversation_id
    if message.status == MessageStatus.STREAMING:
        reset: ResetEvent = {"type": "reset", "message_id": message.pk}
        publish(conversation_id, reset)
    queue_wait_ms = round((timezone.now() - message.created_at).total_seconds() * 1000, 1)
    Message.objects.filter(pk=message.pk).update(status=MessageStatus.STREAMING, text="", updated_at=timezone.now())
    typing: StatusEvent = {"type": "status", "status": "bot_typing"}
    publish(conversation_id, typing)
    sent: list[str] = []
    try:
        bot = message.conversation.bot
        question, turns = _question_and_turns(message)
        deltas = _Deltas(message_id=message.pk, conversation_id=conversation_id)
        request = ReplyRequest(
            question=question.text if question else "",
            turns=turns,
            bot=bot_settings(bot),
            canary=canary_for(settings.SECRET_KEY, bot.pk),
            question_verdicts=list(question.moderation) if question else None,
        )
        find = _bot_search(list(bot.knowledge_bases.all()), what=f"reply {message.pk}")

        def emit(piece: str) -> None:
            sent.append(piece)
            deltas.send(piece)

        tools = ReplyTools(
            search=find, emit=emit, model=partial(loaded_model, bot), cancelled=lambda: reply_is_cancelled(message.pk)
        )
        outcome = reply_answer(request, tools)
        if question is not None and outcome.question_verdict is not None:
            verdicts = [*question.moderation, outcome.question_verdict]
            Message.objects.filter(pk=question.pk).update(
                moderation=verdicts, moderation_action=strongest_action(verdicts)
            )
        _save(message, outcome, queue_wait_ms)
    except Exception:
        logger.exception("reply %s failed", message.pk)
        Message.objects.filter(pk=message.pk).update(status=MessageStatus.FAILED, updated_at=timezone.now())
        _publish_failure(
            conversation_id,
            message.pk,
            code="reply_failed",
            text="".join(sent),
            said="Sorry, something went wrong while answering. Please try again.",
        )


def _save(message: Message, outcome: ReplyOutcome, queue_wait_ms: float) -> None:
    """Store the finished reply, then tell the conversation's clients it is done."""
    # Where each cited document is read: its page, else its knowledge base's help centre.
    sources = {
        pk: (source_url, public_base_url)
        for pk, source_url, public_base_url in Document.objects.filter(
            pk__in={p.document_id for _, p in outcome.cited}
        ).values_list("pk", "source_url", "knowledge_base__public_base_url")
    }

    def url(passage: Passage) -> str:
        source_url, public_base_url = sources.get(passage.document_id, ("", ""))
        return citation_link(source_url=source_url, public_base_url=public_base_url, location=passage.location)

    citations: list[Citation] = [
        {
            "number": n,
            "chunk_id": p.chunk_id,
            "document_id": p.document_id,
            "title": p.title,
            "location": p.location,
            "url": url(p),
        }
        for n, p in outcome.cited
    ]
    stats = outcome.stats
    timings: dict[str, Any] = {"queue_wait_ms": queue_wait_ms, **outcome.timings}
    Message.objects.filter(pk=message.pk).update(
        text=outcome.text,
        status=MessageStatus.BLOCKED if outcome.blocked else MessageStatus.DONE,
        moderation=outcome.moderation,
        moderation_action=outcome.moderation_action,
        citations=citations,
        retrieval_scores=[{"chunk_id": h.chunk_id, "score": h.score, "dense": h.dense_score} for h in outcome.hits],
        prompt_tokens=stats.prompt_tokens,
        completion_tokens=stats.completion_tokens,
        model_version=stats.model_version if outcome.mode == "generative" else "",
        timings=timings,
        confidence=outcome.confidence,
        updated_at=timezone.now(),
    )
    done: DoneEvent = {
        "type": "done",
        "message_id": message.pk,
        "text": outcome.text,
        "citations": citations,
        "confidence": outcome.confidence,
        "handoff_suggested": outcome.handoff,
        "status": "blocked" if outcome.blocked else "done",
    }
    publish(message.conversation_id, done)


def _publish_failure(conversation_id: int, message_id: int, *, code: str, text: str, said: str) -> None:
    """Tell the conversation's clients that reply `message_id` failed: an `error` they
    show, then the reply's `done` with status failed and a handoff offer."""
    error: ErrorEvent = {"type": "error", "code": code, "message": said, "message_id": message_id}
    publish(conversation_id, error)
    failed: DoneEvent = {
        "type": "done",
        "message_id": message_id,
        "text": text,
        "citations": [],
        "confidence": None,
        "handoff_suggested": True,
        "status": "failed",
    }
    publish(conversation_id, failed)


def replies_fail_stalled(*, now: datetime | None = None) -> list[int]:
    """Fail the replies no worker is finishing: pending or streaming, untouched for
    NEO_REPLY_STALL_SECONDS (their worker was killed, or the queue is hopelessly behind).
    The visitor's message stays; clients get `reply_interrupted` and may ask again. A
    redelivered task for such a reply later finds it failed and does nothing, so no text
    is ever doubled. Returns the failed replies' ids."""
    cutoff = (now or timezone.now()) - timedelta(seconds=settings.NEO_REPLY_STALL_SECONDS)
    unfinished = [MessageStatus.PENDING, MessageStatus.STREAMING]
    stalled = list(
        Message.objects.filter(role=Role.BOT, status__in=unfinished, updated_at__lt=cutoff).values_list(
            "pk", "conversation_id"
        )
    )
    failed = []
    for message_id, conversation_id in stalled:
        # Conditional, so a reply that finished meanwhile is left as it is.
        changed = Message.objects.filter(pk=message_id, status__in=unfinished, updated_at__lt=cutoff).update(
            status=MessageStatus.FAILED, text="", updated_at=timezone.now()
        )
        if changed:
            logger.warning("reply %s stalled: marked failed", message_id)
            _publish_failure(
                conversation_id,
                message_id,
                code="reply_interrupted",
                text="",
                said="Sorry, the answer was interrupted. Please send your question again.",
            )
            failed.append(message_id)
    return failed
