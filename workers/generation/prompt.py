"""Prompt building and citation mapping. Pure Python: dataclasses in, a prompt out.

The prompt holds the bot's instructions, the numbered passages, the recent turns
and the question, fitted to the model's context window with the model's own
token counter and a reserved answer budget: the oldest turns go first, then the
lowest-ranked passages; a passage is never cut.

Two formats: a model whose tokenizer has a chat template (instruction models: Llama,
Qwen, Mistral, ...) gets chat messages (a system message with the instructions and the
passages, then the turns as user and assistant messages, the question last), rendered
by the caller's `ChatRenderer` with that template, and ends at the model's own end
tokens; a base model (GPT-Neo) gets the plain completion prompt below, and the stop
sequences end its turn.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

TokenCounter = Callable[[str], int]
# Chat messages ({"role": ..., "content": ...}) to the prompt text in a model's chat format.
ChatRenderer = Callable[[Sequence[dict[str, str]]], str]

STOP_SEQUENCES = ("\nCustomer:", "\nAssistant:", "\nPassages:", "\n\n\n")
GUIDANCE = (
    "Answer the customer's question using only the numbered passages below. "
    "Cite the passages you use like [1]. If the passages do not contain the answer, "
    "say that you do not know."
)
_CITATION = re.compile(r"\[(\d{1,3})\]")


class PromptTooLong(Exception):  # noqa: N818 - a condition the caller reports, not a crash
    """Even the instructions and the question alone do not fit the context window."""


@dataclass(frozen=True)
class Passage:
    chunk_id: int
    document_id: int
    title: str
    heading_path: tuple[str, ...]
    location: str
    text: str
    score: float


@dataclass(frozen=True)
class Turn:
    role: str  # "customer" or "assistant"
    text: str


@dataclass(frozen=True)
class Prompt:
    text: str
    passages: tuple[Passage, ...]  # numbered from 1 in this order
    turns: tuple[Turn, ...]
    token_count: int
    stop_sequences: tuple[str, ...] = STOP_SEQUENCES
    # Rendered with a chat template, which writes the model's special tokens (BOS) itself.
    chat: bool = False
    # The text it opens with whatever the passages, turns and question: everything up to
    # the end of the instructions and guidance (workers.generation.prefix_cache).
    head: str = ""


def _passage_block(number: int, passage: Passage) -> str:
    where = " > ".join([passage.title, *passage.heading_path])
    return f"[{number}] {where}\n{passage.text.strip()}"


def _system_text(instructions: str, passages: Sequence[Passage]) -> list[str]:
    parts = [instructions.strip(), GUIDANCE] if instructions.strip() else [GUIDANCE]
    if passages:
        parts.append("Passages:\n" + "\n\n".join(_passage_block(n, p) for n, p in enumerate(passages, start=1)))
    return parts


def chat_messages(
    instructions: str, passages: Sequence[Passage], turns: Sequence[Turn], question: str
) -> list[dict[str, str]]:
    """The system message (instructions, guidance, passages), the turns and the question
    as chat messages. Roles alternate user/assistant after the system message, as the
    strictest templates (Mistral's) require: consecutive turns of one side are joined,
    and assistant turns before the first customer turn (a greeting) are left out."""
    messages = [{"role": "system", "content": "\n\n".join(_system_text(instructions, passages))}]
    for role, text in [*(("user" if t.role == "customer" else "assistant", t.text) for t in turns), ("user", question)]:
        text = text.strip()
        if (len(messages) == 1 and role == "assistant") or not text:
            continue
        if messages[-1]["role"] == role:
            messages[-1]["content"] += "\n\n" + text
        else:
            messages.append({"role": role, "content": text})
    return messages


def render(
    instructions: str,
    passages: Sequence[Passage],
    turns: Sequence[Turn],
    question: str,
    chat: ChatRenderer | None = None,
) -> str:
    """The prompt text: in the model's chat format when `chat` is given, else the completion prompt."""
    if chat is not None:
        return chat(chat_messages(instructions, passages, turns, question))
    parts = _system_text(instructions, passages)
    lines = [f"{'Customer' if turn.role == 'customer' else 'Assistant'}: {turn.text.strip()}" for turn in turns]
    lines += [f"Customer: {question.strip()}", "Assistant:"]
    parts.append("Conversation:\n" + "\n".join(lines))
    return "\n\n".join(parts)


def build_prompt(
    *,
    instructions: str,
    passages: Sequence[Passage],
    turns: Sequence[Turn],
    question: str,
    count_tokens: TokenCounter,
    context_window: int,
    answer_budget: int,
    chat: ChatRenderer | None = None,
) -> Prompt:
    """The fullest prompt that leaves `answer_budget` tokens of `context_window` for the
    answer; in the model's chat format when `chat` renders one (no stop sequences then:
    the model's end tokens end the answer)."""
    limit = context_window - answer_budget
    kept_passages, kept_turns = list(passages), list(turns)
    while True:
        text = render(instructions, kept_passages, kept_turns, question, chat)
        tokens = count_tokens(text)
        if tokens <= limit:
            return Prompt(
                text=text,
                passages=tuple(kept_passages),
                turns=tuple(kept_turns),
                token_count=tokens,
                stop_sequences=() if chat is not None else STOP_SEQUENCES,
                chat=chat is not None,
                head=_head(text, instructions),
            )
        if kept_turns:
            kept_turns.pop(0)
        elif kept_passages:
            kept_passages.pop()
        else:
            raise PromptTooLong(f"The question needs {tokens} tokens; at most {limit} fit with room for an answer.")


def _head(text: str, instructions: str) -> str:
    """`text` up to the end of its instructions and guidance, the part every prompt with
    these instructions opens with; empty when the renderer changed them (a template)."""
    fixed = "\n\n".join(_system_text(instructions, []))
    at = text.find(fixed)
    return text[: at + len(fixed)] if at >= 0 else ""


def cut_at_stop(text: str, stop_sequences: Sequence[str] = STOP_SEQUENCES) -> tuple[str, bool]:
    """`text` up to the first stop sequence, and whether one was found."""
    cut = min((index for stop in stop_sequences if (index := text.find(stop)) >= 0), default=-1)
    return (text, False) if cut < 0 else (text[:cut], True)


def held_back(text: str, stop_sequences: Sequence[str] = STOP_SEQUENCES) -> int:
    """How many trailing characters could still turn out to be the start of a stop sequence."""
    longest = 0
    for stop in stop_sequences:
        for size in range(min(len(stop), len(text)), 0, -1):
            if text.endswith(stop[:size]):
                longest = max(longest, size)
                break
    return longest


def cited_passages(answer: str, passages: Sequence[Passage]) -> list[tuple[int, Passage]]:
    """The (number, passage) pairs the answer cites, in order of first citation; numbers
    that name no passage are ignored."""
    cited: dict[int, Passage] = {}
    for match in _CITATION.finditer(answer):
        number = int(match.group(1))
        if 1 <= number <= len(passages) and number not in cited:
            cited[number] = passages[number - 1]
    return list(cited.items())


def strip_unknown_citations(answer: str, passage_count: int) -> str:
    """Remove "[n]" markers that point at no passage (the model invented them)."""
    return _CITATION.sub(lambda m: m.group(0) if 1 <= int(m.group(1)) <= passage_count else "", answer)
