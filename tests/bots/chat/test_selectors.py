"""How people are named to visitors, and what of a conversation a visitor may read."""

from __future__ import annotations

import pytest

from bots.chat.selectors import agent_display_name, conversation_history
from bots.models import Delivery, Message, Role
from tests.factories import ConversationFactory, UserFactory


@pytest.mark.django_db
def test_a_person_is_named_by_full_name_else_username_and_never_by_email() -> None:
    assert agent_display_name(UserFactory(username="sam", first_name="Sam", last_name="Rivera")) == "Sam Rivera"
    assert agent_display_name(UserFactory(username="sam.r", email="sam@tallyho.example")) == "sam.r"
    assert agent_display_name(UserFactory(username="jo@tallyho.example")) == "jo"
    assert agent_display_name(None) == "Support team"


@pytest.mark.django_db
def test_history_leaves_out_internal_notes_and_drafts_and_names_people() -> None:
    conversation = ConversationFactory()
    agent = UserFactory(username="kim", first_name="Kim")
    for role, text, extra in [
        (Role.VISITOR, "Where is my parcel?", {}),
        (Role.SYSTEM, "Customer is angry", {"author": agent}),  # an internal note
        (Role.BOT, "Draft answer", {"delivery": Delivery.DRAFT}),
        (Role.AGENT, "It ships today.", {"author": agent}),
        (Role.SYSTEM, "Kim handed the conversation back to the bot.", {}),  # automatic: shown
    ]:
        Message.objects.create(conversation=conversation, role=role, text=text, **extra)
    history = conversation_history(conversation=conversation)
    assert [(m["role"], m["text"], m.get("author")) for m in history] == [
        ("visitor", "Where is my parcel?", None),
        ("agent", "It ships today.", "Kim"),
        ("system", "Kim handed the conversation back to the bot.", None),
    ]
