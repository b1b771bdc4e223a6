"""Dashboard pages for knowledge bases."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from neo_support.tasking import wait_for_in_process_tasks
from retrieval.models import Document
from tests.factories import KnowledgeBaseFactory, MembershipFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("in_process_tasks")]


@pytest.fixture
def admin_client(client):
    membership = MembershipFactory(role="admin")
    client.force_login(membership.user)
    client.organization = membership.organization
    return client


def test_an_admin_creates_a_knowledge_base_uploads_and_searches_it(admin_client) -> None:
    response = admin_client.post("/dashboard/knowledge-bases/", {"name": "Manuals"})
    detail_url = response["Location"]
    upload = SimpleUploadedFile("kettle.md", b"# Kettle\n\n## Descaling\n\nDescale the kettle monthly with vinegar.")
    page = admin_client.post(detail_url, {"files": [upload]}, follow=True)
    assert b"1 document(s) added" in page.content

    wait_for_in_process_tasks(timeout=120)
    status = admin_client.get(f"{detail_url}status.json").json()["documents"]
    assert [(d["title"], d["status"]) for d in status] == [("Kettle", "ready")]

    results = admin_client.get(f"{detail_url}playground/", {"q": "how often to descale"}).content.decode()
    assert "Descaling" in results and "vinegar" in results


def test_a_rejected_upload_is_reported_on_the_page(admin_client) -> None:
    knowledge_base = KnowledgeBaseFactory(organization=admin_client.organization)
    upload = SimpleUploadedFile("tool.exe", b"MZ")
    page = admin_client.post(f"/dashboard/knowledge-bases/{knowledge_base.pk}/", {"files": [upload]}, follow=True)
    assert b"tool.exe: Unsupported file type" in page.content
    assert not Document.objects.exists()


def test_another_organizations_knowledge_base_is_404(admin_client) -> None:
    theirs = KnowledgeBaseFactory()
    assert admin_client.get(f"/dashboard/knowledge-bases/{theirs.pk}/").status_code == 404
    assert admin_client.get(f"/dashboard/knowledge-bases/{theirs.pk}/playground/?q=x").status_code == 404


def test_a_viewer_cannot_upload_or_delete(client) -> None:
    membership = MembershipFactory(role="viewer")
    knowledge_base = KnowledgeBaseFactory(organization=membership.organization)
    client.force_login(membership.user)
    assert b"Add documents" not in client.get(f"/dashboard/knowledge-bases/{knowledge_base.pk}/").content
    response = client.post(f"/dashboard/knowledge-bases/{knowledge_base.pk}/", {"text": "x", "title": "t"})
    assert response.status_code == 403
    assert not Document.objects.exists()
