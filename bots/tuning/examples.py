"""A bot's history as training rows: the answers a person stood behind (agent replies
in resolved conversations or solved tickets, bot answers rated thumbs up; never one
moderation acted on), what came before each, the passages it cited, and the bot's
knowledge-base chunks. The examples themselves are made by workers.training.dataset."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from django.db.models import Q, QuerySet

from bots.models import Bot, ConversationStatus, Feedback, Message, Role, TicketStatus
from retrieval.models import Chunk
from workers.generation.prompt import Passage
from workers.training.dataset import (
    MIN_ANSWERS,
    AnswerRow,
    ChunkRow,
    EarlierMessage,
    Example,
    examples_from_history,
)

RESOLVED = [ConversationStatus.RESOLVED, ConversationStatus.CLOSED]
SOLVED = [TicketStatus.SOLVED, TicketStatus.CLOSED]


def _answer_rows(bot: Bot) -> QuerySet[Message]:
    base = Message.objects.filter(
        conversation__bot=bot, status="done", moderation_action__in=["", "allow", "none"]
    ).exclude(text="")
    agent = Q(role=Role.AGENT) & (Q(conversation__status__in=RESOLVED) | Q(conversation__ticket__status__in=SOLVED))
    rated = Q(role=Role.BOT, pk__in=Feedback.objects.filter(rating=1).values("message_id"))
    return base.filter(agent | rated)


def usable_answer_count(bot: Bot) -> int:
    """Answers a person stood behind (before duplicates are dropped): the quick check
    before a run is queued."""
    return int(_answer_rows(bot).count())


def _cited_passages(answer: Message) -> list[Passage]:
    ids = [c["chunk_id"] for c in answer.citations or [] if isinstance(c, dict) and c.get("chunk_id")]
    chunks = {c.pk: c for c in Chunk.objects.filter(pk__in=ids).select_related("document")}
    return [
        Passage(c.pk, c.document_id, c.document.title, tuple(c.heading_path), c.location, c.text, 1.0)
        for chunk_id in ids
        if (c := chunks.get(chunk_id)) is not None
    ]


def answer_rows(bot: Bot) -> Iterator[AnswerRow]:
    """The bot's usable answers, oldest first, each with its conversation so far."""
    for message in _answer_rows(bot).order_by("created_at", "pk").iterator():
        earlier = [
            EarlierMessage(role, text, action)
            for role, text, action in Message.objects.filter(
                conversation_id=message.conversation_id, created_at__lt=message.created_at
            )
            .exclude(role=Role.SYSTEM)
            .order_by("created_at", "pk")
            .values_list("role", "text", "moderation_action")
        ]
        yield AnswerRow(
            conversation_id=message.conversation_id,
            text=message.text,
            source="agent" if message.role == Role.AGENT else "rated",
            earlier=earlier,
            cited=_cited_passages(message) if earlier else [],
        )


def chunk_rows(bot: Bot) -> Iterator[ChunkRow]:
    chunks = Chunk.objects.filter(document__knowledge_base__in=bot.knowledge_bases.all()).select_related("document")
    for chunk in chunks.order_by("pk").iterator():
        yield ChunkRow(chunk.document_id, chunk.document.title, list(chunk.heading_path), chunk.text)


def build_examples(
    bot: Bot,
    *,
    redact: Callable[[str], str] | None = None,
    with_knowledge: bool = True,
    minimum: int = MIN_ANSWERS,
    on_answer: Callable[[], None] | None = None,
) -> list[Example]:
    """The bot's training examples, deduplicated and split. Raises NotEnoughHistory with
    fewer than `minimum` usable answers."""
    return examples_from_history(
        answer_rows(bot),
        chunk_rows(bot) if with_knowledge else (),
        name=bot.name,
        instructions=bot.instructions,
        redact=redact,
        minimum=minimum,
        on_answer=on_answer,
    )
