"""The privacy REST API with scoped keys: retention settings, a person, their archive,
erasures."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from rest_framework.test import APIClient

from bots.models import Message, PersonErasure
from neo_support import rate_limits
from neo_support.services import api_key_create
from tests.bots.privacy.person_data import ATTACHMENT_BYTES, CHAT_TEXT, EMAIL, VISITOR, seed_person
from tests.factories import BotFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.NEO_RATE_API = "100000/minute"
    rate_limits.rate_reset()


def keyed(organization, *scopes: str) -> APIClient:
    _, raw = api_key_create(organization=organization, name="privacy", scopes=list(scopes))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def test_retention_is_read_and_changed_and_zero_days_is_a_400() -> None:
    organization = BotFactory().organization
    client = keyed(organization, "privacy:write")
    assert client.get("/api/privacy/retention/").json() == dict.fromkeys(
        ["conversations", "tickets", "attachments", "moderation", "audit_log"]
    )
    refused = client.patch("/api/privacy/retention/", {"conversations": 0}, format="json")
    assert refused.status_code == 400
    assert "keep at least 1 day" in refused.json()["error"]["details"]["fields"]["conversations"][0]
    changed = client.patch("/api/privacy/retention/", {"conversations": 30, "tickets": None}, format="json")
    assert changed.status_code == 200 and changed.json()["conversations"] == 30
    assert client.get("/api/privacy/retention/").json()["conversations"] == 30


def test_a_key_without_the_privacy_scope_is_refused() -> None:
    organization = BotFactory().organization
    assert keyed(organization, "conversations:write").get("/api/privacy/retention/").status_code == 403
    reader = keyed(organization, "privacy:read")
    assert reader.get("/api/privacy/retention/").status_code == 200
    assert reader.post("/api/privacy/erasures/", {"kind": "email", "q": EMAIL}, format="json").status_code == 403


def test_a_person_is_found_and_exported() -> None:
    seeded = seed_person(BotFactory())
    client = keyed(seeded.bot.organization, "privacy:read")
    found = client.get("/api/privacy/person/", {"kind": "visitor_id", "q": VISITOR}).json()
    assert found["found"] and found["emails"] == [EMAIL] and found["counts"]["attachments"] == 1
    nobody = client.get("/api/privacy/person/", {"kind": "email", "q": "nobody@example.com"}).json()
    assert nobody["found"] is False and nobody["emails"] == []
    bad = client.get("/api/privacy/person/", {"kind": "email", "q": "not-an-address"})
    assert bad.status_code == 400 and "q" in bad.json()["error"]["details"]["fields"]
    response = client.get("/api/privacy/person/export/", {"kind": "email", "q": EMAIL})
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert CHAT_TEXT in archive.read("conversations.json").decode()
    assert ATTACHMENT_BYTES in [archive.read(name) for name in archive.namelist() if name.startswith("attachments/")]
    missing = client.get("/api/privacy/person/export/", {"kind": "email", "q": "nobody@example.com"})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "nothing_found"


def test_an_erasure_is_started_once_and_followed() -> None:
    seeded = seed_person(BotFactory())
    client = keyed(seeded.bot.organization, "privacy:write")
    unknown = client.post("/api/privacy/erasures/", {"kind": "email", "q": "nobody@example.com"}, format="json")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "nothing_found"
    assert not PersonErasure.objects.exists()
    first = client.post("/api/privacy/erasures/", {"kind": "email", "q": EMAIL}, format="json")
    assert first.status_code == 202 and first.json()["status"] == "queued"
    again = client.post("/api/privacy/erasures/", {"kind": "email", "q": EMAIL}, format="json")
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    detail = client.get(f"/api/privacy/erasures/{first.json()['id']}/").json()
    assert detail["steps_total"] == 10 and EMAIL not in json.dumps(detail)
    assert client.get("/api/privacy/erasures/").json()["count"] == 1
    assert Message.objects.filter(text=CHAT_TEXT).exists()  # queued: the task erases (tested apart)
