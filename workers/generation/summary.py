"""A short summary for the agent who picks a ticket up: what the customer wants, what
was tried. Plain data in and out (the ticket's rows are bots.tickets.summaries').

Written by the bot's own model (its deployed adapter included), greedy, then screened
like any answer: personal data, blocked terms, and grounding against the conversation
itself, so a summary cannot state what nobody said. When no model is loaded, or the
model's summary does not pass, an extractive summary is used: the customer's first
request, the bot's last answer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from workers.generation.adapters import AdapterRef, adapter_choose
from workers.generation.model import LoadedModel
from workers.generation.sampling import SamplingParameters
from workers.generation.streaming import stream_text
from workers.moderation.pipeline import OutputScreen, Policy
from workers.moderation.verdicts import Action

MAX_TURNS = 12
MAX_CHARS = 240
INSTRUCTION = (
    "Summarise this support conversation for the agent taking it over, in one or two sentences: "
    "what the customer wants and what was already tried."
)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True)
class SummaryTurn:
    """One turn of the conversation: `customer` (the visitor) or `assistant` (bot or agent)."""

    role: str
    text: str
    by_bot: bool = False


@dataclass(frozen=True)
class Summary:
    text: str
    mode: str  # "generated" or "extractive"
    model_version: str  # the label of the version that wrote it ("" when extractive)


def first_sentence(text: str, limit: int = MAX_CHARS) -> str:
    sentence = _SENTENCE_END.split(" ".join(text.split()), maxsplit=1)[0]
    return sentence if len(sentence) <= limit else sentence[: limit - 1].rstrip() + "…"


def extractive_summary(turns: Sequence[SummaryTurn]) -> str:
    asked = [t.text for t in turns if t.role == "customer"]
    answered = [t.text for t in turns if t.by_bot]
    parts = []
    if asked:
        parts.append(f"The customer wants: {first_sentence(asked[0])}")
        if len(asked) > 1 and asked[-1] != asked[0]:
            parts.append(f"Latest: {first_sentence(asked[-1])}")
    if answered:
        parts.append(f"The bot answered {len(answered)} time(s), last: {first_sentence(answered[-1])}")
    else:
        parts.append("The bot has not answered yet.")
    return " ".join(parts)


def generated_summary(
    turns: Sequence[SummaryTurn],
    *,
    loaded: LoadedModel,
    instructions: str,
    moderation_policy: dict[str, Any],
    adapter: AdapterRef | None,
) -> tuple[str, str] | None:
    """(summary, model version label), or None when the model cannot give one that passes."""
    lines = [f"{'Customer' if t.role == 'customer' else 'Assistant'}: {' '.join(t.text.split())}" for t in turns]
    prompt = _summary_prompt(loaded, lines[-MAX_TURNS:])
    if loaded.count_tokens(prompt) > loaded.context_window - 80:
        prompt = _summary_prompt(loaded, lines[-2:])
    key, label = adapter_choose(adapter, base_model=loaded.name, adapters=loaded.adapters)
    params = SamplingParameters(max_new_tokens=80)
    text = "".join(
        stream_text(loaded, prompt, params, stop_sequences=("\n\n", "\nCustomer:"), scheduler=loaded.scheduler,
                    adapter=key, add_special_tokens=not loaded.has_chat_template)
    ).strip()  # fmt: skip
    if not text:
        return None
    screen = OutputScreen(
        Policy.from_bot(moderation_policy), passages=[t.text for t in turns], instructions=instructions, grounded=True
    )
    sentences = [s for s in _SENTENCE_END.split(text) if s.strip()]
    verdicts = [screen.screen(sentence) for sentence in sentences]
    if not sentences or any(v.action >= Action.REMOVE for v in verdicts):
        return None
    return " ".join(v.text for v in verdicts), label


def _summary_prompt(loaded: LoadedModel, lines: Sequence[str]) -> str:
    """The request in the model's chat format when it has one, else as a completion prompt."""
    conversation = "Conversation:\n" + "\n".join(lines)
    if loaded.has_chat_template:
        return loaded.render_chat(
            [{"role": "system", "content": INSTRUCTION}, {"role": "user", "content": conversation}]
        )
    return f"{INSTRUCTION}\n\n{conversation}\n\nSummary:"


def summarize(
    turns: Sequence[SummaryTurn],
    *,
    loaded: LoadedModel | None,
    instructions: str = "",
    moderation_policy: dict[str, Any] | None = None,
    adapter: AdapterRef | None = None,
) -> Summary:
    """The model's summary when a model is loaded and its summary passes, else extractive."""
    generated = None
    if turns and loaded is not None:
        generated = generated_summary(
            turns,
            loaded=loaded,
            instructions=instructions,
            moderation_policy=moderation_policy or {},
            adapter=adapter,
        )
    if generated is not None:
        return Summary(text=generated[0], mode="generated", model_version=generated[1])
    return Summary(text=extractive_summary(turns), mode="extractive", model_version="")
