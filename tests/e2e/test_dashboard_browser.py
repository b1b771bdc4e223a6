"""The dashboard login in a real headless Chromium."""

from __future__ import annotations

import pytest

from tests.factories import BotFactory, KnowledgeBaseFactory, MembershipFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_agent_logs_in_and_sees_their_organizations_bots(live_server, page, tmp_path) -> None:
    membership = MembershipFactory(user__username="dana", organization__name="Acme Outdoor")
    BotFactory(organization=membership.organization, name="Trail helper")

    page.goto(f"{live_server.url}/dashboard/")
    assert "/accounts/login/" in page.url
    page.fill("#id_login", "dana")
    page.fill("#id_password", "correct horse battery staple")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/dashboard/")

    assert page.locator("h1").inner_text() == "Acme Outdoor"
    assert page.get_by_role("cell", name="Trail helper").is_visible()
    page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)


def test_a_wrong_password_is_refused_with_a_message(live_server, page) -> None:
    MembershipFactory(user__username="dana")
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_login", "dana")
    page.fill("#id_password", "wrong")
    page.click("button[type=submit]")
    assert page.get_by_role("alert").inner_text().startswith("Your username and password didn't match")
    assert "/accounts/login/" in page.url


def test_an_upload_shows_live_progress_until_ready_and_the_playground_finds_it(
    live_server, page, tmp_path, settings
) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.NEO_TASKS_IN_PROCESS = True
    membership = MembershipFactory(user__username="ola", role="admin")
    knowledge_base = KnowledgeBaseFactory(organization=membership.organization, name="Garden")
    document = tmp_path / "roses.md"
    document.write_text("# Roses\n\n## Pruning\n\nPrune roses in late winter, just above an outward bud.")

    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_login", "ola")
    page.fill("#id_password", "correct horse battery staple")
    page.click("button[type=submit]")
    page.goto(f"{live_server.url}/dashboard/knowledge-bases/{knowledge_base.pk}/")
    page.set_input_files("#files", str(document))
    page.click("button:text-is('Add')")
    page.wait_for_selector("td.status:text-is('Ready')", timeout=120_000)
    page.screenshot(path=str(tmp_path / "knowledge-base.png"), full_page=True)

    page.click("text=Retrieval playground")
    page.fill("#q", "when should I prune roses")
    page.click("button:text('Search')")
    first = page.locator("ol.hits li").first
    assert "Pruning" in first.inner_text() and "late winter" in first.inner_text()


@pytest.mark.parametrize(("width", "height"), [(1400, 900), (1024, 768), (600, 800)])
def test_the_navigation_wraps_instead_of_pushing_log_out_off_the_page(
    live_server, page, tmp_path, width, height
) -> None:
    """Issue 24, item 4: at about 1,400 px the bar's links ran past the right edge and cut off "Log out"."""
    membership = MembershipFactory(
        role="owner", user__username="alexandra.montgomery", user__is_superuser=True, user__is_staff=True,
        organization__name="Acme Outdoor Equipment International",
    )  # fmt: skip  # every link the bar has, with a long name and organization
    page.set_viewport_size({"width": width, "height": height})
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_login", membership.user.username)
    page.fill("#id_password", "correct horse battery staple")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/dashboard/")

    page.screenshot(path=str(tmp_path / f"navigation-{width}.png"))
    assert page.evaluate("document.documentElement.scrollWidth") <= width  # nothing runs off to the side
    for name in ("Overview", "Privacy", "Admin"):
        box = page.get_by_role("link", name=name, exact=True).bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, (name, box)
    log_out = page.get_by_role("button", name="Log out")
    box = log_out.bounding_box()
    assert box is not None and box["x"] + box["width"] <= width, box
    log_out.click()
    page.wait_for_url(lambda url: "/dashboard/" not in url)
