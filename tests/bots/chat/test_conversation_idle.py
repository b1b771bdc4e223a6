from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from bots.chat.services import conversations_close_idle
from bots.chat.tasks import close_idle_conversations
from bots.models import Conversation
from tests.factories import ConversationFactory

pytestmark = pytest.mark.django_db


def make_conversation(*, status: str, idle_hours: float, resolved_days_ago: float | None = None) -> Conversation:
    conversation = ConversationFactory(status=status)
    now = timezone.now()
    Conversation.objects.filter(pk=conversation.pk).update(
        last_activity_at=now - timedelta(hours=idle_hours),
        resolved_at=None if resolved_days_ago is None else now - timedelta(days=resolved_days_ago),
    )
    return conversation


def test_an_idle_bot_conversation_is_resolved_with_a_note_in_the_transcript(settings) -> None:
    settings.NEO_CONVERSATION_IDLE_HOURS = 24
    idle = make_conversation(status="bot", idle_hours=30)
    active = make_conversation(status="bot", idle_hours=1)

    assert conversations_close_idle() == (1, 0)

    idle.refresh_from_db()
    assert idle.status == "resolved" and idle.resolved_at is not None
    assert idle.messages.get().role == "system"
    active.refresh_from_db()
    assert active.status == "bot" and not active.messages.exists()


def test_conversations_with_people_are_never_closed_automatically() -> None:
    waiting = make_conversation(status="pending_agent", idle_hours=500)
    with_agent = make_conversation(status="agent", idle_hours=500)
    assert conversations_close_idle() == (0, 0)
    assert {c.status for c in Conversation.objects.filter(pk__in=[waiting.pk, with_agent.pk])} == {
        "pending_agent",
        "agent",
    }


def test_a_long_resolved_conversation_is_closed(settings) -> None:
    settings.NEO_CONVERSATION_CLOSE_DAYS = 7
    old = make_conversation(status="resolved", idle_hours=300, resolved_days_ago=8)
    recent = make_conversation(status="resolved", idle_hours=30, resolved_days_ago=1)
    assert close_idle_conversations() == {"resolved": 0, "closed": 1}
    old.refresh_from_db()
    recent.refresh_from_db()
    assert (old.status, recent.status) == ("closed", "resolved")
