"""The reply decision tree, as plain data: from a visitor's question and what retrieval
found to the text they read, its citations, confidence and moderation record.

Blocked input gets the safe reply; nothing found (or nothing above the bot's handoff
threshold) gets an apology and a handoff offer; otherwise a generated answer when the
bot is generative and a model is loaded, else a quoted one. Every piece passes the
sentence gate before `emit` sends it; a generated answer the grounding check removed
entirely becomes "nothing found"; a low confidence adds the handoff offer.

No database, no channel layer: the caller (bots.chat.replies) loads the rows, passes
the search, model and emit callables in, and saves and publishes the outcome. Tests run
every branch with plain functions.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from retrieval.embeddings import model_is_packaged
from retrieval.hits import SearchHit
from workers.generation.adapters import AdapterRef, adapter_choose
from workers.generation.confidence import confidence
from workers.generation.extractive import extractive_answer
from workers.generation.model import LoadedModel
from workers.generation.prompt import (
    Passage,
    PromptTooLong,
    Turn,
    build_prompt,
    cited_passages,
    strip_unknown_citations,
)
from workers.generation.sampling import GenerationStats, SamplingParameters
from workers.generation.streaming import stream_text
from workers.moderation.pipeline import OutputScreen, Policy, SentenceGate, screen_passage, screen_question
from workers.moderation.taught import NOTHING_TAUGHT, Taught
from workers.moderation.vectors import embed_text
from workers.moderation.verdicts import Action, stored_findings, strongest_action

logger = logging.getLogger(__name__)

RETRIEVAL_K = 5
NOTHING_FOUND = "I'm sorry, I couldn't find that in our help content. Would you like me to connect you with a person?"
UNSURE = "I'm not completely sure about this. Would you like me to connect you with a person?"


@dataclass(frozen=True)
class BotSettings:
    """What of a bot a reply needs."""

    instructions: str = ""
    generative: bool = False
    handoff_threshold: float = 0.0
    answer_threshold: float = 0.0
    moderation_policy: dict[str, Any] = field(default_factory=dict)
    generation: dict[str, Any] = field(default_factory=dict)
    adapter: AdapterRef | None = None
    # Knowledge bases embedded with the packaged model: only their chunk vectors and
    # query vectors are comparable with the moderation filters' embeddings.
    packaged_knowledge_bases: frozenset[int] = frozenset()
    # What the bot's organization marked "not a problem" (workers.moderation.taught).
    taught: Taught = NOTHING_TAUGHT


@dataclass(frozen=True)
class ReplyRequest:
    """One reply to write. `question_verdicts` are the verdicts stored on the visitor's
    message by the web process (None when there is no visitor message to screen)."""

    question: str
    turns: list[Turn]
    bot: BotSettings
    canary: str
    question_verdicts: list[dict[str, Any]] | None = None


@dataclass(frozen=True)
class ReplyTools:
    """The outside world of a reply. `search(question, query_vectors)` returns the hits
    and fills `query_vectors` (embedding model name -> vector); `model()` is the loaded
    model or None; `emit(text)` sends screened text to the visitor."""

    search: Callable[[str, dict[str, np.ndarray]], list[SearchHit]]
    emit: Callable[[str], None]
    model: Callable[[], LoadedModel | None] = lambda: None
    embed: Callable[[str], np.ndarray] = embed_text
    cancelled: Callable[[], bool] = lambda: False


@dataclass
class ReplyOutcome:
    text: str
    blocked: bool
    handoff: bool
    confidence: float
    cited: list[tuple[int, Passage]]
    hits: list[SearchHit]
    moderation: list[dict[str, Any]]
    # A verdict to add to the visitor's message (the classifiers' part of its screening).
    question_verdict: dict[str, Any] | None
    mode: str
    stats: GenerationStats
    timings: dict[str, Any]

    @property
    def moderation_action(self) -> str:
        return strongest_action(self.moderation)


@dataclass
class _Stream:
    """What has been sent of one reply so far."""

    emit: Callable[[str], None]
    started: float
    text: str = ""
    first_token_ms: float | None = None  # the first text produced (decoded or quoted)
    first_text_ms: float | None = None  # the first text published, after screening

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
        self.emit(piece)


def words(text: str) -> Iterator[str]:
    """Quoted text streamed a word at a time, the way generated text arrives."""
    yield from re.findall(r"\S+\s*|\s+", text)


def _question_verdict(
    request: ReplyRequest, policy: Policy, query_vectors: dict[str, np.ndarray], tools: ReplyTools
) -> tuple[bool, dict[str, Any] | None]:
    """Whether the question is blocked, and the classifiers' verdict to add to it. The web
    process screened it with the rules before storing it; here the classifiers (hate,
    injection) complete the check with the vector that searched for it."""
    stored = request.question_verdicts
    if stored is None:
        return False, None
    if any(v.get("action") == "block" for v in stored):
        return True, None
    vector = next((v[0] for name, v in query_vectors.items() if model_is_packaged(name)), None)
    if vector is None:
        vector = tools.embed(request.question)
    verdict = screen_question(request.question, policy, vector, tools.embed)
    # The web process already recorded what its rules found; add only what is new, so the
    # moderation log gives each reason once (and a retried reply adds nothing again).
    recorded = {(f.get("filter"), f.get("reason")) for v in stored for f in stored_findings(v)}
    found = verdict.as_dict()
    new = [f for f in found["findings"] if (f["filter"], f["reason"]) not in recorded]
    return verdict.action == Action.BLOCK, {**found, "findings": new} if new else None


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


def reply_answer(request: ReplyRequest, tools: ReplyTools) -> ReplyOutcome:
    """Write one reply: retrieve, screen, generate or quote, stream through the gate, and
    decide confidence and handoff. Returns everything the caller stores."""
    bot = request.bot
    stream = _Stream(emit=tools.emit, started=time.perf_counter())
    query_vectors: dict[str, np.ndarray] = {}
    hits = tools.search(request.question, query_vectors)
    retrieval_ms = round((time.perf_counter() - stream.started) * 1000, 1)
    policy = Policy.from_bot(bot.moderation_policy, bot.taught)
    screening_since = time.perf_counter()
    blocked_input, question_verdict = _question_verdict(request, policy, query_vectors, tools)
    hits, passage_verdicts = _screen_passages(hits) if policy.injection is not None else (hits, [])
    screening_ms = round((time.perf_counter() - screening_since) * 1000, 1)
    passages = [
        Passage(h.chunk_id, h.document_id, h.document_title, tuple(h.heading_path), h.location, h.text, h.score)
        for h in hits
    ]
    top_score = next((h.dense_score for h in hits if h.dense_score is not None), hits[0].score if hits else None)
    stats = GenerationStats()
    mode = "extractive"
    vectors = [h.vector for h in hits if h.vector is not None and h.knowledge_base_id in bot.packaged_knowledge_bases]
    # Nothing the bot writes reaches the visitor before it passed the output filters.
    screen = OutputScreen(
        policy,
        passages=[p.text for p in passages],
        passage_vectors=np.stack(vectors) if vectors and len(vectors) == len(hits) else None,
        canary=request.canary,
        instructions=bot.instructions,
        grounded=True,
        embed=tools.embed,
    )
    gate = SentenceGate(screen, stream.send, on_text=stream.mark_first_token)
    if blocked_input:
        stream.send(policy.safe_reply)
        gate.blocked, passages = True, []
        mode = "blocked_input"
    elif not passages or (top_score is not None and top_score < bot.handoff_threshold):
        for piece in words(NOTHING_FOUND):
            stream.send(piece)
        passages = []
    elif bot.generative and _generate(request, passages, gate, stats, tools):
        mode = "generative"
    else:
        for piece in words(extractive_answer(request.question, passages)):
            gate.feed(piece)
    gate.flush()
    if gate.removed and not gate.released and not gate.blocked:
        # Nothing the model said was supported by the passages: say so and offer a person.
        for piece in words(NOTHING_FOUND):
            stream.send(piece)
        passages = []

    answer = strip_unknown_citations(stream.text.strip(), len(passages))
    cited = cited_passages(answer, passages)
    score = confidence(top_score=top_score, answer=answer, cited_texts=[p.text for _, p in cited]) if passages else 0.0
    handoff = not passages or score < bot.answer_threshold or gate.blocked
    if handoff and passages and not gate.blocked:
        stream.send(f"\n\n{UNSURE}")
        answer = f"{answer}\n\n{UNSURE}"
    timings: dict[str, Any] = {
        "retrieval_ms": retrieval_ms,
        "screening_ms": screening_ms,  # the question's classifiers and the passages' check
        "first_token_ms": stream.first_token_ms,
        "first_text_ms": stream.first_text_ms,
        "total_ms": round((time.perf_counter() - stream.started) * 1000, 1),
        "mode": mode,
    }
    if mode == "generative":  # compute accounting: the model's own time, where it ran, which model
        timings["generation_ms"] = round(stats.seconds * 1000, 1)
        timings["device"] = stats.device
        timings["model"] = stats.model
        # The rest of the wait for the first token (docs/generation.md, "The first token").
        timings["prompt_ms"] = stats.prompt_ms
        timings["tokenize_ms"] = stats.tokenize_ms
        timings["prefill_ms"] = stats.prefill_ms
    return ReplyOutcome(
        text=answer,
        blocked=gate.blocked,
        handoff=handoff,
        confidence=score,
        cited=cited,
        hits=hits,
        moderation=passage_verdicts + gate.verdicts,
        question_verdict=question_verdict,
        mode=mode,
        stats=stats,
        timings=timings,
    )


def instructions_with_canary(instructions: str, canary: str) -> str:
    """The instructions as the prompt holds them: the canary follows them, so a model
    repeating its instructions repeats the canary too (workers.moderation.leakage)."""
    return f"{instructions}\n[{canary}]".strip()


def _generate(
    request: ReplyRequest, passages: list[Passage], gate: SentenceGate, stats: GenerationStats, tools: ReplyTools
) -> bool:
    """Stream a generated answer; False (nothing sent) when the model is unavailable, the
    prompt cannot fit, or the model said nothing, so the caller quotes instead."""
    loaded = tools.model()
    if loaded is None:
        return False
    bot = request.bot
    params = SamplingParameters.from_bot(bot.generation)
    prompt_since = time.perf_counter()
    try:
        prompt = build_prompt(
            instructions=instructions_with_canary(bot.instructions, request.canary),
            passages=passages,
            turns=request.turns,
            question=request.question,
            count_tokens=loaded.count_tokens,
            context_window=loaded.context_window,
            answer_budget=params.max_new_tokens,
            chat=loaded.render_chat if loaded.has_chat_template else None,
        )
    except PromptTooLong:
        return False
    stats.prompt_ms = round((time.perf_counter() - prompt_since) * 1000, 1)
    passages[:] = list(prompt.passages)  # citations refer to the passages the model saw
    stats.model = loaded.name
    adapter, stats.model_version = adapter_choose(bot.adapter, base_model=loaded.name, adapters=loaded.adapters)
    produced = False
    for piece in stream_text(
        loaded,
        prompt.text,
        params,
        stop_sequences=prompt.stop_sequences,
        cancelled=lambda: gate.blocked or tools.cancelled(),
        stats=stats,
        scheduler=loaded.scheduler,
        adapter=adapter,
        add_special_tokens=not prompt.chat,
        head=prompt.head,
    ):
        if not produced and not piece.strip():
            continue  # leading whitespace after "Assistant:"
        gate.feed(piece if produced else piece.lstrip())
        produced = True
    return produced or stats.stopped_by == "cancelled"
