"""The faster kernels compute what the stock model computes: GPT-Neo's attention by
SDPA (padding, the causal mask and the local window included), and linear layers on
oneDNN at a few rows."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from workers.generation.kernels import ONEDNN_ROWS, speed_up, use_small_batch_linear
from workers.generation.kv_cache import GrowingCache
from workers.generation.model import load_weights


def prefill_then_decode(model: torch.nn.Module, ids: torch.Tensor, mask: torch.Tensor, steps: int) -> torch.Tensor:
    """Every position's logits of a left-padded prompt, then the last logits of `steps`
    decode steps feeding fixed tokens, as the batch scheduler does."""
    rows = ids.shape[0]
    logits = []
    with torch.inference_mode():
        output = model(input_ids=ids, attention_mask=mask, cache=GrowingCache(), use_cache=True)
        logits.append(output.logits * mask[..., None])  # padded positions compute nothing anyone reads
        positions = mask.sum(dim=1, keepdim=True)
        for step in range(steps):
            mask = torch.cat([mask, torch.ones((rows, 1), dtype=mask.dtype)], dim=1)
            tokens = torch.full((rows, 1), 5 + step)
            output = model(
                input_ids=tokens, attention_mask=mask, position_ids=positions + step, cache=output.cache, use_cache=True
            )
            logits.append(output.logits)
    return torch.cat(logits, dim=1)


def test_gpt_neo_attention_by_sdpa_equals_the_eager_path_across_the_local_window(tiny_neo_dir: Path) -> None:
    stock = load_weights(str(tiny_neo_dir), device="cpu", dtype="float32").model
    fast = load_weights(str(tiny_neo_dir), device="cpu", dtype="float32").model
    assert "sdpa_attention" in speed_up(fast, device="cpu", dtype="float32")
    assert fast.config.window_size == 64  # the prompt and the steps below run past it
    torch.manual_seed(0)
    ids = torch.randint(0, fast.config.vocab_size, (4, 90))
    mask = torch.ones_like(ids)
    mask[1, :10] = 0
    mask[2, :70] = 0  # a short row, left-padded as in the batch
    expected = prefill_then_decode(stock, ids, mask, steps=40)
    assert torch.allclose(prefill_then_decode(fast, ids, mask, steps=40), expected, atol=1e-5)


@pytest.mark.parametrize("rows", [1, 3, 4, 8, 32, 40])
def test_a_small_batch_linear_layer_computes_what_nn_linear_does(rows: int) -> None:
    torch.manual_seed(rows)
    layer = torch.nn.Sequential(torch.nn.Linear(48, 96), torch.nn.Linear(96, 48, bias=False))
    inputs = torch.randn(rows, 1, 48)
    with torch.inference_mode():
        expected = layer(inputs)
    assert use_small_batch_linear(layer) == 2
    assert all(isinstance(module, torch.nn.Linear) for module in layer)  # adapters still find them
    with torch.inference_mode():
        assert torch.allclose(layer(inputs), expected, atol=1e-5)
    assert (rows in ONEDNN_ROWS) == (4 <= rows <= 32)


def test_a_small_batch_linear_layer_still_learns() -> None:
    torch.manual_seed(0)
    layer = torch.nn.Linear(8, 4)
    use_small_batch_linear(layer)
    layer(torch.randn(8, 8)).sum().backward()  # 8 rows, but gradients are wanted: the stock path
    assert layer.weight.grad is not None


@pytest.mark.parametrize(
    ("family", "device", "dtype", "expected"),
    [
        ("gpt_neo", "cpu", "float32", ["sdpa_attention", "onednn_small_batch_linear"]),
        ("llama", "cpu", "float32", ["onednn_small_batch_linear"]),  # transformers runs its attention by SDPA
        ("gpt_neo", "cpu", "bfloat16", ["sdpa_attention"]),  # bf16 products run on oneDNN already
        ("gpt_neo", "cuda", "float16", []),  # not measured on a GPU: left as transformers runs it
    ],
)
def test_what_is_applied_depends_on_the_family_the_device_and_the_dtype(
    tiny_model_dir: Callable[[str], Path], family: str, device: str, dtype: str, expected: list[str]
) -> None:
    # Loaded on the CPU in every case: only the choice is asked of `speed_up` here.
    model = load_weights(str(tiny_model_dir(family)), device="cpu", dtype="float32").model
    assert speed_up(model, device=device, dtype=dtype) == expected
