"""The audit log in a real headless Chromium: an owner signs in (which the log records),
changes a setting, opens the log from the navigation and filters it."""

from __future__ import annotations

import pytest

from tests.factories import MembershipFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_owner_opens_the_audit_log_from_the_navigation_and_filters_it(live_server, page, tmp_path) -> None:
    MembershipFactory(user__username="olga", role="owner", organization__name="Acme Outdoor")

    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_login", "olga")
    page.fill("#id_password", "correct horse battery staple")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/dashboard/")
    page.click("header nav a:text-is('Settings')")
    page.fill("#id_name", "Acme Outdoor Ltd")
    page.click("main button:text-is('Save')")

    page.click("header nav a:text-is('Audit log')")
    page.wait_for_url(f"{live_server.url}/dashboard/audit/")
    rows = page.locator("table.audit tbody tr")
    assert rows.count() == 2
    assert "Signed in" in rows.nth(1).inner_text()

    page.select_option("#id_action", "organization.settings_change")
    page.click("main button:text-is('Filter')")
    page.wait_for_url("**/dashboard/audit/?*action=organization.settings_change*")
    assert rows.count() == 1
    row = rows.first.inner_text()
    assert "olga" in row and "Organization settings changed" in row
    assert '"Acme Outdoor" → "Acme Outdoor Ltd"' in row
    page.screenshot(path=str(tmp_path / "audit.png"), full_page=True)
