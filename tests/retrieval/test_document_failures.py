"""Adding documents that cannot be added (issue "The first hour of a new company", item 7).

Regressions pinned here: "Add documents" submitted empty reloaded the page without a word,
and a file that is not really a PDF offered a Retry that could only fail again.
"""

from __future__ import annotations

import errno
import importlib
import os

import pytest
from django.apps import apps
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from neo_support.tasking import wait_for_in_process_tasks
from retrieval.loaders.base import LoaderError
from retrieval.loaders.isolation import ParserCrashError
from retrieval.models import Document, DocumentStatus, KnowledgeBase, SourceType
from retrieval.services import ingestion
from retrieval.services.documents import DocumentNotRetryable, document_create_from_text, document_retry
from retrieval.services.ingestion import document_ingest, failure_retryable
from tests.factories import DocumentFactory, KnowledgeBaseFactory, MembershipFactory
from tests.neo_support.test_rest_api import key_client

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("in_process_tasks")]


@pytest.fixture
def admin_client(client: Client) -> Client:
    membership = MembershipFactory(role="admin")
    client.force_login(membership.user)
    client.organization = membership.organization  # type: ignore[attr-defined]
    return client


@pytest.fixture
def knowledge_base(admin_client: Client) -> KnowledgeBase:
    return KnowledgeBaseFactory(organization=admin_client.organization)  # type: ignore[attr-defined]


def page_url(knowledge_base: KnowledgeBase) -> str:
    return f"/dashboard/knowledge-bases/{knowledge_base.pk}/"


# An empty "Add documents" ---------------------------------------------------------------------


def test_adding_nothing_says_so_on_the_page(admin_client: Client, knowledge_base: KnowledgeBase) -> None:
    form = {"action": "add", "url": "  ", "title": "", "text": "\n"}
    response = admin_client.post(page_url(knowledge_base), form, follow=True)
    assert response.redirect_chain == [(page_url(knowledge_base), 302)]
    page = response.content.decode()
    assert "Nothing was added: choose one or more files, enter a web address, or type a title and text." in page
    assert 'class="error"' in page
    assert not Document.objects.exists()


def test_a_title_without_text_asks_for_the_text(admin_client: Client, knowledge_base: KnowledgeBase) -> None:
    response = admin_client.post(page_url(knowledge_base), {"title": "Refunds", "text": ""}, follow=True)
    assert "Nothing was added: type the text of the document under its title." in response.content.decode()
    assert not Document.objects.exists()


def test_the_api_answers_an_empty_add_with_400_and_a_message(knowledge_base: KnowledgeBase) -> None:
    api = key_client(knowledge_base.organization)
    response = api.post(f"/api/knowledge-bases/{knowledge_base.pk}/documents/", {}, format="json")
    assert response.status_code == 400
    assert "Send exactly one of: file (multipart), url, text." in str(response.json())
    assert not Document.objects.exists()


# Retry only where it can help -----------------------------------------------------------------


def upload_fake_pdf(client: Client, knowledge_base: KnowledgeBase) -> Document:
    upload = SimpleUploadedFile("not-really.pdf", os.urandom(4096))
    client.post(page_url(knowledge_base), {"files": [upload]})
    wait_for_in_process_tasks(timeout=120)
    return Document.objects.get(source_filename="not-really.pdf")


def test_a_file_that_cannot_be_parsed_offers_no_retry_but_says_what_to_do(
    admin_client: Client, knowledge_base: KnowledgeBase
) -> None:
    document = upload_fake_pdf(admin_client, knowledge_base)
    assert document.status == DocumentStatus.FAILED and not document.retryable
    assert "damaged or is not a PDF" in document.error

    page = admin_client.get(page_url(knowledge_base)).content.decode()
    assert ">Retry</button>" not in page
    assert "/retry" not in page
    assert "Retrying will not help: upload a corrected or different file, and delete this document." in page

    status = admin_client.get(f"{page_url(knowledge_base)}status.json").json()["documents"]
    assert [(d["can_retry"], d["retry_advice"].startswith("Retrying will not help")) for d in status] == [(False, True)]


def test_the_api_refuses_to_retry_a_file_that_cannot_be_parsed(
    admin_client: Client, knowledge_base: KnowledgeBase
) -> None:
    document = upload_fake_pdf(admin_client, knowledge_base)
    api = key_client(knowledge_base.organization)
    url = f"/api/knowledge-bases/{knowledge_base.pk}/documents/{document.pk}/"
    assert api.get(url).json()["retryable"] is False

    response = api.post(f"{url}retry/")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "not_retryable"
    assert "damaged or is not a PDF" in error["message"] and "upload a corrected or different file" in error["message"]
    assert Document.objects.get(pk=document.pk).status == DocumentStatus.FAILED


def test_the_dashboard_refuses_to_retry_a_file_that_cannot_be_parsed(
    admin_client: Client, knowledge_base: KnowledgeBase
) -> None:
    document = upload_fake_pdf(admin_client, knowledge_base)
    url = f"{page_url(knowledge_base)}documents/{document.pk}/retry"
    page = admin_client.post(url, follow=True).content.decode()
    assert "Retrying will not help" in page
    assert Document.objects.get(pk=document.pk).status == DocumentStatus.FAILED


def test_a_full_disk_while_indexing_offers_retry_and_the_retry_works(
    admin_client: Client, knowledge_base: KnowledgeBase, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(**_: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    document = document_create_from_text(
        knowledge_base=knowledge_base, title="Refunds", text="Refunds take five days.", queue=False
    )
    with monkeypatch.context() as patched:
        patched.setattr(ingestion, "knowledge_base_sync_index", disk_full)
        document_ingest(document=Document.objects.select_related("knowledge_base").get(pk=document.pk))
    document.refresh_from_db()
    assert document.status == DocumentStatus.FAILED and "disk is full" in document.error
    assert document.retryable

    page = admin_client.get(page_url(knowledge_base)).content.decode()
    assert ">Retry</button>" in page and "Retrying will not help" not in page
    status = admin_client.get(f"{page_url(knowledge_base)}status.json").json()["documents"]
    assert [(d["can_retry"], d["retry_advice"]) for d in status] == [(True, "")]

    api = key_client(knowledge_base.organization)
    response = api.post(f"/api/knowledge-bases/{knowledge_base.pk}/documents/{document.pk}/retry/")
    assert response.status_code == 202, response.content
    wait_for_in_process_tasks(timeout=120)
    assert Document.objects.get(pk=document.pk).status == DocumentStatus.READY


def test_typed_in_text_that_was_refused_is_not_retried() -> None:
    document = DocumentFactory(source_type=SourceType.TEXT, status=DocumentStatus.FAILED, retryable=False)
    with pytest.raises(DocumentNotRetryable, match="add the text again, corrected"):
        document_retry(document=document)


@pytest.mark.parametrize(
    ("source_type", "error", "retryable"),
    [
        (SourceType.FILE, LoaderError("The PDF is password-protected; upload an unlocked copy."), False),
        (SourceType.TEXT, LoaderError("The Markdown document has no text."), False),
        (SourceType.FILE, ParserCrashError("Reading this file took longer than 120 seconds.", retryable=True), True),
        (SourceType.URL, LoaderError("https://help.example.com/ timed out after 10 s."), True),
        (SourceType.URL, LoaderError("https://help.example.com/ returned HTTP 503."), True),
        (SourceType.FILE, RuntimeError("a bug or a worker that died"), True),
    ],
)
def test_which_failures_a_retry_can_fix(source_type: str, error: BaseException, retryable: bool) -> None:
    assert failure_retryable(Document(source_type=source_type), error) is retryable


def test_the_migration_marks_earlier_refusals_of_content_not_retryable() -> None:
    refused = DocumentFactory(
        source_type=SourceType.FILE,
        status=DocumentStatus.FAILED,
        error="The PDF could not be read: it looks damaged or is not a PDF.",
    )
    disk_full = DocumentFactory(status=DocumentStatus.FAILED, error="The server's disk is full.")
    page = DocumentFactory(
        knowledge_base=refused.knowledge_base,
        source_type=SourceType.URL,
        status=DocumentStatus.FAILED,
        error="The page has no readable text.",
    )
    migration = importlib.import_module("retrieval.migrations.0004_document_retryable")
    migration.mark_refused_content(apps, None)
    retryable = dict(Document.objects.values_list("pk", "retryable"))
    assert (retryable[refused.pk], retryable[disk_full.pk], retryable[page.pk]) == (False, True, True)
