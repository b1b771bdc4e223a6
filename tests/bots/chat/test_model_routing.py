"""One deployment serving several base models: a bot chooses one of NEO_MODELS, its
replies go to that model's generation queue and are written by that model; the others
keep NEO_MODEL on the queue `generation`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError

from bots.chat.services import conversation_ask, conversation_start
from bots.services import bot_update
from neo_support.model_queues import generation_queue, queue_models, served_models
from neo_support.redis_client import get_redis
from tests.bots.chat.test_replies import REFUNDS, ask
from tests.factories import BotFactory, KnowledgeBaseFactory, MembershipFactory
from workers.generation.loading import holders_reset


def test_each_served_model_has_a_stable_queue_of_its_own() -> None:
    default = "EleutherAI/gpt-neo-125M"
    assert generation_queue("", default_model=default) == generation_queue(default, default_model=default)
    assert generation_queue(default, default_model=default) == "generation"
    qwen = generation_queue("Qwen/Qwen2.5-0.5B-Instruct", default_model=default)
    assert qwen.startswith("generation-qwen-qwen2-5-0-5b-instruct-")
    assert qwen == generation_queue("Qwen/Qwen2.5-0.5B-Instruct", default_model=default)
    assert generation_queue("/models/qwen2.5-0.5b-instruct", default_model=default) != qwen
    assert served_models(default, ["a", "", default, "a"]) == (default, "a")
    assert list(queue_models(default, ["a"]).values()) == [default, "a"]


@pytest.fixture
def two_models(settings, tiny_model_dir: Callable[[str], Path]) -> Iterator[tuple[str, str]]:
    """NEO_MODEL the tiny GPT-Neo, NEO_MODELS the tiny Llama-family instruction model."""
    neo, llama = str(tiny_model_dir("gpt_neo")), str(tiny_model_dir("llama"))
    settings.NEO_MODEL, settings.NEO_MODELS = neo, [llama]
    settings.NEO_DEVICE, settings.NEO_DTYPE = "cpu", "float32"
    holders_reset()
    yield neo, llama
    holders_reset()


def bots_on_one_knowledge_base(generation: dict[str, float]):  # type: ignore[no-untyped-def]
    from retrieval.services.documents import document_create_from_text
    from retrieval.services.ingestion import documents_ingest_all

    knowledge_base = KnowledgeBaseFactory()
    document = document_create_from_text(knowledge_base=knowledge_base, title="Billing", text=REFUNDS, queue=False)
    documents_ingest_all(documents=[document])
    made = []
    for name in ("Default", "Chosen"):
        bot = BotFactory(
            organization=knowledge_base.organization,
            name=name,
            generation=generation,
            answer_threshold=0.0,
            handoff_threshold=0.0,
        )
        bot.knowledge_bases.add(knowledge_base)
        made.append(bot)
    return made


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("in_process_tasks")
def test_each_bot_is_answered_by_its_own_base_model(two_models: tuple[str, str]) -> None:
    neo, llama = two_models
    default_bot, chosen_bot = bots_on_one_knowledge_base({"temperature": 0, "max_new_tokens": 8})
    bot_update(bot=chosen_bot, base_model=llama)
    _, default_reply = ask(default_bot)
    _, chosen_reply = ask(chosen_bot)
    assert default_reply.timings["mode"] == chosen_reply.timings["mode"] == "generative"
    assert default_reply.timings["model"] == neo and chosen_reply.timings["model"] == llama


@pytest.mark.django_db(transaction=True)
def test_with_workers_a_reply_is_queued_on_its_models_queue(settings, redis_url, two_models) -> None:  # type: ignore[no-untyped-def]
    """Read back from Redis itself: the task message sits in the chosen model's queue,
    which only that model's workers consume; the default bot's sits in `generation`."""
    from kombu import Queue

    from neo_support.celery import app

    _, llama = two_models
    settings.NEO_TASKS_IN_PROCESS = False
    get_redis.cache_clear()
    client = get_redis()
    queue = generation_queue(llama, default_model=settings.NEO_MODEL)
    # Declared as settings declare it when NEO_MODELS names the model at start-up.
    app.amqp.queues.add(Queue(queue, routing_key=queue))
    default_bot, chosen_bot = BotFactory(), BotFactory()
    bot_update(bot=chosen_bot, base_model=llama)
    client.delete(queue, "generation")
    try:
        conversation_ask(conversation=conversation_start(bot=chosen_bot, visitor_id="v1"), text="Refunds?")
        assert (client.llen(queue), client.llen("generation")) == (1, 0)
        conversation_ask(conversation=conversation_start(bot=default_bot, visitor_id="v2"), text="Refunds?")
        assert (client.llen(queue), client.llen("generation")) == (1, 1)
    finally:
        client.delete(queue, "generation")
        del app.amqp.queues[queue]


@pytest.mark.django_db
def test_only_a_served_model_can_be_chosen_and_one_no_longer_served_falls_back(settings, two_models) -> None:  # type: ignore[no-untyped-def]
    neo, llama = two_models
    bot = BotFactory()
    with pytest.raises(ValidationError, match="is not served here"):
        bot_update(bot=bot, base_model="someone/else")
    bot.refresh_from_db()
    assert bot.base_model == "" and bot.answering_model == neo
    bot_update(bot=bot, base_model=llama)
    assert bot.answering_model == llama
    settings.NEO_MODELS = []  # the operator stopped serving it: NEO_MODEL answers
    assert bot.answering_model == neo


@pytest.mark.django_db
def test_the_persona_section_offers_the_served_models(client, settings, two_models) -> None:  # type: ignore[no-untyped-def]
    neo, llama = two_models
    membership = MembershipFactory(role="admin")
    client.force_login(membership.user)
    bot = BotFactory(organization=membership.organization, name="Helper")
    page = client.get(f"/dashboard/bots/{bot.pk}/").content.decode()
    assert f'<option value="" selected>{neo} (the default)</option>' in page
    assert f'<option value="{llama}">{llama}</option>' in page
    persona = {
        "section": "persona", "name": "Helper", "answer_mode": "generative", "temperature": "0",
        "top_p": "1", "max_new_tokens": "50", "repetition_penalty": "1",
    }  # fmt: skip
    assert client.post(f"/dashboard/bots/{bot.pk}/", {**persona, "base_model": llama}).status_code == 302
    bot.refresh_from_db()
    assert bot.base_model == llama
    refused = client.post(f"/dashboard/bots/{bot.pk}/", {**persona, "base_model": "someone/else"})
    assert refused.status_code == 200 and b"Select a valid choice" in refused.content
    bot.refresh_from_db()
    assert bot.base_model == llama
    settings.NEO_MODELS = []  # one model served: nothing to choose
    assert 'name="base_model"' not in client.get(f"/dashboard/bots/{bot.pk}/").content.decode()


def test_health_reports_each_served_model_from_its_own_workers(settings, redis_url, two_models) -> None:  # type: ignore[no-untyped-def]
    """A worker of the chosen model's queue reports it under "models" only; /healthz's
    model check (NEO_MODEL) does not mistake it for the default model."""
    from neo_support.health import check_model
    from neo_support.heartbeat import WorkerBeat, heartbeat_clear, heartbeat_write

    _, llama = two_models
    settings.NEO_TASKS_IN_PROCESS = False
    get_redis.cache_clear()
    beat = WorkerBeat(hostname="gen-llama", pid=1, queues=[generation_queue(llama, default_model=settings.NEO_MODEL)])
    loaded = {"state": "loaded", "name": llama, "device": "cpu", "dtype": "float32"}
    heartbeat_write(get_redis(), beat=beat, ttl_seconds=30, details={"models": [loaded]})
    try:
        assert check_model(llama) == {"ok": True, **loaded}
        assert check_model()["state"] == "unknown"
    finally:
        heartbeat_clear(get_redis(), beat=beat)


def test_the_command_lists_each_models_queue_for_the_operator(settings, two_models) -> None:  # type: ignore[no-untyped-def]
    from io import StringIO

    from django.core.management import CommandError, call_command

    neo, llama = two_models
    out = StringIO()
    call_command("generation_queues", stdout=out)
    assert out.getvalue().splitlines() == [
        f"generation\t{neo}",
        f"{generation_queue(llama, default_model=neo)}\t{llama}",
    ]
    for model, queue in ((neo, "generation"), (llama, generation_queue(llama, default_model=neo))):
        one = StringIO()
        call_command("generation_queues", "--queue-of", model, stdout=one)
        assert one.getvalue() == f"{queue}\n"
    with pytest.raises(CommandError, match=f"org/else is not served here; one of: {neo}, {llama}"):
        call_command("generation_queues", "--queue-of", "org/else")
