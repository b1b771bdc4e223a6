"""The engine is not GPT-Neo-only: for tiny random models of GPT-Neo, GPT-2, Llama and
Qwen2 loaded through the production loader, the in-place KV cache gives what
transformers' own cache gives, batched greedy output equals unbatched, the end tokens
come from the model's files, LoRA targets are found in the model, and per-row adapters
compute what peft computes, merged or not."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from transformers import DynamicCache

from tests.tiny_models import FAMILIES
from tests.workers.generation.test_kv_cache import decode_greedy
from workers.generation.adapters import AdapterSet, lora_target_modules
from workers.generation.batching import BatchScheduler
from workers.generation.kv_cache import GROWTH, GrowingCache
from workers.generation.loading import load_model
from workers.generation.model import LoadedModel
from workers.generation.sampling import SamplingParameters
from workers.generation.streaming import stream_text

PROMPTS = [
    "Customer: hi\nAssistant:",
    "Passages:\n[1] Billing > Refunds\nRefunds are paid back to the card you used.\n\nCustomer: How long?\nAssistant:",
    "Customer: How do I reset my password?\nAssistant: Use the reset link.\nCustomer: thanks\nAssistant:",
    "Answer the customer's question. Customer: refunds?\nAssistant:",
]
LENGTHS = [5, 17, 9, 30]  # sequences leave the batch at different steps


@pytest.fixture(scope="module", params=FAMILIES)
def loaded(request: pytest.FixtureRequest, tiny_model_dir: Callable[[str], Path]) -> LoadedModel:
    return load_model(str(tiny_model_dir(request.param)), device="cpu", dtype="float32")


def test_the_in_place_cache_decodes_what_dynamic_cache_does(loaded: LoadedModel) -> None:
    prompt = torch.tensor([loaded.tokenizer(PROMPTS[1])["input_ids"]])
    steps = GROWTH + 10  # the buffer grows once
    expected_tokens, expected_logits = decode_greedy(loaded.model, DynamicCache(), prompt, steps)
    tokens, logits = decode_greedy(loaded.model, GrowingCache(), prompt, steps)
    assert tokens == expected_tokens
    assert torch.allclose(logits, expected_logits, atol=1e-5)


def run_concurrently(loaded: LoadedModel, scheduler: BatchScheduler, adapters: list[str | None]) -> list[str]:
    results = [""] * len(PROMPTS)
    start = threading.Barrier(len(PROMPTS))

    def one(index: int) -> None:
        start.wait()
        params = SamplingParameters(max_new_tokens=LENGTHS[index])
        pieces = stream_text(
            loaded, PROMPTS[index], params, stop_sequences=(), scheduler=scheduler, adapter=adapters[index]
        )
        results[index] = "".join(pieces)

    threads = [threading.Thread(target=one, args=(n,)) for n in range(len(PROMPTS))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def alone(loaded: LoadedModel, adapters: list[str | None]) -> list[str]:
    return [
        "".join(stream_text(loaded, prompt, SamplingParameters(max_new_tokens=n), stop_sequences=(), adapter=name))
        for prompt, n, name in zip(PROMPTS, LENGTHS, adapters, strict=True)
    ]


def test_greedy_output_batched_equals_unbatched(loaded: LoadedModel) -> None:
    base = [None] * len(PROMPTS)
    expected = alone(loaded, base)
    assert len(set(expected)) > 1, "the prompts must decode differently for the comparison to mean anything"
    assert run_concurrently(loaded, BatchScheduler(loaded), base) == expected
    # More requests than the batch holds: the rest wait, join later and decode the same.
    assert run_concurrently(loaded, BatchScheduler(loaded, max_batch=2), base) == expected


def make_peft_adapter(folder: Path, output: Path) -> Path:
    """A LoRA adapter on every target peft finds, with random non-zero weights (a trained
    one's B is non-zero too), saved the way a tuning run saves it."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from workers.generation.adapters import has_transposed_linears

    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    targets = lora_target_modules(model)
    config = LoraConfig(
        r=4,
        lora_alpha=8,
        target_modules=targets,
        fan_in_fan_out=has_transposed_linears(model, targets),
        init_lora_weights=False,
    )
    torch.manual_seed(1)
    get_peft_model(model, config).save_pretrained(output)
    return output


def test_per_row_adapters_compute_what_peft_computes_merged_or_not(loaded: LoadedModel, tmp_path: Path) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    folder = Path(loaded.name)
    adapter = make_peft_adapter(folder, tmp_path / "adapter")
    fresh = load_model(str(folder), device="cpu", dtype="float32")
    assert isinstance(fresh.adapters, AdapterSet)
    ids = torch.tensor([fresh.tokenizer(PROMPTS[1])["input_ids"]] * 2)
    with torch.inference_mode():
        base_logits = fresh.model(input_ids=ids[:1]).logits
        fresh.adapters.ensure("v1", adapter)
        with fresh.adapters.rows(["v1", None]):  # one batch: row 0 tuned, row 1 the base model
            ours = fresh.model(input_ids=ids).logits
        peft = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32), adapter)
        unmerged = peft(input_ids=ids[:1]).logits
        merged = peft.merge_and_unload()(input_ids=ids[:1]).logits
    assert torch.allclose(ours[:1], unmerged, atol=1e-4)
    assert torch.allclose(ours[:1], merged, atol=1e-4)
    assert torch.allclose(ours[1:], base_logits, atol=1e-5)
    assert not torch.allclose(ours[:1], base_logits, atol=1e-3), "the adapter changes the model"

    # Streamed through the scheduler, rows with and without the adapter decode as alone.
    names: list[str | None] = ["v1", None, "v1", None]
    assert run_concurrently(fresh, BatchScheduler(fresh), names) == alone(fresh, names)


def test_lora_targets_are_the_models_own_projections(tiny_model_dir: Callable[[str], Path]) -> None:
    from transformers import AutoModelForCausalLM

    expected = {
        "gpt_neo": ["c_fc", "c_proj", "k_proj", "out_proj", "q_proj", "v_proj"],
        "gpt2": ["c_attn", "c_fc", "c_proj"],
        "llama": ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"],
        "qwen2": ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"],
    }
    for family, targets in expected.items():
        assert lora_target_modules(AutoModelForCausalLM.from_pretrained(tiny_model_dir(family))) == targets


def test_end_tokens_come_from_the_models_own_files(tiny_model_dir: Callable[[str], Path]) -> None:
    llama = load_model(str(tiny_model_dir("llama")), device="cpu", dtype="float32")
    ends = {llama.tokenizer.convert_tokens_to_ids(token) for token in ("<|eot_id|>", "<|end_of_text|>")}
    assert llama.end_token_ids == ends and llama.family == "llama"
    neo = load_model(str(tiny_model_dir("gpt_neo")), device="cpu", dtype="float32")
    assert neo.end_token_ids == {neo.tokenizer.eos_token_id} and not neo.has_chat_template


def test_a_reply_ends_at_any_of_the_models_end_tokens(tiny_model_dir: Callable[[str], Path]) -> None:
    """Regression: only the tokenizer's eos_token_id ended a reply, so a Llama 3 style
    model ending its text with <|end_of_text|> (the second id of its list) ran on."""
    loaded = load_model(str(tiny_model_dir("llama")), device="cpu", dtype="float32")
    params = SamplingParameters(max_new_tokens=12)
    tokens = list(BatchScheduler(loaded).submit(loaded.tokenizer(PROMPTS[0])["input_ids"], params))
    assert len(tokens) >= 2
    second_end = loaded.tokenizer.convert_tokens_to_ids("<|end_of_text|>")
    # The same model whose end list holds the token it decodes second stops before it.
    loaded.end_token_ids = frozenset({second_end, tokens[1]})
    for scheduler in (BatchScheduler(loaded), None):
        pieces = (
            scheduler.submit(loaded.tokenizer(PROMPTS[0])["input_ids"], params)
            if scheduler
            else stream_ids(loaded, PROMPTS[0], params)
        )
        assert list(pieces) == tokens[:1]


def stream_ids(loaded: LoadedModel, prompt: str, params: SamplingParameters) -> list[int]:
    from workers.generation.streaming import _decode_alone

    return list(_decode_alone(loaded, loaded.tokenizer(prompt)["input_ids"], params, lambda: False))
