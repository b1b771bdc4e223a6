"""Writes for knowledge bases: documents in, chunks and vectors stored, indexes kept in step.

Ingestion runs in two steps so many documents share one index write:
1. `document_ingest` loads, chunks and embeds one document and stores its chunks
   with their vectors (the document is then "embedded");
2. `knowledge_base_sync_index` brings the FAISS and keyword indexes in line with
   the stored chunks, under a row lock on the knowledge base, writes a new index
   version and marks embedded documents ready.
The last document of a batch to finish runs the sync; a sync is idempotent.
"""

from __future__ import annotations

import errno
import hashlib
import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from neo_support.models import Organization
from neo_support.tasking import enqueue
from retrieval import embeddings
from retrieval.chunking import ChunkDraft, chunk_blocks, indexed_text
from retrieval.index import IndexPair, VectorIndex, load_pair, prune_versions, save_pair, stored_versions
from retrieval.lexical import LexicalIndex
from retrieval.loaders import SUPPORTED_EXTENSIONS, crawl_site, fetch_url, load_bytes, load_text
from retrieval.loaders.base import LoadedDocument, LoaderError
from retrieval.loaders.isolation import ParserLimits, load_bytes_isolated
from retrieval.loaders.safe_http import checked_target
from retrieval.models import Chunk, Document, DocumentStatus, KnowledgeBase, SourceType

logger = logging.getLogger(__name__)

EMBED_BATCH = 256
# documents_ingest_all embeds this many chunks per call: the model sorts a call's texts by
# length before batching, so bigger calls pad less.
BULK_EMBED_TEXTS = 2048
# A document still "in flight" after this long is presumed stuck and no longer delays the index sync.
IN_FLIGHT_WINDOW = timedelta(minutes=10)
ProgressCallback = Callable[[int, int], None]


class DocumentRejected(Exception):  # noqa: N818 - a refusal the user sees, not a crash
    """An upload, URL or text was refused before anything was stored; the message says why."""


DISK_FULL = "The server's disk is full."


@dataclass(frozen=True)
class SyncResult:
    version: int
    added: int
    removed: int
    ready: int


# Knowledge bases ----------------------------------------------------------------------------


def knowledge_base_create(*, organization: Organization, name: str, **fields: Any) -> KnowledgeBase:
    knowledge_base = KnowledgeBase(organization=organization, name=name.strip(), **fields)
    knowledge_base.full_clean()
    knowledge_base.save()
    return knowledge_base


def index_directory(knowledge_base: KnowledgeBase) -> Path:
    return Path(settings.MEDIA_ROOT) / "indexes" / str(knowledge_base.pk)


def knowledge_base_delete(*, knowledge_base: KnowledgeBase) -> None:
    directory = index_directory(knowledge_base)
    files = [document.file.name for document in knowledge_base.documents.exclude(file="")]
    knowledge_base.delete()

    def remove_files() -> None:
        prune_versions(directory, keep=set())
        for name in files:
            Document.file.field.storage.delete(name)

    transaction.on_commit(remove_files)


# Documents in -------------------------------------------------------------------------------


def _checksum(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _refuse_duplicate(knowledge_base: KnowledgeBase, checksum: str, *, replacing: Document | None = None) -> None:
    duplicate = knowledge_base.documents.filter(checksum=checksum)
    if replacing is not None:
        duplicate = duplicate.exclude(pk=replacing.pk)
    existing = duplicate.first()
    if existing is not None:
        raise DocumentRejected(f"This file is already in the knowledge base as {existing.title!r}.")


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
    checksum = _checksum(data)
    _refuse_duplicate(knowledge_base, checksum)
    safe_name = f"{checksum[:16]}{extension}"  # never the client's path: no traversal, no clashes
    with _refused_when_disk_full(Document(knowledge_base=knowledge_base), safe_name), transaction.atomic():
        document = Document(
            knowledge_base=knowledge_base,
            source_type=SourceType.FILE,
            source_filename=Path(filename).name[:255],
            title=(title or Path(filename).stem)[:500],
            content_type=SUPPORTED_EXTENSIONS[extension],
            size_bytes=len(data),
            checksum=checksum,
            csv_columns=csv_columns or [],
        )
        document.file.save(safe_name, ContentFile(data), save=False)
        document.save()
        if queue:
            _queue_ingest(document)
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
    checksum = _checksum(data)
    _refuse_duplicate(knowledge_base, checksum)
    with transaction.atomic():
        document = Document.objects.create(
            knowledge_base=knowledge_base,
            source_type=SourceType.TEXT,
            title=(title.strip() or "Untitled")[:500],
            text=text,
            content_type="text/markdown",
            size_bytes=len(data),
            checksum=checksum,
        )
        if queue:
            _queue_ingest(document)
    return document


def _check_address(url: str) -> None:
    """Refuse a URL up front when it is malformed or points inside our network; the fetch
    checks every hop again, so a DNS answer that changes later is caught there too."""
    if not url.startswith(("http://", "https://")):
        raise DocumentRejected("Only http and https addresses can be imported.")
    try:
        checked_target(url, allow_private=settings.NEO_WEB_IMPORT_ALLOW_PRIVATE)
    except LoaderError as error:
        raise DocumentRejected(str(error)) from None


def document_create_from_url(*, knowledge_base: KnowledgeBase, url: str) -> Document:
    _check_address(url)
    existing = knowledge_base.documents.filter(source_url=url).first()
    if existing is not None:
        raise DocumentRejected(f"This address is already in the knowledge base as {existing.title!r}.")
    with transaction.atomic():
        document = Document.objects.create(
            knowledge_base=knowledge_base, source_type=SourceType.URL, source_url=url, title=url[:500]
        )
        _queue_ingest(document)
    return document


def document_replace(*, document: Document, filename: str, data: bytes) -> Document:
    """New content for an existing document: same id; its chunks are swapped when the new ones are ready."""
    extension = check_upload(filename, len(data))
    checksum = _checksum(data)
    _refuse_duplicate(document.knowledge_base, checksum, replacing=document)
    safe_name = f"{checksum[:16]}{extension}"
    with _refused_when_disk_full(document, safe_name), transaction.atomic():
        old_file = document.file.name
        document.file.save(safe_name, ContentFile(data), save=False)
        document.source_type = SourceType.FILE
        document.source_filename = Path(filename).name[:255]
        document.content_type = SUPPORTED_EXTENSIONS[extension]
        document.size_bytes, document.checksum = len(data), checksum
        document.status, document.error, document.progress = DocumentStatus.PENDING, "", 0
        document.save()
        if old_file and old_file != document.file.name:
            transaction.on_commit(lambda: Document.file.field.storage.delete(old_file))
        _queue_ingest(document)
    return document


def document_delete(*, document: Document) -> None:
    """Delete the document and its chunks; the indexes drop them in the sync that follows."""
    knowledge_base = document.knowledge_base
    file_name = document.file.name
    with transaction.atomic():
        document.delete()
        _queue_sync(knowledge_base)
        if file_name:
            transaction.on_commit(lambda: Document.file.field.storage.delete(file_name))


def knowledge_base_import_site(*, knowledge_base: KnowledgeBase, url: str, max_pages: int) -> None:
    _check_address(url)

    enqueue("retrieval.tasks.import_site", knowledge_base.pk, url, max_pages)


def _queue_ingest(document: Document) -> None:

    enqueue("retrieval.tasks.ingest_document", document.pk)


def _queue_sync(knowledge_base: KnowledgeBase) -> None:

    enqueue("retrieval.tasks.sync_index", knowledge_base.pk)


# Ingestion ------------------------------------------------------------------------------------


def _set_progress(document: Document, progress: int, **fields: Any) -> None:
    Document.objects.filter(pk=document.pk).update(progress=progress, updated_at=timezone.now(), **fields)


def document_load(document: Document) -> LoadedDocument:
    """Parse a document's content into blocks (fetching it first for a URL)."""
    if document.source_type == SourceType.TEXT:
        return load_text(document.text, title=document.title)
    if document.source_type == SourceType.URL:
        return fetch_url(
            document.source_url,
            allow_private=settings.NEO_WEB_IMPORT_ALLOW_PRIVATE,
            timeout=settings.NEO_WEB_IMPORT_TIMEOUT,
        )
    try:
        with document.file.open("rb") as handle:
            data = handle.read()
    except (FileNotFoundError, ValueError):
        raise LoaderError("The uploaded file is missing from storage; upload it again.") from None
    options: dict[str, Any] = {
        "filename": document.source_filename or document.file.name,
        "content_type": document.content_type,
        "csv_columns": document.csv_columns or None,
        "max_bytes": settings.NEO_UPLOAD_MAX_BYTES,
    }
    if not settings.NEO_PARSER_ISOLATION:
        return load_bytes(data, **options)
    return load_bytes_isolated(data, limits=parser_limits(), **options)


def parser_limits() -> ParserLimits:
    return ParserLimits(
        memory_mb=settings.NEO_PARSER_MEMORY_MB,
        cpu_seconds=settings.NEO_PARSER_CPU_SECONDS,
        wall_seconds=settings.NEO_PARSER_TIMEOUT_SECONDS,
    )


def document_ingest(*, document: Document, loaded: LoadedDocument | None = None, sync: bool = True) -> None:
    """Load, chunk and embed `document`, store its chunks, then sync the index unless a
    sibling is still in flight. Failures mark the document failed with a readable
    reason and change nothing else (its previous chunks, if any, stay searchable)."""
    prepared = _prepare(document, loaded)
    if prepared is None:
        return
    try:
        vectors = _embed(prepared.texts, document.knowledge_base.embedding_model, document=document)
        _store_chunks(document, prepared, vectors)
    except Exception as error:  # noqa: BLE001 - reported on the document, never raised into the worker
        _fail(document, error)
        return
    if sync and not _siblings_in_flight(document):
        _sync_or_fail_unindexed(document.knowledge_base)


def _sync_or_fail_unindexed(knowledge_base: KnowledgeBase) -> SyncResult | None:
    """Sync the index; when it cannot be written (a full disk), the documents waiting for
    it fail with the reason, to be retried, and the previous index keeps serving."""
    try:
        return knowledge_base_sync_index(knowledge_base=knowledge_base)
    except OSError as error:
        logger.error("writing the index of knowledge base %s failed", knowledge_base.pk, exc_info=error)
        reason = DISK_FULL if error.errno in (errno.ENOSPC, errno.EDQUOT) else f"{error.strerror or error}."
        Document.objects.filter(
            knowledge_base=knowledge_base, status=DocumentStatus.PROCESSING, embedded_at__isnull=False
        ).update(
            status=DocumentStatus.FAILED,
            embedded_at=None,
            progress=0,
            updated_at=timezone.now(),
            error=f"The search index could not be saved: {reason} Answers still come from the previous "
            "index. Retry this document once the problem is fixed.",
        )
        return None


def document_retry(*, document: Document, queue: bool = True) -> Document:
    """Queue a failed document's ingestion again (after a full disk was cleared, a site
    came back, a model was installed)."""
    if document.status != DocumentStatus.FAILED:
        raise DocumentRejected("Only a failed document can be retried.")
    if document.source_type == SourceType.FILE and not (
        document.file and document.file.storage.exists(document.file.name)
    ):
        raise DocumentRejected("The uploaded file is missing from storage; upload it again.")
    with transaction.atomic():
        Document.objects.filter(pk=document.pk).update(
            status=DocumentStatus.PENDING, error="", progress=0, embedded_at=None, updated_at=timezone.now()
        )
        document.refresh_from_db()
        if queue:
            _queue_ingest(document)
    return document


@dataclass(frozen=True)
class _Prepared:
    title: str
    drafts: list[ChunkDraft]
    texts: list[str]


def _fail(document: Document, error: BaseException) -> None:
    if isinstance(error, LoaderError | embeddings.EmbeddingModelError):
        message = str(error)
    else:
        logger.error("ingesting document %s failed", document.pk, exc_info=error)
        message = "Processing failed unexpectedly; the error is in the server log. Try uploading the file again."
    _set_progress(document, 0, status=DocumentStatus.FAILED, error=message)


def _prepare(document: Document, loaded: LoadedDocument | None, *, report: bool = True) -> _Prepared | None:
    """Load and chunk; None (with the document marked failed) when that is impossible."""
    knowledge_base = document.knowledge_base
    model = knowledge_base.embedding_model
    if report:
        _set_progress(document, 5, status=DocumentStatus.PROCESSING, error="")
    try:
        loaded = loaded or document_load(document)
        drafts = chunk_blocks(
            loaded.blocks,
            chunk_size=knowledge_base.chunk_size,
            chunk_overlap=knowledge_base.chunk_overlap,
            count_tokens=lambda texts: embeddings.count_tokens(texts, model),
        )
        if not drafts:
            raise LoaderError("No text could be found in this document.")
    except Exception as error:  # noqa: BLE001
        _fail(document, error)
        return None
    title = _title_for(document, loaded)
    texts = [indexed_text(title=title, heading_path=d.heading_path, text=d.text) for d in drafts]
    if report:
        _set_progress(document, 10)
    return _Prepared(title=title, drafts=drafts, texts=texts)


def _title_for(document: Document, loaded: LoadedDocument) -> str:
    """The document's own title (PDF metadata, first heading, <title>) unless a person chose one."""
    placeholders = {document.source_url, Path(document.source_filename).stem, ""}
    if document.title in placeholders and loaded.title:
        return loaded.title
    return document.title


def _embed(texts: list[str], model: str, *, document: Document | None = None) -> np.ndarray:
    """Embed in steps of EMBED_BATCH, reporting progress on `document`; in one call without one."""
    step = EMBED_BATCH if document is not None else max(1, len(texts))
    parts = []
    for start in range(0, len(texts), step):
        parts.append(embeddings.embed(texts[start : start + step], model))
        if document is not None:
            _set_progress(document, 10 + int(80 * min(len(texts), start + step) / len(texts)))
    return np.concatenate(parts)


def _store_chunks(document: Document, prepared: _Prepared, vectors: np.ndarray) -> None:
    _store_many([(document, prepared, vectors)])


def _store_many(items: list[tuple[Document, _Prepared, np.ndarray]]) -> None:
    """Replace the chunks of each document with its new ones, all in one transaction."""
    now = timezone.now()
    with transaction.atomic():
        Chunk.objects.filter(document__in=[document for document, _, _ in items]).delete()
        Chunk.objects.bulk_create(
            [
                Chunk(
                    document=document,
                    ordinal=ordinal,
                    text=draft.text,
                    heading_path=list(draft.heading_path),
                    location=draft.location[:200],
                    token_count=draft.token_count,
                    embedding=vectors[ordinal].tobytes(),
                )
                for document, prepared, vectors in items
                for ordinal, draft in enumerate(prepared.drafts)
            ],
            batch_size=1000,
        )
        for document, prepared, _ in items:
            Document.objects.filter(pk=document.pk).update(
                title=prepared.title[:500],
                chunk_count=len(prepared.drafts),
                embedded_at=now,
                status=DocumentStatus.PROCESSING,
                error="",
                progress=90,
                updated_at=now,
            )


def _siblings_in_flight(document: Document) -> bool:
    """Whether another document of this knowledge base is still being embedded (and will sync after)."""
    recent = timezone.now() - IN_FLIGHT_WINDOW
    return (
        Document.objects.filter(
            knowledge_base_id=document.knowledge_base_id,
            status__in=[DocumentStatus.PENDING, DocumentStatus.PROCESSING],
            embedded_at__isnull=True,
            updated_at__gte=recent,
        )
        .exclude(pk=document.pk)
        .exists()
    )


def documents_ingest_all(
    *, documents: Iterable[Document], on_document: Callable[[Document], None] | None = None
) -> SyncResult | None:
    """Ingest many documents, embedding their chunks together in full batches and storing
    each batch in one transaction, then write each knowledge base's index once (commands,
    evaluation, benchmarks)."""
    knowledge_bases: dict[int, KnowledgeBase] = {}
    waiting: list[tuple[Document, _Prepared]] = []

    def done(document: Document) -> None:
        if on_document is not None:
            on_document(document)

    def flush() -> None:
        by_model: dict[str, list[tuple[Document, _Prepared]]] = {}
        for document, prepared in waiting:
            by_model.setdefault(document.knowledge_base.embedding_model, []).append((document, prepared))
        waiting.clear()
        for model, items in by_model.items():
            try:
                vectors = _embed([text for _, prepared in items for text in prepared.texts], model)
                offsets = np.cumsum([0] + [len(prepared.texts) for _, prepared in items])
                _store_many([(d, p, vectors[offsets[i] : offsets[i + 1]]) for i, (d, p) in enumerate(items)])
            except Exception as error:  # noqa: BLE001 - reported on each document of the batch
                for document, _ in items:
                    _fail(document, error)
            for document, _ in items:
                done(document)

    batch = list(documents)
    Document.objects.filter(pk__in=[d.pk for d in batch]).update(
        status=DocumentStatus.PROCESSING, error="", progress=5, updated_at=timezone.now()
    )
    for document in batch:
        knowledge_bases[document.knowledge_base_id] = document.knowledge_base
        prepared = _prepare(document, None, report=False)
        if prepared is None:
            done(document)
            continue
        waiting.append((document, prepared))
        if sum(len(p.texts) for _, p in waiting) >= BULK_EMBED_TEXTS:
            flush()
    flush()
    result = None
    for knowledge_base in knowledge_bases.values():
        result = _sync_or_fail_unindexed(knowledge_base)
    return result


# The index --------------------------------------------------------------------------------------


def _empty_pair(knowledge_base: KnowledgeBase) -> IndexPair:
    return IndexPair(
        vectors=VectorIndex(
            dim=embeddings.dimension(knowledge_base.embedding_model), hnsw_threshold=settings.NEO_HNSW_THRESHOLD
        ),
        lexical=LexicalIndex(),
        meta={"embedding_model": knowledge_base.embedding_model},
    )


def _indexed_chunks(knowledge_base: KnowledgeBase) -> Any:
    return Chunk.objects.filter(document__knowledge_base=knowledge_base, document__embedded_at__isnull=False)


def _add_chunks(pair: IndexPair, knowledge_base: KnowledgeBase, ids: list[int]) -> None:
    dim = pair.vectors.dim
    for start in range(0, len(ids), 5000):
        rows = list(
            _indexed_chunks(knowledge_base)
            .filter(pk__in=ids[start : start + 5000])
            .values_list("pk", "embedding", "text", "heading_path", "document__title")
            .order_by("pk")
        )
        if not rows:
            continue
        vectors = np.frombuffer(b"".join(bytes(row[1]) for row in rows), dtype=np.float32).reshape(len(rows), dim)
        chunk_ids = np.array([row[0] for row in rows], dtype=np.int64)
        pair.vectors.add(chunk_ids, vectors)
        pair.lexical.add(chunk_ids, [indexed_text(title=row[4], heading_path=row[3], text=row[2]) for row in rows])


def knowledge_base_sync_index(*, knowledge_base: KnowledgeBase, rebuild: bool = False) -> SyncResult:
    """Make the stored indexes hold exactly the embedded chunks, as a new version.

    Runs under a row lock on the knowledge base, so concurrent syncs queue up;
    the index files are written before the version moves, and a failed write
    leaves the previous version in place.
    """
    directory = index_directory(knowledge_base)
    with transaction.atomic():
        locked = KnowledgeBase.objects.select_for_update().get(pk=knowledge_base.pk)
        current = locked.index_version
        pair = None
        if not rebuild and current and current in stored_versions(directory):
            pair = load_pair(directory, current)
            if pair.meta.get("embedding_model") != locked.embedding_model:
                pair = None
        if pair is None:
            pair = _empty_pair(locked)
        wanted = set(_indexed_chunks(locked).values_list("pk", flat=True))
        have = pair.vectors.id_set()
        to_add, to_remove = sorted(wanted - have), sorted(have - wanted)
        becoming_ready = Document.objects.filter(
            knowledge_base=locked, embedded_at__isnull=False, status=DocumentStatus.PROCESSING
        )
        needs_write = to_add or to_remove or pair.version != current or not current
        if needs_write:
            pair.vectors.remove(np.array(to_remove, dtype=np.int64))
            pair.lexical.remove(np.array(to_remove, dtype=np.int64))
            _add_chunks(pair, locked, to_add)
            version = current + 1
            save_pair(directory, pair, version)
            transaction.on_commit(lambda: prune_versions(directory, keep={version, version - 1}))
            KnowledgeBase.objects.filter(pk=locked.pk).update(index_version=version, updated_at=timezone.now())
        else:
            version = current
        ready = becoming_ready.update(status=DocumentStatus.READY, progress=100, updated_at=timezone.now())
    knowledge_base.index_version = version
    return SyncResult(version=version, added=len(to_add), removed=len(to_remove), ready=ready)


def knowledge_base_reembed(
    *, knowledge_base: KnowledgeBase, embedding_model: str, queue: bool = True
) -> list[Document]:
    """Switch the embedding model. Every document is embedded again; until it is, its old
    vectors are left out of the index, which the next sync rebuilds for the new model."""
    embeddings.get_model(embedding_model)  # fail now, with a clear message, if it cannot load
    with transaction.atomic():
        KnowledgeBase.objects.filter(pk=knowledge_base.pk).update(embedding_model=embedding_model)
        knowledge_base.embedding_model = embedding_model
        documents = list(knowledge_base.documents.exclude(status=DocumentStatus.FAILED))
        Document.objects.filter(pk__in=[d.pk for d in documents]).update(
            status=DocumentStatus.PENDING, embedded_at=None, progress=0
        )
        if queue:
            for document in documents:
                _queue_ingest(document)
    for document in documents:
        document.knowledge_base = knowledge_base
    return documents


def site_import_run(*, knowledge_base: KnowledgeBase, url: str, max_pages: int) -> tuple[int, int]:
    """Crawl a site or sitemap into documents, one per page. Returns (imported, failed)."""
    imported = failed = 0
    try:
        pages = crawl_site(
            url,
            max_pages=max_pages,
            allow_private=settings.NEO_WEB_IMPORT_ALLOW_PRIVATE,
            timeout=settings.NEO_WEB_IMPORT_TIMEOUT,
        )
    except LoaderError as error:
        logger.warning("web import of %s refused: %s", url, error)
        return 0, 1
    for page in pages:
        if isinstance(page, LoaderError):
            failed += 1
            logger.info("web import of %s: %s", url, page)
            continue
        document, _ = Document.objects.update_or_create(
            knowledge_base=knowledge_base,
            source_url=page.source_url,
            defaults={"source_type": SourceType.URL, "title": (page.title or page.source_url)[:500]},
        )
        document.checksum = _checksum(page.text.encode())
        document.save(update_fields=["checksum"])
        document_ingest(document=document, loaded=page, sync=False)
        imported += 1
    knowledge_base_sync_index(knowledge_base=knowledge_base)
    return imported, failed
