#!/usr/bin/env python
"""Tuning benchmark: a bot's GPT-Neo tuned on a synthetic support history.

- history: `load_demo`'s help centre (22 pages) in a throwaway SQLite database, and a
  support history generated from it: `--pairs` (2,000) question and answer pairs in
  resolved conversations of one to three turns, the questions phrased from each
  passage's headings, the agents' answers its opening sentences (with the passage cited
  as the bot would), a few with personal data to redact;
- dataset: `bots.tuning.examples.build_examples`, as a tuning run builds it
  (redaction, duplicates, split by conversation, knowledge-base passages);
- quality: validation perplexity of the tiny model (bench/tiny_model.py, 4 layers, 64
  wide, first trained briefly on the help centre's text so that it is a base model that
  knows the domain's words, as GPT-Neo knows English) before and after LoRA training, on
  the held-back conversations; the ratio is the figure (target ≤ 0.8). The baseline is
  the same base model, in the same run;
- throughput: training tokens per second on the tiny model, and on a GPT-Neo-125M-shaped
  model (random weights, 12 layers, 768 wide, GPT-2's vocabulary) for `--steps-125m`
  steps, on `--device` (cpu, or cuda where there is a GPU: the card's name is printed);
- memory: resident memory of a fresh process that loads the 125M-shaped model through
  the production loader, then three LoRA adapters of rank 8 (workers/generation/adapters).

Ends with FIGURE lines.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from generation import build_model as build_125m  # bench/generation.py, beside this script  # noqa: E402
from tiny_model import build_tiny_model, pretrain_on_help_centre  # noqa: E402

TEMPLATES = [
    "How do I {topic}?",
    "Where do I find {topic}?",
    "Can you help me with {topic}?",
    "I have a question about {topic}.",
    "What should I know about {topic}?",
    "Quick one: {topic}?",
    "Is there a way to sort out {topic}?",
    "{topic} - how does that work?",
]


def django_setup(var_dir: Path) -> None:
    os.environ.update(
        NEO_VAR_DIR=str(var_dir), HF_HUB_OFFLINE="1", DJANGO_SETTINGS_MODULE="neo_support.settings", NEO_WARM_UP="0"
    )
    for name in ("DATABASE_URL", "REDIS_URL", "NEO_MODEL"):
        os.environ.pop(name, None)
    import django

    django.setup()


def make_history(pairs: int, seed: int = 0) -> tuple[object, int]:
    """The demo bot with `pairs` answered questions in resolved conversations."""
    from django.core.management import call_command

    from bots.models import Bot, Conversation, ConversationStatus, Message
    from retrieval.models import Chunk

    call_command("migrate", verbosity=0)
    call_command("load_demo", verbosity=0)
    bot = Bot.objects.get(organization__slug="tallyho-demo")
    chunks = list(Chunk.objects.filter(document__knowledge_base__bots=bot).select_related("document").order_by("pk"))
    rng = random.Random(seed)
    made = 0
    conversation_number = 0
    while made < pairs:
        conversation_number += 1
        conversation = Conversation.objects.create(
            bot=bot, visitor_id=f"synthetic-{conversation_number}", status=ConversationStatus.RESOLVED
        )
        rows = []
        for _ in range(min(rng.randint(1, 3), pairs - made)):
            chunk = rng.choice(chunks)
            topic = (chunk.heading_path[-1] if chunk.heading_path else chunk.document.title).lower()
            question = rng.choice(TEMPLATES).format(topic=topic)
            if rng.random() < 0.03:
                question += f" My email is customer{made}@example.com."
            sentences = [s for s in chunk.text.replace("\n", " ").split(". ") if s.strip()]
            answer = ". ".join(sentences[: rng.randint(1, 2)]).strip().rstrip(".") + ". [1]"
            rows.append(Message(conversation=conversation, role="visitor", text=question))
            citation = {"number": 1, "chunk_id": chunk.pk, "document_id": chunk.document_id, "title": ""}
            rows.append(Message(conversation=conversation, role="agent", text=answer, citations=[citation]))
            made += 1
        Message.objects.bulk_create(rows)
    return bot, conversation_number


def rss_with_adapters(model_dir: Path, adapters: list[Path]) -> dict[str, float]:
    """A fresh process: RSS after the production loader, then after each adapter."""
    code = f"""
import json, os, sys
sys.path.insert(0, {str(ROOT)!r})
from pathlib import Path
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
from workers.generation.loading import load_model
before = rss()
loaded = load_model({str(model_dir)!r}, device="cpu", dtype="float32")
base = rss()
sizes = []
for n, folder in enumerate({[str(p) for p in adapters]!r}):
    loaded.adapters.ensure(f"v{{n}}", Path(folder))
    sizes.append(rss())
print(json.dumps({{"python": before, "base": base, "adapters": sizes}}))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=600)
    if done.returncode != 0:
        raise SystemExit(done.stderr[-2000:])
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def random_adapters(model_dir: Path, out: Path, count: int, rank: int) -> list[Path]:
    """LoRA adapters for the 125M shape, with non-zero random weights (as trained ones)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from workers.generation.adapters import lora_target_modules

    folders = []
    for n in range(count):
        torch.manual_seed(n)
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
        targets = lora_target_modules(model)
        config = LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=targets, init_lora_weights=False)
        folder = out / f"adapter-{n}"
        get_peft_model(model, config).save_pretrained(folder)
        folders.append(folder)
    return folders


def train_125m_throughput(model_dir: Path, steps: int, device: str) -> float:
    """Tokens per second of LoRA training steps on the 125M shape (batch 4 × 256 tokens)."""
    from workers.training.dataset import Example
    from workers.training.finetune import TrainingConfig, train_adapter

    filler = "Refunds reach your card within five working days of the return arriving. " * 40
    examples = [Example(f"c{n}", filler, " " + filler[:400], "agent") for n in range(4 * steps)]
    with tempfile.TemporaryDirectory() as out:
        result = train_adapter(
            base=str(model_dir),
            examples=examples,
            config=TrainingConfig(epochs=1, batch_size=4, max_tokens=256, checkpoint_every=10_000),
            output=Path(out),
            device=device,
        )
    return result.tokens_per_second


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=2000, help="question/answer pairs in the history (default 2000)")
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--learning-rate", type=float, default=1e-2, help="high: the tiny model is random")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--steps-125m", type=int, default=8, help="training steps timed on the 125M shape")
    parser.add_argument("--pretrain-steps", type=int, default=300, help="the tiny base's training on the help centre")
    arguments = parser.parse_args()
    if arguments.pairs < 100:
        parser.error("--pairs must be at least 100")

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        django_setup(tmp_path / "var")
        import torch
        from tqdm import tqdm

        from bots.tuning.examples import build_examples
        from workers.moderation.pipeline import Policy  # noqa: F401 - loads the recognisers' code now
        from workers.training.finetune import TrainingConfig, load_base, load_tuned, perplexity, train_adapter

        device_name = torch.cuda.get_device_name(0) if arguments.device.startswith("cuda") else "CPU"
        print(f"device: {arguments.device} ({device_name}), torch {torch.__version__}", flush=True)
        print(f"history: {arguments.pairs} pairs over the demo help centre…", flush=True)
        bot, conversations = make_history(arguments.pairs)
        with tqdm(total=arguments.pairs, desc="dataset", unit="answer", mininterval=2) as bar:
            moment = time.perf_counter()
            examples = build_examples(bot, on_answer=lambda: bar.update(1))  # type: ignore[arg-type]
            dataset_seconds = time.perf_counter() - moment
        train = [e for e in examples if e.split == "train"]
        held_back = [e for e in examples if e.split == "validation" and e.source != "knowledge"]
        print(
            f"  {conversations} conversations; {len(examples)} examples ({len(train)} train, "
            f"{len(held_back)} held-back answers); built in {dataset_seconds:.1f} s",
            flush=True,
        )

        model_dir = tmp_path / "tiny"
        build_tiny_model(model_dir, hidden=64, layers=4)
        moment = time.perf_counter()
        pretrain_loss = pretrain_on_help_centre(model_dir, steps=arguments.pretrain_steps)
        print(
            f"tiny base: pretrained {arguments.pretrain_steps} steps on the help centre "
            f"(loss {pretrain_loss:.2f}, {time.perf_counter() - moment:.0f} s)",
            flush=True,
        )
        tokenizer, base = load_base(str(model_dir), arguments.device)
        base_ppl = perplexity(base, tokenizer, held_back, device=arguments.device)
        config = TrainingConfig(
            epochs=arguments.epochs, rank=arguments.rank, learning_rate=arguments.learning_rate, batch_size=8
        )
        with tqdm(desc="training", unit="step", mininterval=2) as bar:

            def progress(p):  # type: ignore[no-untyped-def]
                bar.total = p.total_steps
                bar.update(p.step - bar.n)
                bar.set_postfix(loss=f"{p.loss:.2f}")

            result = train_adapter(
                base=str(model_dir), examples=examples, config=config, output=tmp_path / "run",
                device=arguments.device, on_progress=progress,
            )  # fmt: skip
        tuned = load_tuned(load_base(str(model_dir), arguments.device)[1], tmp_path / "run" / "adapter")
        tuned_ppl = perplexity(tuned, tokenizer, held_back, device=arguments.device)
        ratio = tuned_ppl / base_ppl
        print(
            f"tiny model: {result.steps} steps, {result.tokens} tokens in {result.seconds:.1f} s; "
            f"validation perplexity {base_ppl:.1f} → {tuned_ppl:.1f} ({ratio:.3f} x)",
            flush=True,
        )

        print("GPT-Neo-125M shape: building, timing training, loading three adapters…", flush=True)
        big = tmp_path / "neo-125m"
        build_125m(big)
        throughput_125m = train_125m_throughput(big, arguments.steps_125m, arguments.device)
        adapters = random_adapters(big, tmp_path / "adapters", 3, arguments.rank)
        adapter_mb = sum(f.stat().st_size for f in adapters[0].rglob("*.safetensors")) / 1e6
        memory = rss_with_adapters(big, adapters)

    elapsed = time.perf_counter() - started
    print(
        f"125M shape: training {throughput_125m:.0f} tokens/s; RSS {memory['python']:.0f} MB (Python) → "
        f"{memory['base']:.0f} MB (base) → " + " → ".join(f"{mb:.0f}" for mb in memory["adapters"]) + " MB "
        f"(3 adapters of {adapter_mb:.1f} MB on disk); {elapsed / 60:.1f} min in all"
    )
    print(f"FIGURE finetune_val_perplexity_base={base_ppl:.2f} perplexity")
    print(f"FIGURE finetune_val_perplexity_tuned={tuned_ppl:.2f} perplexity")
    print(f"FIGURE finetune_perplexity_ratio={ratio:.3f} x")
    print(f"FIGURE finetune_tokens_per_second_tiny_{arguments.device}={result.tokens_per_second:.0f} tokens/s")
    print(f"FIGURE finetune_tokens_per_second_125m_{arguments.device}={throughput_125m:.0f} tokens/s")
    print(f"FIGURE worker_rss_base_125m_mb={memory['base']:.0f} MB")
    print(f"FIGURE worker_rss_base_plus_3_adapters_mb={memory['adapters'][-1]:.0f} MB")
    print(f"FIGURE adapter_rss_each_mb={(memory['adapters'][-1] - memory['base']) / 3:.1f} MB")
    print(f"FIGURE finetune_dataset_seconds={dataset_seconds:.1f} s")


if __name__ == "__main__":
    main()
