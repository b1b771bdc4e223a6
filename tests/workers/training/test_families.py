"""Tuning is not GPT-Neo-only: a short LoRA run on tiny GPT-2, Llama and Qwen2 models
targets each family's own projections, trains the instruction models on their chat
format, lowers validation perplexity, and the adapter serves through our per-row LoRA
layers with the numbers peft gives."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from tests.workers.training.test_training import support_examples
from workers.generation.loading import load_model
from workers.training.finetune import TrainingConfig, encode, load_base, load_tuned, perplexity, train_adapter

TARGETS = {
    "gpt2": {"c_attn", "c_fc", "c_proj"},
    "llama": {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"},
    "qwen2": {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"},
}


@pytest.mark.parametrize("family", sorted(TARGETS))
def test_a_short_tuning_run_works_for_each_family(
    family: str, tiny_model_dir: Callable[[str], Path], tmp_path: Path
) -> None:
    folder = str(tiny_model_dir(family))
    examples = support_examples()
    result = train_adapter(
        base=folder,
        examples=examples,
        config=TrainingConfig(epochs=3, learning_rate=2e-2, batch_size=8),
        output=tmp_path,
    )
    assert result.steps == 21 and result.tokens > 0
    adapter = tmp_path / "adapter"
    assert set(json.loads((adapter / "adapter_config.json").read_text())["target_modules"]) == TARGETS[family]

    validation = [e for e in examples if e.split == "validation"]
    tokenizer, base = load_base(folder, "cpu")
    before = perplexity(base, tokenizer, validation)
    tuned = load_tuned(load_base(folder, "cpu")[1], adapter)
    assert perplexity(tuned, tokenizer, validation) < 0.8 * before

    # Served: our LoRA layers on the production-loaded model give peft's logits.
    loaded = load_model(folder, device="cpu", dtype="float32")
    loaded.adapters.ensure("v1", adapter)
    ids = torch.tensor([encode(tokenizer, validation[0], 512)[0]])
    with torch.inference_mode():
        with loaded.adapters.rows(["v1"]):
            ours = loaded.model(input_ids=ids).logits
        expected = tuned(input_ids=ids).logits
    assert torch.allclose(ours, expected, atol=1e-4)


def test_an_instruction_model_is_tuned_on_its_chat_format(tiny_model_dir: Callable[[str], Path]) -> None:
    tokenizer, _ = load_base(str(tiny_model_dir("llama")), "cpu")
    example = support_examples()[1]
    ids, labels = encode(tokenizer, example, 512)
    text = tokenizer.decode(ids)
    assert text.startswith("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nPassages:")
    assert "<|start_header_id|>assistant<|end_header_id|>\n\n" in text and "Customer:" not in text
    # The loss counts the answer and the turn's end token, nothing of the prompt.
    answer = [token for token in labels if token != -100]
    assert answer[-1] == tokenizer.convert_tokens_to_ids("<|eot_id|>")
    assert tokenizer.decode(answer[:-1]) == example.answer
    # A base model without a template keeps the completion prompt.
    neo_tokenizer, _ = load_base(str(tiny_model_dir("gpt_neo")), "cpu")
    assert neo_tokenizer.decode(encode(neo_tokenizer, example, 512)[0]).startswith(example.prompt)
