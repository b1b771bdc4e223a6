"""The chat session against the real ASGI application, for what a new company sees in
its first hour: the bot's theme in `welcome`, test chats marked only from the dashboard,
people named in the chat and handing it back to the bot, and a thumbs down's comment."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async

from bots.chat.services import conversation_start
from bots.chat.visitors import Visitor, visitor_token_issue
from bots.models import Conversation, Delivery, Feedback, Message, Role, Ticket
from bots.tickets.inbox import ticket_reply, ticket_return_to_bot
from neo_support import rate_limits
from tests.bots.chat.test_protocol import ORIGIN, Client
from tests.factories import BotFactory, MembershipFactory

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("in_process_tasks"),
]

OWN = "http://testserver"  # the dashboard's pages: this server's own origin


@pytest.fixture(autouse=True)
def fresh_limits(settings):
    settings.NEO_MODEL = "/nonexistent/model"
    rate_limits.rate_reset()
    rate_limits._items.cache_clear()
    yield
    rate_limits.rate_reset()
    rate_limits._items.cache_clear()


@pytest.fixture
def bot(db):
    return BotFactory(
        allowed_origins=[ORIGIN],
        theme={"accent": "#0a7d32", "position": "left", "title": "Garden help"},
        answer_threshold=0.0,
        handoff_threshold=0.0,
    )


def token_for(conversation: Conversation) -> str:
    return visitor_token_issue(Visitor(conversation.bot_id, conversation.visitor_id, conversation.pk))


async def test_welcome_carries_the_theme_saved_on_the_bot_page(bot) -> None:
    async with Client(bot.public_key) as client:
        welcome = await client.hello()
    assert welcome["bot"]["theme"] == {"accent": "#0a7d32", "position": "left", "title": "Garden help"}
    assert welcome["conversation_status"] is None


async def test_a_test_chat_from_the_dashboard_is_marked_and_the_flag_is_ignored_elsewhere(bot) -> None:
    for origin, marked in ((OWN, True), (ORIGIN, False)):
        async with Client(bot.public_key, origin=origin) as client:
            await client.hello(test=True)
            await client.send({"type": "message", "client_id": "c1", "text": "hello there"})
            ack = (await client.until("ack"))[-1]
            conversation = await database_sync_to_async(Conversation.objects.get)(pk=ack["conversation_id"])
            assert conversation.is_test is marked, origin
            assert conversation.visitor_id.startswith("t_") is marked
            await client.until("done")
    async with Client(bot.public_key, origin=OWN) as client:  # the demo page: no flag, a real visitor
        await client.hello()
        await client.send({"type": "message", "client_id": "c1", "text": "hello there"})
        ack = (await client.until("ack"))[-1]
        assert not (await database_sync_to_async(Conversation.objects.get)(pk=ack["conversation_id"])).is_test
        await client.until("done")


async def test_a_test_visitors_next_conversation_is_marked_too(bot) -> None:
    # The mark lives in the signed token's visitor id: it survives reconnects without the flag.
    async with Client(bot.public_key, origin=OWN) as client:
        token = (await client.hello(test=True))["visitor_token"]
    async with Client(bot.public_key, origin=OWN) as client:
        await client.hello(visitor_token=token)
        await client.send({"type": "message", "client_id": "c1", "text": "hello again"})
        ack = (await client.until("ack"))[-1]
        assert (await database_sync_to_async(Conversation.objects.get)(pk=ack["conversation_id"])).is_test
        await client.until("done")


async def test_the_test_flag_must_be_a_boolean(bot) -> None:
    async with Client(bot.public_key, origin=OWN) as client:
        await client.send({"type": "hello", "v": 1, "test": "yes"})
        error = await client.event()
        assert (error["code"], error["details"]["field"]) == ("invalid_frame", "test")


def _agent_holds_a_chat(bot, *, full_name: str = "Sam Rivera"):  # type: ignore[no-untyped-def]
    agent = MembershipFactory(
        organization=bot.organization,
        role="agent",
        user__username="sam@tallyho.example",
        user__first_name=full_name.split(" ")[0] if full_name else "",
        user__last_name=full_name.split(" ")[-1] if full_name else "",
    )
    conversation = conversation_start(bot=bot, visitor_id="v_visitor")
    Message.objects.create(conversation=conversation, role=Role.VISITOR, text="I need a person")
    ticket = Ticket.objects.create(conversation=conversation, subject="I need a person")
    return agent.user, conversation, ticket


async def test_a_persons_messages_carry_their_name_live_and_in_history(bot) -> None:
    user, conversation, ticket = await database_sync_to_async(_agent_holds_a_chat)(bot)
    async with Client(bot.public_key) as client:
        await client.hello(visitor_token=token_for(conversation))
        await database_sync_to_async(ticket_reply)(ticket=ticket, by=user, text="Hi, I'm **Sam**.")
        joined, said = await client.event(), await client.event()
    assert joined["type"] == "status" and joined["status"] == "agent_joined" and joined["agent"] == "Sam Rivera"
    assert said["type"] == "agent_message" and said["message"]["author"] == "Sam Rivera"
    assert said["message"]["text"] == "Hi, I'm **Sam**."

    # An internal note and a draft never reach the visitor; the person is named in history.
    await database_sync_to_async(Message.objects.create)(
        conversation=conversation, role=Role.SYSTEM, text="VIP customer, be nice", author=user
    )
    await database_sync_to_async(Message.objects.create)(
        conversation=conversation, role=Role.BOT, text="A draft", delivery=Delivery.DRAFT
    )
    async with Client(bot.public_key) as client:
        welcome = await client.hello(visitor_token=token_for(conversation))
    assert welcome["conversation_status"] == "agent"
    assert [(m["role"], m.get("author")) for m in welcome["history"]] == [("visitor", None), ("agent", "Sam Rivera")]
    assert "VIP" not in str(welcome) and "A draft" not in str(welcome)


async def test_asking_for_a_person_while_one_holds_the_chat_says_so(bot) -> None:
    user, conversation, ticket = await database_sync_to_async(_agent_holds_a_chat)(bot)
    await database_sync_to_async(ticket_reply)(ticket=ticket, by=user, text="Hello")
    async with Client(bot.public_key) as client:
        await client.hello(visitor_token=token_for(conversation))
        await client.send({"type": "handoff_request"})
        status = await client.event()
    assert status == {"type": "status", "status": "agent_joined"}  # to this client alone: no id


async def test_handing_the_chat_back_tells_the_widget_and_the_bot_answers_again(bot) -> None:
    user, conversation, ticket = await database_sync_to_async(_agent_holds_a_chat)(bot)
    await database_sync_to_async(ticket_reply)(ticket=ticket, by=user, text="Sorted, bye!")
    async with Client(bot.public_key) as client:
        await client.hello(visitor_token=token_for(conversation))
        await database_sync_to_async(ticket_return_to_bot)(ticket=ticket, by=user)
        status = await client.event()
        assert status["type"] == "status" and status["status"] == "returned_to_bot" and status["id"]
        await client.send({"type": "message", "client_id": "c9", "text": "One more question"})
        ack = (await client.until("ack"))[-1]
        assert ack["reply_id"] is not None  # the bot answers again
        await client.until("done")
    async with Client(bot.public_key) as client:
        welcome = await client.hello(visitor_token=token_for(conversation))
    assert welcome["conversation_status"] == "bot"
    assert "Sam Rivera handed the conversation back to the bot." in [m["text"] for m in welcome["history"]]


async def test_a_thumbs_down_then_its_comment_leave_one_feedback_row_with_the_comment(bot) -> None:
    conversation = await database_sync_to_async(conversation_start)(bot=bot, visitor_id="v_rater")
    reply = await database_sync_to_async(Message.objects.create)(
        conversation=conversation, role=Role.BOT, text="Prune in summer.", status="done"
    )
    async with Client(bot.public_key) as client:
        await client.hello(visitor_token=token_for(conversation))
        await client.send({"type": "feedback", "message_id": reply.pk, "rating": -1})
        assert (await client.event())["type"] == "feedback_saved"
        await client.send({"type": "feedback", "message_id": reply.pk, "rating": -1, "comment": "It is winter."})
        saved = await client.event()
    assert saved == {"type": "feedback_saved", "message_id": reply.pk, "rating": -1}
    rows = await database_sync_to_async(list)(Feedback.objects.filter(message=reply).values_list("rating", "comment"))
    assert rows == [(-1, "It is winter.")]
