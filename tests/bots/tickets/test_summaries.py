"""The agent's summary at the top of a ticket: written by the bot's model and screened
like any answer, extractive when no model is loaded or its summary does not pass."""

from __future__ import annotations

import pytest

from bots.chat.services import conversation_request_handoff
from bots.models import ConversationStatus, Ticket
from bots.tickets.summaries import summary_turns, ticket_summarize
from neo_support.tasking import wait_for_in_process_tasks
from tests.factories import BotFactory, ConversationFactory, MessageFactory, TicketFactory
from workers.generation import summary as summary_module
from workers.generation.summary import extractive_summary

CITED = [{"number": 1, "chunk_id": 1, "document_id": 1, "title": "Refund policy", "location": "", "url": ""}]


def a_ticket(bot=None):  # type: ignore[no-untyped-def]
    conversation = ConversationFactory(bot=bot or BotFactory(), status=ConversationStatus.PENDING_AGENT)
    MessageFactory(
        conversation=conversation, role="visitor", text="My refund for order 1182 has not arrived. It was due Monday."
    )
    MessageFactory(conversation=conversation, role="bot", text="Refunds reach your card within five working days. [1]",
                   citations=CITED)  # fmt: skip
    MessageFactory(conversation=conversation, role="visitor", text="It has been eight days now.")
    return TicketFactory(conversation=conversation, subject="Refund not received")


@pytest.mark.django_db
def test_without_a_model_the_summary_is_taken_from_the_conversation(settings) -> None:
    settings.NEO_MODEL = "/nonexistent/model"
    from workers.generation.loading import holder

    holder.reset()
    ticket = a_ticket()
    summary = ticket_summarize(ticket=ticket)
    assert summary["mode"] == "extractive" and summary["model_version"] == ""
    assert summary["text"] == (
        "The customer wants: My refund for order 1182 has not arrived. Latest: It has been eight days now. "
        "The bot answered 1 time(s), last: Refunds reach your card within five working days."
    )
    assert summary["cited"] == ["Refund policy"]
    assert Ticket.objects.get(pk=ticket.pk).summary == summary
    holder.reset()


@pytest.mark.django_db
def test_a_model_summary_that_passes_the_screen_is_used(tiny_neo, monkeypatch) -> None:
    said = "The customer's refund for order 1182 has not arrived after eight days; the bot quoted five working days."
    monkeypatch.setattr(summary_module, "stream_text", lambda *args, **kwargs: iter([said]))
    summary = ticket_summarize(ticket=a_ticket())
    assert (summary["mode"], summary["model_version"], summary["text"]) == ("generated", "base", said)
    assert summary["cited"] == ["Refund policy"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "said",
    [
        "The customer wants a refund of 400 dollars to their Mastercard from the Berlin store.",  # not in the chat
        "Call the customer on +1 415 555 0134 about order 1182.",  # personal data
        "",
    ],
)
def test_a_model_summary_that_fails_the_screen_falls_back(tiny_neo, monkeypatch, said: str) -> None:
    monkeypatch.setattr(summary_module, "stream_text", lambda *args, **kwargs: iter([said]))
    assert ticket_summarize(ticket=a_ticket())["mode"] == "extractive"


@pytest.mark.django_db
def test_the_real_tiny_model_writes_or_falls_back_but_always_summarises(tiny_neo) -> None:
    summary = ticket_summarize(ticket=a_ticket())
    assert summary["mode"] in ("generated", "extractive") and summary["text"]
    assert summary["cited"] == ["Refund policy"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("in_process_tasks")
def test_a_handoff_ticket_gets_its_summary(settings) -> None:
    settings.NEO_MODEL = "/nonexistent/model"
    from workers.generation.loading import holder

    holder.reset()
    conversation = ConversationFactory(bot=BotFactory())
    MessageFactory(conversation=conversation, role="visitor", text="I was charged twice for March.")
    assert conversation_request_handoff(conversation=conversation)
    wait_for_in_process_tasks(timeout=120)
    ticket = Ticket.objects.get(conversation=conversation)
    assert ticket.summary["text"].startswith("The customer wants: I was charged twice for March.")
    page_text = extractive_summary(summary_turns(list(conversation.messages.filter(role="visitor"))))
    assert "The bot has not answered yet." in page_text
    holder.reset()
