"""A whole reply over the chat socket from an instruction model (a tiny Llama-family
model with a chat template): the prompt is rendered in its chat format, and the reply is
streamed, screened, saved and acknowledged as GPT-Neo's are."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from channels.db import database_sync_to_async

from bots.models import Message
from neo_support import rate_limits
from tests.bots.chat.test_protocol import REFUNDS, Client, ask
from tests.factories import BotFactory, KnowledgeBaseFactory
from workers.generation import model as generation_model
from workers.generation.loading import holder

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("in_process_tasks"),
]


@pytest.fixture(autouse=True)
def fresh_limits() -> Iterator[None]:
    """The rate limiters' Redis storage belongs to the event loop that first used it:
    another test's loop, closed by now, unless they are made afresh (as test_protocol does)."""
    rate_limits.rate_reset()
    rate_limits._items.cache_clear()
    yield
    rate_limits.rate_reset()
    rate_limits._items.cache_clear()


@pytest.fixture
def prompts(settings, tiny_model_dir: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """NEO_MODEL is the tiny Llama; every prompt rendered with its chat template is kept."""
    settings.NEO_MODEL = str(tiny_model_dir("llama"))
    settings.NEO_DEVICE, settings.NEO_DTYPE = "cpu", "float32"
    rendered: list[str] = []
    real = generation_model.render_chat

    def keep(tokenizer: object, messages: Sequence[dict[str, str]]) -> str:
        rendered.append(real(tokenizer, messages))
        return rendered[-1]

    monkeypatch.setattr(generation_model, "render_chat", keep)
    holder.reset()
    yield rendered
    holder.reset()


@pytest.fixture
def bot(db):  # type: ignore[no-untyped-def]
    from retrieval.services.documents import document_create_from_text
    from retrieval.services.ingestion import documents_ingest_all

    knowledge_base = KnowledgeBaseFactory()
    document = document_create_from_text(knowledge_base=knowledge_base, title="Billing", text=REFUNDS, queue=False)
    documents_ingest_all(documents=[document])
    bot = BotFactory(
        organization=knowledge_base.organization,
        allowed_origins=["https://shop.example"],
        instructions="You are Tally, Tallyho's assistant.",
        answer_mode="generative",
        generation={"temperature": 0, "max_new_tokens": 12},
        answer_threshold=0.0,
        handoff_threshold=0.0,
    )
    bot.knowledge_bases.add(knowledge_base)
    return bot


async def test_an_instruction_model_answers_a_whole_reply_over_the_socket(bot, prompts: list[str], settings) -> None:  # type: ignore[no-untyped-def]
    async with Client(bot.public_key) as client:
        await client.hello()
        events = await ask(client)
    assert events[0]["type"] == "ack"
    deltas = [e for e in events if e["type"] == "delta"]
    done = events[-1]
    # Random weights write random text, which the output gate may hold back: the prompt,
    # the model and the stream are what is checked here, not the words.
    assert done["type"] == "done" and done["status"] in ("done", "blocked")
    if done["status"] == "done":
        assert deltas and "".join(d["text"] for d in deltas) == done["text"]
    reply = await database_sync_to_async(Message.objects.get)(pk=done["message_id"])
    assert reply.timings["mode"] == "generative" and reply.model_version == "base"
    assert reply.timings["model"] == settings.NEO_MODEL  # the bot page's cost per answer names it
    assert reply.text == done["text"] and 0 < reply.completion_tokens <= 12
    # The reply's prompt was the model's chat format: the bot's instructions and the
    # passage in the system turn, the question as the user's, the assistant's header last.
    prompt = next(p for p in prompts if "How long do refunds take?" in p)
    assert prompt.startswith("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are Tally")
    assert "Refunds reach your card within five working days." in prompt and "Customer:" not in prompt
    assert prompt.endswith("<|start_header_id|>assistant<|end_header_id|>\n\n")
    assert reply.prompt_tokens == len(holder.get().tokenizer(prompt, add_special_tokens=False)["input_ids"])
