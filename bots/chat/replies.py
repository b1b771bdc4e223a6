"""Answering one visitor message: retrieve, build the prompt, generate (or quote),
stream deltas to the conversation, save the reply with its citations, scores,
token counts and timings.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.utils import timezone

from bots.chat.events import Citation, DeltaEvent, DoneEvent, ErrorEvent, ResetEvent, StatusEvent
from bots.chat.publishing import publish
from bots.models import AnswerMode, Bot, Message, MessageStatus, ModelVersionStatus, Role
from bots.moderation_log.findings import strongest_action
from retrieval.embeddings import model_is_packaged
from retrieval.models import Document
from retrieval.search import IndexUnavailable, SearchHit, search
from workers.generation.adapters import AdapterUnavailable
from workers.generation.cancellation import reply_is_cancelled
from workers.generation.confidence import confidence
from workers.generation.extractive import extractive_answer
from workers.generation.loading import LoadedModel, ModelUnavailable, holder
from workers.generation.prompt import (
    Passage,
    PromptTooLong,
    Turn,
    build_prompt,
    cited_passages,
    strip_unknown_citations,
)
from workers.generation.streaming import GenerationStats, SamplingParameters, stream_text
from workers.moderation.leakage import canary_for
from workers.moderation.pipeline import OutputScreen, Policy, SentenceGate, screen_passage, screen_question
from workers.moderation.vectors import embed_text
from workers.moderation.verdicts import Action

logger = logging.getLogger(__name__)

RETRIEVAL_K = 5
HISTORY_TURNS = 6
FINAL_STATUSES = {MessageStatus.DONE, MessageStatus.FAILED, MessageStatus.BLOCKED}
NOTHING_FOUND = "I'm sorry, I couldn't find that in our help content. Would you like me to connect you with a person?"
UNSURE = "I'm not completely sure about this. Would you like me to connect you with a person?"


@dataclass
class _Stream:
    """What has been sent of one reply so far."""

    message: Message
    started: float
    seq: int = 0
    text: str = ""
    first_token_ms: float | None = None  # the first text produced (decoded or quoted)
    first_text_ms: float | None = None  # the first text published, after screening
    pieces: list[str] = field(default_factory=list)

    def mark_first_token(self) -> None:
        if self.first_token_ms is None:
            self.first_token_ms = round((time.perf_counter() - self.started) * 1000, 1)

    def send(self, piece: str) -> None:
        if not piece:
            return
        self.mark_first_token()
        if self.first_text_ms is None:
            self.first_text_ms = round((time.perf_counter() - self.started) * 1000, 1)
        self.text += piece
        event: DeltaEvent = {"type": "delta", "message_id": self.message.pk, "seq": self.seq, "text": piece}
        publish(self.message.conversation_id, event)
        self.seq += 1


def _words(text: str) -> Iterator[str]:
    """Quoted text streamed a word at a time, the way generated text arrives."""
    yield from re.findall(r"\S+\s*|\s+", text)


def _question_and_turns(message: Message) -> tuple[str, list[Turn]]:
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
        return "", []
    turns = [
        Turn(role="customer" if m.role == Role.VISITOR else "assistant", text=m.text)
        for m in earlier[:question_index]
        if m.text.strip()
    ]
    return earlier[question_index].text, turns


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
    stream = _Stream(message=message, started=time.perf_counter())
    try:
        _answer(message, stream, queue_wait_ms)
    except Exception:
        logger.exception("reply %s failed", message.pk)
        Message.objects.filter(pk=message.pk).update(status=MessageStatus.FAILED, updated_at=timezone.now())
        _publish_failure(
            conversation_id,
            message.pk,
            code="reply_failed",
            text=stream.text,
            said="Sorry, something went wrong while answering. Please try again.",
        )


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


def _question_blocked(message: Message, policy: Policy, query_vectors: dict[str, np.ndarray]) -> bool:
    """Whether the visitor message this reply answers is blocked. The web process screened
    it with the rules before storing it; here the classifiers (hate, injection) complete
    the check with the vector that searched for it, and their verdict joins the message's."""
    question = (
        Message.objects.filter(
            conversation_id=message.conversation_id, role=Role.VISITOR, created_at__lte=message.created_at
        )
        .order_by("-created_at", "-pk")
        .first()
    )
    if question is None:
        return False
    if any(v.get("action") == "block" for v in question.moderation):
        return True
    vector = next((v[0] for name, v in query_vectors.items() if model_is_packaged(name)), None)
    if vector is None:
        vector = embed_text(question.text)
    verdict = screen_question(question.text, policy, vector, embed_text)
    if verdict.findings and verdict.as_dict() not in question.moderation:  # a retried reply adds it once
        verdicts = [*question.moderation, verdict.as_dict()]
        Message.objects.filter(pk=question.pk).update(moderation=verdicts, moderation_action=strongest_action(verdicts))
    return verdict.action == Action.BLOCK


def _screen_passages(hits: list[SearchHit]) -> tuple[list[SearchHit], list[dict[str, Any]]]:
    """Passages that carry instructions for the bot are left out of the prompt (they are
    never obeyed); each one left out is recorded on the reply."""
    kept, verdicts = [], []
    for hit in hits:
        verdict = screen_passage(hit.text)
        if verdict.findings:
            reasons = "; ".join(sorted({f.reason for f in verdict.findings}))
            verdicts.append(
                {
                    "action": "flag",
                    "excerpt": hit.snippet,
                    "findings": [
                        {
                            "filter": "injection",
                            "action": "flag",
                            "reason": f"retrieved passage (chunk {hit.chunk_id}) left out of the prompt: {reasons}",
                            "span": [0, len(hit.snippet)],
                        }
                    ],
                }
            )
        else:
            kept.append(hit)
    return kept, verdicts


def _answer(message: Message, stream: _Stream, queue_wait_ms: float) -> None:
    bot = message.conversation.bot
    question, turns = _question_and_turns(message)
    started = time.perf_counter()
    query_vectors: dict[str, np.ndarray] = {}
    try:
        hits = search(
            knowledge_bases=list(bot.knowledge_bases.all()), query=question, k=RETRIEVAL_K, query_vectors=query_vectors
        )
    except IndexUnavailable:
        logger.exception("retrieval failed for reply %s", message.pk)
        hits = []
    retrieval_ms = round((time.perf_counter() - started) * 1000, 1)
    policy = Policy.from_bot(bot.moderation_policy)
    blocked_input = _question_blocked(message, policy, query_vectors)
    hits, passage_verdicts = _screen_passages(hits) if policy.injection is not None else (hits, [])
    passages = [
        Passage(h.chunk_id, h.document_id, h.document_title, tuple(h.heading_path), h.location, h.text, h.score)
        for h in hits
    ]
    top_score = next((h.dense_score for h in hits if h.dense_score is not None), hits[0].score if hits else None)
    stats = GenerationStats()
    mode = "extractive"
    canary = canary_for(settings.SECRET_KEY, message.pk)
    packaged = {kb.pk for kb in bot.knowledge_bases.all() if model_is_packaged(kb.embedding_model)}
    vectors = [h.vector for h in hits if h.vector is not None and h.knowledge_base_id in packaged]
    # Nothing the bot writes reaches the visitor before it passed the output filters.
    screen = OutputScreen(
        policy,
        passages=[p.text for p in passages],
        passage_vectors=np.stack(vectors) if vectors and len(vectors) == len(hits) else None,
        canary=canary,
        instructions=bot.instructions,
        grounded=True,
        embed=embed_text,
    )
    gate = SentenceGate(screen, stream.send, on_text=stream.mark_first_token)
    if blocked_input:
        stream.send(policy.safe_reply)
        gate.blocked, passages = True, []
        mode = "blocked_input"
    elif not passages or (top_score is not None and top_score < bot.handoff_threshold):
        for piece in _words(NOTHING_FOUND):
            stream.send(piece)
        passages = []
    elif bot.answer_mode == AnswerMode.GENERATIVE and _generate(
        message, bot, question, turns, passages, gate, stats, canary
    ):
        mode = "generative"
    else:
        for piece in _words(extractive_answer(question, passages)):
            gate.feed(piece)
    gate.flush()
    if gate.removed and not gate.released and not gate.blocked:
        # Nothing the model said was supported by the passages: say so and offer a person.
        for piece in _words(NOTHING_FOUND):
            stream.send(piece)
        passages = []

    answer = strip_unknown_citations(stream.text.strip(), len(passages))
    cited = cited_passages(answer, passages)
    score = confidence(top_score=top_score, answer=answer, cited_texts=[p.text for _, p in cited]) if passages else 0.0
    handoff = not passages or score < bot.answer_threshold or gate.blocked
    if handoff and passages and not gate.blocked:
        stream.send(f"\n\n{UNSURE}")
        answer = f"{answer}\n\n{UNSURE}"
    urls = dict(Document.objects.filter(pk__in={p.document_id for _, p in cited}).values_list("pk", "source_url"))
    citations: list[Citation] = [
        {
            "number": n,
            "chunk_id": p.chunk_id,
            "document_id": p.document_id,
            "title": p.title,
            "location": p.location,
            "url": urls.get(p.document_id, ""),
        }
        for n, p in cited
    ]
    timings = {
        "queue_wait_ms": queue_wait_ms,
        "retrieval_ms": retrieval_ms,
        "first_token_ms": stream.first_token_ms,
        "first_text_ms": stream.first_text_ms,
        "total_ms": round((time.perf_counter() - stream.started) * 1000, 1),
        "mode": mode,
    }
    if mode == "generative":  # compute accounting: the model's own time, and where it ran
        timings["generation_ms"] = round(stats.seconds * 1000, 1)
        timings["device"] = stats.device
    Message.objects.filter(pk=message.pk).update(
        text=answer,
        status=MessageStatus.BLOCKED if gate.blocked else MessageStatus.DONE,
        moderation=passage_verdicts + gate.verdicts,
        moderation_action=strongest_action(passage_verdicts + gate.verdicts),
        citations=citations,
        retrieval_scores=[{"chunk_id": h.chunk_id, "score": h.score, "dense": h.dense_score} for h in hits],
        prompt_tokens=stats.prompt_tokens,
        completion_tokens=stats.completion_tokens,
        model_version=stats.model_version if mode == "generative" else "",
        timings=timings,
        confidence=score,
        updated_at=timezone.now(),
    )
    done: DoneEvent = {
        "type": "done",
        "message_id": message.pk,
        "text": answer,
        "citations": citations,
        "confidence": score,
        "handoff_suggested": handoff,
        "status": "blocked" if gate.blocked else "done",
    }
    publish(message.conversation_id, done)


def adapter_for(bot: Bot, loaded: LoadedModel) -> tuple[str | None, str]:
    """The bot's deployed adapter, loaded on first use (its key), and the label the
    message records; the base model when none is deployed or it cannot be used."""
    version = bot.model_version
    if version is None:
        return None, "base"
    if version.status != ModelVersionStatus.READY or version.base_model != loaded.name:
        logger.warning("bot %s: %s is not servable on %s; answering with the base model", bot.pk, version, loaded.name)
        return None, "base"
    key = f"version-{version.pk}"
    try:
        loaded.adapters.ensure(key, Path(settings.MEDIA_ROOT) / version.adapter_dir / "adapter")
    except AdapterUnavailable as problem:
        logger.error("bot %s: %s; answering with the base model", bot.pk, problem)
        return None, "base"
    return key, version.label


def _generate(
    message: Message,
    bot: Bot,
    question: str,
    turns: list[Turn],
    passages: list[Passage],
    gate: SentenceGate,
    stats: GenerationStats,
    canary: str,
) -> bool:
    """Stream a generated answer; False (nothing sent) when the model is unavailable, the
    prompt cannot fit, or the model said nothing, so the caller quotes instead."""
    try:
        loaded = holder.get()
    except ModelUnavailable:
        return False
    params = SamplingParameters.from_bot(bot.generation)
    try:
        prompt = build_prompt(
            instructions=f"{bot.instructions}\n[{canary}]".strip(),
            passages=passages,
            turns=turns,
            question=question,
            count_tokens=loaded.count_tokens,
            context_window=loaded.context_window,
            answer_budget=params.max_new_tokens,
        )
    except PromptTooLong:
        return False
    passages[:] = list(prompt.passages)  # citations refer to the passages the model saw
    adapter, stats.model_version = adapter_for(bot, loaded)
    produced = False
    for piece in stream_text(
        loaded,
        prompt.text,
        params,
        stop_sequences=prompt.stop_sequences,
        cancelled=lambda: gate.blocked or reply_is_cancelled(message.pk),
        stats=stats,
        scheduler=loaded.scheduler,
        adapter=adapter,
    ):
        if not produced and not piece.strip():
            continue  # leading whitespace after "Assistant:"
        gate.feed(piece if produced else piece.lstrip())
        produced = True
    return produced or stats.stopped_by == "cancelled"
