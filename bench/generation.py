#!/usr/bin/env python
"""Generation benchmark: the reply task path against raw `model.generate`, same model,
same dtype, same run.

A GPT-Neo-125M-shaped model with random weights (speed does not depend on the
weights), saved to a temporary folder with a byte-level tokenizer padded to GPT-2's
vocabulary size, and loaded through the production loader.

- single stream: decode tokens/s of `generate_reply` (retrieval, prompt, streaming,
  publishing, saving) against `model.generate`, and the first-token overhead of the
  whole pipeline over raw prefill;
- concurrency: aggregate tokens/s of 1, 2, 4, 8 and 16 replies at once in one process
  (the continuous batching scheduler) against sequential raw `generate`;
- bf16 against fp32 raw decode speed on this CPU, and resident memory.

Every ratio compares the same dtype on both sides: the one a worker on this machine
picks (`NEO_DTYPE=auto`: bf16 on CPUs with native bf16 instructions, else fp32), or
`--dtype float32` to measure what an fp32-only CPU (AVX2, no bf16) runs.

- where the first token's wait goes: the medians of the reply's own stage timings
  (retrieval, screening, prompt, tokenization, the scheduler's handoff and prefill);
- per-step decode costs at batch 1 and 8 (the model's forward pass with our KV cache,
  then the scheduler's choice of the next tokens), on stock kernels and on ours
  (`workers.generation.kernels`), alternating; and int8 dynamic quantization of
  the linear layers against the same model unquantized: step costs and the share of
  greedy tokens identical (random weights make near-ties common: a floor, not what
  trained weights give).

`--architecture llama` measures the same on a Llama of about the same size, with a
chat template, to show nothing is GPT-Neo-only.

`--parts` runs a subset (`first_token,stream,concurrency,dtypes,steps`; all by default).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NEW_TOKENS = 200  # a bot's default answer budget (bots.models)
FIRST_TOKEN_PAIRS = 9
PROMPT_WORDS = 300  # about 400 tokens of prompt with the passages
STEP_ROUNDS = 3  # stock and our kernels alternate this many times


def setup_django(var_dir: Path, model_dir: Path, dtype: str) -> None:
    os.environ.update(
        NEO_VAR_DIR=str(var_dir),
        MEDIA_ROOT=str(var_dir / "media"),
        NEO_MODEL=str(model_dir),
        NEO_DEVICE="cpu",
        NEO_DTYPE=dtype,
        HF_HUB_OFFLINE="1",
        DJANGO_SETTINGS_MODULE="neo_support.settings",
    )
    for name in ("DATABASE_URL", "REDIS_URL"):
        os.environ.pop(name, None)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


# Llama 3's turn format, so the task path renders its prompt as it does a real instruction model's.
LLAMA_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "<|start_header_id|>{{ message['role'] }}<|end_header_id|>\n\n{{ message['content'] | trim }}<|eot_id|>"
    "{% endfor %}{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)
LLAMA_SPECIAL_TOKENS = [
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
]


def build_model(directory: Path, architecture: str = "gpt_neo") -> None:
    """A model of `architecture` with random weights, EleutherAI/gpt-neo-125M's shape
    for "gpt_neo"; for "llama", a Llama of about the same size (768 wide, 12 layers,
    grouped-query attention, SwiGLU) with a chat template."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPTNeoConfig, GPTNeoForCausalLM, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    corpus = [f"Customer question number {n} about invoices, refunds and passwords." for n in range(200)]
    specials = LLAMA_SPECIAL_TOKENS if architecture == "llama" else ["<|endoftext|>"]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=2000, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    bpe.train_from_iterator(corpus, trainer=trainer)
    if architecture == "llama":
        tokenizer = PreTrainedTokenizerFast(
            tokenizer_object=bpe, bos_token="<|begin_of_text|>", eos_token="<|eot_id|>", pad_token="<|end_of_text|>"
        )
        tokenizer.chat_template = LLAMA_CHAT_TEMPLATE
    else:
        tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>")
    # Pad to GPT-2's vocabulary so the output layer costs what the real model's does.
    tokenizer.add_tokens([f"<extra{n}>" for n in range(50257 - len(tokenizer))])
    tokenizer.save_pretrained(directory)
    torch.manual_seed(0)
    if architecture == "llama":
        config = LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=768,
            intermediate_size=2048,
            num_hidden_layers=12,
            num_attention_heads=12,
            num_key_value_heads=4,
            max_position_embeddings=2048,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=[tokenizer.eos_token_id, tokenizer.pad_token_id],
            pad_token_id=tokenizer.pad_token_id,
        )
        LlamaForCausalLM(config).save_pretrained(directory)
        return
    # GPTNeoConfig's defaults are the 1.3B shape; these are EleutherAI/gpt-neo-125M's.
    config = GPTNeoConfig(
        vocab_size=len(tokenizer),
        hidden_size=768,
        num_layers=12,
        num_heads=12,
        attention_types=[[["global", "local"], 6]],
        max_position_embeddings=2048,
        window_size=256,
        eos_token_id=0,
        bos_token_id=0,
    )
    GPTNeoForCausalLM(config).save_pretrained(directory)


def make_bot(new_tokens: int = NEW_TOKENS):  # type: ignore[no-untyped-def]
    from bots.services import bot_create
    from neo_support.models import Organization
    from retrieval.services.documents import document_create_from_text
    from retrieval.services.ingestion import documents_ingest_all
    from retrieval.services.knowledge_bases import knowledge_base_create

    organization = Organization.objects.create(name="Bench", slug=f"bench-{time.time_ns()}")
    knowledge_base = knowledge_base_create(organization=organization, name="Help")
    text = "# Refunds\n\n" + " ".join(
        f"Customer question number {n} about invoices, refunds and passwords." for n in range(PROMPT_WORDS // 9)
    )
    documents_ingest_all(
        documents=[document_create_from_text(knowledge_base=knowledge_base, title="Refunds", text=text, queue=False)]
    )
    return bot_create(
        organization=organization,
        name="Bench bot",
        knowledge_bases=[knowledge_base],
        generation={"temperature": 0, "max_new_tokens": new_tokens},
        answer_threshold=0.0,
        handoff_threshold=0.0,
    )


def task_path_reply(bot, question: str) -> dict:  # type: ignore[no-untyped-def]
    from bots.chat.services import conversation_start
    from bots.chat.tasks import generate_reply
    from bots.models import Message

    conversation = conversation_start(bot=bot, visitor_id="bench")
    Message.objects.create(conversation=conversation, role="visitor", text=question)
    reply = Message.objects.create(conversation=conversation, role="bot", status="pending")
    started = time.perf_counter()
    generate_reply(reply.pk)
    total = time.perf_counter() - started
    reply.refresh_from_db()
    return {
        "total": total,
        "first_token_s": reply.timings["first_token_ms"] / 1000,
        "tokens": reply.completion_tokens,
        "timings": reply.timings,
    }


STAGES = ("retrieval_ms", "screening_ms", "prompt_ms", "tokenize_ms", "prefill_ms")


def decode_step_costs(loaded, prompt_ids: list[int], steps: int = 10) -> dict[int, float]:  # type: ignore[no-untyped-def]
    """Median seconds of one decode step at batch 1 and 8 (rows of the same prompt), as
    the scheduler runs it: the forward pass with our cache, then the rows' next tokens."""
    import torch

    from workers.generation.kv_cache import GrowingCache
    from workers.generation.sampling import SamplingParameters, next_tokens

    costs = {}
    for rows in (1, 8):
        ids = torch.tensor([prompt_ids] * rows)
        params = [SamplingParameters()] * rows
        with torch.inference_mode():
            output = loaded.model(input_ids=ids, cache=GrowingCache(), use_cache=True, logits_to_keep=1)
            mask = torch.ones(ids.shape, dtype=torch.long)
            tokens = next_tokens(output.logits[:, -1], [[]] * rows, params, [None] * rows)
            times = []
            for step in range(steps):
                mask = torch.cat([mask, torch.ones((rows, 1), dtype=torch.long)], dim=1)
                started = time.perf_counter()
                output = loaded.model(
                    input_ids=torch.tensor([[t] for t in tokens]),
                    attention_mask=mask,
                    position_ids=torch.full((rows, 1), len(prompt_ids) + step),
                    cache=output.cache,
                    use_cache=True,
                )
                tokens = next_tokens(output.logits[:, -1], [[]] * rows, params, [None] * rows)
                times.append(time.perf_counter() - started)
        costs[rows] = statistics.median(times[1:])
    return costs


def choice_costs(rows: int = 8, vocabulary: int = 50257, repeats: int = 200) -> tuple[float, float]:
    """Median seconds to choose the next greedy token of `rows` rows: one row at a time
    (what the scheduler did before) against `next_tokens`' one argmax over the batch."""
    import torch

    from workers.generation.sampling import SamplingParameters, next_token, next_tokens

    logits = torch.randn(rows, vocabulary)
    params = [SamplingParameters()] * rows
    per_row, batched = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        [next_token(logits[row], [], params[row], None) for row in range(rows)]
        per_row.append(time.perf_counter() - started)
        started = time.perf_counter()
        next_tokens(logits, [[]] * rows, params, [None] * rows)
        batched.append(time.perf_counter() - started)
    return statistics.median(per_row), statistics.median(batched)


def greedy_tokens(loaded, prompt_ids: list[int], count: int) -> list[int]:  # type: ignore[no-untyped-def]
    from workers.generation.sampling import SamplingParameters

    return list(loaded.scheduler.submit(prompt_ids, SamplingParameters(max_new_tokens=count)))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--dtype", choices=("auto", "float32", "bfloat16"), default="auto")
    parser.add_argument("--parts", default="first_token,stream,concurrency,dtypes,steps")
    parser.add_argument(
        "--architecture",
        choices=("gpt_neo", "llama"),
        default="gpt_neo",
        help="gpt_neo: GPT-Neo-125M's shape; llama: a Llama of about its size with a chat template",
    )
    return parser.parse_args(argv)


def raw_generate(loaded, prompt_ids: list[int], new_tokens: int) -> float:  # type: ignore[no-untyped-def]
    import torch

    ids = torch.tensor([prompt_ids])
    started = time.perf_counter()
    with torch.inference_mode():
        loaded.model.generate(
            ids, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False, pad_token_id=0
        )
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> None:
    import psutil
    import torch

    args = parse_args(argv)
    parts = set(args.parts.split(","))
    sys.path.insert(0, str(ROOT))
    from workers.generation.model import _cpu_flags, resolve_dtype

    torch.set_num_threads(os.cpu_count() or 1)
    flags = sorted(_cpu_flags() & {"avx2", "avx512f", "avx512_bf16", "amx_bf16", "avx512_vnni", "avx_vnni"})
    print(f"machine  {os.cpu_count()} CPUs ({', '.join(flags) or 'no avx2'}), load average {os.getloadavg()[0]:.1f}")
    figures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="neo-genbench-") as temporary:
        var_dir = Path(temporary)
        model_dir = var_dir / f"{args.architecture}-125m-shape"
        build_model(model_dir, args.architecture)
        # What a worker on this CPU runs (bf16 where native), unless told otherwise.
        dtype = resolve_dtype(args.dtype, "cpu")
        setup_django(var_dir, model_dir, dtype)
        from channels.layers import get_channel_layer

        from workers.generation.loading import holder, load_model

        bot = make_bot()
        question = "How long do refunds take to reach my card?"
        loaded = holder.get()
        # The prompt the task path builds, so both sides decode after the same prefill.
        from django.conf import settings

        from retrieval.search import search
        from workers.generation.answer import instructions_with_canary
        from workers.generation.prefix_cache import shared_length
        from workers.generation.prompt import Passage, build_prompt
        from workers.moderation.leakage import canary_for

        hits = search(knowledge_bases=list(bot.knowledge_bases.all()), query=question, k=5)
        passages = [
            Passage(h.chunk_id, h.document_id, h.document_title, tuple(h.heading_path), h.location, h.text, h.score)
            for h in hits
        ]
        canary = canary_for(settings.SECRET_KEY, bot.pk)
        prompt = build_prompt(
            instructions=instructions_with_canary(bot.instructions, canary),
            passages=passages, turns=[], question=question,
            count_tokens=loaded.count_tokens, context_window=loaded.context_window, answer_budget=NEW_TOKENS,
            chat=loaded.render_chat if loaded.has_chat_template else None,
        )  # fmt: skip
        # As the task path tokenizes it: a chat-rendered prompt holds its special tokens already.
        prompt_ids = loaded.tokenizer(prompt.text, add_special_tokens=not prompt.chat)["input_ids"]
        print(
            f"prompt   {len(prompt_ids)} tokens, {len(prompt.passages)} passages; model {loaded.family} "
            f"{loaded.dtype}, kernels: {', '.join(loaded.kernels) or 'stock'}"
        )

        # The in-memory layer keeps at most 100 messages per channel; nobody listens here.
        get_channel_layer().capacity = 10_000
        task_path_reply(bot, question)  # warm
        raw_generate(loaded, prompt_ids, 2)
        prefills: list[float] = []
        if parts & {"first_token", "stream", "concurrency"}:
            short_bot = make_bot(new_tokens=4)  # the same prompt, for first-token timings
            head_tokens = shared_length(
                prompt_ids, loaded.tokenizer(prompt.head, add_special_tokens=not prompt.chat)["input_ids"]
            )
            print(f"head     {head_tokens} of the prompt's tokens are the bot's fixed head (instructions, guidance)")
            # Raw and ours alternate, so drift on a noisy machine hits both sides alike. The
            # bot's head is cached after its first reply (prefix_cache); also measured without.
            prefixes = loaded.prefixes
            for cached in (False, True):
                loaded.prefixes = prefixes if cached else None
                firsts, stages = [], []
                for _ in range(FIRST_TOKEN_PAIRS):
                    prefills.append(raw_generate(loaded, prompt_ids, 1))
                    run = task_path_reply(short_bot, question)
                    firsts.append(run["first_token_s"])
                    stages.append(run["timings"])
                prefill, first = statistics.median(prefills), statistics.median(firsts)
                overhead_ms = (first - prefill) * 1000
                stage_medians = {name: statistics.median(t[name] for t in stages) for name in STAGES}
                print(
                    f"first    token {first * 1000:.0f} ms against raw prefill {prefill * 1000:.0f} ms "
                    f"({'head cached' if cached else 'no prefix cache'}); stages (medians): "
                    + ", ".join(f"{name[:-3]} {value:.1f}" for name, value in stage_medians.items())
                    + f" ms; the rest {first * 1000 - sum(stage_medians.values()):.1f} ms"
                )
                figures.append(f"FIGURE first_token_overhead{'' if cached else '_uncached'}_ms={overhead_ms:.1f} ms")
            figures.append(
                f"FIGURE first_token_prefill_wait_over_raw_prefill={stage_medians['prefill_ms'] / 1000 / prefill:.3f} x"
            )

        if parts & {"stream", "concurrency"}:
            prefill = statistics.median(prefills)
            raw_rates, our_rates, token_counts = [], [], []
            for _ in range(3):
                raw_rates.append((NEW_TOKENS - 1) / (raw_generate(loaded, prompt_ids, NEW_TOKENS) - prefill))
                run = task_path_reply(bot, question)
                our_rates.append((run["tokens"] - 1) / (run["total"] - run["first_token_s"]))
                token_counts.append(run["tokens"])
            raw_rate, our_rate = statistics.median(raw_rates), statistics.median(our_rates)
            raw_full = prefill + (NEW_TOKENS - 1) / raw_rate
            print(
                f"single   raw generate {raw_rate:.1f} tok/s (prefill {prefill * 1000:.0f} ms); task path "
                f"{our_rate:.1f} tok/s, {min(token_counts)} tokens (medians of 3 full pairs)"
            )
            figures.append(f"FIGURE stream_tokens_ratio={our_rate / raw_rate:.3f} x")

        if "concurrency" in parts:
            sequential = NEW_TOKENS / raw_full
            speedups = {}
            for concurrency in (1, 2, 4, 8, 16):
                results: list[dict] = []

                def one(results: list[dict] = results) -> None:
                    from django.db import connections

                    results.append(task_path_reply(bot, question))
                    connections.close_all()

                started = time.perf_counter()
                threads = [threading.Thread(target=one) for _ in range(concurrency)]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
                elapsed = time.perf_counter() - started
                aggregate = sum(r["tokens"] for r in results) / elapsed
                speedups[concurrency] = aggregate / sequential
                print(
                    f"concurrent {concurrency}: aggregate {aggregate:.1f} tok/s, per stream "
                    f"{aggregate / concurrency:.1f} tok/s, {speedups[concurrency]:.2f}x sequential raw generate"
                )
            rss = psutil.Process().memory_info().rss / (1024 * 1024)
            print(f"memory   RSS {rss:.0f} MB after the concurrency runs")
            figures.append(f"FIGURE batch8_speedup={speedups[8]:.3f} x")
            figures.append(f"FIGURE worker_rss_mb={rss:.0f} MB")

        if "steps" in parts:
            # The same weights on stock kernels, alternating with ours (workers.generation.kernels).
            from workers.generation.model import load_weights

            stock = load_weights(str(model_dir), device="cpu", dtype=loaded.dtype)
            runs: dict[str, list[dict[int, float]]] = {"stock": [], "ours": []}
            for _ in range(STEP_ROUNDS):
                runs["stock"].append(decode_step_costs(stock, prompt_ids))
                runs["ours"].append(decode_step_costs(loaded, prompt_ids))
            del stock
            for name, rounds in runs.items():
                step = {rows: statistics.median(r[rows] for r in rounds) for rows in (1, 8)}
                print(
                    f"steps    {name} kernels, {loaded.dtype}: decode step {step[1] * 1000:.1f} ms at batch 1, "
                    f"{step[8] * 1000:.1f} ms at batch 8 ({step[8] / step[1]:.2f}x the cost for 8x the tokens)"
                )
                figures.append(f"FIGURE step_b8_over_b1_{name}={step[8] / step[1]:.3f} x")
            costs = {rows: statistics.median(r[rows] for r in runs["ours"]) for rows in (1, 8)}
            for rows in (1, 8):
                before = statistics.median(r[rows] for r in runs["stock"])
                figures.append(f"FIGURE step_b{rows}_stock_over_ours={before / costs[rows]:.3f} x")
            per_row, batched = choice_costs()
            print(
                f"choice   8 rows' next greedy tokens: {per_row * 1000:.2f} ms one row at a time, "
                f"{batched * 1000:.2f} ms in one argmax"
            )
            figures.append(f"FIGURE choice_b8_per_row_over_batched={per_row / batched:.3f} x")
            if loaded.dtype == "float32":
                from workers.generation.batching import BatchScheduler
                from workers.generation.kernels import use_sdpa_attention

                # Stock nn.Linear layers, which quantize_dynamic replaces (it matches types exactly).
                quantized = load_weights(str(model_dir), device="cpu", dtype="float32")
                quantized.scheduler = BatchScheduler(quantized)
                if "sdpa_attention" in loaded.kernels:  # the same attention on both sides
                    use_sdpa_attention(quantized.model)
                torch.ao.quantization.quantize_dynamic(
                    quantized.model, {torch.nn.Linear}, dtype=torch.qint8, inplace=True
                )
                int8 = decode_step_costs(quantized, prompt_ids)
                ours, theirs = greedy_tokens(loaded, prompt_ids, 64), greedy_tokens(quantized, prompt_ids, 64)
                same = sum(a == b for a, b in zip(ours, theirs, strict=False)) / max(len(ours), 1)
                print(
                    f"int8     dynamic linear layers: decode step {int8[1] * 1000:.1f} ms at batch 1, "
                    f"{int8[8] * 1000:.1f} ms at batch 8; greedy tokens identical to fp32 {same:.2f}"
                )
                figures.append(f"FIGURE int8_step_b1_speedup={costs[1] / int8[1]:.3f} x")
                figures.append(f"FIGURE int8_step_b8_speedup={costs[8] / int8[8]:.3f} x")
                figures.append(f"FIGURE int8_greedy_agreement={same:.3f} share")

        if "dtypes" in parts:
            rates = {}
            for name in ("float32", "bfloat16"):
                other = loaded if name == loaded.dtype else load_model(str(model_dir), device="cpu", dtype=name)
                other_prefill = statistics.median(raw_generate(other, prompt_ids, 1) for _ in range(3))
                other_full = statistics.median(raw_generate(other, prompt_ids, NEW_TOKENS) for _ in range(3))
                rates[name] = (NEW_TOKENS - 1) / (other_full - other_prefill)
                print(f"dtype    {name}: raw decode {rates[name]:.1f} tok/s, prefill {other_prefill * 1000:.0f} ms")
            figures.append(f"FIGURE bf16_vs_fp32_decode={rates['bfloat16'] / rates['float32']:.3f} x")

        print(f"load     average {os.getloadavg()[0]:.1f} at the end")
        for line in figures:
            print(line)


if __name__ == "__main__":
    main()
