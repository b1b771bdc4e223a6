"""The indexes of a knowledge base: where this host keeps them, the sync that keeps them in
line with the embedded chunks, and the fill that builds a missing version from the database.

The database is the truth: chunk rows hold their vectors and text, and
`KnowledgeBase.index_version` says which version readers want. Index files are this
host's cache of it. `knowledge_base_sync_index` (the indexing worker) brings the FAISS
and keyword indexes in line with the stored chunks, under a row lock on the knowledge
base, writes a new version and marks embedded documents ready; it is idempotent.
`index_cache_fill` (any process that searches) builds the version the database names
when this host does not have it, so no process relies on files another one wrote.
"""

from __future__ import annotations

import fcntl
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from retrieval import embeddings
from retrieval.chunking import indexed_text
from retrieval.index import (
    IndexPair,
    VectorIndex,
    load_pair,
    prune_versions_below,
    save_pair,
    stored_versions,
)
from retrieval.lexical import LexicalIndex
from retrieval.models import Chunk, Document, DocumentStatus, KnowledgeBase


@dataclass(frozen=True)
class SyncResult:
    version: int
    added: int
    removed: int
    ready: int


_BATCH = 5000


def index_root() -> Path:
    """This host's index folder: `NEO_INDEX_DIR`, else MEDIA_ROOT/indexes."""
    return Path(settings.NEO_INDEX_DIR or Path(settings.MEDIA_ROOT) / "indexes")


def index_directory(knowledge_base: KnowledgeBase) -> Path:
    return index_root() / str(knowledge_base.pk)


def _empty_pair(knowledge_base: KnowledgeBase, *, dim: int | None = None) -> IndexPair:
    return IndexPair(
        vectors=VectorIndex(
            dim=dim or embeddings.dimension(knowledge_base.embedding_model),
            hnsw_threshold=settings.NEO_HNSW_THRESHOLD,
        ),
        lexical=LexicalIndex(),
        meta={"embedding_model": knowledge_base.embedding_model},
    )


def _indexed_chunks(knowledge_base: KnowledgeBase) -> Any:
    return Chunk.objects.filter(document__knowledge_base=knowledge_base, document__embedded_at__isnull=False)


def indexed_chunk_count(knowledge_base: KnowledgeBase) -> int:
    """How many chunks a build of the knowledge base's index reads."""
    return int(_indexed_chunks(knowledge_base).count())


def _chunk_batches(knowledge_base: KnowledgeBase, dim: int, ids: list[int] | None) -> Iterator[tuple[Any, ...]]:
    """(chunk ids, vectors, indexed texts) of the embedded chunks, `_BATCH` at a time: those
    in `ids`, or all of them (walked by primary key, so no id list is held) when None."""
    chunks = _indexed_chunks(knowledge_base).values_list("pk", "embedding", "text", "heading_path", "document__title")
    last, start = 0, 0
    while True:
        if ids is None:
            rows = list(chunks.filter(pk__gt=last).order_by("pk")[:_BATCH])
        else:
            rows = list(chunks.filter(pk__in=ids[start : start + _BATCH]).order_by("pk"))
            start += _BATCH
        if rows:
            vectors = np.frombuffer(b"".join(bytes(row[1]) for row in rows), dtype=np.float32).reshape(len(rows), dim)
            chunk_ids = np.array([row[0] for row in rows], dtype=np.int64)
            yield chunk_ids, vectors, [indexed_text(title=row[4], heading_path=row[3], text=row[2]) for row in rows]
            last = rows[-1][0]
        if (ids is None and len(rows) < _BATCH) or (ids is not None and start >= len(ids)):
            return


def _add_chunks(pair: IndexPair, knowledge_base: KnowledgeBase, ids: list[int]) -> None:
    for chunk_ids, vectors, texts in _chunk_batches(knowledge_base, pair.vectors.dim, ids):
        pair.vectors.add(chunk_ids, vectors)
        pair.lexical.add(chunk_ids, texts)


@contextmanager
def _host_lock(directory: Path) -> Iterator[None]:
    """One builder per knowledge base on this host: other processes here wait, then find
    the version built. (Hosts never share this folder, so a file lock is enough.)"""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".build.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _is_final(directory: Path, version: int) -> bool:
    """Whether this host has `version`, and not a provisional one."""
    try:
        meta = json.loads((directory / f"v{version}.json").read_text())
    except FileNotFoundError:
        return False
    return not meta.get("provisional", False)


def index_cache_fill(*, knowledge_base: KnowledgeBase, version: int, quick: bool = False) -> bool:
    """Build `version` of the knowledge base's index on this host from the chunk rows, unless
    it is here already; True when this call built it.

    `quick` builds an exact index even past the HNSW threshold (seconds instead of minutes
    for 100k chunks): it answers a new host's first search and is marked provisional, and
    a later call without `quick` replaces it with the HNSW graph.

    The vectors come from the stored chunk embeddings (nothing is embedded again) and the
    keyword index from the stored chunk texts. The files are written to temporary names and
    renamed, so a reader sees the whole version or none. The chunks read are the embedded
    ones at the time of the build, which may already include a document the next version
    will add; the sync computes its changes from the ids an index holds, so that is safe.
    """
    directory = index_directory(knowledge_base)
    with _host_lock(directory):
        if _is_final(directory, version) or (quick and (directory / f"v{version}.json").exists()):
            return False
        first = _indexed_chunks(knowledge_base).order_by("pk").values_list("embedding", flat=True).first()
        dim = len(bytes(first)) // 4 if first else None
        pair = _empty_pair(knowledge_base, dim=dim)
        if dim is not None:
            batches = list(_chunk_batches(knowledge_base, dim, None))
            ids = np.concatenate([batch[0] for batch in batches])
            if quick:
                pair.vectors.hnsw_threshold = len(ids)  # stays exact for this add
            # One add: the index type (exact or HNSW) is chosen once, for the full count.
            pair.vectors.add(ids, np.concatenate([batch[1] for batch in batches]))
            pair.vectors.hnsw_threshold = settings.NEO_HNSW_THRESHOLD
            pair.lexical.add(ids, [text for batch in batches for text in batch[2]])
        save_pair(directory, pair, version)
        prune_versions_below(directory, version - 1)
    return True


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
            transaction.on_commit(lambda: prune_versions_below(directory, version - 1))
            KnowledgeBase.objects.filter(pk=locked.pk).update(index_version=version, updated_at=timezone.now())
        else:
            version = current
        ready = becoming_ready.update(status=DocumentStatus.READY, progress=100, updated_at=timezone.now())
    knowledge_base.index_version = version
    return SyncResult(version=version, added=len(to_add), removed=len(to_remove), ready=ready)
