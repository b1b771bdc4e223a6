"""Faster forward passes for the loaded model, the same answers: which kernels run its
attention and its linear layers. Applied once, when the model is loaded.

- **GPT-Neo's attention through `scaled_dot_product_attention`.** transformers runs
  GPT-Neo's attention eagerly (matmul, mask, softmax, matmul as separate ops over
  the whole cache); PyTorch's fused kernel does it in one pass. A local layer (window
  256) also only reads the keys inside its window: the eager path read the whole cache
  and masked the rest away. At 8 rows of 400 tokens, attention was a fifth of a CPU
  decode step; in bf16 the eager path also upcast every row's cache to fp32, and a
  batch-8 step got 1.6x cheaper. On CPU only (GPUs were not measured). Families
  transformers runs with SDPA already (Llama, Qwen2, GPT-2) are left alone.
- **oneDNN for fp32 linear layers at a few rows on CPU.** `nn.Linear` goes to MKL,
  whose product at 4 to 16 rows (a batch's decode step) costs two to three times its
  one-row cost when the weights stream from memory, as if it repacked the whole weight
  at every call. oneDNN's kernel, given the very same weight, costs 1.3 to 1.8 times.
  One row (a reply alone) and prompts stay on MKL, which is faster there. bf16 already
  runs on oneDNN.

This module depends on no other module of the package.
"""

from __future__ import annotations

import types
from functools import cache
from typing import Any

# Model families whose attention transformers runs eagerly and this module replaces.
SDPA_FAMILIES = frozenset({"gpt_neo"})
# Rows of a linear layer's input that oneDNN multiplies faster than MKL in fp32 on CPU:
# 1.6x at 4 rows, 1.9x at 8, 1.3x at 16 (one row and 2 to 3 rows: MKL is faster; a
# 400-token prefill: the same). bench/README.md, "Kernels chosen at load".
ONEDNN_ROWS = range(4, 33)


def speed_up(model: Any, *, device: str, dtype: str) -> list[str]:
    """Apply what fits this model, device and dtype; the names of what was applied."""
    import torch

    applied = []
    family = str(getattr(model.config, "model_type", ""))
    if device == "cpu" and family in SDPA_FAMILIES and use_sdpa_attention(model):
        applied.append("sdpa_attention")
    on_fp32_cpu = device == "cpu" and dtype == "float32" and torch.backends.mkldnn.is_available()  # type: ignore[no-untyped-call]
    if on_fp32_cpu and use_small_batch_linear(model):
        applied.append("onednn_small_batch_linear")
    return applied


def use_sdpa_attention(model: Any) -> int:
    """Run every GPT-Neo self-attention module through SDPA; the number of modules changed."""
    from transformers.models.gpt_neo.modeling_gpt_neo import GPTNeoSelfAttention

    changed = 0
    for module in model.modules():
        if type(module) is GPTNeoSelfAttention:  # not the flash-attention subclass
            module._attn = types.MethodType(_gpt_neo_sdpa, module)  # type: ignore[method-assign]
            changed += 1
    return changed


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
    if query.dtype == torch.float16:  # unscaled scores overflow fp16, as the eager path says
        query, key, value = query.float(), key.float(), value.float()
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
    return output.to(value.dtype), None


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
        """An `nn.Linear` whose product runs on oneDNN when it has a few rows (a batch's
        decode step) and no gradient is wanted; MKL otherwise, as before. Same weight."""

        def forward(self, input: torch.Tensor) -> torch.Tensor:
            rows = input.numel() // max(1, input.shape[-1])
            if rows not in ONEDNN_ROWS or torch.is_grad_enabled() or input.dtype != torch.float32:
                return super().forward(input)
            flat = input.reshape(rows, input.shape[-1])
            output: torch.Tensor = torch.ops.mkldnn._linear_pointwise(flat, self.weight, self.bias, "none", [], "")
            return output.reshape(*input.shape[:-1], self.out_features)

    return SmallBatchLinear
