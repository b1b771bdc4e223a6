"""The demo help centre and `load_demo`."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.core.management import call_command

from bots.models import Bot
from neo_support.demo import HELP_CENTRE_DIR, demo_load
from neo_support.models import Membership
from retrieval.models import Document

PAGES = sorted(HELP_CENTRE_DIR.glob("*.md"))


def test_the_help_centre_has_at_least_15_structured_pages() -> None:
    assert len(PAGES) >= 15
    texts = [page.read_text() for page in PAGES]
    for page, text in zip(PAGES, texts, strict=True):
        assert text.startswith("# "), page.name
        assert re.search(r"^## ", text, re.M), page.name
    assert sum(bool(re.search(r"^\|.*\|\s*$\n^\|[\s:|-]+\|\s*$", t, re.M)) for t in texts) >= 5, "tables"
    assert sum(bool(re.search(r"^\d+\. ", t, re.M)) for t in texts) >= 5, "numbered steps"
    assert sum(len(re.findall(r"^### .*\?\s*$", t, re.M)) >= 5 for t in texts) >= 3, "FAQ pages"


@pytest.mark.django_db
def test_loading_twice_creates_nothing_new(settings, tmp_path) -> None:
    settings.VAR_DIR = tmp_path
    first = demo_load(origins=["http://127.0.0.1:8000"])
    second = demo_load(origins=["http://127.0.0.1:8000"])

    assert first.documents_created == len(PAGES) and second.documents_created == 0
    assert second.documents_updated == 0
    assert Document.objects.count() == len(PAGES)
    assert Bot.objects.count() == 1
    assert first.password is not None and second.password == first.password
    assert Membership.objects.get().role == "owner"
    assert list(first.bot.knowledge_bases.all()) == [first.knowledge_base]


@pytest.mark.django_db
def test_a_changed_page_is_updated_in_place_and_queued_again(settings, tmp_path) -> None:
    settings.VAR_DIR = tmp_path
    result = demo_load(origins=[])
    document = Document.objects.order_by("pk").first()
    Document.objects.filter(pk=document.pk).update(checksum="stale", status="ready")

    again = demo_load(origins=["https://shop.example"])

    assert again.documents_updated == 1
    document.refresh_from_db()
    assert document.status == "pending" and document.checksum != "stale"
    result.bot.refresh_from_db()
    assert "https://shop.example" in result.bot.allowed_origins


@pytest.mark.django_db
def test_the_command_prints_the_admin_login(settings, tmp_path) -> None:
    settings.VAR_DIR = tmp_path
    out = StringIO()
    call_command("load_demo", "--port", "8123", stdout=out)
    password = (tmp_path / "demo_admin_password").read_text()
    assert f"Admin login: admin / {password}" in out.getvalue()
    assert Bot.objects.get().allowed_origins == ["http://127.0.0.1:8123", "http://localhost:8123"]
