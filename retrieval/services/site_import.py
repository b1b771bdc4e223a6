"""Importing a whole site or sitemap: the address checked and the import queued, then
(in the task) every page crawled into a document, ingested, and the index synced once."""

from __future__ import annotations

import logging

from django.conf import settings

from neo_support import audit
from neo_support.tasking import enqueue
from retrieval.loaders import crawl_site
from retrieval.loaders.base import LoaderError
from retrieval.models import Document, KnowledgeBase, SourceType
from retrieval.services.documents import check_address, content_checksum
from retrieval.services.indexing import knowledge_base_sync_index
from retrieval.services.ingestion import document_ingest

logger = logging.getLogger(__name__)


def knowledge_base_import_site(*, knowledge_base: KnowledgeBase, url: str, max_pages: int) -> None:
    check_address(url)
    audit.record(
        organization=knowledge_base.organization_id,
        action="knowledge_base.site_import",
        target=knowledge_base,
        after={"url": url, "max_pages": max_pages},
    )
    enqueue("retrieval.tasks.import_site", knowledge_base.pk, url, max_pages)


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
        checksum = content_checksum(page.text.encode())
        same = knowledge_base.documents.filter(checksum=checksum).exclude(source_url=page.source_url).first()
        if same is not None:  # the same page under a second address (index.html, a trailing slash, ...)
            logger.info("web import of %s: %s has the same text as %s; kept once", url, page.source_url, same.title)
            continue
        document, _ = Document.objects.update_or_create(
            knowledge_base=knowledge_base,
            source_url=page.source_url,
            defaults={"source_type": SourceType.URL, "title": (page.title or page.source_url)[:500]},
        )
        document.checksum = checksum
        document.save(update_fields=["checksum"])
        document_ingest(document=document, loaded=page, sync=False)
        imported += 1
    knowledge_base_sync_index(knowledge_base=knowledge_base)
    return imported, failed
