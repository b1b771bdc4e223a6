"""The in-place KV cache gives the model exactly what transformers' DynamicCache does."""

from __future__ import annotations

import pytest
import torch
from transformers import DynamicCache

from workers.generation.kv_cache import GROWTH, GrowingCache
from workers.generation.loading import load_model


@pytest.fixture(scope="module")
def loaded(tiny_neo_dir):
    return load_model(str(tiny_neo_dir), device="cpu", dtype="float32")


def decode_greedy(model, cache, prompt: torch.Tensor, steps: int) -> tuple[list[int], torch.Tensor]:
    tokens: list[int] = []
    with torch.inference_mode():
        output = model(input_ids=prompt, cache=cache, use_cache=True)
        for _ in range(steps):
            token = int(output.logits[0, -1].argmax())
            tokens.append(token)
            output = model(input_ids=torch.tensor([[token]]), cache=output.cache, use_cache=True)
    return tokens, output.logits[0, -1]


def test_decoding_past_the_spare_room_matches_dynamic_cache(loaded):
    prompt = torch.tensor([loaded.tokenizer("Customer: how do refunds work?\nAssistant:")["input_ids"]])
    steps = GROWTH + 40  # forces the buffer to grow once
    expected_tokens, expected_logits = decode_greedy(loaded.model, DynamicCache(), prompt, steps)
    tokens, logits = decode_greedy(loaded.model, GrowingCache(), prompt, steps)
    assert tokens == expected_tokens
    assert torch.allclose(logits, expected_logits, atol=1e-5)


def test_rows_selected_and_cropped_keep_their_values():
    keys = torch.arange(2 * 3 * 5 * 4, dtype=torch.float32).reshape(2, 3, 5, 4)
    cache = GrowingCache([(keys, keys + 1)])
    layer = cache.layers[0]
    assert cache.get_seq_length() == 5

    layer.update(torch.ones(2, 3, 1, 4), torch.ones(2, 3, 1, 4))
    assert layer.keys.shape == (2, 3, 6, 4)
    assert torch.equal(layer.keys[:, :, :5], keys)

    layer.batch_select_indices(torch.tensor([1]))
    assert torch.equal(layer.keys[0, :, :5], keys[1])
    assert torch.equal(layer.values[0, :, :5], keys[1] + 1)

    layer.crop(-2)
    assert layer.get_seq_length() == 4
    layer.update(torch.zeros(1, 3, 1, 4), torch.zeros(1, 3, 1, 4))
    assert torch.equal(layer.keys[0, :, :4], keys[1, :, :4])
    assert torch.equal(layer.keys[0, :, 4], torch.zeros(3, 4))
