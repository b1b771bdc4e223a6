"""A bot's tuning run end to end on the tiny GPT-Neo: queued on the `training` queue,
trained with progress in the database, evaluated against the base model, and marked
ready or rejected; refusals, cancellation and a redelivered task."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bots.models import Conversation, ConversationStatus, ModelVersion, ModelVersionStatus
from bots.tuning.services import TuningRefused, model_version_cancel, model_version_start
from bots.tuning.tasks import train_model_version
from neo_support.tasking import wait_for_in_process_tasks
from tests.factories import BotFactory, ConversationFactory, MessageFactory

ANSWERS = [
    ("How long do refunds take?", "Refunds reach your card within five working days."),
    ("How do I reset my password?", "Use the reset link on the sign-in page."),
    ("Can I change my plan?", "Yes, under Settings then Billing, at any time."),
    ("Do you ship to Norway?", "Yes, by courier, in three to four days."),
]
FAST = {"epochs": 2, "learning_rate": 5e-3, "batch_size": 8}


# Conversation ids decide the train/validation split (a hash of each id). The database hands
# out ids that depend on every test before this one, so the tuned model, and whether its
# short answer is more than whitespace, changed with test order (a CI failure): fixed ids.
FIRST_HISTORY_ID = 900_000


def history(bot, conversations: int = 60) -> None:  # type: ignore[no-untyped-def]
    first = FIRST_HISTORY_ID + Conversation.objects.filter(pk__gte=FIRST_HISTORY_ID).count()
    for n in range(conversations):
        question, answer = ANSWERS[n % len(ANSWERS)]
        conversation = ConversationFactory(id=first + n, bot=bot, status=ConversationStatus.RESOLVED)
        MessageFactory(conversation=conversation, role="visitor", text=f"{question} (order {n}, jo{n}@example.com)")
        MessageFactory(conversation=conversation, role="agent", text=answer)


@pytest.fixture
def tuning(settings, tiny_neo, tmp_path: Path):  # type: ignore[no-untyped-def]
    settings.MEDIA_ROOT = tmp_path / "media"
    return tmp_path / "media"


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("in_process_tasks")
def test_a_run_trains_evaluates_and_is_ready_or_rejected_with_its_reasons(tuning: Path) -> None:
    bot = BotFactory(name="Tally")
    history(bot)
    version = model_version_start(bot=bot, options=FAST)
    assert (version.number, version.label, version.status) == (1, "v1", ModelVersionStatus.QUEUED)
    wait_for_in_process_tasks(timeout=300)
    version.refresh_from_db()

    assert version.status == ModelVersionStatus.READY, (version.error, version.metrics)
    assert version.progress["step"] == version.progress["total_steps"] > 0 and version.progress["eta_seconds"] == 0
    assert version.compute["device"] == "cpu" and version.compute["tokens"] > 0
    assert version.examples["train_agent"] + version.examples["validation_agent"] == 60
    base, tuned = version.metrics["base"], version.metrics["tuned"]
    assert set(base) == set(tuned) == {"perplexity", "groundedness", "moderation_pass", "overlap", "answers"}
    assert tuned["perplexity"] < base["perplexity"]
    assert (version.status == ModelVersionStatus.READY) == (version.metrics["regressions"] == [])
    folder = tuning / version.adapter_dir
    assert (folder / "adapter" / "adapter_model.safetensors").exists()
    lines = (folder / "dataset.jsonl").read_text().splitlines()
    assert len(lines) == 60 and "@example.com" not in "".join(lines)
    assert json.loads(lines[0])["prompt"].endswith("\nAssistant:")

    # The same task delivered again changes nothing.
    assert train_model_version(version.pk) == version.status
    # A second run gets the next number.
    bot.refresh_from_db()
    assert bot.model_version is None  # nothing is deployed by a run


@pytest.mark.django_db
def test_too_little_history_bad_settings_and_a_second_run_are_refused(tuning: Path) -> None:
    bot = BotFactory(name="Tally")
    history(bot, conversations=10)
    with pytest.raises(TuningRefused, match="Tally has 10 usable answers.*at least 50"):
        model_version_start(bot=bot)
    history(bot, conversations=45)
    with pytest.raises(TuningRefused, match="Invalid training settings: epochs must be"):
        model_version_start(bot=bot, options={"epochs": 0})
    with pytest.raises(TuningRefused, match="Invalid training settings"):
        model_version_start(bot=bot, options={"layers": 3})
    ModelVersion.objects.create(bot=bot, number=1, base_model="x", status=ModelVersionStatus.TRAINING)
    with pytest.raises(TuningRefused, match="already being tuned"):
        model_version_start(bot=bot)


@pytest.mark.django_db
def test_a_cancelled_run_stops_and_the_bot_keeps_its_version(tuning: Path) -> None:
    bot = BotFactory()
    history(bot)
    version = ModelVersion.objects.create(bot=bot, number=1, base_model=str(tuning), config=FAST)
    model_version_cancel(version=version)
    assert train_model_version(version.pk) == ModelVersionStatus.CANCELLED
    with pytest.raises(TuningRefused, match="only a running one stops"):
        model_version_cancel(version=ModelVersion.objects.get(pk=version.pk))


@pytest.mark.django_db
def test_a_missing_base_model_fails_the_run_with_what_to_do(tuning: Path, settings) -> None:
    bot = BotFactory()
    history(bot)
    version = ModelVersion.objects.create(bot=bot, number=1, base_model="/nonexistent/gpt-neo", config=FAST)
    assert train_model_version(version.pk) == ModelVersionStatus.FAILED
    version.refresh_from_db()
    assert "download_model" in version.error


@pytest.mark.django_db
def test_the_command_exports_the_data_and_runs_here(tuning: Path, tmp_path: Path) -> None:
    from django.core.management import CommandError, call_command

    bot = BotFactory(name="Tally")
    with pytest.raises(CommandError, match="No bot with id 999999"):
        call_command("tune_bot", "999999")
    with pytest.raises(CommandError, match="Tally has 0 usable answers"):
        call_command("tune_bot", str(bot.pk), "--export", str(tmp_path / "out.jsonl"))
    history(bot)
    call_command("tune_bot", str(bot.pk), "--export", str(tmp_path / "out.jsonl"))
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 60
    call_command("tune_bot", str(bot.pk), "--now", "--epochs", "1", "--learning-rate", "0.005")
    version = ModelVersion.objects.get(bot=bot)
    assert version.status in (ModelVersionStatus.READY, ModelVersionStatus.REJECTED)
    with pytest.raises(CommandError, match="Invalid training settings"):
        call_command("tune_bot", str(bot.pk), "--rank", "0")


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("in_process_tasks")
def test_the_whole_loop_history_train_evaluate_deploy_answer_roll_back(tiny_neo) -> None:  # type: ignore[no-untyped-def]
    """On the reply tests' bot (a knowledge base, the tiny model): tune on its history,
    deploy the ready version, a visitor is answered by it, roll back to the base model."""
    from bots.tuning.services import bot_model_deploy
    from retrieval.services.documents import document_create_from_text
    from retrieval.services.ingestion import documents_ingest_all
    from tests.bots.chat.test_replies import REFUNDS, ask
    from tests.factories import KnowledgeBaseFactory

    knowledge_base = KnowledgeBaseFactory()
    documents_ingest_all(
        documents=[document_create_from_text(knowledge_base=knowledge_base, title="Billing", text=REFUNDS, queue=False)]
    )
    bot = BotFactory(
        organization=knowledge_base.organization, generation={"temperature": 0, "max_new_tokens": 12},
        answer_threshold=0.0, handoff_threshold=0.0,
    )  # fmt: skip
    bot.knowledge_bases.add(knowledge_base)
    history(bot)
    version = model_version_start(bot=bot, options=FAST)
    wait_for_in_process_tasks(timeout=300)
    version.refresh_from_db()
    assert version.status == ModelVersionStatus.READY, (version.error, version.metrics)

    bot_model_deploy(bot=bot, version=version)
    _, tuned = ask(bot)
    assert tuned.model_version == "v1" and tuned.timings["mode"] == "generative"
    # A new run in progress changes nothing: v1 keeps answering.
    following = model_version_start(bot=bot, options=FAST, queue=False)
    ModelVersion.objects.filter(pk=following.pk).update(status=ModelVersionStatus.TRAINING)
    _, meanwhile = ask(bot)
    assert meanwhile.model_version == "v1"
    bot_model_deploy(bot=bot, version=None)
    _, base = ask(bot)
    assert base.model_version == "base"


@pytest.mark.django_db
def test_a_run_whose_worker_died_resumes_from_its_checkpoint_and_a_live_one_is_left_alone(tuning: Path) -> None:
    import time as clock

    from django.conf import settings

    from bots.tuning.examples import build_examples
    from bots.tuning.runs import adapter_path
    from workers.training.finetune import TrainingCancelled, TrainingConfig, train_adapter

    bot = BotFactory()
    history(bot)
    version = ModelVersion.objects.create(
        bot=bot, number=1, base_model=settings.NEO_MODEL, config={**FAST, "checkpoint_every": 2},
        status=ModelVersionStatus.TRAINING, progress={"step": 4, "total_steps": 14, "at": clock.time()},
    )  # fmt: skip
    # The killed worker's checkpoint: training stopped at step 4.
    steps: list[int] = []
    with pytest.raises(TrainingCancelled, match="Cancelled at step 4"):
        train_adapter(
            base=settings.NEO_MODEL, examples=build_examples(bot), config=TrainingConfig(**version.config),
            output=adapter_path(version), on_progress=lambda p: steps.append(p.step),
            cancelled=lambda: bool(steps) and steps[-1] >= 4,
        )  # fmt: skip
    # Delivered again while the first worker still reports progress: left alone.
    assert train_model_version(version.pk) == ModelVersionStatus.TRAINING
    # Its progress went stale (the worker died): the next delivery resumes from step 4.
    ModelVersion.objects.filter(pk=version.pk).update(progress={"step": 4, "total_steps": 14, "at": 0})
    assert train_model_version(version.pk) in (ModelVersionStatus.READY, ModelVersionStatus.REJECTED)
    assert ModelVersion.objects.get(pk=version.pk).compute["resumed_from"] == 4


@pytest.mark.django_db
def test_conversations_in_several_languages_make_examples() -> None:
    from bots.tuning.examples import build_examples

    bot = BotFactory()
    pairs = [
        ("Wie lange dauert eine Rückerstattung? Meine E-Mail ist max@example.de", "Fünf Werktage."),
        ("返金にはどのくらいかかりますか？", "5営業日以内にカードに返金されます。"),
        ("¿Cuánto tarda un reembolso?", "Cinco días hábiles."),
    ]
    for n in range(60):
        question, answer = pairs[n % 3]
        conversation = ConversationFactory(bot=bot, status=ConversationStatus.RESOLVED)
        MessageFactory(conversation=conversation, role="visitor", text=f"{question} (#{n})")
        MessageFactory(conversation=conversation, role="agent", text=answer)
    examples = build_examples(bot, with_knowledge=False)
    assert len(examples) == 60
    assert {e.answer.strip() for e in examples} == {answer for _, answer in pairs}
    assert not any("max@example.de" in e.prompt for e in examples)
