"""The stored indexes of a knowledge base: where they live and the sync that keeps them in
line with the embedded chunks.

`knowledge_base_sync_index` brings the FAISS and keyword indexes in line with the stored
chunks, under a row lock on the knowledge base, writes a new index version and marks
embedded documents ready. A sync is idempotent.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from retrieval import embeddings
from retrieval.chunking import indexed_text
from retrieval.index import IndexPair, VectorIndex, load_pair, prune_versions, save_pair, stored_versions
from retrieval.lexical import LexicalIndex
from retrieval.models import Chunk, Document, DocumentStatus, KnowledgeBase


@dataclass(frozen=True)
class SyncResult:
    version: int
    added: int
    removed: int
    ready: int


def index_directory(knowledge_base: KnowledgeBase) -> Path:
    return Path(settings.MEDIA_ROOT) / "indexes" / str(knowledge_base.pk)


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
