"""The faster kernels compute what the stock model computes: GPT-Neo's attention by
SDPA (padding, the causal mask and the local window included), and linear layers at a
few rows on whichever kernel was measured fastest at load."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from workers.generation import kernels
from workers.generation.kernels import (
    DEFAULT_KERNELS,
    LINEAR_KERNELS,
    MKL,
    MKL_TRANSPOSED,
    ONEDNN,
    PROMPT_ROWS,
    calibrate_linear,
    speed_up,
    use_small_batch_linear,
)
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


def test_a_bf16_gpt_neo_keeps_its_keys_and_values_in_fp32_and_answers_as_the_eager_path(tiny_neo_dir: Path) -> None:
    """In bf16 the eager path upcasts keys and values to fp32 at every step; here they
    are cached in fp32 once, and attention runs in fp32 as the eager path's does."""
    stock = load_weights(str(tiny_neo_dir), device="cpu", dtype="bfloat16").model
    fast = load_weights(str(tiny_neo_dir), device="cpu", dtype="bfloat16").model
    assert speed_up(fast, device="cpu", dtype="bfloat16") == ["fused_gelu", "sdpa_attention", "float32_kv_cache"]
    torch.manual_seed(0)
    ids = torch.randint(0, fast.config.vocab_size, (3, 80))
    mask = torch.ones_like(ids)
    mask[2, :30] = 0
    with torch.inference_mode():
        cache = fast(input_ids=ids, attention_mask=mask, cache=GrowingCache(), use_cache=True).cache
    assert all(layer.keys.dtype == layer.values.dtype == torch.float32 for layer in cache.layers)
    expected = prefill_then_decode(stock, ids, mask, steps=30).float()
    fast_logits = prefill_then_decode(fast, ids, mask, steps=30).float()
    # Both in bf16 outside attention: the same to bf16's rounding of the logits.
    assert torch.allclose(fast_logits, expected, atol=0.05, rtol=0.02)
    assert (fast_logits[:, -30:].argmax(-1) == expected[:, -30:].argmax(-1)).float().mean() > 0.95


@pytest.mark.parametrize("family", ["llama", "qwen2", "gpt2"])
def test_bf16_decode_attention_computes_what_transformers_eager_path_does(
    tiny_model_dir: Callable[[str], Path], family: str
) -> None:
    """Grouped-query attention (Llama, Qwen2) and plain (GPT-2), left-padded rows: each
    decode step's logits as transformers' own eager attention gives them in bf16."""
    eager = load_weights(str(tiny_model_dir(family)), device="cpu", dtype="bfloat16").model
    eager.config._attn_implementation = "eager"
    fast = load_weights(str(tiny_model_dir(family)), device="cpu", dtype="bfloat16").model
    # Calibration off: eager for a batch's step whatever this CPU times faster.
    applied = speed_up(fast, device="cpu", dtype="bfloat16", calibration_seconds=0)
    assert applied[-1:] == ["bf16_decode_attention"]  # GPT-2's gelu_new is fused too
    torch.manual_seed(0)
    ids = torch.randint(3, 50, (3, 40))
    mask = torch.ones_like(ids)
    mask[1, :25] = 0
    expected = prefill_then_decode(eager, ids, mask, steps=20)[:, -20:].float()
    got = prefill_then_decode(fast, ids, mask, steps=20)[:, -20:].float()
    assert torch.allclose(got, expected, atol=0.03, rtol=0.02)


def stepping_clock(eager_seconds: float, sdpa_seconds: float) -> Callable[[], float]:
    """A clock under which each timed eager pass takes `eager_seconds` and each SDPA pass
    `sdpa_seconds` (`eager_decode_is_faster` reads it before and after each, eager first)."""
    steps = itertools.cycle([0.0, eager_seconds, 0.0, sdpa_seconds])
    return functools.partial(next, itertools.accumulate(steps))


@pytest.mark.parametrize(("eager_seconds", "chosen"), [(0.5, True), (2.0, False), (1.0, False)])
def test_bf16_decode_attention_is_used_only_where_it_timed_faster_than_sdpa(
    tiny_model_dir: Callable[[str], Path], eager_seconds: float, chosen: bool
) -> None:
    """Where SDPA's kernel is as fast (an Intel CPU with AMX), the model keeps SDPA for
    its decode steps too; a tie keeps the stock path."""
    model = load_weights(str(tiny_model_dir("llama")), device="cpu", dtype="bfloat16").model
    clock = stepping_clock(eager_seconds, 1.0)
    assert kernels.use_bf16_decode_attention(model, clock=clock) is chosen
    assert model.config._attn_implementation == (kernels.DECODE_ATTENTION if chosen else "sdpa")


def test_the_decode_attention_timing_runs_both_kernels_on_the_models_shape(
    tiny_model_dir: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Grouped-query shapes as the model has them, every timed pass over the same
    number of layers' caches for both kernels."""
    from transformers.integrations import sdpa_attention

    config = load_weights(str(tiny_model_dir("qwen2")), device="cpu", dtype="bfloat16").model.config
    calls: dict[str, list[tuple[int, ...]]] = {"eager": [], "sdpa": []}

    def recorded(name: str, attend: Callable[..., Any]) -> Callable[..., Any]:
        def run(module: Any, query: torch.Tensor, key: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
            calls[name].append((*query.shape, *key.shape))
            return attend(module, query, key, *args, **kwargs)

        return run

    monkeypatch.setattr(kernels, "_bf16_decode_attention", recorded("eager", kernels._bf16_decode_attention))
    monkeypatch.setattr(
        sdpa_attention, "sdpa_attention_forward", recorded("sdpa", sdpa_attention.sdpa_attention_forward)
    )
    kernels.eager_decode_is_faster(config, repeats=2)
    heads, key_heads = config.num_attention_heads, config.num_key_value_heads
    width = config.hidden_size // heads
    rows, tokens = kernels.TIMED_DECODE_ROWS, kernels.TIMED_DECODE_TOKENS
    assert heads > key_heads
    assert (
        calls["eager"]
        == calls["sdpa"]
        == [(rows, heads, 1, width, rows, key_heads, tokens, width)] * (3 * config.num_hidden_layers)
    )


@pytest.mark.parametrize("groups", [1, 3])
@pytest.mark.parametrize("boolean_mask", [True, False])
def test_one_row_bf16_attention_equals_transformers_eager_attention(groups: int, boolean_mask: bool) -> None:
    from transformers.models.llama.modeling_llama import eager_attention_forward

    from workers.generation.kernels import _bf16_decode_attention

    module: Any = torch.nn.Module()
    module.num_key_value_groups = groups
    module.eval()
    torch.manual_seed(groups)
    rows, key_heads, keys, width = 4, 2, 50, 64  # a batch's step: 4 sequences, one new row each
    query = (3 * torch.randn(rows, key_heads * groups, 1, width)).bfloat16()
    key, value = (
        (3 * torch.randn(rows, key_heads, keys, width)).bfloat16(),
        torch.randn(rows, key_heads, keys, width).bfloat16(),
    )
    allowed = torch.ones(rows, 1, 1, keys, dtype=torch.bool)
    allowed[1, ..., :20] = False  # a left-padded row
    additive = torch.zeros(allowed.shape, dtype=torch.bfloat16).masked_fill(~allowed, torch.finfo(torch.bfloat16).min)
    scale = width**-0.5
    got, _ = _bf16_decode_attention(module, query, key, value, allowed if boolean_mask else additive, scaling=scale)
    expected, _ = eager_attention_forward(module, query, key, value, additive, scaling=scale)
    assert got.shape == expected.shape == (rows, 1, key_heads * groups, width)
    assert torch.allclose(got.float(), expected.float(), atol=1e-2)
    assert not torch.allclose(got.float(), torch.zeros_like(got.float()), atol=0.1)


@pytest.mark.parametrize("kernel", LINEAR_KERNELS)
@pytest.mark.parametrize("rows", [1, 3, 4, 8, 32, 40])
def test_a_small_batch_linear_layer_computes_what_nn_linear_does_on_each_kernel(rows: int, kernel: str) -> None:
    torch.manual_seed(rows)
    layer = torch.nn.Sequential(torch.nn.Linear(48, 96), torch.nn.Linear(96, 48, bias=False))
    inputs = torch.randn(rows, 1, 48)
    with torch.inference_mode():
        expected = layer(inputs)
    assert use_small_batch_linear(layer) == 2
    assert all(isinstance(module, torch.nn.Linear) for module in layer)  # adapters still find them
    layers: list[Any] = list(layer)
    assert all(module.kernel_by_rows == DEFAULT_KERNELS for module in layers)
    for module in layers:
        module.kernel_by_rows = (kernel,) * 32
        module.prompt_kernel = kernel  # more than 32 rows: a prompt's
    with torch.inference_mode():
        assert torch.allclose(layer(inputs), expected, atol=1e-5)


def test_calibration_gives_each_shape_the_kernel_measured_fastest_per_row_count(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A fake clock that each product advances by a set cost: MKL is cheapest at one row
    and at a prompt's rows, the transposed product at 2 and 4, oneDNN from 8 to 16
    rows; the wide layer's costs differ. Counts between those timed take the choice of
    the power of two below."""
    now = [0.0]

    def cost(kernel: str, rows: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        count = rows.shape[0]
        if weight.shape[0] == 96:  # the wide layer: oneDNN always
            now[0] += 1.0 if kernel == ONEDNN else 2.0
        else:
            fastest = MKL if count in (1, PROMPT_ROWS) else MKL_TRANSPOSED if count < 8 else ONEDNN
            now[0] += 1.0 if kernel == fastest else 3.0
        return rows

    monkeypatch.setattr(kernels, "linear_by", cost)
    model = torch.nn.Sequential(torch.nn.Linear(48, 48), torch.nn.Linear(48, 96), torch.nn.Linear(96, 48))
    use_small_batch_linear(model)
    chosen = calibrate_linear(model, clock=lambda: now[0], budget_seconds=1e9)
    assert set(chosen) == {(48, 48), (96, 48), (48, 96)}
    narrow, prompt = chosen[(48, 48)]
    assert len(narrow) == 32
    assert narrow[0] == MKL
    assert narrow[1:7] == (MKL_TRANSPOSED,) * 6  # 2 to 7 rows
    assert narrow[7:] == (ONEDNN,) * 25  # 8 to 32 rows
    assert prompt == MKL
    assert chosen[(96, 48)] == ((ONEDNN,) * 32, ONEDNN)
    assert (model[0].kernel_by_rows, model[0].prompt_kernel) == (narrow, MKL)
    assert (model[1].kernel_by_rows, model[1].prompt_kernel) == ((ONEDNN,) * 32, ONEDNN)


def test_the_output_layer_is_not_timed_at_a_prompts_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    """A prompt's logits are its last row's only: the output layer keeps MKL for prompts."""
    now, timed = [0.0], []

    def cost(kernel: str, rows: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        timed.append((weight.shape[0], rows.shape[0]))
        now[0] += 1.0 if kernel == ONEDNN else 2.0
        return rows

    class Model(torch.nn.Sequential):
        def get_output_embeddings(self) -> torch.nn.Module:
            return self[1]

    monkeypatch.setattr(kernels, "linear_by", cost)
    model = Model(torch.nn.Linear(48, 48), torch.nn.Linear(48, 96))
    use_small_batch_linear(model)
    chosen = calibrate_linear(model, clock=lambda: now[0], budget_seconds=1e9)
    assert chosen[(96, 48)] == ((ONEDNN,) * 32, MKL)
    assert chosen[(48, 48)] == ((ONEDNN,) * 32, ONEDNN)
    assert (96, PROMPT_ROWS) not in timed and (48, PROMPT_ROWS) in timed


def test_calibration_stops_at_its_budget_and_leaves_the_rest_on_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [0.0]

    def cost(kernel: str, rows: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        now[0] += 1.0 if kernel == MKL_TRANSPOSED else 2.0
        return rows

    monkeypatch.setattr(kernels, "linear_by", cost)
    model = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.Linear(64, 16))
    use_small_batch_linear(model)
    chosen = calibrate_linear(model, clock=lambda: now[0], budget_seconds=5)
    assert list(chosen) == [(64, 64)]  # the larger shape first; the budget is spent after it
    # The weight-first product is no candidate at a prompt's rows; MKL and oneDNN tie here.
    assert (model[0].kernel_by_rows, model[0].prompt_kernel) == ((MKL_TRANSPOSED,) * 32, MKL)
    assert (model[1].kernel_by_rows, model[1].prompt_kernel) == (DEFAULT_KERNELS, MKL)


def test_a_calibrated_model_answers_as_before(tiny_model_dir: Callable[[str], Path]) -> None:
    model = load_weights(str(tiny_model_dir("gpt_neo")), device="cpu", dtype="float32").model
    ids = torch.randint(0, 50, (8, 6))
    mask = torch.ones_like(ids)
    expected = prefill_then_decode(model, ids, mask, steps=3)
    assert speed_up(model, device="cpu", dtype="float32")[-2:] == ["small_batch_linear", "calibrated"]
    layers: list[Any] = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert layers and all(len(m.kernel_by_rows) == 32 and set(m.kernel_by_rows) <= set(LINEAR_KERNELS) for m in layers)
    assert torch.allclose(prefill_then_decode(model, ids, mask, steps=3), expected, atol=1e-4)


@pytest.mark.parametrize("family", ["gpt_neo", "gpt2"])
def test_gelu_new_runs_on_the_fused_kernel_and_the_model_answers_as_before(
    tiny_model_dir: Callable[[str], Path], family: str
) -> None:
    from transformers.activations import GELUTanh, NewGELUActivation

    model = load_weights(str(tiny_model_dir(family)), device="cpu", dtype="float32").model
    assert model.config.activation_function == "gelu_new"
    torch.manual_seed(0)
    ids = torch.randint(3, 50, (2, 12))
    mask = torch.ones_like(ids)
    mask[1, :4] = 0
    expected = prefill_then_decode(model, ids, mask, steps=3)
    assert "fused_gelu" in speed_up(model, device="cpu", dtype="float32", calibration_seconds=0)
    activations = [type(m) for m in model.modules() if isinstance(m, (GELUTanh, NewGELUActivation))]
    assert activations == [GELUTanh] * model.config.num_hidden_layers
    assert torch.allclose(prefill_then_decode(model, ids, mask, steps=3), expected, atol=1e-5)


def test_a_small_batch_linear_layer_still_learns() -> None:
    torch.manual_seed(0)
    layer = torch.nn.Linear(8, 4)
    use_small_batch_linear(layer)
    layer(torch.randn(8, 8)).sum().backward()  # 8 rows, but gradients are wanted: the stock path
    assert layer.weight.grad is not None


@pytest.mark.parametrize(
    ("family", "device", "dtype", "expected"),
    [
        ("gpt_neo", "cpu", "float32", ["fused_gelu", "sdpa_attention", "small_batch_linear", "calibrated"]),
        ("llama", "cpu", "float32", ["small_batch_linear", "calibrated"]),  # transformers runs its attention by SDPA
        ("gpt_neo", "cpu", "bfloat16", ["fused_gelu", "sdpa_attention", "float32_kv_cache"]),  # bf16: oneDNN already
        ("llama", "cpu", "bfloat16", ["bf16_decode_attention"]),  # SDPA's CPU kernel is slow at one row in bf16
        ("gpt_neo", "cuda", "float16", []),  # not measured on a GPU: left as transformers runs it
    ],
)
def test_what_is_applied_depends_on_the_family_the_device_and_the_dtype(
    tiny_model_dir: Callable[[str], Path],
    monkeypatch: pytest.MonkeyPatch,
    family: str,
    device: str,
    dtype: str,
    expected: list[str],
) -> None:
    # Loaded on the CPU in every case: only the choice is asked of `speed_up` here, on a
    # CPU where eager bf16 decode attention timed faster (as on the Zen 4).
    monkeypatch.setattr(kernels, "eager_decode_is_faster", lambda config, **_: True)
    model = load_weights(str(tiny_model_dir(family)), device="cpu", dtype="float32").model
    assert speed_up(model, device=device, dtype=dtype) == expected
