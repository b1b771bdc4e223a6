"""The FAISS store: exact and HNSW, incremental add/remove, atomic versioned files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from retrieval.index import IndexPair, VectorIndex, load_pair, prune_versions, save_pair, stored_versions
from retrieval.lexical import LexicalIndex


def unit_vectors(count: int, dim: int = 16, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(count, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.mark.parametrize("hnsw_threshold", [10_000, 100], ids=["exact", "hnsw"])
def test_add_search_remove_and_readd_by_chunk_id(hnsw_threshold: int) -> None:
    vectors = unit_vectors(300)
    index = VectorIndex(dim=16, hnsw_threshold=hnsw_threshold)
    index.add(np.arange(1000, 1300), vectors)
    assert index.is_hnsw == (hnsw_threshold == 100)
    assert index.search(vectors[:5], 1)[1][:, 0].tolist() == list(range(1000, 1005))

    index.remove(np.array([1000, 1001, 5]))
    assert len(index) == 298
    assert not {1000, 1001} & index.id_set()
    assert 1000 not in index.search(vectors[:1], 10)[1][0].tolist()

    index.add(np.array([1000]), vectors[:1])
    assert index.search(vectors[:1], 1)[1][0, 0] == 1000
    assert len(index) == 299


def test_hnsw_compacts_its_tombstones_after_many_removals() -> None:
    index = VectorIndex(dim=16, hnsw_threshold=50)
    index.add(np.arange(200), unit_vectors(200))
    index.remove(np.arange(0, 50))
    assert index.is_hnsw and len(index.tombstones) == 0 and len(index) == 150
    assert index.id_set() == set(range(50, 200))


def test_vectors_of_the_wrong_shape_are_refused() -> None:
    with pytest.raises(ValueError, match="dimension 16"):
        VectorIndex(dim=16).add(np.array([1, 2]), unit_vectors(2, dim=8))


def test_a_saved_version_loads_back_identically_and_old_versions_are_pruned(tmp_path: Path) -> None:
    vectors = unit_vectors(50)
    pair = IndexPair(vectors=VectorIndex(dim=16), lexical=LexicalIndex(), meta={"embedding_model": "m"})
    pair.vectors.add(np.arange(50), vectors)
    pair.lexical.add(np.arange(50), [f"text {n}" for n in range(50)])
    for version in (1, 2, 3):
        save_pair(tmp_path, pair, version)
    prune_versions(tmp_path, keep={3, 2})
    assert stored_versions(tmp_path) == [2, 3]

    loaded = load_pair(tmp_path, 3)
    assert loaded.version == 3 and loaded.meta["embedding_model"] == "m"
    assert loaded.vectors.id_set() == set(range(50)) == loaded.lexical.id_set()
    assert loaded.vectors.search(vectors[7], 1)[1][0, 0] == 7
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "no temporary files left behind"


def test_a_failed_write_leaves_the_previous_version_intact(tmp_path: Path, monkeypatch) -> None:
    pair = IndexPair(vectors=VectorIndex(dim=16), lexical=LexicalIndex())
    pair.vectors.add(np.arange(10), unit_vectors(10))
    save_pair(tmp_path, pair, 1)

    def disk_full(self, handle):  # type: ignore[no-untyped-def]
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(LexicalIndex, "save_to", disk_full)
    pair.vectors.add(np.arange(10, 20), unit_vectors(10, seed=1))
    with pytest.raises(OSError, match="No space left"):
        save_pair(tmp_path, pair, 2)

    assert stored_versions(tmp_path) == [1]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert load_pair(tmp_path, 1).vectors.id_set() == set(range(10))
