"""The agents' inbox in a real headless Chromium: find the overdue ticket, read the
bot's draft, edit it and send it; the customer's SMTP server receives it."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from bots.models import Delivery, Message, Role
from tests.conftest import Inbox
from tests.factories import BotFactory, ConversationFactory, MembershipFactory, TicketFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
SAVE_SCREENSHOTS = os.environ.get("NEO_SCREENSHOTS") == "1"  # refreshes the docs' pictures


def test_an_agent_edits_and_sends_the_bots_draft(live_server, page, settings) -> None:
    smtp = Inbox()
    smtp.controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", smtp.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    try:
        agent = MembershipFactory(user__username="sam", role="agent")
        bot = BotFactory(organization=agent.organization, name="Tallyho Helper", support_email="help@tallyho.example")
        conversation = ConversationFactory(bot=bot, channel="email")
        ticket = TicketFactory(
            conversation=conversation, subject="Refund for my annual plan", requester_name="Jo Customer",
            status="open", priority="high", category="Billing", due_at=timezone.now() - timedelta(minutes=30),
        )  # fmt: skip
        Message.objects.create(
            conversation=conversation, role=Role.VISITOR, text="How do I get a refund?", external_id="q@x"
        )
        Message.objects.create(
            conversation=conversation, role=Role.BOT, delivery=Delivery.DRAFT, confidence=0.42,
            text="Annual plans can be refunded within 30 days [1].",
            citations=[{"number": 1, "title": "Refunds and cancellation", "url": ""}],
        )  # fmt: skip
        email_ticket = TicketFactory(
            conversation=ConversationFactory(bot=bot, channel="email"), subject="Export to CSV", status="open"
        )

        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("#id_login", "sam")
        page.fill("#id_password", "correct horse battery staple")
        page.click("button[type=submit]")
        page.goto(f"{live_server.url}/dashboard/inbox/")
        row = page.locator(f"#ticket-{ticket.pk}")
        assert "overdue" in (row.get_attribute("class") or "") and "overdue" in row.inner_text()
        assert page.locator(f"#ticket-{email_ticket.pk}").is_visible()
        if SAVE_SCREENSHOTS:
            page.screenshot(path=str(SCREENSHOTS / "inbox.png"), full_page=True)

        row.get_by_role("link").click()
        page.wait_for_selector("text=Bot draft (not sent)")
        assert "confidence 0.42" in page.content()
        if SAVE_SCREENSHOTS:
            page.screenshot(path=str(SCREENSHOTS / "ticket.png"), full_page=True)
        page.fill("article.draft textarea", "Annual plans can be refunded within 30 days: Settings > Billing [1].")
        page.click("text=Approve and send")
        page.wait_for_selector("text=Reply sent.")
        assert smtp.arrived.wait(10)
        assert "Settings > Billing [1]." in smtp.messages[0].get_content()
        assert page.locator("article.draft").count() == 0
    finally:
        smtp.controller.stop()
