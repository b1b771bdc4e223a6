"""Training data for a bot's adapter, from its own organization's history only.

An example is a prompt in exactly the format the bot uses at run time
(`workers.generation.prompt.render`: instructions, numbered passages, the
conversation so far) and the answer a person stood behind:

- an agent's reply in a conversation or ticket that ended resolved or solved;
- a bot answer a visitor rated thumbs up;

never one the moderation pipeline acted on, nor a question it blocked. Knowledge-base
passages are added as short "continue the help page" examples so the model learns the
company's vocabulary. Personal data is redacted with the moderation recognisers before
anything is written; exact duplicates are dropped; the split into training and
validation is by conversation (a hash of its id), so no conversation is in both.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from django.db.models import Q, QuerySet

from bots.models import Bot, ConversationStatus, Feedback, Message, Role, TicketStatus
from retrieval.models import Chunk
from workers.generation.prompt import Passage, Turn, render

MIN_ANSWERS = 50  # fewer, and a tuned model learns noise: the base model stays
VALIDATION_SHARE = 10  # percent of conversations held back
MAX_TURNS = 4  # earlier turns in the prompt, as at run time after trimming
RESOLVED = [ConversationStatus.RESOLVED, ConversationStatus.CLOSED]
SOLVED = [TicketStatus.SOLVED, TicketStatus.CLOSED]


class NotEnoughHistory(Exception):  # noqa: N818 - a condition shown to the person, not a crash
    """Too few usable answers to tune on; the message says how many there are and are needed."""


@dataclass(frozen=True)
class Example:
    group: str  # the conversation (or document) it came from: the unit of the split
    prompt: str
    answer: str
    source: str  # "agent", "rated", "knowledge"
    split: str = "train"


def _split_of(group: str) -> str:
    bucket = int(hashlib.sha256(group.encode()).hexdigest()[:8], 16) % 100
    return "validation" if bucket < VALIDATION_SHARE else "train"


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


def _answers(bot: Bot) -> Iterator[tuple[Message, str]]:
    """Answers a person stood behind, oldest first, with where they came from."""
    for message in _answer_rows(bot).order_by("created_at", "pk").iterator():
        yield message, "agent" if message.role == Role.AGENT else "rated"


def _prompt_for(bot: Bot, answer: Message, redact: Callable[[str], str]) -> str | None:
    """The prompt the bot would have seen before `answer`, or None when no question precedes it."""
    earlier = list(
        Message.objects.filter(conversation_id=answer.conversation_id, created_at__lt=answer.created_at)
        .exclude(role=Role.SYSTEM)
        .order_by("created_at", "pk")
        .values_list("role", "text", "moderation_action")
    )
    if not earlier or earlier[-1][0] != Role.VISITOR or earlier[-1][2] == "block":
        return None
    question = redact(earlier[-1][1])
    turns = [
        Turn("customer" if role == Role.VISITOR else "assistant", redact(text))
        for role, text, _ in earlier[:-1][-MAX_TURNS:]
        if text.strip()
    ]
    return render(bot.instructions, _cited_passages(answer), turns, question)


def _cited_passages(answer: Message) -> list[Passage]:
    ids = [c["chunk_id"] for c in answer.citations or [] if isinstance(c, dict) and c.get("chunk_id")]
    chunks = {c.pk: c for c in Chunk.objects.filter(pk__in=ids).select_related("document")}
    return [
        Passage(c.pk, c.document_id, c.document.title, tuple(c.heading_path), c.location, c.text, 1.0)
        for chunk_id in ids
        if (c := chunks.get(chunk_id)) is not None
    ]


def _knowledge_examples(bot: Bot, redact: Callable[[str], str]) -> Iterator[Example]:
    chunks = Chunk.objects.filter(document__knowledge_base__in=bot.knowledge_bases.all()).select_related("document")
    for chunk in chunks.order_by("pk").iterator():
        where = " > ".join([chunk.document.title, *chunk.heading_path])
        text = redact(chunk.text.strip())
        head, _, rest = text.partition(". ")
        if len(rest) < 40:
            continue
        prompt = f"Passages:\n[1] {where}\n{head}."
        yield Example(f"document-{chunk.document_id}", prompt, " " + rest, "knowledge")


def _normalised(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def require_history(bot: Bot, usable: int, minimum: int = MIN_ANSWERS) -> None:
    """NotEnoughHistory, saying how many answers there are and are needed, below `minimum`."""
    if usable < minimum:
        raise NotEnoughHistory(
            f"{bot.name} has {usable} usable answers (agent replies in resolved conversations and answers "
            f"rated thumbs up, not flagged by moderation); at least {minimum} are needed to tune a model."
        )


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
    redact = redact or redact_personal_data
    seen: set[str] = set()
    examples: list[Example] = []
    for message, source in _answers(bot):
        if on_answer is not None:
            on_answer()
        prompt = _prompt_for(bot, message, redact)
        if prompt is None:
            continue
        answer = " " + redact(message.text.strip())
        key = hashlib.sha256(f"{_normalised(prompt)}\0{_normalised(answer)}".encode()).hexdigest()
        if key in seen:
            continue
        seen.add(key)
        group = f"conversation-{message.conversation_id}"
        examples.append(Example(group, prompt, answer, source, _split_of(group)))
    require_history(bot, len(examples), minimum)
    if with_knowledge:
        examples.extend(
            Example(e.group, e.prompt, e.answer, e.source, _split_of(e.group)) for e in _knowledge_examples(bot, redact)
        )
    if not any(e.split == "validation" for e in examples):  # tiny histories: hold one conversation back
        first = examples[0].group
        examples = [Example(e.group, e.prompt, e.answer, e.source, "validation" if e.group == first else e.split)
                    for e in examples]  # fmt: skip
    return examples


def redact_personal_data(text: str) -> str:
    """The moderation pipeline's recognisers, replacing each finding with its label."""
    from workers.moderation.pii import PiiFilter
    from workers.moderation.verdicts import redact

    return redact(text, PiiFilter().check(text))


def write_jsonl(examples: Iterable[Example], path: Path) -> int:
    """One JSON object per line (prompt, answer, source, split, group); returns the count."""
    count = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for example in examples:
            handle.write(json.dumps(asdict(example), ensure_ascii=False) + "\n")
            count += 1
    return count


def read_jsonl(path: Path) -> list[Example]:
    return [Example(**json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
