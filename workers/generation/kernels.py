"""Faster forward passes for the loaded model, the same answers: which kernels run its
attention and its linear layers. Applied once, when the model is loaded.

- **GPT-Neo's attention through `scaled_dot_product_attention`.** transformers runs
  GPT-Neo's attention eagerly (matmul, mask, softmax, matmul as separate ops over
  the whole cache); PyTorch's fused kernel does it in one pass. A local layer (window
  256) also only reads the keys inside its window: the eager path read the whole cache
  and masked the rest away. At 8 rows of 400 tokens, attention was a fifth of a CPU
  decode step. On CPU only (GPUs were not measured).
- **bf16 decode steps off PyTorch's CPU flash-attention kernel**, several times slower
  in bf16 at one query row. A bf16 GPT-Neo caches its keys and values in fp32 (its
  unscaled scores need fp32; the eager path upcast the whole cache at every step) and
  attends in fp32. Families transformers dispatches by name (Llama, Qwen2, Mistral,
  GPT-2) take transformers' eager computation for a batch's step (`neo_cpu_decode`),
  SDPA for prompts and single sequences, where that was timed faster at load: on an
  Intel CPU with AMX, PyTorch's flash kernel won (a Llama's batch-8 step 43 against
  62 ms), so there the model keeps SDPA throughout (with calibration off, eager).
- **The fastest of three fp32 products at a few rows on CPU, measured at load.** A
  batch's decode step multiplies 2 to 16 rows by each weight. Which kernel does that
  fastest differs between CPUs: on an Intel avx512 machine MKL's `x @ Wᵀ` cost two to
  three times its one-row cost and oneDNN's 1.3 to 1.8 times; on an AVX2-only EPYC,
  MKL's `(W @ xᵀ)ᵀ` beat both at 2 to 8 rows (the output layer at 8 rows: 17 ms
  against oneDNN's 22 and MKL's 67). So at load each weight shape is timed at 1, 2, 4,
  8 and 16 rows on each kernel, over enough layers of that shape that the weights
  stream from memory as in a real step, and each layer keeps the fastest per row
  count (within `NEO_KERNEL_CALIBRATION_SECONDS`, default 20; shapes left over, or
  with calibration off at 0, take oneDNN at 4 to 32 rows and MKL otherwise). Prompts
  (more than 32 rows) take whichever of MKL and oneDNN multiplied 256 rows soonest
  (oneDNN on the AVX2-only EPYC: a 701-token prompt 9% sooner); anything wanting
  gradients stays on `nn.Linear`'s own path; bf16 already runs on oneDNN.
- **PyTorch's fused tanh GELU for `gelu_new`** (GPT-Neo, GPT-2, Phi, GPT-J): the same
  formula as transformers' `NewGELUActivation` in one pass instead of six elementwise
  ops over the MLP's widest activations (equal to within float rounding; transformers
  names it `GELUTanh`). A 540-token prompt's 12 activations: 262 against 96 ms on the
  AVX2-only EPYC. On CPU (GPUs were not measured).

This module depends on no other module of the package.
"""

from __future__ import annotations

import logging
import time
import types
from collections.abc import Callable
from functools import cache
from typing import Any

logger = logging.getLogger(__name__)

# Model families whose attention transformers runs eagerly and this module replaces.
SDPA_FAMILIES = frozenset({"gpt_neo"})
# The fp32 products a small-batch linear layer chooses from (see the module's notes).
MKL, ONEDNN, MKL_TRANSPOSED = "mkl", "onednn", "mkl_transposed"
LINEAR_KERNELS = (MKL, ONEDNN, MKL_TRANSPOSED)
# Row counts timed at load; a count in between takes the choice of the power of two below it.
CALIBRATED_ROWS = (1, 2, 4, 8, 16)
MAX_SMALL_BATCH_ROWS = 32
# A prompt's products (more than MAX_SMALL_BATCH_ROWS rows) take the kernel timed fastest at
# this many; the arithmetic then dominates, so two layers of a shape are enough to time.
PROMPT_ROWS = 256
PROMPT_TIMED_LAYERS = 2
# The weight-first product only pays while the weight's reading dominates: not at a prompt's rows.
PROMPT_KERNELS = (MKL, ONEDNN)
# Before calibration, or without it: oneDNN at 4 to 32 rows, MKL otherwise (the Intel machine's
# measurements: 1.6x at 4 rows, 1.9x at 8, 1.3x at 16; bench/README.md, "Kernels chosen at load").
DEFAULT_KERNELS = tuple(ONEDNN if rows >= 4 else MKL for rows in range(1, MAX_SMALL_BATCH_ROWS + 1))
# Weights timed per shape and row count: enough layers that they no longer fit in the CPU's
# caches, as in a real step, where every layer's weight comes from memory once.
STREAMED_BYTES = 64 * 1024 * 1024
DEFAULT_CALIBRATION_SECONDS = 20.0


def speed_up(
    model: Any, *, device: str, dtype: str, calibration_seconds: float = DEFAULT_CALIBRATION_SECONDS
) -> list[str]:
    """Apply what fits this model, device and dtype; the names of what was applied."""
    import torch

    applied = []
    family = str(getattr(model.config, "model_type", ""))
    if device == "cpu" and use_fused_gelu(model):
        applied.append("fused_gelu")
    if device == "cpu" and family in SDPA_FAMILIES and use_sdpa_attention(model):
        applied.append("sdpa_attention")
        if dtype == "bfloat16" and keep_float32_keys_and_values(model):
            applied.append("float32_kv_cache")
    if device == "cpu" and dtype == "bfloat16" and use_bf16_decode_attention(model, calibrate=calibration_seconds > 0):
        applied.append("bf16_decode_attention")
    on_fp32_cpu = device == "cpu" and dtype == "float32" and torch.backends.mkldnn.is_available()  # type: ignore[no-untyped-call]
    if on_fp32_cpu and use_small_batch_linear(model):
        applied.append("small_batch_linear")
        if calibration_seconds > 0:
            started = time.perf_counter()
            chosen = calibrate_linear(model, budget_seconds=calibration_seconds)
            applied.append("calibrated")
            logger.info(
                "linear kernels at %s rows and prompts, timed in %.1f s: %s",
                "/".join(map(str, CALIBRATED_ROWS)),
                time.perf_counter() - started,
                "; ".join(
                    f"{inputs}x{outputs} " + "/".join(table[rows - 1] for rows in CALIBRATED_ROWS) + f", {prompt}"
                    for (outputs, inputs), (table, prompt) in chosen.items()
                ),
            )
    return applied


def use_fused_gelu(model: Any) -> int:
    """Replace every `NewGELUActivation` module with transformers' `GELUTanh` (PyTorch's
    fused kernel, the same formula); the number replaced."""
    from transformers.activations import GELUTanh, NewGELUActivation

    found = [
        (parent, name)
        for parent in model.modules()
        for name, child in parent.named_children()
        if type(child) is NewGELUActivation
    ]
    for parent, name in found:
        setattr(parent, name, GELUTanh())
    return len(found)


def use_sdpa_attention(model: Any) -> int:
    """Run every GPT-Neo self-attention module through SDPA; the number of modules changed."""
    from transformers.models.gpt_neo.modeling_gpt_neo import GPTNeoSelfAttention

    changed = 0
    for module in model.modules():
        if type(module) is GPTNeoSelfAttention:  # not the flash-attention subclass
            module._attn = types.MethodType(_gpt_neo_sdpa, module)  # type: ignore[method-assign]
            changed += 1
    return changed


# The name models running `_bf16_decode_attention` carry as their attention implementation.
DECODE_ATTENTION = "neo_cpu_decode"


def use_bf16_decode_attention(
    model: Any, *, calibrate: bool = True, clock: Callable[[], float] = time.perf_counter
) -> bool:
    """Run a transformers-dispatched model's (Llama, Qwen2, Mistral, GPT-2...) attention
    through `_bf16_decode_attention`: transformers' eager computation for a batch's
    decode step, its SDPA otherwise. False for a model that does not dispatch its
    attention by name (GPT-Neo) or runs another implementation than SDPA, and, when
    `calibrate`, where SDPA's own kernel timed as fast (`eager_decode_is_faster`)."""
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    config = model.config
    if getattr(config, "_attn_implementation", None) != "sdpa" or config.model_type in SDPA_FAMILIES:
        return False
    if calibrate and not eager_decode_is_faster(config, clock=clock):
        return False
    ALL_ATTENTION_FUNCTIONS.register(DECODE_ATTENTION, _bf16_decode_attention)
    ALL_MASK_ATTENTION_FUNCTIONS.register(DECODE_ATTENTION, sdpa_mask)
    config._attn_implementation = DECODE_ATTENTION
    return True


# The decode step timed to choose bf16 attention: a batch's rows, each with this many cached tokens.
TIMED_DECODE_ROWS, TIMED_DECODE_TOKENS = 8, 512


def eager_decode_is_faster(config: Any, *, repeats: int = 3, clock: Callable[[], float] = time.perf_counter) -> bool:
    """Whether `_bf16_decode_attention` ran a batch's bf16 decode step of this model's
    attention shape (random keys and values, one row left-padded) sooner than
    transformers' SDPA, best of `repeats` each, over as many layers' caches as stream
    from memory in a real step. Which wins depends on the CPU: eager by 3 to 5x on a Zen 4
    EPYC, SDPA's flash kernel by 1.4x on an Intel Xeon with AMX."""
    import torch
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    heads = int(config.num_attention_heads)
    key_heads = int(getattr(config, "num_key_value_heads", None) or heads)
    width = int(getattr(config, "head_dim", None) or config.hidden_size // heads)
    module = types.SimpleNamespace(num_key_value_groups=heads // key_heads, training=False, is_causal=True)
    rows, tokens = TIMED_DECODE_ROWS, TIMED_DECODE_TOKENS
    cache_bytes = 2 * rows * key_heads * tokens * width * 2  # keys and values, bf16
    layers = max(1, min(int(config.num_hidden_layers), STREAMED_BYTES // cache_bytes))
    query = torch.randn(rows, heads, 1, width, dtype=torch.bfloat16)
    shape = (rows, key_heads, tokens, width)
    caches = [
        (torch.randn(shape, dtype=torch.bfloat16), torch.randn(shape, dtype=torch.bfloat16)) for _ in range(layers)
    ]
    mask = torch.ones(rows, 1, 1, tokens, dtype=torch.bool)
    mask[0, ..., : tokens // 4] = False

    def over_every_layer(attend: Callable[..., Any]) -> Callable[[], None]:
        def run() -> None:
            for key, value in caches:
                attend(module, query, key, value, mask, scaling=width**-0.5)

        return run

    runs = {"eager": over_every_layer(_bf16_decode_attention), "sdpa": over_every_layer(sdpa_attention_forward)}
    best = _best_times(runs, repeats, clock)
    logger.info(
        "bf16 decode attention at %d rows of %d tokens: eager %.2f ms, sdpa %.2f ms",
        rows,
        tokens,
        1000 * best["eager"],
        1000 * best["sdpa"],
    )
    return best["eager"] < best["sdpa"]


def _bf16_decode_attention(
    module: Any,
    query: Any,
    key: Any,
    value: Any,
    attention_mask: Any,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs: Any,
) -> tuple[Any, None]:
    """Attention of one query row per sequence in bf16 as transformers' eager path
    computes it (scaled scores in bf16, softmax in fp32), the keys and values of
    grouped-query attention read once per group. PyTorch's CPU flash kernel, which
    SDPA picks, took 3.6 ms per layer at 8 rows of 700 tokens against 0.7 this way (a
    Llama's batch-8 step: 101 against 54 ms). A single sequence's step measured no
    faster (43 against 38 ms), so it and anything else go to transformers' SDPA."""
    import torch
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    batch, heads, rows, width = query.shape
    groups = getattr(module, "num_key_value_groups", 1)
    plain = kwargs.get("softcap") is None and kwargs.get("position_bias") is None and not module.training
    shared_mask = attention_mask is None or (attention_mask.dim() == 4 and attention_mask.shape[1] == 1)
    usable = rows == 1 and batch > 1 and query.dtype == torch.bfloat16 and plain and shared_mask
    if not usable or heads != key.shape[1] * groups:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout, scaling, **kwargs)
    scale = scaling if scaling is not None else width**-0.5
    grouped = query.reshape(batch, key.shape[1], groups, width)  # a group's query rows against its keys
    scores = torch.matmul(grouped, key.transpose(2, 3)) * scale
    if attention_mask is not None:
        mask = attention_mask[..., -key.shape[2] :]
        blocked = torch.finfo(scores.dtype).min
        scores = scores.masked_fill(~mask, blocked) if mask.dtype == torch.bool else scores + mask
    weights = torch.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
    output = torch.matmul(weights, value).reshape(batch, heads, 1, width)
    return output.transpose(1, 2).contiguous(), None


def keep_float32_keys_and_values(model: Any) -> int:
    """Have every GPT-Neo self-attention module cache its keys and values in fp32 (a bf16
    model on CPU); the number of modules changed."""
    from transformers.models.gpt_neo.modeling_gpt_neo import GPTNeoSelfAttention

    changed = 0
    for module in model.modules():
        if type(module) is GPTNeoSelfAttention:
            module.forward = types.MethodType(_gpt_neo_attention_float32_cache, module)  # type: ignore[method-assign]
            changed += 1
    return changed


def _gpt_neo_attention_float32_cache(
    self: Any, hidden_states: Any, attention_mask: Any = None, layer_past: Any = None, **kwargs: Any
) -> tuple[Any, None]:
    """GPTNeoSelfAttention.forward with its keys and values in fp32 from the projections
    on: what the cache keeps and what attention reads (the eager path upcast them at
    every step; `_gpt_neo_sdpa` then runs in fp32)."""
    query = self._split_heads(self.q_proj(hidden_states), self.num_heads, self.head_dim)
    key = self._split_heads(self.k_proj(hidden_states).float(), self.num_heads, self.head_dim)
    value = self._split_heads(self.v_proj(hidden_states).float(), self.num_heads, self.head_dim)
    if layer_past is not None:
        key, value = layer_past.update(key, value, self.layer_id)
    output, _ = self._attn(query, key, value, attention_mask)
    output = self.resid_dropout(self.out_proj(self._merge_heads(output, self.num_heads, self.head_dim)))
    return output, None


def _gpt_neo_sdpa(self: Any, query: Any, key: Any, value: Any, attention_mask: Any = None) -> tuple[Any, None]:
    """GPTNeoSelfAttention._attn's result by SDPA: unscaled scores (GPT-Neo does not
    divide by sqrt(head size)), its causal or windowed mask by cache position, plus
    the padding mask it is given. Returns no attention weights."""
    import torch
    import torch.nn.functional as functional

    query_length, key_length = query.shape[-2], key.shape[-2]
    start = 0
    if self.attention_type == "local":
        # The earliest key any of these queries may see; the rest lies outside every window.
        start = max(0, key_length - query_length + 1 - self.config.window_size)
        key, value = key[:, :, start:], value[:, :, start:]
    output_dtype = query.dtype
    if query.dtype == torch.float16:  # unscaled scores overflow fp16, as the eager path says
        query, key, value = query.float(), key.float(), value.float()
    query = query.to(key.dtype)  # a bf16 query against keys kept in fp32
    allowed = self.bias[:, :, key_length - query_length : key_length, start:key_length]
    mask = None
    if attention_mask is not None:
        mask = attention_mask[..., start:key_length].to(query.dtype)
    if query_length > 1:  # one new token may see every key left after the window's cut
        # Additive, with the dtype's minimum (not -inf): a row with nothing to see stays finite, as in eager.
        minimum = torch.finfo(query.dtype).min
        blocked = torch.zeros(allowed.shape, dtype=query.dtype, device=query.device).masked_fill(~allowed, minimum)
        mask = blocked if mask is None else torch.clamp(mask + blocked, min=minimum)
    output = functional.scaled_dot_product_attention(query, key, value, attn_mask=mask, scale=1.0)
    return output.to(output_dtype), None


def use_small_batch_linear(model: Any) -> int:
    """Make every `nn.Linear` of the model a `SmallBatchLinear`; the number changed."""
    import torch

    changed = 0
    for module in model.modules():
        if type(module) is torch.nn.Linear:
            module.__class__ = small_batch_linear_class()
            changed += 1
    return changed


@cache
def small_batch_linear_class() -> type:
    import torch

    class SmallBatchLinear(torch.nn.Linear):
        """An `nn.Linear` that multiplies a few rows (a batch's decode step) by whichever
        kernel `kernel_by_rows` names for that row count, and more rows (a prompt) by
        `prompt_kernel`; gradients or another dtype take `nn.Linear`'s own path. Same
        weight, same result up to rounding."""

        kernel_by_rows: tuple[str, ...] = DEFAULT_KERNELS
        prompt_kernel: str = MKL

        def forward(self, input: torch.Tensor) -> torch.Tensor:
            rows = input.numel() // max(1, input.shape[-1])
            kernels = self.kernel_by_rows
            if rows == 0 or input.dtype != torch.float32 or torch.is_grad_enabled():
                return super().forward(input)
            kernel = kernels[rows - 1] if rows <= len(kernels) else self.prompt_kernel
            if kernel == MKL:
                return super().forward(input)
            output: torch.Tensor = linear_by(kernel, input.reshape(rows, input.shape[-1]), self.weight, self.bias)
            return output.reshape(*input.shape[:-1], self.out_features)

    return SmallBatchLinear


def linear_by(kernel: str, rows: Any, weight: Any, bias: Any) -> Any:
    """`rows @ weightᵀ + bias` for a 2-D `rows`, by the named kernel."""
    import torch
    import torch.nn.functional as functional

    if kernel == ONEDNN:
        return torch.ops.mkldnn._linear_pointwise(rows, weight, bias, "none", [], "")
    if kernel == MKL_TRANSPOSED:  # the weight as the left operand: one pass over it, however many rows
        product = torch.mm(weight, rows.t()) if bias is None else torch.addmm(bias[:, None], weight, rows.t())
        # Row-major again, as nn.Linear returns it (what follows reads it in that order),
        # so the copy is part of what calibration times.
        return product.t().contiguous()
    return functional.linear(rows, weight, bias)


def calibrate_linear(
    model: Any,
    *,
    budget_seconds: float = DEFAULT_CALIBRATION_SECONDS,
    repeats: int = 2,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[tuple[int, int], tuple[tuple[str, ...], str]]:
    """Time each kernel at each of `CALIBRATED_ROWS`, and at `PROMPT_ROWS`, for every
    weight shape among the model's small-batch linear layers, and give each layer the
    fastest per row count. Shapes are timed largest first (the output layer matters
    most; a prompt's logits are its last row's only, so it is not timed at a prompt's
    rows); those the budget leaves over keep `DEFAULT_KERNELS` and MKL. Returns the
    choice per (out, in) shape: the kernels by row count, and the prompt's."""
    import torch

    layer_class: Any = small_batch_linear_class()
    by_shape: dict[tuple[int, int], list[Any]] = {}
    for module in model.modules():
        if isinstance(module, layer_class) and module.weight.dtype == torch.float32:
            by_shape.setdefault((module.out_features, module.in_features), []).append(module)
    output_layer = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    started = clock()
    chosen: dict[tuple[int, int], tuple[tuple[str, ...], str]] = {}
    for shape in sorted(by_shape, key=lambda shape: -shape[0] * shape[1]):
        if clock() - started > budget_seconds:
            break
        layers = by_shape[shape]
        streamed = layers[: max(1, STREAMED_BYTES // (shape[0] * shape[1] * 4))]
        best = {rows: _fastest(streamed, rows, repeats, clock) for rows in CALIBRATED_ROWS}
        table = tuple(best[max(r for r in CALIBRATED_ROWS if r <= rows)] for rows in range(1, MAX_SMALL_BATCH_ROWS + 1))
        prompted = [layer for layer in layers if layer is not output_layer][:PROMPT_TIMED_LAYERS]
        prompt = _fastest(prompted, PROMPT_ROWS, repeats, clock, PROMPT_KERNELS) if prompted else MKL
        chosen[shape] = (table, prompt)
        for layer in layers:
            layer.kernel_by_rows = table
            layer.prompt_kernel = prompt
    return chosen


def _fastest(
    layers: list[Any], rows: int, repeats: int, clock: Callable[[], float], candidates: tuple[str, ...] = LINEAR_KERNELS
) -> str:
    """The one of `candidates` that multiplies `rows` random rows by every one of
    `layers` soonest (best of `repeats`, after one untimed pass that lets each prepare)."""
    import torch

    inputs = torch.randn(rows, layers[0].in_features)

    def over_every_layer(kernel: str) -> Callable[[], None]:
        def run() -> None:
            for layer in layers:
                linear_by(kernel, inputs, layer.weight, layer.bias)

        return run

    best = _best_times({kernel: over_every_layer(kernel) for kernel in candidates}, repeats, clock)
    return min(candidates, key=best.__getitem__)


def _best_times(runs: dict[str, Callable[[], None]], repeats: int, clock: Callable[[], float]) -> dict[str, float]:
    """Each run's best time of `repeats`, after one untimed pass that lets each prepare;
    the runs take turns, so drift on a busy machine hits each alike."""
    import torch

    best = dict.fromkeys(runs, float("inf"))
    with torch.inference_mode():
        for attempt in range(repeats + 1):
            for name, run in runs.items():
                begun = clock()
                run()
                elapsed = clock() - begun
                if attempt:
                    best[name] = min(best[name], elapsed)
    return best
