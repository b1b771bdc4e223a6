"""The citation links saved with a reply (bots.chat.replies `_save`): what the widget
links to and what the transcript shows for the reply later."""

from __future__ import annotations

import pytest

from bots.chat.replies import _save
from bots.models import Message
from tests.factories import DocumentFactory, KnowledgeBaseFactory, MessageFactory
from workers.generation.answer import ReplyOutcome
from workers.generation.prompt import Passage
from workers.generation.sampling import GenerationStats

pytestmark = pytest.mark.django_db


def test_a_saved_reply_links_each_citation_to_its_page_or_its_help_centre() -> None:
    published = KnowledgeBaseFactory(public_base_url="https://help.example.com/")
    private = KnowledgeBaseFactory(organization=published.organization)
    from_web = DocumentFactory(knowledge_base=private, source_type="url", source_url="https://example.com/account")
    uploaded = DocumentFactory(knowledge_base=published, source_type="file")
    unpublished = DocumentFactory(knowledge_base=private, source_type="file")
    reply = MessageFactory(role="bot", status="streaming", text="")
    cited = [
        (1, Passage(11, from_web.pk, "Account help", ("Signing in",), "#signing-in", "Use a backup code.", 0.9)),
        (2, Passage(12, uploaded.pk, "Billing", ("Refunds",), "#refunds", "Five working days.", 0.8)),
        (3, Passage(13, unpublished.pk, "Notes", (), "page 2", "Ask us.", 0.7)),
    ]
    outcome = ReplyOutcome(
        text="Use a backup code [1]. Five working days [2]. Ask us [3].",
        blocked=False,
        handoff=False,
        confidence=0.9,
        cited=cited,
        hits=[],
        moderation=[],
        question_verdict=None,
        mode="extractive",
        stats=GenerationStats(),
        timings={},
    )

    _save(reply, outcome, queue_wait_ms=1.0)

    saved = Message.objects.get(pk=reply.pk).citations
    assert [c["url"] for c in saved] == [
        "https://example.com/account#signing-in",
        "https://help.example.com/#refunds",
        "",
    ]
