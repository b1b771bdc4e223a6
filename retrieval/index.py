"""FAISS vector index per knowledge base, keyed by chunk id, and its files on disk.

Pure Python (faiss, numpy). Small bases use an exact inner-product index; past
`hnsw_threshold` vectors the index becomes HNSW. HNSW cannot delete in place,
so removed ids are kept as tombstones, filtered out of every search with an
IDSelector, and compacted away once they are a tenth of the index.

Each saved state is a version: `v<N>.faiss`, `v<N>.lexical.npz`, `v<N>.json`
under the knowledge base's folder, each written to a temporary file, fsynced
and renamed, so a crash or a full disk mid-write leaves the previous version
intact. The database's `KnowledgeBase.index_version` names the version readers load.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from retrieval.lexical import LexicalIndex

DEFAULT_HNSW_THRESHOLD = 50_000
HNSW_NEIGHBOURS = 32
HNSW_EF_CONSTRUCTION = 40  # faiss's own default
HNSW_EF_SEARCH = 64
COMPACT_FRACTION = 0.1
_VERSION_FILE = re.compile(r"^v(\d+)\.")


def _faiss() -> Any:
    import faiss

    return faiss


@dataclass
class VectorIndex:
    dim: int
    hnsw_threshold: int = DEFAULT_HNSW_THRESHOLD
    index: Any = None
    tombstones: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        if self.index is None:
            self.index = self._new_index(hnsw=False)

    @property
    def is_hnsw(self) -> bool:
        return "HNSW" in type(_faiss().downcast_index(self.index.index)).__name__

    def __len__(self) -> int:
        return int(self.index.ntotal) - len(self.tombstones)

    @property
    def is_provisional(self) -> bool:
        """Exact although past the HNSW threshold: what a host builds for its first search,
        in seconds, while the graph is built in the background (retrieval/search.py)."""
        return not self.is_hnsw and len(self) > self.hnsw_threshold

    def _new_index(self, *, hnsw: bool) -> Any:
        faiss = _faiss()
        if hnsw:
            inner = faiss.IndexHNSWFlat(self.dim, HNSW_NEIGHBOURS, faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
            inner.hnsw.efSearch = HNSW_EF_SEARCH
        else:
            inner = faiss.IndexFlatIP(self.dim)
        return faiss.IndexIDMap2(inner)

    def _stored_ids(self) -> np.ndarray:
        ids: np.ndarray = _faiss().vector_to_array(self.index.id_map).astype(np.int64)
        return ids

    def id_set(self) -> set[int]:
        return set(self._stored_ids().tolist()) - self.tombstones

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.shape != (len(ids), self.dim):
            raise ValueError(f"expected {len(ids)} vectors of dimension {self.dim}, got {vectors.shape}")
        if not len(ids):
            return
        revived = self.tombstones.intersection(ids.tolist())
        if revived:  # a re-added id must not also live on as a tombstone
            self._rebuild(hnsw=self.is_hnsw, drop=revived)
        if not self.is_hnsw and len(self) + len(ids) > self.hnsw_threshold:
            self._rebuild(hnsw=True)
        self.index.add_with_ids(vectors, ids)

    def remove(self, ids: np.ndarray) -> None:
        ids = np.asarray(ids, dtype=np.int64)
        if not len(ids):
            return
        if not self.is_hnsw:
            self.index.remove_ids(_faiss().IDSelectorBatch(ids))
            return
        self.tombstones.update(set(ids.tolist()) & set(self._stored_ids().tolist()))
        if len(self.tombstones) > COMPACT_FRACTION * max(1, int(self.index.ntotal)):
            self._rebuild(hnsw=len(self) > self.hnsw_threshold)

    def _rebuild(self, *, hnsw: bool, drop: set[int] | None = None) -> None:
        """Recreate the index from its own stored vectors, without tombstones (and `drop`)."""
        stored_ids = self._stored_ids()
        vectors = self.index.index.reconstruct_n(0, int(self.index.ntotal)) if len(stored_ids) else None
        keep = ~np.isin(stored_ids, np.array(sorted(self.tombstones | (drop or set())), dtype=np.int64))
        self.index = self._new_index(hnsw=hnsw)
        self.tombstones = set()
        if vectors is not None and keep.any():
            self.index.add_with_ids(np.ascontiguousarray(vectors[keep]), stored_ids[keep])

    def similarity(self, query: np.ndarray, ids: list[int]) -> list[float]:
        """Inner product of one query vector with the stored vectors of `ids`."""
        stored = self.index.reconstruct_batch(np.asarray(ids, dtype=np.int64))
        similarities: list[float] = (stored @ np.asarray(query, dtype=np.float32).reshape(-1)).tolist()
        return similarities

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids) of shape (len(queries), k), best first; missing hits have id -1."""
        faiss = _faiss()
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if queries.ndim == 1:
            queries = queries[None, :]
        if not int(self.index.ntotal):
            return np.zeros((len(queries), 0), dtype=np.float32), np.zeros((len(queries), 0), dtype=np.int64)
        k = min(k, int(self.index.ntotal))
        if not self.is_hnsw:
            scores, ids = self.index.search(queries, k)
            return scores, ids
        params = faiss.SearchParametersHNSW()
        params.efSearch = max(HNSW_EF_SEARCH, k)
        # The selectors must stay referenced from Python until the search returns.
        removed = faiss.IDSelectorBatch(np.array(sorted(self.tombstones), dtype=np.int64))
        live = faiss.IDSelectorNot(removed)
        if self.tombstones:
            params.sel = live
        scores, ids = self.index.search(queries, k, params=params)
        return scores, ids


@dataclass
class IndexPair:
    """What one knowledge base searches: its vectors and its keyword index, same ids."""

    vectors: VectorIndex
    lexical: LexicalIndex
    version: int = 0
    meta: dict[str, Any] = field(default_factory=dict)


def _fsync_dir(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


@contextmanager
def atomic_file(path: Path) -> Iterator[IO[bytes]]:
    """Write `path` so readers see the old file or the whole new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
        _fsync_dir(path.parent)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _write(path: Path, writer: Callable[[IO[bytes]], object]) -> None:
    with atomic_file(path) as handle:
        writer(handle)


def save_pair(directory: Path, pair: IndexPair, version: int) -> None:
    """Write `pair` as `version`. Files of an unfinished write are removed, never left half-made."""
    faiss = _faiss()
    paths = [directory / f"v{version}.faiss", directory / f"v{version}.lexical.npz", directory / f"v{version}.json"]
    try:
        _write(paths[0], lambda handle: handle.write(faiss.serialize_index(pair.vectors.index).tobytes()))
        _write(paths[1], lambda handle: pair.lexical.save_to(handle))
        meta = pair.meta | {
            "version": version,
            "dim": pair.vectors.dim,
            "hnsw_threshold": pair.vectors.hnsw_threshold,
            "tombstones": sorted(pair.vectors.tombstones),
            "provisional": pair.vectors.is_provisional,
        }
        _write(paths[2], lambda handle: handle.write(json.dumps(meta).encode()))
    except BaseException:
        for path in paths:
            path.unlink(missing_ok=True)
        raise
    pair.version = version


def load_pair(directory: Path, version: int) -> IndexPair:
    faiss = _faiss()
    meta = json.loads((directory / f"v{version}.json").read_text())
    index = faiss.deserialize_index(np.fromfile(directory / f"v{version}.faiss", dtype=np.uint8))
    vectors = VectorIndex(
        dim=int(meta["dim"]),
        hnsw_threshold=int(meta["hnsw_threshold"]),
        index=index,
        tombstones={int(i) for i in meta["tombstones"]},
    )
    if vectors.is_hnsw:
        faiss.downcast_index(vectors.index.index).hnsw.efSearch = HNSW_EF_SEARCH
    lexical = LexicalIndex.load(directory / f"v{version}.lexical.npz")
    return IndexPair(vectors=vectors, lexical=lexical, version=version, meta=meta)


def stored_versions(directory: Path) -> list[int]:
    if not directory.is_dir():
        return []
    versions = {int(match.group(1)) for path in directory.iterdir() if (match := _VERSION_FILE.match(path.name))}
    return sorted(versions)


def prune_versions_below(directory: Path, version: int) -> None:
    """Delete the files of every version older than `version`; newer ones, which another
    process on this host may have written meanwhile, stay."""
    for path in directory.iterdir() if directory.is_dir() else []:
        match = _VERSION_FILE.match(path.name)
        if match and int(match.group(1)) < version:
            path.unlink(missing_ok=True)


def prune_versions(directory: Path, *, keep: set[int]) -> None:
    """Delete every version's files except `keep` (the current one and the one before)."""
    for path in directory.iterdir() if directory.is_dir() else []:
        match = _VERSION_FILE.match(path.name)
        if match and int(match.group(1)) not in keep:
            path.unlink(missing_ok=True)
