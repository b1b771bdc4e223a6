"""The dashboard login in a real headless Chromium."""

from __future__ import annotations

import pytest

from tests.factories import BotFactory, MembershipFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_agent_logs_in_and_sees_their_organizations_bots(live_server, page, tmp_path) -> None:
    membership = MembershipFactory(user__username="dana", organization__name="Acme Outdoor")
    BotFactory(organization=membership.organization, name="Trail helper")

    page.goto(f"{live_server.url}/dashboard/")
    assert "/accounts/login/" in page.url
    page.fill("#id_username", "dana")
    page.fill("#id_password", "correct horse battery staple")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/dashboard/")

    assert page.locator("h1").inner_text() == "Acme Outdoor"
    assert page.get_by_role("cell", name="Trail helper").is_visible()
    page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)


def test_a_wrong_password_is_refused_with_a_message(live_server, page) -> None:
    MembershipFactory(user__username="dana")
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", "dana")
    page.fill("#id_password", "wrong")
    page.click("button[type=submit]")
    assert page.get_by_role("alert").inner_text().startswith("Your username and password didn't match")
    assert "/accounts/login/" in page.url
