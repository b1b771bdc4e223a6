"""Beat's check for replies no worker is finishing (bots.chat.replies)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from bots.chat.replies import replies_fail_stalled
from bots.models import Message
from tests.factories import ConversationFactory, MessageFactory

pytestmark = pytest.mark.django_db


def aged(message: Message, seconds: float) -> Message:
    Message.objects.filter(pk=message.pk).update(updated_at=timezone.now() - timedelta(seconds=seconds))
    return message


def test_only_replies_still_for_too_long_are_failed(settings) -> None:
    settings.NEO_REPLY_STALL_SECONDS = 300
    conversation = ConversationFactory()
    question = aged(MessageFactory(conversation=conversation, role="visitor"), 900)
    stalled_streaming = aged(MessageFactory(conversation=conversation, role="bot", status="streaming"), 301)
    stalled_pending = aged(MessageFactory(conversation=conversation, role="bot", status="pending"), 600)
    fresh = aged(MessageFactory(conversation=conversation, role="bot", status="streaming"), 10)
    finished = aged(MessageFactory(conversation=conversation, role="bot", status="done", text="Five days."), 900)

    assert sorted(replies_fail_stalled()) == sorted([stalled_streaming.pk, stalled_pending.pk])
    statuses = dict(Message.objects.values_list("pk", "status"))
    assert statuses[stalled_streaming.pk] == statuses[stalled_pending.pk] == "failed"
    assert (statuses[fresh.pk], statuses[finished.pk], statuses[question.pk]) == ("streaming", "done", "done")
    assert Message.objects.get(pk=finished.pk).text == "Five days."
    assert replies_fail_stalled() == []  # nothing twice
