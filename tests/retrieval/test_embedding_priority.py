"""Interactive embeddings go before bulk ones (issue 23: a big upload stalled every chat,
each widget search waiting 30-42 s behind the ingest's embedding call)."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest

from retrieval import embeddings


class RecordingModel:
    """Stands in for the SentenceTransformer: records each encode call and lets the test
    hold the first bulk batch until an interactive call is waiting."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[str]]] = []
        self.first_bulk_started = threading.Event()
        self.release_first_bulk = threading.Event()

    def encode(self, texts: list[str], **_: Any) -> np.ndarray:
        kind = "query" if texts == ["where is my parcel?"] else "bulk"
        self.calls.append((kind, list(texts)))
        if kind == "bulk" and not self.first_bulk_started.is_set():
            self.first_bulk_started.set()
            assert self.release_first_bulk.wait(30)
        return np.ones((len(texts), 4), dtype=np.float32) / 2


@pytest.fixture
def model(monkeypatch: pytest.MonkeyPatch) -> RecordingModel:
    fake = RecordingModel()
    monkeypatch.setattr(embeddings, "get_model", lambda name=embeddings.DEFAULT_MODEL: fake)
    monkeypatch.setattr(embeddings, "dimension", lambda name=embeddings.DEFAULT_MODEL: 4)
    return fake


def test_a_query_requested_during_a_bulk_embedding_is_served_before_the_next_bulk_batch(
    model: RecordingModel,
) -> None:
    texts = [f"chunk {n} " + "word " * n for n in range(3 * embeddings.BULK_BATCH_SIZE)]
    bulk = threading.Thread(target=embeddings.embed, args=(texts,), kwargs={"priority": embeddings.Priority.BULK})
    bulk.start()
    assert model.first_bulk_started.wait(30)

    query = threading.Thread(target=embeddings.embed, args=(["where is my parcel?"],))
    query.start()
    # The query does not wait for the batch under way; it has run before that batch ends.
    query.join(30)
    assert not query.is_alive()
    model.release_first_bulk.set()
    bulk.join(30)

    kinds = [kind for kind, _ in model.calls]
    assert kinds == ["bulk", "query", "bulk", "bulk"]


def test_a_bulk_batch_waits_while_a_query_is_being_embedded(model: RecordingModel, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    model.first_bulk_started.set()  # no bulk batch is held in this test
    query_running = threading.Event()
    finish_query = threading.Event()
    encode = model.encode

    def slow_query(texts: list[str], **kwargs: Any) -> np.ndarray:
        if texts == ["where is my parcel?"]:
            query_running.set()
            assert finish_query.wait(30)
        return encode(texts, **kwargs)

    monkeypatch.setattr(model, "encode", slow_query)
    query = threading.Thread(target=embeddings.embed, args=(["where is my parcel?"],))
    query.start()
    assert query_running.wait(30)
    bulk = threading.Thread(
        target=embeddings.embed, args=(["a refund chunk"],), kwargs={"priority": embeddings.Priority.BULK}
    )
    bulk.start()
    bulk.join(0.5)  # a bound far above normal: the bulk batch must still be waiting
    assert bulk.is_alive()
    finish_query.set()
    query.join(30)
    bulk.join(30)
    assert [kind for kind, _ in model.calls] == ["query", "bulk"]


def test_bulk_vectors_come_back_in_the_order_of_the_texts() -> None:
    texts = ["Refunds take five days.", "x", "Parcels to Canada arrive within nine business days by courier."] * 15
    bulk = embeddings.embed(texts, priority=embeddings.Priority.BULK)
    interactive = embeddings.embed(texts)
    assert bulk.shape == interactive.shape == (45, embeddings.dimension())
    assert np.allclose(bulk, interactive, atol=1e-5)


def test_searches_and_bulk_work_can_tokenize_at_the_same_time() -> None:
    # Regression: with queries no longer waiting for bulk batches, two threads tokenized at
    # once and one got "expected sequence of length 140 (got 34)" from the shared tokenizer.
    texts = [" ".join(["parcel"] * (3 + (n * 37) % 150)) for n in range(160)]
    errors: list[BaseException] = []

    def run(work: Any) -> None:
        try:
            work()
        except Exception as error:  # noqa: BLE001 - collected and asserted on below
            errors.append(error)

    def searches() -> None:
        for _ in range(40):
            embeddings.embed(["where is my parcel?"])
            embeddings.count_tokens(texts[:8])

    threads = [
        threading.Thread(target=run, args=(lambda: embeddings.embed(texts, priority=embeddings.Priority.BULK),)),
        threading.Thread(target=run, args=(searches,)),
        threading.Thread(target=run, args=(searches,)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert errors == []
