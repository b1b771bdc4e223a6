"""The moderation log in a real headless Chromium: an owner opens it, sees the share of
traffic flagged per filter drawn as a chart, marks a hate flag "not a problem", sees what
that taught and undoes it, and views the log grouped by filter and reason."""

from __future__ import annotations

import pytest

from bots.models import Message, ModerationExample
from tests.e2e.test_bot_page_browser import server  # noqa: F401 (the uvicorn fixture, reused)
from tests.factories import BotFactory, ConversationFactory, MembershipFactory, MessageFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TEXT = "I am so sick of hearing people hate immigrants."


def test_an_owner_teaches_a_filter_from_the_log_and_undoes_it(server, page) -> None:  # noqa: F811
    owner = MembershipFactory(user__username="mo", role="owner")
    conversation = ConversationFactory(bot=BotFactory(organization=owner.organization, name="Helper"))
    MessageFactory(conversation=conversation, role="visitor", text="Where is my parcel?")
    finding = {"filter": "toxicity", "action": "block", "reason": "hateful towards a group", "span": [0, len(TEXT)]}
    message = MessageFactory(
        conversation=conversation,
        role="visitor",
        text=TEXT,
        moderation=[{"action": "block", "findings": [{**finding, "score": 0.71}]}],
        moderation_action="block",
    )
    page.emulate_media(reduced_motion="reduce")
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    page.goto(f"{server}/accounts/login/")
    page.fill("#id_login", "mo")
    page.fill("#id_password", "correct horse battery staple")
    page.click("button[type=submit]")
    page.wait_for_url(f"{server}/dashboard/")
    page.goto(f"{server}/dashboard/moderation/")

    page.wait_for_function("window.Chart && Chart.getChart(document.getElementById('chart-moderation-daily'))")
    labels = page.evaluate(
        "Chart.getChart(document.getElementById('chart-moderation-daily')).data.datasets.map(d => d.label)"
    )
    assert labels == ["toxicity"]
    row = page.locator(f"#message-{message.pk}")
    assert TEXT in row.inner_text()

    row.get_by_role("button", name="Mark as false positive").click()
    page.wait_for_selector("text=taught toxicity to allow messages like it")
    example = ModerationExample.objects.get()
    taught = page.locator(f"#taught-{example.pk}")
    assert "toxicity" in taught.inner_text() and TEXT in taught.inner_text()
    assert "False positive" in page.locator(f"#message-{message.pk}").inner_text()

    page.select_option("#id_view", "grouped")
    page.locator("form.filters button[type=submit]").click()
    page.wait_for_url("**view=grouped**")
    groups = page.locator("table.moderation-groups").inner_text()
    assert "hateful towards a group" in groups and "100 % (1)" in groups
    page.locator("table.moderation-groups a:text-is('Messages')").click()
    page.wait_for_url("**reason=**")
    assert page.locator("table.moderation tbody tr").count() == 1

    page.locator(f"#taught-{example.pk}").get_by_role("button", name="Remove").click()
    page.wait_for_selector("text=judges messages like it again")
    assert not ModerationExample.objects.exists()
    assert page.locator(f"#taught-{example.pk}").count() == 0
    assert Message.objects.get(pk=message.pk).moderation_review["false_positive"] is True
    assert errors == []
