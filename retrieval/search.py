"""Searching knowledge bases: dense (FAISS), lexical (BM25) or hybrid (fused).

Readers keep each knowledge base's index in memory and reload it when the
database says a newer version exists, so a search always sees the latest
committed index without restarting the process. A version this host has no
files for is built here from the database (`index_for`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import connection

from retrieval import embeddings
from retrieval.fusion import adaptive_fusion, top
from retrieval.hits import SearchHit
from retrieval.index import IndexPair, load_pair, stored_versions
from retrieval.models import Chunk, KnowledgeBase, SearchMode
from retrieval.services.indexing import index_cache_fill, index_directory, indexed_chunk_count

CANDIDATES = 50
SNIPPET_CHARS = 240

# index folder -> (file stamp, index); the stamp (inode, mtime) of the version's metadata
# file tells a reused id or a rewritten folder from the index in memory.
_cache: dict[Path, tuple[tuple[int, int], IndexPair]] = {}
_cache_lock = threading.Lock()
_building: set[Path] = set()  # folders a background thread is filling
_keyword_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="neo-keyword")
logger = logging.getLogger(__name__)


class IndexUnavailable(Exception):  # noqa: N818 - reported to the user, not a crash
    """The knowledge base's current index version could not be built on this host."""


@dataclass
class SearchTimings:
    embed_ms: float = 0.0
    search_ms: float = 0.0
    fetch_ms: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)


def _stamp(directory: Path, version: int) -> tuple[int, int] | None:
    try:
        info = (directory / f"v{version}.json").stat()
    except FileNotFoundError:
        return None
    return (info.st_ino, info.st_mtime_ns)


def _load(directory: Path, version: int, stamp: tuple[int, int]) -> IndexPair:
    with _cache_lock:
        cached = _cache.get(directory)
        if cached is not None and cached[0] == stamp and cached[1].version == version:
            return cached[1]
    pair = load_pair(directory, version)
    with _cache_lock:
        _cache[directory] = (stamp, pair)
    return pair


def _fill(knowledge_base: KnowledgeBase, directory: Path, version: int, *, quick: bool) -> IndexPair:
    try:
        index_cache_fill(knowledge_base=knowledge_base, version=version, quick=quick)
    except OSError as error:
        raise IndexUnavailable(
            f"The index of {knowledge_base.name!r} (version {version}) could not be built in {directory}: "
            f"{error.strerror or error}."
        ) from error
    stamp = _stamp(directory, version)
    if stamp is None:  # removed between the build and now (the knowledge base was deleted)
        raise IndexUnavailable(f"The index of {knowledge_base.name!r} (version {version}) is gone from {directory}.")
    return _load(directory, version, stamp)


def _fill_in_background(knowledge_base: KnowledgeBase, directory: Path, version: int) -> None:
    """Build `version` (the whole of it: an HNSW graph where one is due) in a thread."""
    with _cache_lock:
        if directory in _building:
            return
        _building.add(directory)

    def build() -> None:
        try:
            _fill(knowledge_base, directory, version, quick=False)
        except Exception:
            logger.exception("building index version %s of knowledge base %s failed", version, knowledge_base.pk)
        finally:
            with _cache_lock:
                _building.discard(directory)
            connection.close()  # this thread's own database connection

    threading.Thread(target=build, name=f"neo-index-{knowledge_base.pk}", daemon=True).start()


def index_for(knowledge_base: KnowledgeBase) -> IndexPair | None:
    """The in-memory index of `knowledge_base` at its current version (None when it has none yet).

    This host's index files are a cache of the database: a version missing here is built
    from the chunk rows. A small knowledge base (`NEO_INDEX_INLINE_BUILD_CHUNKS`) is built
    before the search, so a document made ready elsewhere is found at once. A bigger one
    is built in the background while searches use the version this process already holds
    (or the newest one on this host's disk); with nothing to serve meanwhile (a new host),
    the caller waits for a quick build: exact search, which a background build then
    replaces with the HNSW graph if one is due.
    """
    version = knowledge_base.index_version
    if version == 0:
        return None
    directory = index_directory(knowledge_base)
    stamp = _stamp(directory, version)
    if stamp is not None:
        return _upgraded_later(knowledge_base, directory, _load(directory, version, stamp))
    if indexed_chunk_count(knowledge_base) <= settings.NEO_INDEX_INLINE_BUILD_CHUNKS:
        return _upgraded_later(knowledge_base, directory, _fill(knowledge_base, directory, version, quick=True))
    with _cache_lock:
        cached = _cache.get(directory)
    previous = cached[1] if cached is not None and cached[1].version < version else None
    if previous is None:
        older = [v for v in stored_versions(directory) if v < version]
        older_stamp = _stamp(directory, older[-1]) if older else None
        if older_stamp is not None:
            previous = _load(directory, older[-1], older_stamp)
    if previous is None:
        return _upgraded_later(knowledge_base, directory, _fill(knowledge_base, directory, version, quick=True))
    _fill_in_background(knowledge_base, directory, version)
    return previous


def _upgraded_later(knowledge_base: KnowledgeBase, directory: Path, pair: IndexPair) -> IndexPair:
    if pair.vectors.is_provisional:
        _fill_in_background(knowledge_base, directory, pair.version)
    return pair


def forget_cached_indexes() -> None:
    with _cache_lock:
        _cache.clear()


@dataclass
class _KeywordHits:
    scores: dict[int, float]
    ceiling: float


def _keyword_hits(pair: IndexPair, query: str, k: int) -> _KeywordHits:
    scores, ids = pair.lexical.search(query, k)
    return _KeywordHits({int(i): float(s) for s, i in zip(scores, ids, strict=True)}, pair.lexical.score_ceiling(query))


def _fuse(
    pair: IndexPair, *, query_vector: np.ndarray | None, keyword: _KeywordHits | None, mode: str, k: int
) -> dict[int, tuple[float, float | None, float | None]]:
    """chunk id -> (score, dense score, lexical score) for one knowledge base."""
    dense: dict[int, float] = {}
    if mode != SearchMode.LEXICAL and query_vector is not None:
        scores, ids = pair.vectors.search(query_vector, k)
        dense = {int(i): float(s) for s, i in zip(scores[0], ids[0], strict=True) if i >= 0}
    lexical = keyword.scores if keyword is not None else {}
    if mode == SearchMode.DENSE:
        return {i: (s, s, None) for i, s in dense.items()}
    if mode == SearchMode.LEXICAL:
        return {i: (s, None, s) for i, s in lexical.items()}
    # Keyword-only candidates get their real cosine too, so fusion compares like with like.
    missing = [i for i in lexical if i not in dense]
    if missing and query_vector is not None:
        dense.update(zip(missing, pair.vectors.similarity(query_vector, missing), strict=True))
    fused = adaptive_fusion(dense, lexical, lexical_ceiling=keyword.ceiling if keyword else 0.0)
    return {i: (s, dense.get(i), lexical.get(i)) for i, s in fused.items()}


def search(
    *,
    knowledge_bases: Sequence[KnowledgeBase],
    query: str,
    k: int = 5,
    mode: str | None = None,
    candidates: int = CANDIDATES,
    timings: SearchTimings | None = None,
    query_vectors: dict[str, np.ndarray] | None = None,
) -> list[SearchHit]:
    """The `k` best chunks across `knowledge_bases` for `query`. `mode` overrides each
    knowledge base's own search mode. `query_vectors` (embedding model name -> the
    query's vector) is used and filled in, so a caller can reuse the query's embedding."""
    query = " ".join(query.split())
    if not query or not knowledge_bases:
        return []
    timings = timings or SearchTimings()
    started = time.perf_counter()
    pairs = [(kb, pair, mode or kb.search_mode) for kb in knowledge_bases if (pair := index_for(kb)) is not None]
    # Keyword search runs beside the query embedding: the model releases the GIL while it works.
    keyword_jobs = {
        kb.pk: _keyword_pool.submit(_keyword_hits, pair, query, max(k, candidates))
        for kb, pair, kb_mode in pairs
        if kb_mode != SearchMode.DENSE
    }
    vectors = query_vectors if query_vectors is not None else {}
    for kb, _, kb_mode in pairs:
        if kb_mode != SearchMode.LEXICAL and kb.embedding_model not in vectors:
            vectors[kb.embedding_model] = embeddings.embed([query], kb.embedding_model)
    timings.embed_ms = (time.perf_counter() - started) * 1000

    started = time.perf_counter()
    found: dict[int, tuple[float, float | None, float | None]] = {}
    for kb, pair, kb_mode in pairs:
        job = keyword_jobs.get(kb.pk)
        found.update(
            _fuse(
                pair,
                query_vector=vectors.get(kb.embedding_model),
                keyword=job.result() if job is not None else None,
                mode=kb_mode,
                k=max(k, candidates),
            )
        )
    best = top({i: scores[0] for i, scores in found.items()}, k)
    timings.search_ms = (time.perf_counter() - started) * 1000

    started = time.perf_counter()
    chunks = Chunk.objects.select_related("document").in_bulk([i for i, _ in best])
    hits = [
        SearchHit(
            chunk_id=chunk.pk,
            document_id=chunk.document_id,
            document_title=chunk.document.title,
            knowledge_base_id=chunk.document.knowledge_base_id,
            heading_path=list(chunk.heading_path),
            location=chunk.location,
            text=chunk.text,
            snippet=_snippet(chunk.text),
            score=round(score, 4),
            dense_score=found[chunk_id][1],
            lexical_score=found[chunk_id][2],
            vector=np.frombuffer(bytes(chunk.embedding), dtype=np.float32) if chunk.embedding else None,
        )
        for chunk_id, score in best
        if (chunk := chunks.get(chunk_id)) is not None  # deleted since the index was written
    ]
    timings.fetch_ms = (time.perf_counter() - started) * 1000
    return hits


def _snippet(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= SNIPPET_CHARS else flat[: SNIPPET_CHARS - 1].rsplit(" ", 1)[0] + "…"
