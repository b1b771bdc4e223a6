"""Prompts in the model's own chat format when its tokenizer has a chat template (tiny
Llama and Qwen2 tokenizers with their families' templates), the completion prompt when
it has none, and stop conditions that follow."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from workers.generation.loading import load_model
from workers.generation.model import render_chat
from workers.generation.prompt import STOP_SEQUENCES, Passage, Turn, build_prompt, chat_messages
from workers.generation.sampling import GenerationStats, SamplingParameters
from workers.generation.streaming import stream_text

PASSAGE = Passage(7, 3, "Billing", ("Refunds",), "", "Refunds reach your card within five working days.", 0.9)
TURNS = [
    Turn("assistant", "Hi! How can I help?"),  # the widget's greeting, before the customer spoke
    Turn("customer", "Hello"),
    Turn("customer", "I bought a plan"),
    Turn("assistant", "Thanks, which plan?"),
]


def test_chat_messages_hold_instructions_and_passages_in_the_system_message_and_alternate() -> None:
    messages = chat_messages("You are Tallyho's helper.", [PASSAGE], TURNS, "How long do refunds take?")
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    system = messages[0]["content"]
    assert system.startswith("You are Tallyho's helper.") and "[1] Billing > Refunds\nRefunds reach" in system
    assert messages[1]["content"] == "Hello\n\nI bought a plan"  # one side's turns joined
    assert messages[-1]["content"] == "How long do refunds take?"
    assert all("Hi! How can I help?" not in m["content"] for m in messages)


def test_a_question_after_a_customer_turn_joins_it() -> None:
    messages = chat_messages("", [], [Turn("customer", "hi")], "refunds?")
    assert [m["role"] for m in messages] == ["system", "user"] and messages[1]["content"] == "hi\n\nrefunds?"


@pytest.fixture(scope="module")
def llama(tiny_model_dir: Callable[[str], Path]):  # type: ignore[no-untyped-def]
    return load_model(str(tiny_model_dir("llama")), device="cpu", dtype="float32")


def build(loaded, chat: bool):  # type: ignore[no-untyped-def]
    return build_prompt(
        instructions="You are Tallyho's helper.",
        passages=[PASSAGE],
        turns=TURNS,
        question="How long do refunds take?",
        count_tokens=loaded.count_tokens,
        context_window=loaded.context_window,
        answer_budget=50,
        chat=loaded.render_chat if chat else None,
    )


def test_a_model_with_a_chat_template_gets_its_own_format(llama) -> None:  # type: ignore[no-untyped-def]
    assert llama.has_chat_template
    prompt = build(llama, chat=True)
    assert prompt.chat and prompt.stop_sequences == ()
    assert prompt.text.startswith("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are Tallyho's")
    assert prompt.text.endswith(
        "<|start_header_id|>user<|end_header_id|>\n\nHow long do refunds take?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )
    assert "Customer:" not in prompt.text and "[1] Billing > Refunds" in prompt.text
    ids = llama.tokenizer(prompt.text, add_special_tokens=False)["input_ids"]
    assert ids.count(llama.tokenizer.bos_token_id) == 1
    # The completion prompt is still there for it, with its stop sequences.
    completion = build(llama, chat=False)
    assert not completion.chat and completion.stop_sequences == STOP_SEQUENCES
    assert completion.text.endswith("Customer: How long do refunds take?\nAssistant:")


def test_the_chat_prompt_is_fitted_to_the_context_window_like_the_completion_one(llama) -> None:  # type: ignore[no-untyped-def]
    full = build(llama, chat=True)
    llama_small = dataclasses.replace(llama, context_window=full.token_count + 50 - 1)
    fitted = build(llama_small, chat=True)
    assert len(fitted.turns) < len(TURNS) and fitted.token_count <= llama_small.context_window - 50


def test_qwen2_gets_chatml_with_its_system_message(tiny_model_dir: Callable[[str], Path]) -> None:
    qwen = load_model(str(tiny_model_dir("qwen2")), device="cpu", dtype="float32")
    prompt = build(qwen, chat=True)
    assert prompt.text.startswith("<|im_start|>system\nYou are Tallyho's helper.")
    assert "You are a helpful assistant." not in prompt.text  # the template's default system turn is replaced
    assert prompt.text.endswith("<|im_start|>assistant\n")


def test_a_template_that_refuses_a_system_message_gets_it_in_the_first_user_turn(llama) -> None:  # type: ignore[no-untyped-def]
    strict = (
        "{% for message in messages %}{% if message['role'] == 'system' %}"
        "{{ raise_exception('System role not supported') }}{% endif %}"
        "[{{ message['role'] }}] {{ message['content'] }}\n{% endfor %}[assistant]"
    )
    tokenizer = llama.tokenizer
    original = tokenizer.chat_template
    tokenizer.chat_template = strict
    try:
        text = render_chat(tokenizer, chat_messages("Be brief.", [PASSAGE], [], "Refunds?"))
    finally:
        tokenizer.chat_template = original
    assert text.startswith("[user] Be brief.") and text.endswith("Refunds?\n[assistant]")


def test_a_chat_reply_stops_at_the_models_end_token(llama) -> None:  # type: ignore[no-untyped-def]
    """The tiny model's own choice of end: an end list holding the token it decodes first
    gives an empty reply stopped by "eos", as a real instruction model's <|eot_id|> does."""
    prompt = build(llama, chat=True)
    ids = llama.tokenizer(prompt.text, add_special_tokens=False)["input_ids"]
    with torch.inference_mode():
        first = int(llama.model(input_ids=torch.tensor([ids])).logits[0, -1].argmax())
    ends = llama.end_token_ids
    stats = GenerationStats()
    try:
        llama.end_token_ids = frozenset({*ends, first})
        text = "".join(
            stream_text(llama, prompt.text, SamplingParameters(max_new_tokens=20), stop_sequences=(), stats=stats,
                        add_special_tokens=False)
        )  # fmt: skip
    finally:
        llama.end_token_ids = ends
    assert text == "" and stats.stopped_by == "eos" and stats.completion_tokens == 0
