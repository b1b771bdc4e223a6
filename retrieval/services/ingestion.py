"""Ingestion: load, chunk and embed documents and store their chunks with their vectors.

Ingestion runs in two steps so many documents share one index write:
1. `document_ingest` loads, chunks and embeds one document and stores its chunks
   with their vectors (the document is then "embedded");
2. `knowledge_base_sync_index` (retrieval.services.indexing) brings the FAISS and
   keyword indexes in line with the stored chunks and marks embedded documents ready.
The last document of a batch to finish runs the sync; a sync is idempotent.

Bulk work yields to people: embeddings here are requested at bulk priority (a search's
query embedding goes before the next batch), and the ingest task embeds at most
SLICE_CHUNKS chunks of a document per run, then queues the rest behind whatever arrived
meanwhile, its slices saved (retrieval.services.ingest_work) so the rest resumes rather
than restarts. Documents finished while a big one is still being embedded are not kept
waiting for it: the index is synced once some have waited SYNC_DELAY.
"""

from __future__ import annotations

import errno
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from neo_support.tasking import enqueue
from retrieval import embeddings
from retrieval.chunking import ChunkDraft, chunk_blocks, indexed_text
from retrieval.ingest_rate import ingest_rate_record
from retrieval.loaders import fetch_url, load_bytes, load_text
from retrieval.loaders.base import LoadedDocument, LoaderError, ProgressCallback
from retrieval.loaders.isolation import ParserLimits, load_bytes_isolated
from retrieval.models import Chunk, Document, DocumentStatus, KnowledgeBase, SourceType
from retrieval.services import ingest_work
from retrieval.services.documents import DISK_FULL
from retrieval.services.indexing import SyncResult, knowledge_base_sync_index

logger = logging.getLogger(__name__)

EMBED_BATCH = 256
# documents_ingest_all embeds this many chunks per call: texts are sorted by length before
# batching, so bigger calls pad less (embeddings.embed still yields to searches between batches).
BULK_EMBED_TEXTS = 2048
# Chunks one ingest task embeds before it hands the worker to the next queued document.
SLICE_CHUNKS = 256
# Embedded documents wait at most about this long for the index sync while siblings are
# still being embedded: each sync rewrites the index and every searching process then
# reloads it, so during a bulk ingest a sync every few seconds slowed one search in twenty.
SYNC_DELAY = timedelta(seconds=20)
# A document still "in flight" after this long is presumed stuck and no longer delays the index sync.
IN_FLIGHT_WINDOW = timedelta(minutes=10)
# Progress shown on the dashboard: loading (a long PDF page batch by page batch) up to
# LOADED, then embedding up to EMBEDDED, stored at 90, ready (index synced) at 100.
LOADING, LOADED, EMBEDDED = 5, 40, 90


def _set_progress(document: Document, progress: int, **fields: Any) -> None:
    Document.objects.filter(pk=document.pk).update(progress=progress, updated_at=timezone.now(), **fields)


def document_load(document: Document, *, report: bool = False) -> LoadedDocument:
    """Parse a document's content into blocks (fetching it first for a URL). With `report`,
    a long PDF moves the document's progress as its pages are read."""
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
        "on_progress": _page_progress(document) if report else None,
    }
    if not settings.NEO_PARSER_ISOLATION:
        return load_bytes(data, **options)
    return load_bytes_isolated(data, limits=parser_limits(), **options)


def _page_progress(document: Document) -> ProgressCallback:
    def report(read: int, pages: int) -> None:
        _set_progress(document, LOADING + (LOADED - LOADING) * read // max(1, pages))

    return report


def parser_limits() -> ParserLimits:
    return ParserLimits(
        memory_mb=settings.NEO_PARSER_MEMORY_MB,
        cpu_seconds=settings.NEO_PARSER_CPU_SECONDS,
        wall_seconds=settings.NEO_PARSER_TIMEOUT_SECONDS,
    )


def document_ingest(
    *,
    document: Document,
    loaded: LoadedDocument | None = None,
    sync: bool = True,
    slice_chunks: int | None = None,
    resume: bool = False,
) -> bool:
    """Load, chunk and embed `document`, store its chunks, then sync the index unless a
    sibling still in flight will do it soon. Failures mark the document failed with a
    readable reason and change nothing else (its previous chunks, if any, stay searchable).

    With `slice_chunks`, at most that many chunks are embedded in this call; the slice is
    saved and False returned when more remain (`resume=True` continues from the saved
    slices; without it saved work is discarded and the document starts over)."""
    started = time.monotonic()
    key = ingest_work.work_key(document)
    saved = ingest_work.chunks_load(document.pk, key=key) if resume else None
    done = ingest_work.slices_load(document.pk) if saved is not None else []
    if saved is None:
        ingest_work.work_discard(document.pk)
        prepared = _prepare(document, loaded)
        if prepared is None:
            return True
    else:
        prepared = _prepared_from(document, *saved)
    total = len(prepared.texts)
    start = sum(len(vectors) for vectors in done)
    end = total if slice_chunks is None else min(total, start + slice_chunks)
    try:
        vectors = _embed(
            prepared.texts[start:end], document.knowledge_base.embedding_model, document=document, of=(start, total)
        )
        if end < total:
            _record_rate(document, chunks=end - start, since=started)
            if saved is None:
                ingest_work.chunks_save(document.pk, key=key, title=prepared.title, drafts=prepared.drafts)
            ingest_work.slice_save(document.pk, start=start, vectors=vectors)
            if sync and _documents_kept_waiting(document.knowledge_base_id, longer_than=timedelta(0)):
                _sync_or_fail_unindexed(document.knowledge_base)
            return False
        _store_chunks(document, prepared, np.concatenate([*done, vectors]))
    except Exception as error:  # noqa: BLE001 - reported on the document, never raised into the worker
        _fail(document, error)
        ingest_work.work_discard(document.pk)
        return True
    ingest_work.work_discard(document.pk)
    _record_rate(document, chunks=end - start, since=started)
    if sync and (not _siblings_in_flight(document) or _documents_kept_waiting(document.knowledge_base_id)):
        _sync_or_fail_unindexed(document.knowledge_base)
    return True


def _record_rate(document: Document, *, chunks: int, since: float) -> None:
    ingest_rate_record(chunks=chunks, chunk_size=document.knowledge_base.chunk_size, seconds=time.monotonic() - since)


def document_ingest_slice(*, document: Document, resume: bool = False) -> bool:
    """One slice of `document` (the ingest task's unit of work). When more remain, the
    rest is queued behind whatever arrived meanwhile, so one big file never holds up the
    documents after it; returns whether the document is finished."""
    finished = document_ingest(document=document, slice_chunks=SLICE_CHUNKS, resume=resume)
    if not finished:
        enqueue("retrieval.tasks.ingest_document", document.pk, resume=True)
    return finished


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
            retryable=True,
            embedded_at=None,
            progress=0,
            updated_at=timezone.now(),
            error=f"The search index could not be saved: {reason} Answers still come from the previous "
            "index. Retry this document once the problem is fixed.",
        )
        return None


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
    _set_progress(
        document, 0, status=DocumentStatus.FAILED, error=message, retryable=failure_retryable(document, error)
    )


def failure_retryable(document: Document, error: BaseException) -> bool:
    """Whether processing `document` again could get past `error`.

    Refusals of the content (a damaged, locked, empty or unsupported file, typed-in text
    without text) would fail the same way. A web page may load later (the site was down,
    the page changes), a parser stopped for time may finish on a quieter server, a missing
    embedding model can be installed, and an unexpected error is the server's, not the file's.
    """
    if isinstance(error, LoaderError):
        return error.retryable or document.source_type == SourceType.URL
    return True


def _prepare(document: Document, loaded: LoadedDocument | None, *, report: bool = True) -> _Prepared | None:
    """Load and chunk; None (with the document marked failed) when that is impossible."""
    knowledge_base = document.knowledge_base
    model = knowledge_base.embedding_model
    if report:
        _set_progress(document, LOADING, status=DocumentStatus.PROCESSING, error="")
    try:
        loaded = loaded or document_load(document, report=report)
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
        _set_progress(document, LOADED)
    return _Prepared(title=title, drafts=drafts, texts=texts)


def _prepared_from(document: Document, title: str, drafts: list[ChunkDraft]) -> _Prepared:
    texts = [indexed_text(title=title, heading_path=d.heading_path, text=d.text) for d in drafts]
    return _Prepared(title=title, drafts=drafts, texts=texts)


def _title_for(document: Document, loaded: LoadedDocument) -> str:
    """The document's own title (PDF metadata, first heading, <title>) unless a person chose one."""
    placeholders = {document.source_url, Path(document.source_filename).stem, ""}
    if document.title in placeholders and loaded.title:
        return loaded.title
    return cast(str, document.title)


def _embed(
    texts: list[str], model: str, *, document: Document | None = None, of: tuple[int, int] | None = None
) -> np.ndarray:
    """Embed at bulk priority in steps of EMBED_BATCH, reporting progress on `document`
    (`texts` being the chunks from `of[0]` of a document of `of[1]`); in one call without one."""
    if not texts:
        return np.zeros((0, embeddings.dimension(model)), dtype=np.float32)
    before, total = of or (0, len(texts))
    step = EMBED_BATCH if document is not None else len(texts)
    parts = []
    for start in range(0, len(texts), step):
        parts.append(embeddings.embed(texts[start : start + step], model, priority=embeddings.Priority.BULK))
        if document is not None:
            done = (before + min(len(texts), start + step)) / max(1, total)
            _set_progress(document, LOADED + int((EMBEDDED - LOADED) * done))
    return np.concatenate(parts)


def _store_chunks(document: Document, prepared: _Prepared, vectors: np.ndarray) -> None:
    _store_many([(document, prepared, vectors)])


def _store_many(items: list[tuple[Document, _Prepared, np.ndarray]]) -> None:
    """Replace the chunks of each document with its new ones, all in one transaction."""
    now = timezone.now()
    with transaction.atomic():
        # Two deliveries of one document's last slice must not both insert its chunks.
        list(Document.objects.select_for_update().filter(pk__in=[document.pk for document, _, _ in items]))
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
    return cast(
        bool,
        Document.objects.filter(
            knowledge_base_id=document.knowledge_base_id,
            status__in=[DocumentStatus.PENDING, DocumentStatus.PROCESSING],
            embedded_at__isnull=True,
            updated_at__gte=recent,
        )
        .exclude(pk=document.pk)
        .exists(),
    )


def _documents_kept_waiting(knowledge_base_id: int, *, longer_than: timedelta = SYNC_DELAY) -> bool:
    """Whether a document of the knowledge base was embedded at least `longer_than` ago and
    still waits for the index sync (the siblings in flight that were to run it have not)."""
    return cast(
        bool,
        Document.objects.filter(
            knowledge_base_id=knowledge_base_id,
            status=DocumentStatus.PROCESSING,
            embedded_at__lte=timezone.now() - longer_than,
        ).exists(),
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
