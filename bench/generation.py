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
picks (`NEO_DTYPE=auto`: bf16 on CPUs with native bf16 instructions, else fp32).
"""

from __future__ import annotations

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


def build_model(directory: Path) -> None:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPTNeoConfig, GPTNeoForCausalLM, PreTrainedTokenizerFast

    corpus = [f"Customer question number {n} about invoices, refunds and passwords." for n in range(200)]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=2000, special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    bpe.train_from_iterator(corpus, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>")
    # Pad to GPT-2's vocabulary so the output layer costs what the real model's does.
    tokenizer.add_tokens([f"<extra{n}>" for n in range(50257 - len(tokenizer))])
    tokenizer.save_pretrained(directory)
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
    torch.manual_seed(0)
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
    return {"total": total, "first_token_s": reply.timings["first_token_ms"] / 1000, "tokens": reply.completion_tokens}


def raw_generate(loaded, prompt: str, new_tokens: int) -> float:  # type: ignore[no-untyped-def]
    import torch

    ids = loaded.tokenizer(prompt, return_tensors="pt")["input_ids"]
    started = time.perf_counter()
    with torch.inference_mode():
        loaded.model.generate(
            ids, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False, pad_token_id=0
        )
    return time.perf_counter() - started


def main() -> None:
    import psutil
    import torch

    sys.path.insert(0, str(ROOT))
    from workers.generation.model import resolve_dtype

    torch.set_num_threads(os.cpu_count() or 1)
    with tempfile.TemporaryDirectory(prefix="neo-genbench-") as temporary:
        var_dir = Path(temporary)
        model_dir = var_dir / "gpt-neo-125m-shape"
        build_model(model_dir)
        dtype = resolve_dtype("auto", "cpu")  # what a worker on this CPU runs: bf16 where native
        setup_django(var_dir, model_dir, dtype)
        from channels.layers import get_channel_layer

        from workers.generation.loading import holder, load_model

        bot = make_bot()
        question = "How long do refunds take to reach my card?"
        loaded = holder.get()
        # The prompt the task path builds, so both sides decode after the same prefill.
        from retrieval.search import search
        from workers.generation.prompt import Passage, build_prompt

        hits = search(knowledge_bases=list(bot.knowledge_bases.all()), query=question, k=5)
        passages = [
            Passage(h.chunk_id, h.document_id, h.document_title, tuple(h.heading_path), h.location, h.text, h.score)
            for h in hits
        ]
        prompt = build_prompt(
            instructions=bot.instructions, passages=passages, turns=[], question=question,
            count_tokens=loaded.count_tokens, context_window=loaded.context_window, answer_budget=NEW_TOKENS,
        )  # fmt: skip
        print(f"prompt   {prompt.token_count} tokens, {len(prompt.passages)} passages; model {loaded.dtype}")

        # The in-memory layer keeps at most 100 messages per channel; nobody listens here.
        get_channel_layer().capacity = 10_000
        task_path_reply(bot, question)  # warm
        raw_generate(loaded, prompt.text, 2)
        short_bot = make_bot(new_tokens=4)  # the same prompt, for first-token timings
        # Raw and ours alternate, so drift on a noisy machine hits both sides alike.
        prefills, firsts = [], []
        for _ in range(FIRST_TOKEN_PAIRS):
            prefills.append(raw_generate(loaded, prompt.text, 1))
            firsts.append(task_path_reply(short_bot, question)["first_token_s"])
        raw_rates, our_rates, token_counts = [], [], []
        for _ in range(3):
            raw_rates.append(
                (NEW_TOKENS - 1) / (raw_generate(loaded, prompt.text, NEW_TOKENS) - statistics.median(prefills))
            )
            run = task_path_reply(bot, question)
            our_rates.append((run["tokens"] - 1) / (run["total"] - run["first_token_s"]))
            token_counts.append(run["tokens"])
        prefill, first = statistics.median(prefills), statistics.median(firsts)
        raw_rate, our_rate = statistics.median(raw_rates), statistics.median(our_rates)
        raw_full = prefill + (NEW_TOKENS - 1) / raw_rate
        overhead_ms = (first - prefill) * 1000
        print(
            f"single   raw generate {raw_rate:.1f} tok/s (prefill {prefill * 1000:.0f} ms); task path "
            f"{our_rate:.1f} tok/s, first token {first * 1000:.0f} ms, {min(token_counts)} tokens "
            f"(medians of {FIRST_TOKEN_PAIRS} first-token and 3 full pairs)"
        )

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
        rates = {}
        for name in ("float32", "bfloat16"):
            other = loaded if name == loaded.dtype else load_model(str(model_dir), device="cpu", dtype=name)
            other_prefill = statistics.median(raw_generate(other, prompt.text, 1) for _ in range(3))
            other_full = statistics.median(raw_generate(other, prompt.text, NEW_TOKENS) for _ in range(3))
            rates[name] = (NEW_TOKENS - 1) / (other_full - other_prefill)
            print(f"dtype    {name}: raw decode {rates[name]:.1f} tok/s, prefill {other_prefill * 1000:.0f} ms")
        bf16_vs_fp32 = rates["bfloat16"] / rates["float32"]
        print(f"memory   RSS {rss:.0f} MB after the concurrency runs")

        print(f"FIGURE stream_tokens_ratio={our_rate / raw_rate:.3f} x")
        print(f"FIGURE first_token_overhead_ms={overhead_ms:.1f} ms")
        print(f"FIGURE batch8_speedup={speedups[8]:.3f} x")
        print(f"FIGURE bf16_vs_fp32_decode={bf16_vs_fp32:.3f} x")
        print(f"FIGURE worker_rss_mb={rss:.0f} MB")


if __name__ == "__main__":
    main()
