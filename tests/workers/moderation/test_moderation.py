"""Screening: blocked terms through disguises, personal data, leakage, and the gate that
holds streamed text until it is screened."""

from __future__ import annotations

import pytest

from bots.chat.services import conversation_ask, conversation_start
from bots.models import Message
from neo_support.tasking import wait_for_in_process_tasks
from retrieval.services.documents import document_create_from_text
from retrieval.services.ingestion import documents_ingest_all
from tests.channel_listener import ConversationListener
from tests.factories import BotFactory, KnowledgeBaseFactory
from workers.moderation.blocklist import BlocklistFilter
from workers.moderation.leakage import LeakageFilter
from workers.moderation.pii import PiiFilter
from workers.moderation.pipeline import SAFE_REPLY, OutputScreen, Policy, SentenceGate, screen_input
from workers.moderation.verdicts import Action


@pytest.mark.parametrize(
    "text",
    ["oh darn", "Oh D4RN it", "d.a.r.n", "d a r n", "daaaaarn", "d\u200barn", "dárn", "DARN!"],
)
def test_blocked_terms_are_found_through_disguises(text: str) -> None:
    findings = BlocklistFilter(["darn"]).check(text)
    assert [f.action for f in findings] == [Action.BLOCK]
    assert "d" in text[findings[0].start : findings[0].end].lower()


@pytest.mark.parametrize("text", ["Darnell called", "the darning needle", "a dart", "", "🙂 " * 50])
def test_whole_words_only_and_allowlisted_words_pass(text: str) -> None:
    assert BlocklistFilter(["darn", "dar"], ["darnell"]).check(text) == []


def test_phrases_and_allowlisted_phrases() -> None:
    blocklist = BlocklistFilter(["kill"], ["kill the process"])
    assert blocklist.check("kill the process with SIGTERM") == []
    assert blocklist.check("I will kill you") != []


def test_personal_data_is_found_and_redacted_unless_the_documents_hold_it() -> None:
    text = "Mail jo@example.com, call +44 20 7946 0958, card 4111 1111 1111 1111, IBAN GB82 WEST 1234 5698 7654 32."
    verdict = screen_input(text, Policy())
    assert verdict.text == "Mail [email], call [phone], card [card number], IBAN [IBAN]."
    assert {f.reason for f in verdict.findings} == {"email found", "phone found", "card number found", "IBAN found"}
    assert PiiFilter().check("card 4111 1111 1111 1112") == []  # fails the Luhn check
    assert PiiFilter().check("write to help@tallyho.example", known=["help@tallyho.example answers"]) == []


def test_leakage_of_the_canary_instructions_and_ids() -> None:
    instructions = "You are Tallyho's assistant. Answer only from the passages and cite them like [1] always."
    leakage = LeakageFilter(canary="canary-abc123", instructions=instructions)
    assert leakage.check("sure: canary-abc123")[0].action == Action.BLOCK
    assert leakage.check("My instructions: answer only from the passages and cite them like [1] always.") != []
    assert leakage.check("see chunk_id: 42")[0].action == Action.REDACT
    assert leakage.check("Refunds take five days.") == []


@pytest.mark.parametrize("text", ["", "x" * 100_000, "混合 scripts и текст", "\u200b\u200c", "🙂🙃" * 100])
def test_odd_input_is_screened_without_error(text: str) -> None:
    verdict = screen_input(text, Policy.from_bot({"blocklist": ["darn"]}))
    assert verdict.action in (Action.ALLOW, Action.REDACT)


def test_the_gate_releases_only_screened_sentences_and_stops_at_a_block() -> None:
    released: list[str] = []
    screen = OutputScreen(Policy.from_bot({"blocklist": ["xylophone"]}), passages=[])
    gate = SentenceGate(screen, released.append)
    for piece in ["Refunds take ", "five days. ", "Write to jo@", "example.com ", "today. ", "The xylo"]:
        gate.feed(piece)
        assert all("jo@" not in piece for piece in released)
    assert released == ["Refunds take five days. ", "Write to [email] today. "]
    gate.feed("phone is loud. More words.")
    gate.flush()
    assert released[-1] == SAFE_REPLY and gate.blocked
    assert not any("xylophone" in piece for piece in released)


def test_policies_from_bots_are_read_defensively() -> None:
    policy = Policy.from_bot({"blocklist": "not a list", "pii": "off", "safe_reply": ""})
    assert policy.blocklist == () and policy.pii is None and policy.safe_reply == SAFE_REPLY


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("in_process_tasks")
def test_nothing_unscreened_is_ever_published(settings) -> None:
    settings.NEO_MODEL = "/nonexistent/model"  # extractive: it quotes the document word for word
    knowledge_base = KnowledgeBaseFactory()
    text = "# Music\n\n## Instruments\n\nOur office keeps a xylophone for the band. Rehearsals are on Fridays."
    documents_ingest_all(
        documents=[document_create_from_text(knowledge_base=knowledge_base, title="Music", text=text, queue=False)]
    )
    bot = BotFactory(
        organization=knowledge_base.organization,
        moderation_policy={"blocklist": ["xylophone"], "safe_reply": "Let me get a person for that."},
        answer_threshold=0.0,
        handoff_threshold=0.0,
    )
    bot.knowledge_bases.add(knowledge_base)
    conversation = conversation_start(bot=bot, visitor_id="v")
    listener = ConversationListener(conversation.pk)
    question, reply = conversation_ask(
        conversation=conversation, text="What instrument does the office keep? Mail me at jo@example.com"
    )
    wait_for_in_process_tasks(timeout=120)
    events = listener.events_until_done()

    published = "".join(e.get("text", "") for e in events)
    assert "xylophone" not in published
    assert events[-1]["status"] == "blocked" and "Let me get a person for that." in events[-1]["text"]
    reply.refresh_from_db()
    assert reply.status == "blocked" and reply.moderation[0]["action"] == "block"
    question.refresh_from_db()
    assert question.text == "What instrument does the office keep? Mail me at [email]"
    assert Message.objects.filter(text__contains="jo@example.com").count() == 0


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("in_process_tasks")
def test_a_blocked_question_is_kept_and_answered_with_the_safe_reply(settings) -> None:
    settings.NEO_MODEL = "/nonexistent/model"
    bot = BotFactory(moderation_policy={"blocklist": ["darn"]})
    conversation = conversation_start(bot=bot, visitor_id="v")
    question, reply = conversation_ask(conversation=conversation, text="this d4rn app")
    wait_for_in_process_tasks(timeout=120)
    question.refresh_from_db()
    reply.refresh_from_db()
    assert question.text == "this d4rn app" and question.moderation[0]["action"] == "block"
    assert reply.text == SAFE_REPLY and reply.status == "blocked"


def test_the_canary_is_secret_and_the_same_for_every_attempt_at_a_reply() -> None:
    from workers.moderation.leakage import canary_for

    assert canary_for("key", 7) == canary_for("key", 7)
    assert len({canary_for("key", 7), canary_for("key", 8), canary_for("other", 7)}) == 3  # per bot, per secret
