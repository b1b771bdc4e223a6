"""The agents' inbox: queues, filters and SLA; the ticket page with the bot's draft;
replying by email and in a live chat (the bot stays silent while an agent holds it);
notes, assignment, status, priority and category; roles and other organizations."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from bots.chat.services import conversation_ask, conversation_start
from bots.models import Conversation, Delivery, Message, Role, Ticket
from tests.channel_listener import ConversationListener
from tests.conftest import Inbox
from tests.factories import BotFactory, ConversationFactory, MembershipFactory, TicketFactory


@pytest.fixture
def smtp(settings):  # type: ignore[no-untyped-def]
    box = Inbox()
    box.controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", box.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    yield box
    box.controller.stop()


def email_ticket(bot, **fields):  # type: ignore[no-untyped-def]
    conversation = ConversationFactory(bot=bot, channel="email")
    ticket = TicketFactory(conversation=conversation, **fields)
    Message.objects.create(
        conversation=conversation, role=Role.VISITOR, text="My invoice total is wrong.", external_id="c1@x"
    )
    return ticket


@pytest.mark.django_db
def test_queues_filters_search_and_overdue(client) -> None:
    agent = MembershipFactory(role="agent")
    bot = BotFactory(organization=agent.organization)
    late = email_ticket(
        bot, subject="Invoice wrong", status="open", priority="urgent", due_at=timezone.now() - timedelta(hours=2)
    )
    mine = email_ticket(bot, subject="Export question", status="open", assignee=agent.user)
    done = email_ticket(bot, subject="Old", status="solved")
    stranger = email_ticket(BotFactory(), subject="Someone else's")
    client.force_login(agent.user)

    page = client.get("/dashboard/inbox/").content.decode()
    assert late.token in page and mine.token in page and done.token not in page and stranger.token not in page
    assert 'class="overdue"' in page and page.index(late.token) < page.index(mine.token)  # urgent first
    assert late.token not in client.get("/dashboard/inbox/?queue=mine").content.decode()
    assert mine.token not in client.get("/dashboard/inbox/?queue=unassigned").content.decode()
    assert done.token in client.get("/dashboard/inbox/?queue=resolved").content.decode()
    found = client.get("/dashboard/inbox/?queue=all&q=invoice").content.decode()
    assert late.token in found and mine.token in found  # the message text matches too
    assert mine.token not in client.get("/dashboard/inbox/?queue=all&priority=urgent").content.decode()
    assert client.get(f"/dashboard/inbox/{stranger.pk}/").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_an_agent_approves_the_bots_draft_after_editing_it(client, smtp) -> None:
    agent = MembershipFactory(role="agent")
    bot = BotFactory(organization=agent.organization, support_email="help@tallyho.example")
    ticket = email_ticket(bot, status="open")
    draft = Message.objects.create(
        conversation=ticket.conversation, role=Role.BOT, text="Open Billing [1].", delivery=Delivery.DRAFT,
        confidence=0.4, citations=[{"number": 1, "title": "Billing", "url": ""}], moderation_action="flag",
    )  # fmt: skip
    client.force_login(agent.user)
    page = client.get(f"/dashboard/inbox/{ticket.pk}/").content.decode()
    assert "Bot draft (not sent)" in page and "confidence 0.40" in page and "Approve and send" in page
    assert "moderation: flag" in page  # the verdict is shown where the agent decides

    response = client.post(
        f"/dashboard/inbox/{ticket.pk}/act",
        {"action": "approve", "draft_id": draft.pk, "text": "Open Settings > Billing [1]."},
    )
    assert response.status_code == 302
    assert smtp.arrived.wait(10)
    sent = smtp.messages[0]
    assert sent["In-Reply-To"] == "<c1@x>" and "Open Settings > Billing [1]." in sent.get_content()
    assert "written automatically" not in sent.get_content() and sent["Auto-Submitted"] is None
    draft.refresh_from_db()
    ticket.refresh_from_db()
    assert draft.delivery == Delivery.SENT and draft.author_id == agent.user.pk
    assert ticket.status == "pending" and ticket.assignee_id == agent.user.pk
    again = client.post(f"/dashboard/inbox/{ticket.pk}/act", {"action": "approve", "draft_id": draft.pk, "text": "x"})
    assert again.status_code == 400 and "already sent" in again.content.decode()


@pytest.mark.django_db
def test_notes_assignment_and_changes_and_what_viewers_may_do(client) -> None:
    agent = MembershipFactory(role="agent")
    colleague = MembershipFactory(organization=agent.organization, role="agent")
    viewer = MembershipFactory(organization=agent.organization, role="viewer")
    ticket = email_ticket(BotFactory(organization=agent.organization), status="open")
    client.force_login(agent.user)
    act = f"/dashboard/inbox/{ticket.pk}/act"

    assert client.post(act, {"action": "note", "text": "Customer is on the annual plan."}).status_code == 302
    assert client.post(act, {"action": "assign", "assignee": colleague.user.pk}).status_code == 302
    assert (
        client.post(act, {"action": "update", "status": "open", "priority": "high", "category": "Billing"}).status_code
        == 302
    )
    ticket.refresh_from_db()
    assert ticket.assignee_id == colleague.user.pk and ticket.priority == "high"
    assert ticket.category == "Billing" and ticket.category_source == "agent"  # what triage learns from
    note = Message.objects.get(conversation=ticket.conversation, role=Role.SYSTEM, author=agent.user)
    assert note.text == "Customer is on the annual plan." and note.delivery == ""
    page = client.get(f"/dashboard/inbox/{ticket.pk}/").content.decode()
    assert "Internal note by" in page

    empty = client.post(act, {"action": "reply", "text": "   "})
    assert empty.status_code == 400 and "The reply is empty." in empty.content.decode()
    for action in ("reply", "note"):  # PostgreSQL cannot store NUL: a clear error, not a 500
        nul = client.post(act, {"action": action, "text": "Hello\x00there"})
        assert nul.status_code == 400 and "Null characters are not allowed." in nul.content.decode()
    assert client.post(act, {"action": "update", "priority": "someday"}).status_code == 400
    stranger = MembershipFactory(role="agent").user
    assert client.post(act, {"action": "assign", "assignee": stranger.pk}).status_code == 400
    assert client.get(act).status_code == 405

    client.force_login(viewer.user)
    assert client.get(f"/dashboard/inbox/{ticket.pk}/").status_code == 200
    assert client.post(act, {"action": "note", "text": "hi"}).status_code == 403


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("in_process_tasks")
def test_an_agent_takes_over_a_live_chat_and_the_bot_stays_silent(client, settings) -> None:
    settings.NEO_MODEL = "/nonexistent/model"
    agent = MembershipFactory(role="agent")
    bot = BotFactory(organization=agent.organization)
    conversation = conversation_start(bot=bot, visitor_id="visitor-1")
    Message.objects.create(conversation=conversation, role=Role.VISITOR, text="I need a person please")
    ticket = Ticket.objects.create(conversation=conversation, subject="I need a person please")
    listener = ConversationListener(conversation.pk)
    client.force_login(agent.user)

    response = client.post(
        f"/dashboard/inbox/{ticket.pk}/act", {"action": "reply", "text": "Hi, I'm Sam. How can I help?"}
    )
    assert response.status_code == 302
    events = [listener._events.get(timeout=10) for _ in range(2)]
    assert events[0]["type"] == "status" and events[0]["status"] == "agent_joined"
    assert events[1]["type"] == "agent_message" and events[1]["message"]["text"] == "Hi, I'm Sam. How can I help?"
    assert Conversation.objects.get(pk=conversation.pk).status == "agent"

    question, reply = conversation_ask(conversation=conversation, text="My invoice is wrong")
    assert reply is None and Message.objects.filter(conversation=conversation, role=Role.BOT).count() == 0
    assert "My invoice is wrong" in client.get(f"/dashboard/inbox/{ticket.pk}/?fragment=thread").content.decode()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("in_process_tasks")
def test_an_agent_hands_a_live_chat_back_to_the_bot(client, settings) -> None:
    settings.NEO_MODEL = "/nonexistent/model"
    agent = MembershipFactory(role="agent", user__username="sam", user__first_name="Sam")
    viewer = MembershipFactory(organization=agent.organization, role="viewer")
    bot = BotFactory(organization=agent.organization)
    conversation = conversation_start(bot=bot, visitor_id="visitor-1")
    Message.objects.create(conversation=conversation, role=Role.VISITOR, text="I need a person please")
    ticket = Ticket.objects.create(conversation=conversation, subject="I need a person please")
    act = f"/dashboard/inbox/{ticket.pk}/act"
    client.force_login(agent.user)
    assert client.post(act, {"action": "reply", "text": "Hi, I'm Sam."}).status_code == 302
    page = client.get(f"/dashboard/inbox/{ticket.pk}/").content.decode()
    assert "Hand back to the bot" in page and 'value="return_to_bot"' in page

    client.force_login(viewer.user)  # viewers only read
    assert client.post(act, {"action": "return_to_bot"}).status_code == 403
    assert Conversation.objects.get(pk=conversation.pk).status == "agent"

    client.force_login(agent.user)
    listener = ConversationListener(conversation.pk)
    response = client.post(act, {"action": "return_to_bot"})
    assert response.status_code == 302
    assert listener._events.get(timeout=10) | {"id": None} == {
        "type": "status",
        "status": "returned_to_bot",
        "id": None,
    }
    assert Conversation.objects.get(pk=conversation.pk).status == "bot"
    note = Message.objects.filter(conversation=conversation, role=Role.SYSTEM).latest("pk")
    assert note.text == "Sam handed the conversation back to the bot." and note.author_id is None
    page = client.get(f"/dashboard/inbox/{ticket.pk}/", follow=True).content.decode()
    assert "The chat is back with the bot" in page and "Hand back to the bot" not in page

    # The bot answers the visitor again.
    question, reply = conversation_ask(conversation=conversation, text="One more thing")
    assert reply is not None

    again = client.post(act, {"action": "return_to_bot"})
    assert again.status_code == 400 and "This chat is already with the bot." in again.content.decode()


@pytest.mark.django_db
def test_an_email_ticket_cannot_be_handed_back_to_the_bot(client) -> None:
    agent = MembershipFactory(role="agent")
    ticket = email_ticket(BotFactory(organization=agent.organization), status="open")
    client.force_login(agent.user)
    assert "Hand back to the bot" not in client.get(f"/dashboard/inbox/{ticket.pk}/").content.decode()
    response = client.post(f"/dashboard/inbox/{ticket.pk}/act", {"action": "return_to_bot"})
    assert response.status_code == 400
    assert "Only a live chat can be handed back to the bot" in response.content.decode()


@pytest.mark.django_db
def test_the_thread_renders_the_safe_markdown_subset_and_escapes_the_rest(client) -> None:
    agent = MembershipFactory(role="agent")
    ticket = email_ticket(BotFactory(organization=agent.organization), status="open")
    Message.objects.create(
        conversation=ticket.conversation, role=Role.BOT, text="Open **Billing** [1].\n\n<script>alert(1)</script>",
        citations=[{"number": 1, "title": "Billing", "url": ""}],
    )  # fmt: skip
    client.force_login(agent.user)
    thread = client.get(f"/dashboard/inbox/{ticket.pk}/?fragment=thread").content.decode()
    assert "<strong>Billing</strong>" in thread
    assert "<script>alert(1)</script>" not in thread and "&lt;script&gt;" in thread
