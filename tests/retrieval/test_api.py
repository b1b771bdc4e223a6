"""REST: upload (multipart), status, delete and search, scoped to the caller's organization."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from neo_support.services import api_key_create
from neo_support.tasking import wait_for_in_process_tasks
from retrieval.models import Document
from tests.factories import KnowledgeBaseFactory, MembershipFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("in_process_tasks")]


@pytest.fixture
def knowledge_base():
    return KnowledgeBaseFactory(name="Docs")


@pytest.fixture
def api(knowledge_base) -> APIClient:
    _, raw_key = api_key_create(organization=knowledge_base.organization, name="test")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    return client


def wait_until_ready(document_id: int) -> Document:
    wait_for_in_process_tasks(timeout=120)
    return Document.objects.get(pk=document_id)


def test_a_multipart_upload_is_ingested_and_searchable(api, knowledge_base) -> None:
    upload = SimpleUploadedFile("returns.md", b"# Returns\n\nUnworn shoes can be returned within 60 days.")
    response = api.post(f"/api/knowledge-bases/{knowledge_base.pk}/documents/", {"file": upload}, format="multipart")
    assert response.status_code == 201, response.json()
    assert response.json()["status"] == "pending"

    document = wait_until_ready(response.json()["id"])
    assert document.status == "ready"
    status = api.get(f"/api/knowledge-bases/{knowledge_base.pk}/documents/{document.pk}/").json()
    assert status["status"] == "ready" and status["progress"] == 100

    results = api.get(f"/api/knowledge-bases/{knowledge_base.pk}/search/", {"q": "return shoes"}).json()["results"]
    assert results[0]["document_id"] == document.pk and "60 days" in results[0]["text"]


def test_an_upload_answers_with_its_estimate_and_says_when_it_is_long(api, knowledge_base, monkeypatch) -> None:
    # Issue 23: a 2 MB file took minutes to index and nothing said so beforehand.
    monkeypatch.setattr("retrieval.services.documents.enqueue", lambda *args, **kwargs: None)  # not indexed here
    url = f"/api/knowledge-bases/{knowledge_base.pk}/documents/"
    manual = SimpleUploadedFile("manual.txt", b"The courier collects parcels every weekday morning. " * 40_000)
    big = api.post(url, {"file": manual}, format="multipart").json()
    assert big["estimate"]["chunks"] > 1_000 and big["estimate"]["long"] is True
    assert big["estimate"]["message"].startswith(f"about {big['estimate']['chunks']:,} chunks, about ")
    small = api.post(url, {"text": "Refunds take five days.", "title": "Refunds"}, format="json").json()
    assert small["estimate"]["chunks"] == 1 and small["estimate"]["long"] is False


def test_a_duplicate_upload_answers_409(api, knowledge_base) -> None:
    url = f"/api/knowledge-bases/{knowledge_base.pk}/documents/"
    api.post(url, {"text": "Same words", "title": "One"}, format="json")
    response = api.post(url, {"text": "Same words", "title": "Two"}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "duplicate"


def test_bad_requests_answer_400_in_the_error_format(api, knowledge_base) -> None:
    url = f"/api/knowledge-bases/{knowledge_base.pk}/documents/"
    both = api.post(url, {"text": "x", "url": "https://example.com"}, format="json")
    assert both.status_code == 400 and both.json()["error"]["code"] == "invalid"
    unsupported = api.post(url, {"file": SimpleUploadedFile("a.exe", b"MZ")}, format="multipart")
    assert unsupported.status_code == 400 and "Unsupported file type" in unsupported.json()["error"]["message"]
    search = api.get(f"/api/knowledge-bases/{knowledge_base.pk}/search/", {"k": 0})
    assert search.status_code == 400


def test_deleting_removes_the_document(api, knowledge_base) -> None:
    created = api.post(
        f"/api/knowledge-bases/{knowledge_base.pk}/documents/", {"text": "Temp", "title": "T"}, format="json"
    ).json()
    wait_until_ready(created["id"])
    response = api.delete(f"/api/knowledge-bases/{knowledge_base.pk}/documents/{created['id']}/")
    assert response.status_code == 204
    assert not Document.objects.filter(pk=created["id"]).exists()


def test_another_organizations_knowledge_base_is_not_found(api) -> None:
    theirs = KnowledgeBaseFactory()
    response = api.get(f"/api/knowledge-bases/{theirs.pk}/documents/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_a_missing_or_wrong_key_answers_401(knowledge_base) -> None:
    client = APIClient()
    assert client.get(f"/api/knowledge-bases/{knowledge_base.pk}/documents/").status_code == 401
    client.credentials(HTTP_AUTHORIZATION="Bearer neo_deadbeef_nope")
    response = client.get(f"/api/knowledge-bases/{knowledge_base.pk}/documents/")
    assert response.status_code == 401 and response.json()["error"]["message"] == "Unknown or revoked API key."


def test_a_viewer_may_read_but_not_upload(knowledge_base) -> None:
    viewer = MembershipFactory(organization=knowledge_base.organization, role="viewer").user
    client = APIClient()
    client.force_authenticate(viewer)
    assert client.get(f"/api/knowledge-bases/{knowledge_base.pk}/documents/").status_code == 200
    response = client.post(f"/api/knowledge-bases/{knowledge_base.pk}/documents/", {"text": "x"}, format="json")
    assert response.status_code == 403
