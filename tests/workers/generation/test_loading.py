"""Loading the generation model and streaming tokens from it (tiny GPT-Neo, CPU)."""

from __future__ import annotations

import pytest

from workers.generation import loading, sampling, streaming
from workers.generation.loading import holder, load_model
from workers.generation.model import ModelUnavailable, resolve_dtype
from workers.generation.sampling import GenerationStats, SamplingParameters
from workers.generation.streaming import stream_text


def test_the_production_loader_loads_a_local_gpt_neo_and_warms_it_up(tiny_neo) -> None:
    loaded = holder.get()
    assert loaded.name == str(tiny_neo)
    assert (loaded.device, loaded.dtype) == ("cpu", "float32")
    assert loaded.context_window == 1024
    assert holder.get() is loaded, "loaded once per process"
    assert holder.status()["state"] == "loaded"


def test_missing_weights_give_one_clear_message_and_are_not_retried(settings, tmp_path, monkeypatch) -> None:
    settings.NEO_MODEL = str(tmp_path / "no-such-model")
    holder.reset()
    with pytest.raises(ModelUnavailable, match="download_model") as first:
        holder.get()
    monkeypatch.setattr(loading, "load_model", lambda *a, **k: pytest.fail("a failed load must not be retried"))
    with pytest.raises(ModelUnavailable) as second:
        holder.get()
    assert str(first.value) == str(second.value)
    status = holder.status()
    assert status["state"] == "unavailable" and "extractively" in status["message"]
    holder.reset()


@pytest.mark.parametrize(
    ("setting", "device", "flags", "expected"),
    [
        ("auto", "cuda", set(), "float16"),
        ("auto", "cpu", {"avx512_bf16"}, "bfloat16"),
        ("auto", "cpu", {"avx2"}, "float32"),
        ("float32", "cuda", set(), "float32"),
    ],
)
def test_the_dtype_follows_the_device_and_cpu(monkeypatch, setting, device, flags, expected) -> None:
    monkeypatch.setattr("workers.generation.model._cpu_flags", lambda: frozenset(flags))
    assert resolve_dtype(setting, device) == expected


def test_greedy_streaming_is_deterministic_and_its_pieces_make_the_whole(tiny_neo_dir) -> None:
    loaded = load_model(str(tiny_neo_dir), device="cpu", dtype="float32")
    params = SamplingParameters(max_new_tokens=24)
    stats = GenerationStats()
    pieces = list(stream_text(loaded, "Customer: How long do refunds take?\nAssistant:", params, stats=stats))
    again = "".join(stream_text(loaded, "Customer: How long do refunds take?\nAssistant:", params))
    assert "".join(pieces) == again
    assert stats.prompt_tokens > 0 and 0 < stats.completion_tokens <= 24
    assert stats.stopped_by in {"length", "eos", "stop_sequence"}


def test_a_stop_sequence_ends_the_answer_and_is_never_sent(tiny_neo_dir) -> None:
    loaded = load_model(str(tiny_neo_dir), device="cpu", dtype="float32")
    full = "".join(
        stream_text(loaded, "Customer: hi\nAssistant:", SamplingParameters(max_new_tokens=40), stop_sequences=())
    )
    assert len(full) > 4
    stop = full[2:4]
    stats = GenerationStats()
    cut = "".join(
        stream_text(
            loaded,
            "Customer: hi\nAssistant:",
            SamplingParameters(max_new_tokens=40),
            stop_sequences=(stop,),
            stats=stats,
        )
    )
    assert stop not in cut and full.startswith(cut)
    assert stats.stopped_by == "stop_sequence"


def test_cancellation_stops_between_tokens(tiny_neo_dir, monkeypatch) -> None:
    monkeypatch.setattr(streaming, "CANCEL_POLL_SECONDS", 0)
    loaded = load_model(str(tiny_neo_dir), device="cpu", dtype="float32")
    calls = []

    def cancelled() -> bool:
        calls.append(1)
        return len(calls) > 3

    stats = GenerationStats()
    list(
        stream_text(
            loaded,
            "Customer: hi\nAssistant:",
            SamplingParameters(max_new_tokens=50),
            stop_sequences=(),
            cancelled=cancelled,
            stats=stats,
        )
    )
    assert stats.stopped_by == "cancelled" and stats.completion_tokens == 3


def test_sampling_with_a_seed_is_reproducible(tiny_neo_dir) -> None:
    loaded = load_model(str(tiny_neo_dir), device="cpu", dtype="float32")
    params = SamplingParameters(max_new_tokens=16, temperature=0.9, top_p=0.9, repetition_penalty=1.2, seed=7)
    first = "".join(stream_text(loaded, "Customer: hi\nAssistant:", params, stop_sequences=()))
    assert first == "".join(stream_text(loaded, "Customer: hi\nAssistant:", params, stop_sequences=()))


def test_generated_text_loses_control_characters_but_keeps_lines_and_tabs() -> None:
    assert sampling.printable("Five\x00 days\x07.\n\tSee [1]\x1b.") == "Five days.\n\tSee [1]."
