"""Tiny causal language models of each architecture family, built from configs with
random weights and saved to a folder, so tests load them through the production loader.

Nothing downloads. Every family shares one byte-level BPE tokenizer trained on a few
support sentences; the instruction families (Llama, Qwen2) get their own special tokens,
a chat template in the style of their real tokenizers, and end tokens as real ones
declare them: `eos_token_id` a list in `generation_config.json`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

TINY_CORPUS = [
    "Customer: How do I reset my password?\nAssistant: Use the reset link on the sign-in page [1].",
    "Customer: How long do refunds take?\nAssistant: Refunds reach your card within five working days [1].",
    "Passages:\n[1] Billing > Refunds\nRefunds are paid back to the card you used.",
    "Answer the customer's question using only the numbered passages below. Cite the passages you use like [1].",
]

FAMILIES = ("gpt_neo", "gpt2", "llama", "qwen2")

# Llama 3's header format: the system turn first, each turn closed by <|eot_id|>.
LLAMA_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "<|start_header_id|>{{ message['role'] }}<|end_header_id|>\n\n{{ message['content'] | trim }}<|eot_id|>"
    "{% endfor %}{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)
# Qwen2's ChatML: a default system turn when the conversation brings none.
CHATML_TEMPLATE = (
    "{% if messages[0]['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIAL_TOKENS: dict[str, list[str]] = {
    "gpt_neo": ["<|endoftext|>"],
    "gpt2": ["<|endoftext|>"],
    "llama": ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"],
    "qwen2": ["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
}


def _tokenizer(family: str) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=SPECIAL_TOKENS[family], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    bpe.train_from_iterator(TINY_CORPUS * 20, trainer=trainer)
    if family == "llama":
        tokenizer = PreTrainedTokenizerFast(
            tokenizer_object=bpe, bos_token="<|begin_of_text|>", eos_token="<|eot_id|>", pad_token="<|end_of_text|>"
        )
        tokenizer.chat_template = LLAMA_TEMPLATE
    elif family == "qwen2":
        tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>")
        tokenizer.chat_template = CHATML_TEMPLATE
    else:
        tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>", bos_token="<|endoftext|>")
    return tokenizer


def _config(family: str, tokenizer: Any) -> Any:
    from transformers import GPT2Config, GPTNeoConfig, LlamaConfig, Qwen2Config

    vocab = len(tokenizer)
    if family == "gpt_neo":
        return GPTNeoConfig(
            vocab_size=vocab,
            max_position_embeddings=1024,
            hidden_size=32,
            num_layers=2,
            num_heads=2,
            attention_types=[[["global", "local"], 1]],
            window_size=64,
            intermediate_size=64,
            bos_token_id=tokenizer.eos_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
    if family == "gpt2":
        return GPT2Config(
            vocab_size=vocab,
            n_positions=1024,
            n_embd=32,
            n_layer=2,
            n_head=2,
            bos_token_id=tokenizer.eos_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
    ends = [tokenizer.eos_token_id, tokenizer.pad_token_id]  # the turn's end, then the text's
    common: dict[str, Any] = {
        "vocab_size": vocab,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,  # grouped-query attention, as the real ones
        "max_position_embeddings": 1024,
        "eos_token_id": ends,
        "pad_token_id": tokenizer.pad_token_id,
        "tie_word_embeddings": family == "qwen2",
    }
    if family == "llama":
        return LlamaConfig(bos_token_id=tokenizer.bos_token_id, **common)
    return Qwen2Config(**common)


def build_tiny_model(family: str, directory: Path, *, seed: int = 0) -> Path:
    """Save a tiny `family` model (random weights, seeded) and its tokenizer to `directory`."""
    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig

    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; one of {', '.join(FAMILIES)}")
    tokenizer = _tokenizer(family)
    tokenizer.save_pretrained(directory)
    config = _config(family, tokenizer)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    if family in {"llama", "qwen2"}:
        model.generation_config = GenerationConfig(
            bos_token_id=config.bos_token_id, eos_token_id=config.eos_token_id, pad_token_id=config.pad_token_id
        )
    model.save_pretrained(directory)
    return directory
