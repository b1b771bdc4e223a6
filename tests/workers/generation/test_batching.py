"""Continuous batching: sequences joining and leaving one batch decode exactly what
they would alone (greedy), each receiving its own tokens."""

from __future__ import annotations

import threading
import time

import pytest

from workers.generation import streaming
from workers.generation.batching import BatchScheduler
from workers.generation.loading import load_model
from workers.generation.sampling import GenerationStats, SamplingParameters, next_tokens
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


def test_a_batch_mixing_greedy_penalised_and_sampled_rows_gives_each_its_own_choice(loaded) -> None:
    """Plain greedy rows are chosen together by one argmax over the batch; the rows beside
    them with a repetition penalty or a seeded temperature still decode as they do alone."""
    settings = [
        SamplingParameters(max_new_tokens=14),
        SamplingParameters(max_new_tokens=10, repetition_penalty=1.15),
        SamplingParameters(max_new_tokens=12, temperature=0.9, top_p=0.9, seed=7),
        SamplingParameters(max_new_tokens=8),
    ]
    alone = [
        "".join(stream_text(loaded, prompt, params, stop_sequences=()))
        for prompt, params in zip(PROMPTS, settings, strict=True)
    ]
    results = [""] * len(PROMPTS)
    scheduler = BatchScheduler(loaded)
    start = threading.Barrier(len(PROMPTS))

    def one(index: int) -> None:
        start.wait()
        results[index] = "".join(
            stream_text(loaded, PROMPTS[index], settings[index], stop_sequences=(), scheduler=scheduler)
        )

    threads = [threading.Thread(target=one, args=(n,)) for n in range(len(PROMPTS))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert results == alone
    assert all(alone)


def test_next_tokens_picks_each_rows_argmax_for_plain_greedy_rows() -> None:
    import torch

    logits = torch.tensor([[0.1, 3.0, 0.2], [5.0, 0.0, 1.0], [0.0, 0.5, 0.4]])
    greedy = SamplingParameters()
    penalised = SamplingParameters(repetition_penalty=10.0)
    # Row 2 with token 1 already said: the penalty divides its logit, so 2 wins there.
    chosen = next_tokens(logits, [[], [], [1]], [greedy, greedy, penalised], [None, None, None])
    assert chosen == [1, 0, 2]


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


def test_closing_the_scheduler_lets_the_running_reply_finish_then_stops_its_thread(loaded) -> None:
    """Regression: the daemon scheduler thread left inside torch at interpreter exit
    aborted the process (exit status 134) after bench/generation.py had printed."""
    scheduler = BatchScheduler(loaded)
    alone = list(loaded.scheduler.submit([5, 6, 7], SamplingParameters(max_new_tokens=20)))
    tokens = scheduler.submit([5, 6, 7], SamplingParameters(max_new_tokens=20))
    received = [next(tokens)]
    scheduler.close()
    received += list(tokens)
    assert received == alone
    assert not scheduler._thread.is_alive()
    with pytest.raises(RuntimeError, match="closed"):
        next(scheduler.submit([5, 6, 7], SamplingParameters(max_new_tokens=2)))
