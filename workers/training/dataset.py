"""Training data for a bot's adapter, from its own organization's history only.

An example is a prompt in exactly the format the bot uses at run time
(`workers.generation.prompt.render`: instructions, numbered passages, the
conversation so far; kept as chat messages too, which a model with a chat template
is tuned on, as it is prompted) and the answer a person stood behind:

- an agent's reply in a conversation or ticket that ended resolved or solved;
- a bot answer a visitor rated thumbs up;

never one the moderation pipeline acted on, nor a question it blocked. Knowledge-base
passages are added as short "continue the help page" examples so the model learns the
company's vocabulary. Personal data is redacted with the moderation recognisers before
anything is written; exact duplicates are dropped; the split into training and
validation is by conversation (a hash of its id), so no conversation is in both.

Plain data in and out: the rows come from bots.tuning.examples, which reads the
database.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from workers.generation.prompt import Passage, Turn, chat_messages, render

MIN_ANSWERS = 50  # fewer, and a tuned model learns noise: the base model stays
VALIDATION_SHARE = 10  # percent of conversations held back
MAX_TURNS = 4  # earlier turns in the prompt, as at run time after trimming


class NotEnoughHistory(Exception):  # noqa: N818 - a condition shown to the person, not a crash
    """Too few usable answers to tune on; the message says how many there are and are needed."""


@dataclass(frozen=True)
class Example:
    group: str  # the conversation (or document) it came from: the unit of the split
    prompt: str
    answer: str
    source: str  # "agent", "rated", "knowledge"
    split: str = "train"
    # The same prompt as chat messages (`workers.generation.prompt.chat_messages`), for a
    # model with a chat template; empty for knowledge passages, plain text for any model.
    messages: list[dict[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class EarlierMessage:
    role: str  # "visitor", "bot" or "agent"
    text: str
    moderation_action: str = ""


@dataclass(frozen=True)
class AnswerRow:
    """An answer a person stood behind, with what came before it in its conversation
    (oldest first, system notes left out) and the passages it cited."""

    conversation_id: int
    text: str
    source: str  # "agent" or "rated"
    earlier: list[EarlierMessage]
    cited: list[Passage]


@dataclass(frozen=True)
class ChunkRow:
    document_id: int
    title: str
    heading_path: list[str]
    text: str


def _split_of(group: str) -> str:
    bucket = int(hashlib.sha256(group.encode()).hexdigest()[:8], 16) % 100
    return "validation" if bucket < VALIDATION_SHARE else "train"


def _prompt_for(
    instructions: str, answer: AnswerRow, redact: Callable[[str], str]
) -> tuple[str, list[dict[str, str]]] | None:
    """The prompt the bot would have seen before `answer`, as completion text and as chat
    messages, or None when no question precedes it."""
    earlier = answer.earlier
    if not earlier or earlier[-1].role != "visitor" or earlier[-1].moderation_action == "block":
        return None
    question = redact(earlier[-1].text)
    turns = [
        Turn("customer" if m.role == "visitor" else "assistant", redact(m.text))
        for m in earlier[:-1][-MAX_TURNS:]
        if m.text.strip()
    ]
    return render(instructions, answer.cited, turns, question), chat_messages(
        instructions, answer.cited, turns, question
    )


def _knowledge_examples(chunks: Iterable[ChunkRow], redact: Callable[[str], str]) -> Iterator[Example]:
    for chunk in chunks:
        where = " > ".join([chunk.title, *chunk.heading_path])
        text = redact(chunk.text.strip())
        head, _, rest = text.partition(". ")
        if len(rest) < 40:
            continue
        prompt = f"Passages:\n[1] {where}\n{head}."
        yield Example(f"document-{chunk.document_id}", prompt, " " + rest, "knowledge")


def _normalised(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def require_history(name: str, usable: int, minimum: int = MIN_ANSWERS) -> None:
    """NotEnoughHistory, saying how many answers bot `name` has and needs, below `minimum`."""
    if usable < minimum:
        raise NotEnoughHistory(
            f"{name} has {usable} usable answers (agent replies in resolved conversations and answers "
            f"rated thumbs up, not flagged by moderation); at least {minimum} are needed to tune a model."
        )


def examples_from_history(
    answers: Iterable[AnswerRow],
    chunks: Iterable[ChunkRow] = (),
    *,
    name: str,
    instructions: str,
    redact: Callable[[str], str] | None = None,
    minimum: int = MIN_ANSWERS,
    on_answer: Callable[[], None] | None = None,
) -> list[Example]:
    """Training examples from a bot's answers (and its knowledge-base chunks),
    deduplicated and split. Raises NotEnoughHistory with fewer than `minimum` usable
    answers; `chunks` are only read once there are enough."""
    redact = redact or redact_personal_data
    seen: set[str] = set()
    examples: list[Example] = []
    for answer_row in answers:
        if on_answer is not None:
            on_answer()
        prompted = _prompt_for(instructions, answer_row, redact)
        if prompted is None:
            continue
        prompt, messages = prompted
        answer = " " + redact(answer_row.text.strip())
        key = hashlib.sha256(f"{_normalised(prompt)}\0{_normalised(answer)}".encode()).hexdigest()
        if key in seen:
            continue
        seen.add(key)
        group = f"conversation-{answer_row.conversation_id}"
        examples.append(Example(group, prompt, answer, answer_row.source, _split_of(group), messages))
    require_history(name, len(examples), minimum)
    examples.extend(replace(e, split=_split_of(e.group)) for e in _knowledge_examples(chunks, redact))
    if not any(e.split == "validation" for e in examples):  # tiny histories: hold one conversation back
        first = examples[0].group
        examples = [replace(e, split="validation") if e.group == first else e for e in examples]
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
