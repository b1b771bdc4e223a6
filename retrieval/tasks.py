"""Indexing tasks. Thin: reload the row, return quietly if it is gone, call one service."""

from __future__ import annotations

from neo_support.tasking import task
from retrieval.models import Document, DocumentStatus, KnowledgeBase
from retrieval.services.indexing import knowledge_base_sync_index
from retrieval.services.ingest_work import work_discard
from retrieval.services.ingestion import document_ingest_slice
from retrieval.services.site_import import site_import_run


@task(queue="indexing")
def ingest_document(document_id: int, resume: bool = False) -> str:
    """Parse, chunk, embed and index one document, a slice at a time: a big one queues its
    own continuation (`resume=True`) behind the documents that arrived meanwhile. A
    redelivered task for a document that is already ready does nothing."""
    document = Document.objects.select_related("knowledge_base").filter(pk=document_id).first()
    if document is None:
        work_discard(document_id)  # deleted mid-ingest: its saved slices go too
        return "gone"
    if document.status == DocumentStatus.READY:
        return "already ready"
    if not document_ingest_slice(document=document, resume=resume):
        return "continues"
    return Document.objects.filter(pk=document_id).values_list("status", flat=True).first() or "gone"


@task(queue="indexing")
def sync_index(knowledge_base_id: int) -> int | None:
    """Bring a knowledge base's stored indexes in line with its chunks (after deletes, rebuilds)."""
    knowledge_base = KnowledgeBase.objects.filter(pk=knowledge_base_id).first()
    if knowledge_base is None:
        return None
    return knowledge_base_sync_index(knowledge_base=knowledge_base).version


@task(queue="indexing")
def import_site(knowledge_base_id: int, url: str, max_pages: int) -> dict[str, int] | None:
    knowledge_base = KnowledgeBase.objects.filter(pk=knowledge_base_id).first()
    if knowledge_base is None:
        return None
    imported, failed = site_import_run(knowledge_base=knowledge_base, url=url, max_pages=max_pages)
    return {"imported": imported, "failed": failed}
