"""A bot's fixed prompt head is prefilled once: later prompts that open with it prefill
only the rest, and decode exactly what a whole prefill would."""

from __future__ import annotations

import threading

import pytest
import torch

from workers.generation.adapters import adapter_rows
from workers.generation.batching import BatchScheduler
from workers.generation.kv_cache import GrowingCache
from workers.generation.loading import load_model
from workers.generation.prefix_cache import MIN_SHARED_TOKENS, PrefixCache, prefill, shared_length
from workers.generation.prompt import GUIDANCE, Passage, Turn, build_prompt
from workers.generation.sampling import SamplingParameters
from workers.generation.streaming import stream_text

INSTRUCTIONS = "You are the help desk of Acme Bank. Be brief and kind.\n[canary-0123456789ab]"
QUESTIONS = ["How long do refunds take?", "How do I reset my password?", "Can I close my account online?"]


def passage(number: int, text: str) -> Passage:
    return Passage(number, number, f"Doc {number}", (), "", text, 1.0)


PASSAGES = [
    [passage(1, "Refunds reach your card within five working days.")],
    [passage(2, "Reset your password from the sign-in page.")],
    [],
]


@pytest.fixture(scope="module", params=["gpt_neo", "llama"])
def loaded(request, tiny_model_dir):
    return load_model(str(tiny_model_dir(request.param)), device="cpu", dtype="float32")


def prompt_for(loaded, question: str, passages: list[Passage], turns: tuple[Turn, ...] = ()):  # type: ignore[no-untyped-def]
    return build_prompt(
        instructions=INSTRUCTIONS, passages=passages, turns=turns, question=question,
        count_tokens=loaded.count_tokens, context_window=loaded.context_window, answer_budget=20,
        chat=loaded.render_chat if loaded.has_chat_template else None,
    )  # fmt: skip


def token_ids(loaded, text: str, chat: bool) -> list[int]:  # type: ignore[no-untyped-def]
    return loaded.tokenizer(text, add_special_tokens=not chat)["input_ids"]


def whole_prefill(loaded, ids: list[int]):  # type: ignore[no-untyped-def]
    with torch.inference_mode():
        return loaded.model(input_ids=torch.tensor([ids]), cache=GrowingCache(), use_cache=True, logits_to_keep=1)


def test_every_prompt_of_a_bot_opens_with_the_same_head(loaded) -> None:
    prompts = [prompt_for(loaded, q, p) for q, p in zip(QUESTIONS, PASSAGES, strict=True)]
    heads = {prompt.head for prompt in prompts}
    assert len(heads) == 1
    head = heads.pop()
    assert head.endswith(GUIDANCE) and "[canary-0123456789ab]" in head
    assert all(prompt.text.startswith(head) and len(prompt.text) > len(head) for prompt in prompts)
    # Nothing of the question or the passages is in it.
    assert "Refunds reach" not in head and QUESTIONS[0] not in head


def test_a_prompt_that_opens_with_a_cached_head_gets_the_same_logits_and_cache(loaded) -> None:
    loaded.prefixes = PrefixCache()
    first, second = (prompt_for(loaded, q, p) for q, p in zip(QUESTIONS[:2], PASSAGES[:2], strict=True))
    first_ids, second_ids = token_ids(loaded, first.text, first.chat), token_ids(loaded, second.text, second.chat)
    shared = shared_length(first_ids, token_ids(loaded, first.head, first.chat))
    assert shared >= MIN_SHARED_TOKENS
    assert first_ids[:shared] == second_ids[:shared]

    with torch.inference_mode():
        prefill(loaded, first_ids, shared=shared)  # computes and keeps the head
        assert (len(loaded.prefixes), loaded.prefixes.hits) == (1, 0)
        reused = prefill(loaded, second_ids, shared=shared)
    assert loaded.prefixes.hits == 1
    whole = whole_prefill(loaded, second_ids)
    torch.testing.assert_close(reused.logits, whole.logits, rtol=1e-4, atol=1e-4)
    for ours, theirs in zip(reused.cache.layers, whole.cache.layers, strict=True):
        assert ours.keys.shape == theirs.keys.shape
        torch.testing.assert_close(ours.keys, theirs.keys, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(ours.values, theirs.values, rtol=1e-4, atol=1e-4)


def test_replies_decode_the_same_with_and_without_the_cache_alone_and_batched(loaded) -> None:
    params = SamplingParameters(max_new_tokens=12)
    prompts = [prompt_for(loaded, q, p) for q, p in zip(QUESTIONS, PASSAGES, strict=True)]

    def reply(prompt, scheduler=None) -> str:  # type: ignore[no-untyped-def]
        pieces = stream_text(
            loaded, prompt.text, params, stop_sequences=(), scheduler=scheduler,
            add_special_tokens=not prompt.chat, head=prompt.head,
        )  # fmt: skip
        return "".join(pieces)

    loaded.prefixes = None
    expected = [reply(prompt) for prompt in prompts]
    loaded.prefixes = PrefixCache()
    assert [reply(prompt) for prompt in prompts] == expected
    assert (len(loaded.prefixes), loaded.prefixes.hits, loaded.prefixes.misses) == (1, 2, 1)

    scheduler, results = BatchScheduler(loaded), [""] * len(prompts)

    def one(index: int) -> None:
        results[index] = reply(prompts[index], scheduler)

    threads = [threading.Thread(target=one, args=(n,)) for n in range(len(prompts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    scheduler.close()
    assert results == expected
    assert loaded.prefixes.hits == 5


def test_an_adapter_has_heads_of_its_own(loaded) -> None:
    """A tuned adapter changes the keys and values: its head is never another's."""
    cache = PrefixCache()
    layers = [(torch.zeros(1, 2, 20, 4), torch.zeros(1, 2, 20, 4))]
    cache.put(None, tuple(range(20)), layers)
    assert cache.get("bot-1-v2", tuple(range(20))) is None
    assert cache.get(None, tuple(range(20))) is layers
    assert cache.get(None, tuple(range(19))) is None
    with torch.inference_mode(), adapter_rows(loaded.adapters, [None]):
        loaded.prefixes = PrefixCache()
        ids = token_ids(loaded, prompt_for(loaded, QUESTIONS[0], PASSAGES[0]).text, loaded.has_chat_template)
        prefill(loaded, ids, shared=MIN_SHARED_TOKENS, adapter="bot-1-v2")
        prefill(loaded, ids, shared=MIN_SHARED_TOKENS)
    assert (len(loaded.prefixes), loaded.prefixes.hits) == (2, 0)


def test_short_heads_and_whole_prompts_are_prefilled_as_they_are(loaded) -> None:
    loaded.prefixes = PrefixCache()
    ids = token_ids(loaded, prompt_for(loaded, QUESTIONS[0], PASSAGES[0]).text, loaded.has_chat_template)
    with torch.inference_mode():
        prefill(loaded, ids, shared=MIN_SHARED_TOKENS - 1)
        prefill(loaded, ids, shared=len(ids))  # no token left to choose the first answer token from
        prefill(loaded, ids, shared=0)
    assert (len(loaded.prefixes), loaded.prefixes.hits, loaded.prefixes.misses) == (0, 0, 0)


def test_the_cache_keeps_the_most_recent_heads_within_its_memory() -> None:
    def layers() -> list[tuple[torch.Tensor, torch.Tensor]]:
        return [(torch.zeros(1, 1, 16, 16), torch.zeros(1, 1, 16, 16))]  # 2 KiB

    cache = PrefixCache(max_bytes=5 * 1024)
    for head in range(3):
        cache.put(None, (head,), layers())
    assert cache.get(None, (0,)) is None  # the oldest went first
    assert cache.get(None, (1,)) is not None  # used: now the most recent
    cache.put(None, (3,), layers())
    assert cache.get(None, (2,)) is None and cache.get(None, (1,)) is not None
    cache.put(None, (9,), [(torch.zeros(1, 1, 64, 16), torch.zeros(1, 1, 64, 16))])  # larger than all of it
    assert cache.get(None, (9,)) is None and len(cache) == 2


def test_the_shared_length_stops_where_the_head_was_tokenized_differently() -> None:
    assert shared_length([1, 2, 3, 4, 5], [1, 2, 3]) == 3
    assert shared_length([1, 2, 9, 4, 5], [1, 2, 3]) == 2  # the head's last token merged with what follows
    assert shared_length([1, 2], [1, 2, 3]) == 2
    assert shared_length([], [1]) == 0
