"""Continuous batching: sequences joining and leaving one batch decode exactly what
they would alone (greedy), each receiving its own tokens."""

from __future__ import annotations

import threading
import time

import pytest

from workers.generation import streaming
from workers.generation.batching import BatchScheduler
from workers.generation.loading import load_model
from workers.generation.sampling import GenerationStats, SamplingParameters
from workers.generation.streaming import stream_text

PROMPTS = [
    "Customer: hi\nAssistant:",
    "Passages:\n[1] Billing > Refunds\nRefunds are paid back to the card you used.\n\nCustomer: How long?\nAssistant:",
    "Customer: How do I reset my password?\nAssistant: Use the reset link.\nCustomer: thanks\nAssistant:",
    "Answer the customer's question. Customer: refunds?\nAssistant:",
]


@pytest.fixture(scope="module")
def loaded(tiny_neo_dir):
    return load_model(str(tiny_neo_dir), device="cpu", dtype="float32")


def run_concurrently(loaded, scheduler, lengths: list[int], penalty: float = 1.0) -> list[str]:
    results: list[str] = [""] * len(PROMPTS)
    start = threading.Barrier(len(PROMPTS))

    def one(index: int) -> None:
        start.wait()
        params = SamplingParameters(max_new_tokens=lengths[index], repetition_penalty=penalty)
        results[index] = "".join(stream_text(loaded, PROMPTS[index], params, stop_sequences=(), scheduler=scheduler))

    threads = [threading.Thread(target=one, args=(n,)) for n in range(len(PROMPTS))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def test_greedy_output_batched_equals_unbatched(loaded) -> None:
    lengths = [5, 17, 9, 30]  # sequences leave the batch at different steps
    alone = [
        "".join(stream_text(loaded, prompt, SamplingParameters(max_new_tokens=n), stop_sequences=()))
        for prompt, n in zip(PROMPTS, lengths, strict=True)
    ]
    batched = run_concurrently(loaded, BatchScheduler(loaded), lengths)
    assert batched == alone
    # More requests than the batch holds: the rest wait their turn and decode the same.
    assert run_concurrently(loaded, BatchScheduler(loaded, max_batch=2), lengths) == alone


def test_the_repetition_penalty_works_batched_in_float32(loaded) -> None:
    """The bots' default penalty (1.15) on fp32 logits: the batch scheduler steps outside
    inference mode, where changing the model's logits in place raised for every reply."""
    lengths = [8, 12, 6, 10]
    alone = [
        "".join(
            stream_text(
                loaded, prompt, SamplingParameters(max_new_tokens=n, repetition_penalty=1.15), stop_sequences=()
            )
        )
        for prompt, n in zip(PROMPTS, lengths, strict=True)
    ]
    assert run_concurrently(loaded, BatchScheduler(loaded), lengths, penalty=1.15) == alone
    assert all(alone)


def test_a_sequence_joining_a_running_batch_decodes_the_same(loaded) -> None:
    scheduler = BatchScheduler(loaded)
    long_running = threading.Thread(
        target=lambda: list(
            stream_text(
                loaded, PROMPTS[3], SamplingParameters(max_new_tokens=60), stop_sequences=(), scheduler=scheduler
            )
        )
    )
    long_running.start()
    joined = "".join(
        stream_text(loaded, PROMPTS[1], SamplingParameters(max_new_tokens=12), stop_sequences=(), scheduler=scheduler)
    )
    long_running.join(timeout=120)
    alone = "".join(stream_text(loaded, PROMPTS[1], SamplingParameters(max_new_tokens=12), stop_sequences=()))
    assert joined == alone


def test_a_cancelled_or_stopped_sequence_leaves_the_batch(loaded, monkeypatch) -> None:
    monkeypatch.setattr(streaming, "CANCEL_POLL_SECONDS", 0)
    scheduler = BatchScheduler(loaded)
    stats = GenerationStats()
    calls: list[int] = []

    def cancelled() -> bool:
        calls.append(1)
        return len(calls) > 3

    list(
        stream_text(
            loaded,
            PROMPTS[0],
            SamplingParameters(max_new_tokens=50),
            stop_sequences=(),
            cancelled=cancelled,
            stats=stats,
            scheduler=scheduler,
        )
    )
    assert stats.stopped_by == "cancelled" and stats.completion_tokens == 3
    deadline = time.monotonic() + 10
    while scheduler._active and time.monotonic() < deadline:  # it leaves at the batch's next step
        time.sleep(0.01)
    assert scheduler._active == []
    after = "".join(
        stream_text(loaded, PROMPTS[2], SamplingParameters(max_new_tokens=8), stop_sequences=(), scheduler=scheduler)
    )
    assert after == "".join(stream_text(loaded, PROMPTS[2], SamplingParameters(max_new_tokens=8), stop_sequences=()))
