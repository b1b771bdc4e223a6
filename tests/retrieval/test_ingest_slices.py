"""A big document is ingested a slice at a time (issue 23: a small document added after a
2 MB file sat at "Processing 90%" until the big one finished). The worker here is one
thread taking tasks in arrival order, as a Celery indexing worker with concurrency 1 does."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from retrieval import embeddings
from retrieval.models import Chunk, Document, DocumentStatus, KnowledgeBase
from retrieval.search import search
from retrieval.services import documents, ingest_work, ingestion
from retrieval.services.documents import document_create_from_text, document_delete
from retrieval.tasks import ingest_document
from tests.factories import KnowledgeBaseFactory

pytestmark = pytest.mark.django_db

SLICE = 8


class WorkerLost(BaseException):
    """The worker process died mid-slice (nothing in the task catches it)."""


@pytest.fixture
def queue(monkeypatch: pytest.MonkeyPatch, settings: Any, tmp_path: Any) -> Iterator[list[tuple[Any, ...]]]:
    settings.MEDIA_ROOT = tmp_path / "media"
    monkeypatch.setattr(ingestion, "SLICE_CHUNKS", SLICE)
    tasks: list[tuple[Any, ...]] = []
    monkeypatch.setattr(ingestion, "enqueue", lambda name, *args, **kwargs: tasks.append((name, args, kwargs)))
    yield tasks


def work(tasks: list[tuple[Any, ...]]) -> None:
    while tasks:
        name, args, kwargs = tasks.pop(0)
        assert name == "retrieval.tasks.ingest_document"
        ingest_document(*args, **kwargs)


def big_text(topics: int) -> str:
    return "\n\n".join(
        f"## Topic {n}\n\nArticle {n} explains how the warehouse in town number {n} packs its parcels."
        for n in range(topics)
    )


@pytest.fixture
def knowledge_base() -> KnowledgeBase:
    return KnowledgeBaseFactory(name="Help centre")


def test_a_small_document_queued_after_a_big_one_is_ready_before_the_big_one_finishes(
    queue: list[tuple[Any, ...]], knowledge_base: KnowledgeBase, monkeypatch: pytest.MonkeyPatch
) -> None:
    big = document_create_from_text(knowledge_base=knowledge_base, title="Warehouses", text=big_text(40), queue=False)
    small = document_create_from_text(
        knowledge_base=knowledge_base, title="Refunds", text="Refunds reach your card within five days.", queue=False
    )
    seen: list[dict[str, tuple[str, int]]] = []
    sync = ingestion.knowledge_base_sync_index

    def sync_and_look(**kwargs: Any) -> Any:
        result = sync(**kwargs)
        seen.append({d.title: (d.status, d.chunk_count) for d in Document.objects.all()})
        return result

    monkeypatch.setattr(ingestion, "knowledge_base_sync_index", sync_and_look)
    queue.extend(
        [("retrieval.tasks.ingest_document", (big.pk,), {}), ("retrieval.tasks.ingest_document", (small.pk,), {})]
    )
    work(queue)

    first_ready = next(look for look in seen if look["Refunds"][0] == DocumentStatus.READY)
    assert first_ready["Warehouses"] == (DocumentStatus.PROCESSING, 0)  # still being embedded
    big.refresh_from_db()
    assert big.status == DocumentStatus.READY
    assert list(big.chunks.order_by("ordinal").values_list("ordinal", flat=True)) == list(range(big.chunk_count))
    assert big.chunk_count > 3 * SLICE
    assert not ingest_work.work_directory(big.pk).exists()


def test_an_ingest_interrupted_after_some_slices_resumes_without_duplicate_chunks(
    queue: list[tuple[Any, ...]], knowledge_base: KnowledgeBase, monkeypatch: pytest.MonkeyPatch
) -> None:
    document = document_create_from_text(
        knowledge_base=knowledge_base, title="Warehouses", text=big_text(30), queue=False
    )
    embedded: list[int] = []
    embed = embeddings.embed
    die_on_call: list[int] = [2]  # the second slice's embedding never returns

    def counting_embed(texts: list[str], *args: Any, **kwargs: Any) -> np.ndarray:
        if len(embedded) + 1 == die_on_call[0]:
            embedded.append(0)
            raise WorkerLost
        embedded.append(len(texts))
        return embed(texts, *args, **kwargs)

    monkeypatch.setattr(embeddings, "embed", counting_embed)
    assert ingest_document(document.pk) == "continues"
    with pytest.raises(WorkerLost):
        work(queue)  # the continuation dies mid-slice; the broker redelivers it
    assert ingest_work.slices_load(document.pk)  # the first slice is kept

    redelivered = ("retrieval.tasks.ingest_document", (document.pk,), {"resume": True})
    queue.extend([redelivered, redelivered])  # and delivers it twice
    work(queue)

    document.refresh_from_db()
    assert document.status == DocumentStatus.READY
    ordinals = list(Chunk.objects.filter(document=document).order_by("ordinal").values_list("ordinal", flat=True))
    assert ordinals == list(range(document.chunk_count))
    assert sum(embedded) == document.chunk_count  # nothing embedded twice
    knowledge_base.refresh_from_db()
    hits = search(knowledge_bases=[knowledge_base], query="warehouse in town number 29", k=1)
    assert hits and hits[0].text.endswith("town number 29 packs its parcels.")


def test_saved_slices_of_a_replaced_text_are_not_reused(
    queue: list[tuple[Any, ...]], knowledge_base: KnowledgeBase
) -> None:
    document = document_create_from_text(
        knowledge_base=knowledge_base, title="Warehouses", text=big_text(30), queue=False
    )
    assert ingest_document(document.pk) == "continues"
    queue.clear()
    Document.objects.filter(pk=document.pk).update(text=big_text(12), checksum="changed")
    ingest_document(document.pk, resume=True)  # a stale continuation: the saved work no longer fits
    work(queue)
    document.refresh_from_db()
    assert document.status == DocumentStatus.READY
    assert document.chunk_count == Chunk.objects.filter(document=document).count() < 30


def test_deleting_a_document_mid_ingest_discards_its_saved_slices_at_once(
    queue: list[tuple[Any, ...]],
    knowledge_base: KnowledgeBase,
    django_capture_on_commit_callbacks: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(documents, "enqueue", lambda name, *args, **kwargs: None)  # the index sync is not at issue
    document = document_create_from_text(
        knowledge_base=knowledge_base, title="Warehouses", text=big_text(30), queue=False
    )
    document_id = document.pk
    assert ingest_document(document_id) == "continues"
    assert ingest_work.slices_load(document_id)
    with django_capture_on_commit_callbacks(execute=True):
        document_delete(document=document)
    assert not ingest_work.work_directory(document_id).exists()
    work(queue)  # the continuation finds the document gone and leaves nothing behind
    assert not ingest_work.work_directory(document_id).exists()
