"""Tuning a bot's GPT-Neo on its own history: the dataset (what counts, redaction,
duplicates, the split, other organizations kept out), and LoRA training on the tiny
model (perplexity down, checkpoints, cancel and resume, a corrupt checkpoint)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bots.models import ConversationStatus, Feedback, Message
from bots.tuning.examples import build_examples
from tests.factories import (
    BotFactory,
    ChunkFactory,
    ConversationFactory,
    DocumentFactory,
    KnowledgeBaseFactory,
    MessageFactory,
)
from workers.training.dataset import Example, NotEnoughHistory, read_jsonl, write_jsonl
from workers.training.finetune import (
    TrainingCancelled,
    TrainingConfig,
    load_base,
    load_tuned,
    perplexity,
    train_adapter,
)

QUESTIONS = [
    ("How long do refunds take?", "Refunds reach your card within five working days."),
    ("How do I reset my password?", "Use the reset link on the sign-in page."),
    ("Can I change my plan?", "Yes, under Settings then Billing, at any time."),
]


def no_redaction(text: str) -> str:
    return text


def resolved_pair(bot, question: str, answer: str, *, role: str = "agent", **answer_fields):  # type: ignore[no-untyped-def]
    conversation = ConversationFactory(bot=bot, status=ConversationStatus.RESOLVED)
    MessageFactory(conversation=conversation, role="visitor", text=question)
    return MessageFactory(conversation=conversation, role=role, text=answer, **answer_fields)


@pytest.mark.django_db
def test_the_dataset_takes_what_people_stood_behind_in_the_run_time_prompt_format() -> None:
    knowledge_base = KnowledgeBaseFactory()
    bot = BotFactory(organization=knowledge_base.organization, instructions="You are Tally, Tallyho's assistant.")
    bot.knowledge_bases.add(knowledge_base)
    chunk = ChunkFactory(
        document=DocumentFactory(knowledge_base=knowledge_base, title="Billing"),
        text="Refunds go back to the card you paid with. They reach it within five working days of approval.",
    )
    agent = resolved_pair(bot, *QUESTIONS[0])
    rated = resolved_pair(bot, *QUESTIONS[1], role="bot", citations=[{"number": 1, "chunk_id": chunk.pk}])
    rated.conversation.status = ConversationStatus.BOT
    rated.conversation.save()
    Feedback.objects.create(message=rated, rating=1)
    resolved_pair(bot, *QUESTIONS[0])  # the same pair again: dropped
    resolved_pair(bot, "Can I pay by invoice?", "Ask me again, idiot.", moderation_action="block")  # moderated
    unrated = resolved_pair(bot, "Is there an app?", "Not yet.", role="bot")  # nobody vouched for it
    unresolved = ConversationFactory(bot=bot, status=ConversationStatus.AGENT)
    MessageFactory(conversation=unresolved, role="visitor", text="Where is my parcel?")
    MessageFactory(conversation=unresolved, role="agent", text="Let me check.")
    elsewhere = BotFactory()  # another organization's history never reaches this bot
    resolved_pair(elsewhere, "Other company's question", "Other company's answer")

    examples = build_examples(bot, redact=no_redaction, minimum=2)
    answers = [e for e in examples if e.source != "knowledge"]
    assert [(e.source, e.answer) for e in answers] == [
        ("agent", " " + QUESTIONS[0][1]),
        ("rated", " " + QUESTIONS[1][1]),
    ]
    assert answers[0].prompt.startswith("You are Tally, Tallyho's assistant.")
    assert answers[0].prompt.endswith(f"Conversation:\nCustomer: {QUESTIONS[0][0]}\nAssistant:")
    assert "Passages:\n[1] Billing > Refunds\nRefunds go back" in answers[1].prompt
    # The same prompt as chat messages, for a model with a chat template.
    assert [m["role"] for m in answers[0].messages] == ["system", "user"]
    assert answers[0].messages[0]["content"].startswith("You are Tally, Tallyho's assistant.")
    assert answers[0].messages[1]["content"] == QUESTIONS[0][0]
    assert all(not e.messages for e in examples if e.source == "knowledge")
    assert not any("Other company" in e.prompt + e.answer for e in examples)
    assert not any(unrated.text in e.answer for e in examples)
    assert agent.conversation_id != rated.conversation_id
    assert {e.group for e in answers} == {
        f"conversation-{agent.conversation_id}",
        f"conversation-{rated.conversation_id}",
    }
    knowledge = [e for e in examples if e.source == "knowledge"]
    assert knowledge == [
        Example(
            f"document-{chunk.document_id}",
            "Passages:\n[1] Billing > Refunds\nRefunds go back to the card you paid with.",
            " They reach it within five working days of approval.",
            "knowledge",
            knowledge[0].split,
        )
    ]
    assert {e.split for e in examples} >= {"validation"}


@pytest.mark.django_db
def test_each_conversation_lies_wholly_in_one_split() -> None:
    bot = BotFactory()
    for n in range(60):
        conversation = ConversationFactory(bot=bot, status=ConversationStatus.RESOLVED)
        for turn in range(2):
            MessageFactory(conversation=conversation, role="visitor", text=f"Question {n}.{turn}")
            MessageFactory(conversation=conversation, role="agent", text=f"Answer {n}.{turn}")
    examples = build_examples(bot, redact=no_redaction, minimum=50, with_knowledge=False)
    assert len(examples) == 120
    splits: dict[str, set[str]] = {}
    for example in examples:
        splits.setdefault(example.group, set()).add(example.split)
    assert all(len(found) == 1 for found in splits.values())
    held_back = sum(1 for found in splits.values() if found == {"validation"})
    assert 1 <= held_back <= 20
    # The earlier turn is in the prompt of the later one, as at run time.
    second = next(e for e in examples if e.answer == " Answer 3.1")
    assert "Customer: Question 3.0\nAssistant: Answer 3.0\nCustomer: Question 3.1\nAssistant:" in second.prompt


@pytest.mark.django_db
def test_too_little_history_says_how_much_is_needed() -> None:
    bot = BotFactory(name="Tally")
    resolved_pair(bot, *QUESTIONS[0])
    with pytest.raises(NotEnoughHistory, match="Tally has 1 usable answers.*at least 50 are needed"):
        build_examples(bot, redact=no_redaction)


@pytest.mark.django_db
def test_personal_data_is_redacted_before_anything_is_written(tmp_path: Path) -> None:
    bot = BotFactory()
    resolved_pair(
        bot,
        "I'm jane.miller@example.com, card 4111 1111 1111 1111, where is my refund?",
        "Sent today; call us on +1 415 555 0134 if it has not arrived by Friday.",
    )
    examples = build_examples(bot, minimum=1, with_knowledge=False)
    path = tmp_path / "train.jsonl"
    assert write_jsonl(examples, path) == 1
    written = path.read_text()
    for secret in ("jane.miller@example.com", "4111 1111 1111 1111", "415 555 0134"):
        assert secret not in written
    assert "[email]" in written and "[card number]" in written and "[phone]" in written
    assert read_jsonl(path) == examples
    assert set(json.loads(written.splitlines()[0])) == {"group", "prompt", "answer", "source", "split", "messages"}


def support_examples(count: int = 60) -> list[Example]:
    examples = []
    for n in range(count):
        question, answer = QUESTIONS[n % len(QUESTIONS)]
        prompt = (
            "Passages:\n[1] Billing > Refunds\nRefunds are paid back.\n\n"
            f"Conversation:\nCustomer: {question}\nAssistant:"
        )
        messages = [
            {"role": "system", "content": "Passages:\n[1] Billing > Refunds\nRefunds are paid back."},
            {"role": "user", "content": question},
        ]
        split = "validation" if n % 10 == 0 else "train"
        examples.append(Example(f"c{n}", prompt, " " + answer, "agent", split, messages))
    return examples


def test_a_few_steps_of_lora_lower_validation_perplexity(tiny_neo_dir: Path, tmp_path: Path) -> None:
    examples = support_examples()
    progress = []
    result = train_adapter(
        base=str(tiny_neo_dir),
        examples=examples,
        config=TrainingConfig(epochs=3, learning_rate=5e-3, batch_size=8),
        output=tmp_path,
        on_progress=progress.append,
    )
    assert result.steps == 21 and [p.step for p in progress] == list(range(1, 22))
    assert progress[-1].eta_seconds == 0 and result.tokens > 0 and result.device == "cpu"
    assert {p.name for p in (tmp_path / "adapter").iterdir()} >= {"adapter_config.json", "adapter_model.safetensors"}

    validation = [e for e in examples if e.split == "validation"]
    tokenizer, base = load_base(str(tiny_neo_dir), "cpu")
    before = perplexity(base, tokenizer, validation)
    tuned = load_tuned(load_base(str(tiny_neo_dir), "cpu")[1], tmp_path / "adapter")
    after = perplexity(tuned, tokenizer, validation)
    assert after < 0.8 * before


def test_a_cancelled_run_resumes_from_its_checkpoint(tiny_neo_dir: Path, tmp_path: Path) -> None:
    config = TrainingConfig(epochs=2, learning_rate=5e-3, batch_size=8, checkpoint_every=4)
    steps: list[int] = []
    with pytest.raises(TrainingCancelled, match="Cancelled at step 5 of 14"):
        train_adapter(
            base=str(tiny_neo_dir), examples=support_examples(), config=config, output=tmp_path,
            on_progress=lambda p: steps.append(p.step), cancelled=lambda: bool(steps) and steps[-1] >= 5,
        )  # fmt: skip
    assert not (tmp_path / "adapter").exists()
    resumed = train_adapter(base=str(tiny_neo_dir), examples=support_examples(), config=config, output=tmp_path)
    assert resumed.resumed_from == 5 and resumed.steps == 14 and not resumed.notes
    assert (tmp_path / "adapter" / "adapter_model.safetensors").exists()


def test_a_corrupt_checkpoint_is_set_aside_and_training_starts_over(tiny_neo_dir: Path, tmp_path: Path) -> None:
    config = TrainingConfig(epochs=1, learning_rate=5e-3, batch_size=8, checkpoint_every=2)
    with pytest.raises(TrainingCancelled):
        train_adapter(
            base=str(tiny_neo_dir), examples=support_examples(), config=config, output=tmp_path,
            cancelled=lambda: True,
        )  # fmt: skip
    (tmp_path / "checkpoint" / "state.pt").write_bytes(b"not a checkpoint")
    result = train_adapter(base=str(tiny_neo_dir), examples=support_examples(), config=config, output=tmp_path)
    assert result.resumed_from == 0 and result.steps == 7
    assert "could not be read" in result.notes[0]
    assert (tmp_path / "checkpoint.corrupt").exists()


@pytest.mark.parametrize(
    "fields", [{"epochs": 0}, {"rank": 0}, {"learning_rate": 2.0}, {"batch_size": 0}, {"max_tokens": 4}]
)
def test_bad_settings_are_refused_with_a_reason(fields: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be|≥"):
        TrainingConfig(**fields)  # type: ignore[arg-type]


def test_messages_are_stored_in_order(db) -> None:  # type: ignore[no-untyped-def]
    """The dataset reads prompts by creation time; messages created one after another sort that way."""
    conversation = ConversationFactory()
    first = MessageFactory(conversation=conversation)
    second = MessageFactory(conversation=conversation, role="agent", text="Five days.")
    assert list(Message.objects.filter(conversation=conversation).order_by("created_at", "pk")) == [first, second]
