"""Documents in and out: uploads, text and URLs stored as pending documents, replaced,
deleted and retried, with their ingestion (or the index sync) queued by task name.

Refusals the user sees are `DocumentRejected`, raised before anything is stored.
"""

from __future__ import annotations

import errno
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import cast

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from neo_support import audit
from neo_support.tasking import enqueue
from retrieval.loaders import SUPPORTED_EXTENSIONS
from retrieval.loaders.base import LoaderError
from retrieval.loaders.formatting import strip_control
from retrieval.loaders.safe_http import checked_target
from retrieval.models import Document, DocumentStatus, KnowledgeBase, SourceType
from retrieval.services import ingest_work


class DocumentRejected(Exception):  # noqa: N818 - a refusal the user sees, not a crash
    """An upload, URL or text was refused before anything was stored; the message says why."""


class DuplicateDocument(DocumentRejected):
    """The same content is already in the knowledge base, as `existing`."""

    def __init__(self, existing: Document) -> None:
        super().__init__(f"This file is already in the knowledge base as {existing.title!r}.")
        self.existing = existing


class DocumentNotRetryable(DocumentRejected):
    """A retry was asked for a document whose content was refused: it would fail the same way."""


DISK_FULL = "The server's disk is full."


def retry_advice(document: Document) -> str:
    """What to do instead of retrying a document whose content was refused."""
    if document.source_type == SourceType.TEXT:
        return "Retrying will not help: add the text again, corrected, and delete this document."
    return "Retrying will not help: upload a corrected or different file, and delete this document."


def content_checksum(data: bytes) -> str:
    """The checksum stored on a document, by which duplicates are refused."""
    return hashlib.sha256(data).hexdigest()


def _refuse_duplicate(knowledge_base: KnowledgeBase, checksum: str, *, replacing: Document | None = None) -> None:
    existing = duplicate_of(knowledge_base, checksum, replacing=replacing)
    if existing is not None:
        raise DuplicateDocument(existing)


def duplicate_of(knowledge_base: KnowledgeBase, checksum: str, *, replacing: Document | None = None) -> Document | None:
    """The document of `knowledge_base` with this content checksum, if any (bar `replacing`)."""
    duplicate = knowledge_base.documents.filter(checksum=checksum)
    if replacing is not None:
        duplicate = duplicate.exclude(pk=replacing.pk)
    return cast("Document | None", duplicate.first())


def check_upload(filename: str, size: int) -> str:
    """The extension of an acceptable upload; DocumentRejected otherwise. Views call it
    with the upload's size before reading it into memory."""
    extension = Path(filename).suffix.lower()
    if extension not in SUPPORTED_EXTENSIONS:
        supported = ", ".join(sorted(SUPPORTED_EXTENSIONS))
        raise DocumentRejected(f"Unsupported file type {extension or '(none)'!r}; supported: {supported}.")
    if size == 0:
        raise DocumentRejected("The file is empty.")
    if size > settings.NEO_UPLOAD_MAX_BYTES:
        limit = settings.NEO_UPLOAD_MAX_BYTES / (1024 * 1024)
        raise DocumentRejected(f"The file is {size / (1024 * 1024):.1f} MB; the limit is {limit:.0f} MB.")
    return extension


def document_create_from_file(
    *,
    knowledge_base: KnowledgeBase,
    filename: str,
    data: bytes,
    title: str = "",
    csv_columns: list[str] | None = None,
    queue: bool = True,
) -> Document:
    """Store an uploaded file as a pending document and queue its ingestion (unless the
    caller ingests it itself, as the `ingest` command does)."""
    extension = check_upload(filename, len(data))
    checksum = content_checksum(data)
    _refuse_duplicate(knowledge_base, checksum)
    safe_name = f"{checksum[:16]}{extension}"  # never the client's path: no traversal, no clashes
    with _refused_when_disk_full(Document(knowledge_base=knowledge_base), safe_name), transaction.atomic():
        document = Document(
            knowledge_base=knowledge_base,
            source_type=SourceType.FILE,
            source_filename=strip_control(Path(filename).name)[:255],
            title=strip_control(title or Path(filename).stem)[:500],
            content_type=SUPPORTED_EXTENSIONS[extension],
            size_bytes=len(data),
            checksum=checksum,
            csv_columns=csv_columns or [],
        )
        document.file.save(safe_name, ContentFile(data), save=False)
        document.save()
        _record_upload(document)
        if queue:
            queue_ingest(document)
    return document


@contextmanager
def _refused_when_disk_full(document: Document, name: str) -> Iterator[None]:
    """A full disk refuses the upload with a clear reason and leaves no partial file."""
    storage = document.file.storage
    stored_as = storage.get_available_name(document.file.field.generate_filename(document, name))
    try:
        yield
    except OSError as error:
        if error.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        if storage.exists(stored_as) and not Document.objects.filter(file=stored_as).exists():
            storage.delete(stored_as)
        raise DocumentRejected(f"{DISK_FULL} The file was not stored; try again once space has been freed.") from None


def document_create_from_text(*, knowledge_base: KnowledgeBase, title: str, text: str, queue: bool = True) -> Document:
    if not text.strip():
        raise DocumentRejected("The text is empty.")
    data = text.encode()
    if len(data) > settings.NEO_UPLOAD_MAX_BYTES:
        raise DocumentRejected("The text is longer than the upload limit.")
    checksum = content_checksum(data)
    _refuse_duplicate(knowledge_base, checksum)
    with transaction.atomic():
        document: Document = Document.objects.create(
            knowledge_base=knowledge_base,
            source_type=SourceType.TEXT,
            title=(strip_control(title).strip() or "Untitled")[:500],
            text=text,
            content_type="text/markdown",
            size_bytes=len(data),
            checksum=checksum,
        )
        _record_upload(document)
        if queue:
            queue_ingest(document)
    return document


def check_address(url: str) -> None:
    """Refuse a URL up front when it is malformed or points inside our network; the fetch
    checks every hop again, so a DNS answer that changes later is caught there too."""
    if not url.startswith(("http://", "https://")):
        raise DocumentRejected("Only http and https addresses can be imported.")
    try:
        checked_target(url, allow_private=settings.NEO_WEB_IMPORT_ALLOW_PRIVATE)
    except LoaderError as error:
        raise DocumentRejected(str(error)) from None


def document_create_from_url(*, knowledge_base: KnowledgeBase, url: str) -> Document:
    check_address(url)
    existing = knowledge_base.documents.filter(source_url=url).first()
    if existing is not None:
        raise DocumentRejected(f"This address is already in the knowledge base as {existing.title!r}.")
    with transaction.atomic():
        document: Document = Document.objects.create(
            knowledge_base=knowledge_base, source_type=SourceType.URL, source_url=url, title=url[:500]
        )
        _record_upload(document)
        queue_ingest(document)
    return document


def document_replace(*, document: Document, filename: str, data: bytes) -> Document:
    """New content for an existing document: same id; its chunks are swapped when the new ones are ready."""
    extension = check_upload(filename, len(data))
    checksum = content_checksum(data)
    _refuse_duplicate(document.knowledge_base, checksum, replacing=document)
    safe_name = f"{checksum[:16]}{extension}"
    with _refused_when_disk_full(document, safe_name), transaction.atomic():
        old_file = document.file.name
        document.file.save(safe_name, ContentFile(data), save=False)
        document.source_type = SourceType.FILE
        document.source_filename = strip_control(Path(filename).name)[:255]
        document.content_type = SUPPORTED_EXTENSIONS[extension]
        document.size_bytes, document.checksum = len(data), checksum
        document.status, document.error, document.progress = DocumentStatus.PENDING, "", 0
        document.retryable = True
        document.save()
        if old_file and old_file != document.file.name:
            transaction.on_commit(lambda: Document.file.field.storage.delete(old_file))
        _record_upload(document)
        queue_ingest(document)
    return document


def document_delete(*, document: Document) -> None:
    """Delete the document and its chunks; the indexes drop them in the sync that follows."""
    knowledge_base = document.knowledge_base
    file_name, document_id = document.file.name, document.pk
    with transaction.atomic():
        audit.record(
            organization=knowledge_base.organization_id,
            action="document.delete",
            target=document,
            target_label=f"{document.title} in {knowledge_base.name}",
        )
        document.delete()
        queue_sync(knowledge_base)
        if file_name:
            transaction.on_commit(lambda: Document.file.field.storage.delete(file_name))
        # Saved slices of an ingest in progress go now, not when its continuation runs
        # (a slice finishing meanwhile is discarded by that continuation, retrieval.tasks).
        transaction.on_commit(lambda: ingest_work.work_discard(document_id))


def document_retry(*, document: Document, queue: bool = True) -> Document:
    """Queue a failed document's ingestion again (after a full disk was cleared, a site
    came back, a model was installed).

    Raises DocumentRejected when the document has not failed, and DocumentNotRetryable
    when it failed on its content (`Document.retryable` is False): the same file would be
    refused again.
    """
    if document.status != DocumentStatus.FAILED:
        raise DocumentRejected("Only a failed document can be retried.")
    if not document.retryable:
        raise DocumentNotRetryable(f"{document.error} {retry_advice(document)}".strip())
    if document.source_type == SourceType.FILE and not (
        document.file and document.file.storage.exists(document.file.name)
    ):
        raise DocumentRejected("The uploaded file is missing from storage; upload it again.")
    with transaction.atomic():
        Document.objects.filter(pk=document.pk).update(
            status=DocumentStatus.PENDING, error="", progress=0, embedded_at=None, updated_at=timezone.now()
        )
        document.refresh_from_db()
        audit.record(
            organization=document.knowledge_base.organization_id,
            action="document.retry",
            target=document,
            target_label=f"{document.title} in {document.knowledge_base.name}",
        )
        if queue:
            queue_ingest(document)
    return document


def _record_upload(document: Document) -> None:
    knowledge_base = document.knowledge_base
    audit.record(
        organization=knowledge_base.organization_id,
        action="document.upload",
        target=document,
        target_label=f"{document.title} in {knowledge_base.name}",
        after={
            "knowledge_base": knowledge_base.pk,
            "source": document.source_type,
            "file": document.source_filename,
            "url": document.source_url,
            "size_bytes": document.size_bytes,
            "checksum": document.checksum,
        },
    )


def queue_ingest(document: Document) -> None:
    """Queue `retrieval.tasks.ingest_document` for the document (by name: no task import)."""
    enqueue("retrieval.tasks.ingest_document", document.pk)


def queue_sync(knowledge_base: KnowledgeBase) -> None:
    """Queue `retrieval.tasks.sync_index` for the knowledge base (by name: no task import)."""
    enqueue("retrieval.tasks.sync_index", knowledge_base.pk)
