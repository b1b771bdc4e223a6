"""The privacy page in a real headless Chromium: an owner finds a person from the
dashboard, starts their erasure and watches it finish."""

from __future__ import annotations

import pytest

from bots.models import Conversation, Message
from tests.factories import BotFactory, MembershipFactory, MessageFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_owner_finds_a_person_and_erases_them(live_server, page, in_process_tasks) -> None:
    owner = MembershipFactory(user__username="olive", role="owner")
    bot = BotFactory(organization=owner.organization, name="Tallyho Helper")
    chat = Conversation.objects.create(
        bot=bot, visitor_id="visitor-kim", visitor_info={"email": "kim@example.com", "name": "Kim Lee"}
    )
    MessageFactory(conversation=chat, text="Where is my order 5521?")
    MessageFactory(conversation=chat, role="bot", text="It left the warehouse today.")
    someone_else = MessageFactory(conversation=Conversation.objects.create(bot=bot, visitor_id="visitor-ann"))

    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_login", "olive")
    page.fill("#id_password", "correct horse battery staple")
    page.click("button[type=submit]")
    page.goto(f"{live_server.url}/dashboard/")
    page.click("nav >> text=Privacy")
    page.select_option("select[name=kind]", "email")
    page.fill("input[name=q]", "KIM@example.com")
    page.click("#person-search button[type=submit]")
    person = page.locator("#person")
    assert "kim@example.com" in person.inner_text() and "Kim Lee" in person.inner_text()
    assert "Tallyho Helper" in person.inner_text()

    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#erase button[type=submit]")
    page.wait_for_selector("text=The erasure is queued")
    page.wait_for_selector("#erasures tr[data-status=done]", timeout=30_000)
    assert not Conversation.objects.filter(pk=chat.pk).exists()
    assert Message.objects.filter(pk=someone_else.pk).exists()
    assert "kim@example.com" not in page.locator("#erasures").inner_text()
