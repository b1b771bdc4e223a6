"""What a search returns, as plain data: shared by the search (retrieval.search) and the
engines that answer from it (workers.generation), which never touch the database."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class SearchHit:
    chunk_id: int
    document_id: int
    document_title: str
    knowledge_base_id: int
    heading_path: list[str]
    location: str
    text: str
    snippet: str
    score: float
    dense_score: float | None = None
    lexical_score: float | None = None
    # The chunk's stored embedding (float32, unit length), when it has one.
    vector: np.ndarray | None = field(default=None, repr=False, compare=False)
