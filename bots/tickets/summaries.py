"""The summary at the top of a ticket: the conversation's turns are read here, written
by the engine (workers.generation.summary) and stored on the ticket. The cited
documents always come from the stored citations, never from the model."""

from __future__ import annotations

from typing import Any

from bots.chat.replies import adapter_ref, loaded_model
from bots.models import Message, Role, Ticket
from workers.generation.summary import SummaryTurn, summarize


def _turns(ticket: Ticket) -> list[Message]:
    return list(
        ticket.conversation.messages.filter(role__in=[Role.VISITOR, Role.BOT, Role.AGENT])
        .exclude(text="")
        .order_by("created_at", "pk")[:200]
    )


def summary_turns(messages: list[Message]) -> list[SummaryTurn]:
    return [
        SummaryTurn(role="customer" if m.role == Role.VISITOR else "assistant", text=m.text, by_bot=m.role == Role.BOT)
        for m in messages
    ]


def _cited(turns: list[Message]) -> list[str]:
    titles: list[str] = []
    for message in turns:
        for citation in message.citations or []:
            title = citation.get("title") if isinstance(citation, dict) else None
            if title and title not in titles:
                titles.append(str(title))
    return titles


def ticket_summarize(*, ticket: Ticket) -> dict[str, Any]:
    """Write the ticket's summary (generated, or extractive) and return it."""
    messages = _turns(ticket)
    bot = ticket.conversation.bot
    written = summarize(
        summary_turns(messages),
        loaded=loaded_model(bot) if messages else None,
        instructions=bot.instructions,
        moderation_policy=bot.moderation_policy if isinstance(bot.moderation_policy, dict) else {},
        adapter=adapter_ref(bot),
    )
    summary: dict[str, Any] = {"text": written.text, "mode": written.mode, "model_version": written.model_version}
    summary["cited"] = _cited(messages)
    Ticket.objects.filter(pk=ticket.pk).update(summary=summary)
    return summary
