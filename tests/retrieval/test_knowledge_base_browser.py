"""The knowledge base page in a real headless Chromium (issue "The first hour of a new
company", item 7).

Regression: the index version shown on the page stayed at its old value until a reload,
although the documents' progress was live.
"""

from __future__ import annotations

import errno
import threading
from typing import Any

import pytest

from retrieval.services import ingestion
from tests.factories import KnowledgeBaseFactory, MembershipFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery staple"  # tests.factories.UserFactory's


def sign_in(page: Any, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.fill("#id_login", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base_url}/dashboard/")


def test_the_index_version_updates_without_a_reload_after_an_upload(
    live_server: Any, page: Any, tmp_path: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.NEO_TASKS_IN_PROCESS = True
    # The index is written only once the test has looked at the page, so the page
    # cannot simply have been rendered after the new version.
    looked = threading.Event()
    sync = ingestion.knowledge_base_sync_index

    def sync_after_a_look(**kwargs: Any) -> Any:
        looked.wait(60)
        return sync(**kwargs)

    monkeypatch.setattr(ingestion, "knowledge_base_sync_index", sync_after_a_look)
    membership = MembershipFactory(user__username="ola", role="admin")
    knowledge_base = KnowledgeBaseFactory(organization=membership.organization, name="Garden")
    article = tmp_path / "roses.md"
    article.write_text("# Roses\n\n## Pruning\n\nPrune roses in late winter, just above an outward bud.")

    sign_in(page, live_server.url, "ola")
    page.goto(f"{live_server.url}/dashboard/knowledge-bases/{knowledge_base.pk}/")
    assert page.inner_text("#index-version") == "0"
    page.set_input_files("#files", str(article))
    page.click("button:text-is('Add')")
    page.wait_for_selector("tr[data-document] td.title:text-is('Roses')")
    assert page.inner_text("#index-version") == "0"
    page.evaluate("window.sameDocument = true")  # gone if the page reloads
    looked.set()

    page.wait_for_selector("#index-version:text-is('1')", timeout=120_000)
    assert page.evaluate("window.sameDocument") is True
    assert page.inner_text("td.status") == "Ready"
    assert page.inner_text("#chunk-total") == "1"  # the deletion warning counts the new chunks too
    page.screenshot(path=str(tmp_path / "knowledge-base.png"), full_page=True)


def test_a_failure_shows_retry_live_only_when_a_retry_can_help(
    live_server: Any, page: Any, tmp_path: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.NEO_TASKS_IN_PROCESS = True
    looked = threading.Event()
    sync = ingestion.knowledge_base_sync_index
    calls: list[int] = []

    def disk_full_once(**kwargs: Any) -> Any:
        looked.wait(60)
        calls.append(1)
        if len(calls) == 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return sync(**kwargs)

    monkeypatch.setattr(ingestion, "knowledge_base_sync_index", disk_full_once)
    membership = MembershipFactory(user__username="ola", role="admin")
    knowledge_base = KnowledgeBaseFactory(organization=membership.organization, name="Garden")
    article = tmp_path / "roses.md"
    article.write_text("# Roses\n\n## Pruning\n\nPrune roses in late winter, just above an outward bud.")
    fake = tmp_path / "brochure.pdf"
    fake.write_bytes(b"<html>not really a PDF</html>" * 100)

    sign_in(page, live_server.url, "ola")
    page.goto(f"{live_server.url}/dashboard/knowledge-bases/{knowledge_base.pk}/")
    page.set_input_files("#files", [str(article), str(fake)])
    page.click("button:text-is('Add')")
    page.wait_for_selector("text=2 document(s) added")
    assert page.locator("button:text-is('Retry')").count() == 0
    looked.set()

    roses = page.locator("tr", has=page.locator("td.title:text-is('Roses')"))
    brochure = page.locator("tr", has=page.locator("td.title:text-is('brochure')"))
    roses.locator("button:text-is('Retry')").wait_for(timeout=120_000)
    assert "disk is full" in roses.locator("td.status").inner_text()
    brochure.locator(".advice").wait_for(timeout=120_000)
    assert "upload a corrected or different file" in brochure.locator(".advice").inner_text()
    assert brochure.locator("button:text-is('Retry')").count() == 0

    roses.locator("button:text-is('Retry')").click()
    page.wait_for_selector("text=Processing 'Roses' again.")
    page.wait_for_selector("tr:has(td.title:text-is('Roses')) td.status:text-is('Ready')", timeout=120_000)


def test_choosing_a_big_file_shows_its_estimate_and_a_long_upload_warning_before_it_is_sent(
    live_server: Any, page: Any, tmp_path: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Issue 23: a 2 MB text file became 2,000 chunks and minutes of indexing, unannounced.
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.NEO_TASKS_IN_PROCESS = True
    monkeypatch.setattr("retrieval.services.documents.enqueue", lambda *args, **kwargs: None)  # not indexed here
    membership = MembershipFactory(user__username="ola", role="admin")
    knowledge_base = KnowledgeBaseFactory(organization=membership.organization, name="Manuals")
    manual = tmp_path / "manual.txt"
    manual.write_text("The courier collects parcels every weekday morning. " * 40_000)  # 2 MB
    note = tmp_path / "note.md"
    note.write_text("# Refunds\n\nRefunds take five days.")

    sign_in(page, live_server.url, "ola")
    page.goto(f"{live_server.url}/dashboard/knowledge-bases/{knowledge_base.pk}/")
    assert not page.is_visible("#upload-estimate")
    page.set_input_files("#files", [str(manual), str(note)])
    long = page.wait_for_selector("#upload-estimate .estimate.long")
    assert long.inner_text().startswith("manual.txt: about 2,")
    assert "to index (a long upload)." in long.inner_text()
    assert page.inner_text("#upload-estimate .estimate:not(.long)").startswith("note.md: about 1 chunk, about ")
    assert "documents added after it do not wait" in page.inner_text("#upload-estimate")

    page.click("button:text-is('Add')")  # and the page says it again once the file is in
    page.wait_for_selector("text=manual.txt: about 2,")
    page.screenshot(path=str(tmp_path / "upload-estimate.png"), full_page=True)
