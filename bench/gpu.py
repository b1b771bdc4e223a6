#!/usr/bin/env python
"""GPU generation benchmark: our batch scheduler against raw `model.generate`, same
model, same dtype, same run, at 1, 8, 32 and 64 concurrent streams.

Shapes are built from transformers configs with random weights (speed does not depend
on them; nothing is downloaded): GPT-Neo 125M, 1.3B and 2.7B (alternating global and
local attention, window 256) and one instruction model's architecture (Qwen2.5-0.5B-
Instruct's: grouped-query attention, 151,936-token vocabulary). `--shapes tiny` builds
small versions of the same architectures, so the whole run takes seconds on a CPU.

For each shape and stream count:
- raw: `model.generate` on a batch of that many prompts (greedy, every row decoding
  `--new-tokens`); first-token latency is a one-token `generate` of the same batch;
- ours: that many threads submitting one prompt each to `BatchScheduler` at once,
  as a worker's concurrent replies do; first-token latency is each stream's, p50.

Imports torch, transformers, numpy and the pure-Python generation core only (no
Django), so it runs with whatever Python the GPU machine offers; see bench/README.md.
"""

from __future__ import annotations

import argparse
import gc
import resource
import statistics
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BUDGET_S = 420.0  # the limit is 8 minutes for the whole command


@dataclass(frozen=True)
class Shape:
    name: str
    kind: str  # "gpt_neo" or "qwen2"
    hidden: int
    layers: int
    heads: int
    vocab: int
    max_positions: int
    window: int = 256  # GPT-Neo's local attention
    kv_heads: int = 0  # Qwen2's grouped-query attention
    intermediate: int = 0  # Qwen2's MLP width; GPT-Neo's is 4 x hidden


FULL_SHAPES = (
    Shape("neo125m", "gpt_neo", hidden=768, layers=12, heads=12, vocab=50257, max_positions=2048),
    Shape("neo1.3b", "gpt_neo", hidden=2048, layers=24, heads=16, vocab=50257, max_positions=2048),
    Shape("neo2.7b", "gpt_neo", hidden=2560, layers=32, heads=20, vocab=50257, max_positions=2048),
    Shape(
        "qwen0.5b",
        "qwen2",
        hidden=896,
        layers=24,
        heads=14,
        vocab=151936,
        max_positions=32768,
        kv_heads=2,
        intermediate=4864,
    ),  # fmt: skip
)
TINY_SHAPES = (
    Shape("neo125m_tiny", "gpt_neo", hidden=64, layers=2, heads=4, vocab=1024, max_positions=256, window=16),
    Shape("neo1.3b_tiny", "gpt_neo", hidden=64, layers=4, heads=4, vocab=1024, max_positions=256, window=16),
    Shape("neo2.7b_tiny", "gpt_neo", hidden=80, layers=4, heads=4, vocab=1024, max_positions=256, window=16),
    Shape(
        "qwen0.5b_tiny",
        "qwen2",
        hidden=64,
        layers=2,
        heads=4,
        vocab=1024,
        max_positions=256,
        kv_heads=2,
        intermediate=128,
    ),  # fmt: skip
)
DTYPES = {"fp16": "float16", "bf16": "bfloat16", "fp32": "float32"}


@dataclass(frozen=True)
class Run:
    tokens_per_s: float
    first_token_ms: float  # p50 over streams for ours; the batch's prefill for raw
    tokens: int


def build_model(shape: Shape, *, device: str, dtype: str) -> Any:
    import torch
    from transformers import AutoModelForCausalLM, GPTNeoConfig, PretrainedConfig, Qwen2Config

    config: PretrainedConfig
    if shape.kind == "gpt_neo":
        config = GPTNeoConfig(
            vocab_size=shape.vocab,
            hidden_size=shape.hidden,
            num_layers=shape.layers,
            num_heads=shape.heads,
            attention_types=[[["global", "local"], shape.layers // 2]],
            window_size=shape.window,
            max_position_embeddings=shape.max_positions,
            bos_token_id=0,
            eos_token_id=0,
        )
    else:
        config = Qwen2Config(
            vocab_size=shape.vocab,
            hidden_size=shape.hidden,
            num_hidden_layers=shape.layers,
            num_attention_heads=shape.heads,
            num_key_value_heads=shape.kv_heads,
            intermediate_size=shape.intermediate,
            max_position_embeddings=shape.max_positions,
            tie_word_embeddings=True,
            bos_token_id=0,
            eos_token_id=0,
        )
    torch.manual_seed(0)
    # Initialised on the device itself: a 2.7B model's random init on the CPU takes minutes.
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=getattr(torch, dtype))  # type: ignore[no-untyped-call]
    return model.eval()


def make_prompts(count: int, *, length: int, vocab: int) -> list[list[int]]:
    import numpy as np

    rng = np.random.default_rng(count)
    return [[int(t) for t in rng.integers(1, vocab, size=length)] for _ in range(count)]


def synchronize(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def raw_generate(model: Any, prompts: list[list[int]], *, new_tokens: int, device: str) -> float:
    """Seconds for `model.generate` to decode `new_tokens` for every prompt as one batch."""
    import torch

    ids = torch.tensor(prompts, device=device)
    synchronize(device)
    started = time.perf_counter()
    with torch.inference_mode():
        model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
            do_sample=False,
            pad_token_id=0,
        )
    synchronize(device)
    return time.perf_counter() - started


def measure_raw(model: Any, prompts: list[list[int]], *, new_tokens: int, device: str) -> Run:
    first = raw_generate(model, prompts, new_tokens=1, device=device)
    total = raw_generate(model, prompts, new_tokens=new_tokens, device=device)
    return Run(len(prompts) * new_tokens / total, first * 1000, len(prompts) * new_tokens)


def measure_scheduler(scheduler: Any, prompts: list[list[int]], *, new_tokens: int) -> Run:
    """Every prompt submitted at once from its own thread, as concurrent replies are."""
    from workers.generation.sampling import SamplingParameters

    params = SamplingParameters(max_new_tokens=new_tokens)
    firsts: list[float] = []
    counts: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(len(prompts) + 1)

    def stream(prompt: list[int]) -> None:
        start.wait()
        began, first, count = time.perf_counter(), 0.0, 0
        try:
            for _ in scheduler.submit(prompt, params):
                if count == 0:
                    first = time.perf_counter() - began
                count += 1
        except BaseException as error:  # noqa: BLE001 - re-raised by the main thread
            errors.append(error)
        firsts.append(first)
        counts.append(count)

    threads = [threading.Thread(target=stream, args=(prompt,)) for prompt in prompts]
    for thread in threads:
        thread.start()
    start.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    return Run(sum(counts) / elapsed, statistics.median(firsts) * 1000, sum(counts))


def reset_peak_memory(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()


def peak_memory_mb(device: str) -> float:
    """The GPU's peak allocation since the last reset; on CPU the process's peak RSS."""
    import torch

    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def is_out_of_memory(error: BaseException) -> bool:
    import torch

    return isinstance(error, torch.cuda.OutOfMemoryError) or "out of memory" in str(error).lower()


def free_memory(device: str) -> None:
    import torch

    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()


def bench_shape(shape: Shape, args: argparse.Namespace, over_budget: Callable[[], bool]) -> list[str]:
    """Measure one shape at every stream count; returns its FIGURE lines."""
    from workers.generation.batching import BatchScheduler
    from workers.generation.model import LoadedModel

    device, dtype, new_tokens = args.device, DTYPES[args.dtype], args.new_tokens
    reset_peak_memory(device)
    model = build_model(shape, device=device, dtype=dtype)
    parameters = sum(p.numel() for p in model.parameters()) / 1e6
    # No tokenizer: prompts are token ids. No end-of-sequence token, so every stream
    # decodes its whole budget, as every row of `generate` does with min_new_tokens.
    loaded = LoadedModel(
        name=shape.name, model=model, tokenizer=None, device=device, dtype=dtype,
        context_window=shape.max_positions, eos_token_id=None, load_seconds=0.0,
    )  # fmt: skip
    scheduler = BatchScheduler(loaded, max_batch=args.max_batch)
    print(
        f"shape    {shape.name}: {parameters:.1f} M parameters, scheduler max batch {scheduler.max_batch}", flush=True
    )
    warm = make_prompts(2, length=args.prompt_tokens, vocab=shape.vocab)
    raw_generate(model, warm, new_tokens=2, device=device)
    measure_scheduler(scheduler, warm, new_tokens=2)

    ours: dict[int, Run] = {}
    raw: dict[int, Run] = {}
    memory = 0.0
    try:
        for streams in args.streams:
            if over_budget():
                break
            prompts = make_prompts(streams, length=args.prompt_tokens, vocab=shape.vocab)
            try:
                reset_peak_memory(device)
                raw[streams] = best_of(
                    args.repeats, partial(measure_raw, model, prompts, new_tokens=new_tokens, device=device)
                )
                ours[streams] = best_of(
                    args.repeats, partial(measure_scheduler, scheduler, prompts, new_tokens=new_tokens)
                )
                memory = max(memory, peak_memory_mb(device))
            except Exception as error:
                if not is_out_of_memory(error):
                    raise
                print(f"streams  {streams}: out of memory, skipped ({type(error).__name__})", flush=True)
                free_memory(device)
                break
            r, o = raw[streams], ours[streams]
            print(
                f"streams  {streams:>3}: raw generate {r.tokens_per_s:9.1f} tok/s, "
                f"first token {r.first_token_ms:8.1f} ms"
                f" | scheduler {o.tokens_per_s:9.1f} tok/s, first token p50 {o.first_token_ms:8.1f} ms"
                f" | {o.tokens_per_s / r.tokens_per_s:.2f}x generate; peak memory {memory:.0f} MB",
                flush=True,
            )
    finally:
        # The scheduler's idle thread keeps its LoadedModel for ever; let go of the model.
        loaded.model = None
        del model, scheduler, loaded
        free_memory(device)
    return figures(shape.name, ours, raw, memory)


def best_of(repeats: int, measure: Callable[[], Run]) -> Run:
    """The median run by throughput (one run by default: the budget is tight)."""
    runs = sorted((measure() for _ in range(repeats)), key=lambda run: run.tokens_per_s)
    return runs[len(runs) // 2]


def figures(name: str, ours: dict[int, Run], raw: dict[int, Run], memory: float) -> list[str]:
    lines = []
    for streams, run in ours.items():
        lines.append(f"FIGURE gpu_{name}_tokens_per_s_{streams}={run.tokens_per_s:.1f} tok/s")
        lines.append(f"FIGURE gpu_{name}_first_token_p50_ms_{streams}={run.first_token_ms:.1f} ms")
        lines.append(
            f"FIGURE gpu_{name}_scheduler_vs_generate_{streams}={run.tokens_per_s / raw[streams].tokens_per_s:.3f} x"
        )
        if streams > 1 and 1 in ours:
            lines.append(f"FIGURE gpu_{name}_streams{streams}_speedup={run.tokens_per_s / ours[1].tokens_per_s:.3f} x")
    if ours:
        lines.append(f"FIGURE gpu_{name}_peak_memory_mb={memory:.0f} MB")
    return lines


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    import torch

    cuda = torch.cuda.is_available()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda" if cuda else "cpu")
    parser.add_argument(
        "--dtype", choices=tuple(DTYPES), help="default: bf16 on a GPU that has it, else fp16; fp32 on CPU"
    )
    parser.add_argument("--shapes", choices=("full", "tiny"), default="full")
    parser.add_argument("--only", help="comma-separated shape names, e.g. neo1.3b")
    parser.add_argument("--streams", default="1,8,32,64", type=lambda s: [int(n) for n in s.split(",")])
    parser.add_argument("--new-tokens", type=int, help="default 128 (16 with --shapes tiny)")
    parser.add_argument("--prompt-tokens", type=int, help="default 128 (32 with --shapes tiny)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--max-batch", type=int, help="the scheduler's; default the production one for the device")
    parser.add_argument("--budget-s", type=float, default=BUDGET_S, help="no new measurement starts after this")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not cuda:
        parser.error("--device cuda but torch sees no CUDA device")
    tiny = args.shapes == "tiny"
    args.new_tokens = args.new_tokens or (16 if tiny else 128)
    args.prompt_tokens = args.prompt_tokens or (32 if tiny else 128)
    if args.dtype is None:
        if args.device == "cpu":
            args.dtype = "fp32"
        else:
            args.dtype = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return args


def main(argv: list[str] | None = None) -> None:
    started = time.perf_counter()
    import torch
    import transformers

    sys.path.insert(0, str(ROOT))
    transformers.logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    args = parse_args(argv)
    name = torch.cuda.get_device_name() if args.device == "cuda" else "CPU"
    print(
        f"device   {name} ({args.device}), {args.dtype}; torch {torch.__version__}, CUDA {torch.version.cuda}, "
        f"transformers {transformers.__version__}, Python {sys.version.split()[0]}"
    )
    print(
        f"run      streams {args.streams}, {args.prompt_tokens} prompt tokens, {args.new_tokens} new tokens, "
        f"{args.repeats} repeat(s), budget {args.budget_s:.0f} s",
        flush=True,
    )
    shapes: tuple[Shape, ...] = TINY_SHAPES if args.shapes == "tiny" else FULL_SHAPES
    if args.only:
        wanted = set(args.only.split(","))
        shapes = tuple(s for s in shapes if s.name in wanted)
    stopped: list[str] = []

    def over_budget() -> bool:
        elapsed = time.perf_counter() - started
        if elapsed > args.budget_s and not stopped:
            stopped.append(f"budget   {args.budget_s:.0f} s spent ({elapsed:.0f} s): no new measurement started")
            print(stopped[0], flush=True)
        return bool(stopped)

    for shape in shapes:
        if over_budget():
            break
        shape_started = time.perf_counter()
        try:
            # Each shape's figures as soon as it is done: a run killed later keeps them.
            print("\n".join(bench_shape(shape, args, over_budget)), flush=True)
        except Exception as error:
            if not is_out_of_memory(error):
                raise
            print(f"shape    {shape.name}: out of memory while building it, skipped", flush=True)
            free_memory(args.device)
        now = time.perf_counter()
        print(f"shape    {shape.name} took {now - shape_started:.1f} s (elapsed {now - started:.1f} s)", flush=True)
    print(f"total    {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
