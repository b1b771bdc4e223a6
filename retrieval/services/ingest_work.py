"""The saved work of a document ingested in slices, so a continuation (or a task redelivered
after a worker died) picks up where the last slice ended instead of starting over.

One folder per document, `MEDIA_ROOT/ingest/<document id>/` (beside the indexes, on the
volume every indexing worker shares): `chunks.json` (the key of what was parsed, the title
and the chunk drafts) and `slice-<first chunk>.npy` (the vectors of each slice embedded).
Each file is written whole or not at all (retrieval.index.atomic_file).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
from django.conf import settings

from retrieval.chunking import ChunkDraft
from retrieval.index import atomic_file
from retrieval.models import Document

_CHUNKS = "chunks.json"


def work_directory(document_id: int) -> Path:
    return Path(settings.MEDIA_ROOT) / "ingest" / str(document_id)


def work_key(document: Document) -> str:
    """What the saved chunks were made from; saved work for another key is stale (the file
    was replaced or the knowledge base's chunk settings or model changed meanwhile)."""
    knowledge_base = document.knowledge_base
    parts = [
        document.checksum,
        document.size_bytes,
        len(document.text),
        document.source_url,
        document.csv_columns,
        knowledge_base.chunk_size,
        knowledge_base.chunk_overlap,
        knowledge_base.embedding_model,
    ]
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def work_discard(document_id: int) -> None:
    shutil.rmtree(work_directory(document_id), ignore_errors=True)


def chunks_save(document_id: int, *, key: str, title: str, drafts: list[ChunkDraft]) -> None:
    payload = {
        "key": key,
        "title": title,
        "drafts": [[d.text, list(d.heading_path), d.location, d.token_count] for d in drafts],
    }
    with atomic_file(work_directory(document_id) / _CHUNKS) as handle:
        handle.write(json.dumps(payload).encode())


def chunks_load(document_id: int, *, key: str) -> tuple[str, list[ChunkDraft]] | None:
    """The saved title and drafts, or None when there are none for `key`."""
    try:
        payload = json.loads((work_directory(document_id) / _CHUNKS).read_text())
    except (FileNotFoundError, ValueError):
        return None
    if payload.get("key") != key:
        return None
    drafts = [
        ChunkDraft(text=t, heading_path=tuple(h), location=loc, token_count=n) for t, h, loc, n in payload["drafts"]
    ]
    return str(payload["title"]), drafts


def slice_save(document_id: int, *, start: int, vectors: np.ndarray) -> None:
    with atomic_file(work_directory(document_id) / f"slice-{start}.npy") as handle:
        np.save(handle, np.ascontiguousarray(vectors, dtype=np.float32))


def slices_load(document_id: int) -> list[np.ndarray]:
    """The vectors of the slices saved so far, in order, as long as they follow one another
    from the first chunk (a gap ends the list: what follows it is embedded again)."""
    directory = work_directory(document_id)
    starts = sorted(int(path.stem.removeprefix("slice-")) for path in directory.glob("slice-*.npy"))
    found: list[np.ndarray] = []
    expected = 0
    for start in starts:
        if start != expected:
            break
        vectors = np.load(directory / f"slice-{start}.npy")
        found.append(vectors)
        expected += len(vectors)
    return found
