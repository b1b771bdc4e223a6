"""Sentence embeddings for the classifier filters: the packaged all-MiniLM-L6-v2, the
model retrieval uses by default, so a question's search vector can be reused."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

MODEL = "all-MiniLM-L6-v2"
BATCH = 64


def embed_texts(texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
    from retrieval.embeddings import embed

    if not progress or len(texts) <= BATCH:
        return embed(texts, MODEL)
    from tqdm import tqdm

    starts = tqdm(range(0, len(texts), BATCH), desc="embedding", unit="batch")
    parts = [embed(texts[start : start + BATCH], MODEL) for start in starts]
    return np.concatenate(parts)


def embed_text(text: str) -> np.ndarray:
    vector: np.ndarray = embed_texts([text])[0]
    return vector
