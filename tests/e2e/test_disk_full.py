"""A real full disk: media and indexes on a small tmpfs filled to the last byte.

Writing the index fails with ENOSPC from the kernel; the previous index stays current
and keeps answering, the documents that were waiting for it fail with the reason, an
upload is refused with a clear error and leaves nothing behind, and once space is
freed a retry makes everything searchable."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from retrieval.index import stored_versions
from retrieval.models import Document, DocumentStatus
from retrieval.search import search
from retrieval.services.documents import (
    DocumentRejected,
    document_create_from_file,
    document_create_from_text,
    document_retry,
)
from retrieval.services.indexing import index_directory
from retrieval.services.ingestion import documents_ingest_all
from tests.factories import KnowledgeBaseFactory, OrganizationFactory

pytestmark = pytest.mark.django_db

REFUNDS = "# Refunds\n\nRefunds reach your card within five working days of the return arriving."
SHIPPING = "# Shipping\n\nParcels to Norway are sent by courier and arrive in three to four days."


@pytest.fixture
def small_disk(tmp_path: Path, settings) -> Iterator[Path]:  # type: ignore[no-untyped-def]
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount_point)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    settings.MEDIA_ROOT = mount_point
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=True)


def fill(disk: Path) -> None:
    """Write until the kernel says the disk is full, down to the last byte."""
    for name, block in (("filler", 65536), ("filler-tail", 1)):
        descriptor = os.open(disk / name, os.O_WRONLY | os.O_CREAT)
        try:
            while True:
                os.write(descriptor, b"\0" * block)
        except OSError as error:
            assert error.errno == errno.ENOSPC
        finally:
            os.close(descriptor)


def files_under(directory: Path) -> set[str]:
    return {str(path.relative_to(directory)) for path in directory.rglob("*") if path.is_file()}


def titles(knowledge_base, query: str) -> list[str]:  # type: ignore[no-untyped-def]
    return [hit.document_title for hit in search(knowledge_bases=[knowledge_base], query=query, k=3)]


def test_a_full_disk_keeps_the_previous_index_and_loses_nothing(small_disk: Path) -> None:
    knowledge_base = KnowledgeBaseFactory(organization=OrganizationFactory())
    refunds = document_create_from_text(knowledge_base=knowledge_base, title="Refunds", text=REFUNDS, queue=False)
    documents_ingest_all(documents=[refunds])
    knowledge_base.refresh_from_db()
    assert knowledge_base.index_version == 1
    directory = index_directory(knowledge_base)
    assert titles(knowledge_base, "How long do refunds take?")[0] == "Refunds"

    fill(small_disk)
    before = files_under(small_disk)

    # The index write runs out of space: the document waiting for it fails with the reason.
    shipping = document_create_from_text(knowledge_base=knowledge_base, title="Shipping", text=SHIPPING, queue=False)
    documents_ingest_all(documents=[shipping])
    shipping.refresh_from_db()
    assert shipping.status == DocumentStatus.FAILED
    assert "disk is full" in shipping.error and "previous index" in shipping.error
    knowledge_base.refresh_from_db()
    assert knowledge_base.index_version == 1
    assert stored_versions(directory) == [1]
    assert files_under(small_disk) == before, "no partial index file is left behind"
    assert titles(knowledge_base, "How long do refunds take?")[0] == "Refunds"
    assert Document.objects.get(pk=refunds.pk).status == DocumentStatus.READY

    # An upload is refused with a clear reason; no row, no partial file.
    with pytest.raises(DocumentRejected, match="disk is full"):
        document_create_from_file(
            knowledge_base=knowledge_base, filename="faq.md", data=b"# FAQ\n\n" + b"Words. " * 20_000, queue=False
        )
    assert not Document.objects.filter(source_filename="faq.md").exists()
    assert files_under(small_disk) == before

    # Space freed, the failed document retried: both answer.
    (small_disk / "filler").unlink()
    (small_disk / "filler-tail").unlink()
    assert document_retry(document=shipping, queue=False).status == DocumentStatus.PENDING
    documents_ingest_all(documents=[Document.objects.get(pk=shipping.pk)])
    knowledge_base.refresh_from_db()
    assert Document.objects.get(pk=shipping.pk).status == DocumentStatus.READY
    assert knowledge_base.index_version >= 2
    assert titles(knowledge_base, "When does a parcel to Norway arrive?")[0] == "Shipping"
    assert titles(knowledge_base, "How long do refunds take?")[0] == "Refunds"


def test_only_a_failed_document_can_be_retried() -> None:
    knowledge_base = KnowledgeBaseFactory(organization=OrganizationFactory())
    document = document_create_from_text(knowledge_base=knowledge_base, title="Refunds", text=REFUNDS, queue=False)
    with pytest.raises(DocumentRejected, match="Only a failed document"):
        document_retry(document=document)


def test_the_api_and_the_dashboard_retry_a_failed_document(member, organization, client, in_process_tasks) -> None:  # type: ignore[no-untyped-def]
    from tests.neo_support.test_rest_api import key_client

    knowledge_base = KnowledgeBaseFactory(organization=organization)
    failed = document_create_from_text(knowledge_base=knowledge_base, title="Refunds", text=REFUNDS, queue=False)
    Document.objects.filter(pk=failed.pk).update(status=DocumentStatus.FAILED, error="The server's disk is full.")
    url = f"/api/knowledge-bases/{knowledge_base.pk}/documents/{failed.pk}/retry/"

    api = key_client(organization)
    response = api.post(url)
    assert response.status_code == 202, response.content
    assert response.json()["status"] == "pending" and response.json()["error"] == ""
    again = api.post(url)
    assert again.status_code == 409 and "Only a failed document" in again.json()["error"]["message"]

    Document.objects.filter(pk=failed.pk).update(status=DocumentStatus.FAILED, error="Disk full.")
    client.force_login(member)
    page = client.get(f"/dashboard/knowledge-bases/{knowledge_base.pk}/")
    assert b">Retry</button>" in page.content
    response = client.post(f"/dashboard/knowledge-bases/{knowledge_base.pk}/documents/{failed.pk}/retry", follow=True)
    assert b"Processing &#x27;Refunds&#x27; again." in response.content
    assert Document.objects.get(pk=failed.pk).status in (
        DocumentStatus.PENDING,
        DocumentStatus.PROCESSING,
        DocumentStatus.READY,
    )


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_real_indexing_worker_on_a_full_disk(small_disk: Path, redis_url: str, settings) -> None:  # type: ignore[no-untyped-def]
    """The same with a Celery worker process writing the index: it fails the document,
    keeps serving the previous version, stays up, and ingests the retry."""
    from tests.conftest import ROOT, clean_env
    from tests.e2e.test_worker_process import database_url
    from tests.own_services import wait_until

    settings.NEO_TASKS_IN_PROCESS = False
    env = clean_env(DATABASE_URL=database_url(), REDIS_URL=redis_url, MEDIA_ROOT=str(small_disk))
    worker = subprocess.Popen(
        [
            sys.executable, "-m", "celery", "-A", "neo_support", "worker", "-Q", "indexing",
            "-n", f"disk-{os.getpid()}@%h", "--pool", "threads", "--concurrency", "1",
            "--without-gossip", "--without-mingle", "--loglevel", "WARNING",
        ],
        cwd=ROOT, env=env,
    )  # fmt: skip
    try:
        knowledge_base = KnowledgeBaseFactory(organization=OrganizationFactory())
        refunds = document_create_from_text(knowledge_base=knowledge_base, title="Refunds", text=REFUNDS)

        def status_of(document: Document) -> str:
            return str(Document.objects.values_list("status", flat=True).get(pk=document.pk))

        wait_until(lambda: status_of(refunds) == DocumentStatus.READY, 120, "the first document")
        fill(small_disk)

        shipping = document_create_from_text(knowledge_base=knowledge_base, title="Shipping", text=SHIPPING)
        wait_until(lambda: status_of(shipping) == DocumentStatus.FAILED, 120, "the failure")
        assert "disk is full" in Document.objects.get(pk=shipping.pk).error
        knowledge_base.refresh_from_db()
        assert knowledge_base.index_version == 1
        assert titles(knowledge_base, "How long do refunds take?")[0] == "Refunds"
        assert worker.poll() is None

        (small_disk / "filler").unlink()
        (small_disk / "filler-tail").unlink()
        document_retry(document=Document.objects.get(pk=shipping.pk))
        wait_until(lambda: status_of(shipping) == DocumentStatus.READY, 120, "the retried document")
        knowledge_base.refresh_from_db()
        assert titles(knowledge_base, "When does a parcel to Norway arrive?")[0] == "Shipping"
    finally:
        worker.kill()
        worker.wait()
