"""A short summary for the agent who picks a ticket up: what the customer wants, what
was tried, what the bot cited.

Written on the generation worker by the bot's own model (its deployed adapter
included), greedy, then screened like any answer: personal data, blocked terms, and
grounding against the conversation itself, so a summary cannot state what nobody said.
When no model is loaded, or the model's summary does not pass, an extractive summary
is used: the customer's first request, the bot's last answer, the documents it cited.
The cited documents always come from the stored citations, never from the model.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from bots.models import Message, Role, Ticket
from workers.generation.loading import ModelUnavailable, holder
from workers.generation.streaming import SamplingParameters, stream_text
from workers.moderation.pipeline import OutputScreen, Policy
from workers.moderation.verdicts import Action

logger = logging.getLogger(__name__)

MAX_TURNS = 12
MAX_CHARS = 240
INSTRUCTION = (
    "Summarise this support conversation for the agent taking it over, in one or two sentences: "
    "what the customer wants and what was already tried."
)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def first_sentence(text: str, limit: int = MAX_CHARS) -> str:
    sentence = _SENTENCE_END.split(" ".join(text.split()), maxsplit=1)[0]
    return sentence if len(sentence) <= limit else sentence[: limit - 1].rstrip() + "…"


def _turns(ticket: Ticket) -> list[Message]:
    return list(
        ticket.conversation.messages.filter(role__in=[Role.VISITOR, Role.BOT, Role.AGENT])
        .exclude(text="")
        .order_by("created_at", "pk")[:200]
    )


def extractive_summary(turns: list[Message]) -> str:
    asked = [m.text for m in turns if m.role == Role.VISITOR]
    answered = [m.text for m in turns if m.role == Role.BOT]
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


def _cited(turns: list[Message]) -> list[str]:
    titles: list[str] = []
    for message in turns:
        for citation in message.citations or []:
            title = citation.get("title") if isinstance(citation, dict) else None
            if title and title not in titles:
                titles.append(str(title))
    return titles


def _generated(ticket: Ticket, turns: list[Message]) -> tuple[str, str] | None:
    """(summary, model version label), or None when the model cannot give one that passes."""
    from bots.chat.replies import adapter_for

    try:
        loaded = holder.get()
    except ModelUnavailable:
        return None
    bot = ticket.conversation.bot
    lines = [f"{'Customer' if m.role == Role.VISITOR else 'Assistant'}: {' '.join(m.text.split())}" for m in turns]
    prompt = f"{INSTRUCTION}\n\nConversation:\n" + "\n".join(lines[-MAX_TURNS:]) + "\n\nSummary:"
    if loaded.count_tokens(prompt) > loaded.context_window - 80:
        prompt = f"{INSTRUCTION}\n\nConversation:\n" + "\n".join(lines[-2:]) + "\n\nSummary:"
    adapter, label = adapter_for(bot, loaded)
    params = SamplingParameters(max_new_tokens=80)
    text = "".join(
        stream_text(loaded, prompt, params, stop_sequences=("\n\n", "\nCustomer:"), scheduler=loaded.scheduler,
                    adapter=adapter)
    ).strip()  # fmt: skip
    if not text:
        return None
    screen = OutputScreen(
        Policy.from_bot(bot.moderation_policy), passages=[m.text for m in turns], instructions=bot.instructions,
        grounded=True,
    )  # fmt: skip
    sentences = [s for s in _SENTENCE_END.split(text) if s.strip()]
    verdicts = [screen.screen(sentence) for sentence in sentences]
    if not sentences or any(v.action >= Action.REMOVE for v in verdicts):
        return None
    return " ".join(v.text for v in verdicts), label


def ticket_summarize(*, ticket: Ticket) -> dict[str, Any]:
    """Write the ticket's summary (generated, or extractive) and return it."""
    turns = _turns(ticket)
    generated = _generated(ticket, turns) if turns else None
    if generated is not None:
        summary = {"text": generated[0], "mode": "generated", "model_version": generated[1]}
    else:
        summary = {"text": extractive_summary(turns), "mode": "extractive", "model_version": ""}
    summary["cited"] = _cited(turns)
    Ticket.objects.filter(pk=ticket.pk).update(summary=summary)
    return summary
