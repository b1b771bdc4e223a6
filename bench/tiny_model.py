"""A tiny GPT-Neo for benchmarks (as tests/conftest.py's `tiny_neo_dir`): random weights
from a config, and a byte-level BPE trained on the demo help centre, so the model's
words are the knowledge base's. Nothing is downloaded."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HELP_CENTRE = ROOT / "neo_support" / "demo" / "help_centre"


def build_tiny_model(directory: Path, *, hidden: int = 32, layers: int = 2, vocab_size: int = 1000) -> None:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPTNeoConfig, GPTNeoForCausalLM, PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    bpe.train_from_iterator([page.read_text(encoding="utf-8") for page in sorted(HELP_CENTRE.glob("*.md"))], trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>", bos_token="<|endoftext|>")
    tokenizer.save_pretrained(directory)
    config = GPTNeoConfig(
        vocab_size=len(tokenizer),
        max_position_embeddings=1024,
        hidden_size=hidden,
        num_layers=layers,
        num_heads=2,
        attention_types=[[["global", "local"], layers // 2]],
        window_size=64,
        intermediate_size=hidden * 2,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(0)
    GPTNeoForCausalLM(config).save_pretrained(directory)


def pretrain_on_help_centre(directory: Path, *, steps: int = 300, window: int = 128, seed: int = 0) -> float:
    """Train the whole tiny model briefly on the help centre's text, so it is a base that
    knows the domain's language, as GPT-Neo knows English, rather than random weights
    (with 0.02-scale tied embeddings no hidden state reaches a logit above about 1, and
    no adapter could move a random model's perplexity far). Returns the final loss."""
    import random

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(directory)
    model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32)
    text = "\n\n".join(page.read_text(encoding="utf-8") for page in sorted(HELP_CENTRE.glob("*.md")))
    ids = tokenizer(text)["input_ids"]
    rng = random.Random(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    loss = torch.tensor(0.0)
    for _ in range(steps):
        starts = [rng.randrange(0, len(ids) - window - 1) for _ in range(16)]
        batch = torch.tensor([ids[s : s + window] for s in starts])
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    model.save_pretrained(directory)
    return float(loss.detach())
