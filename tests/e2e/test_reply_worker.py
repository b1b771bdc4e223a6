"""End to end: a visitor message in, a real Celery generation worker on Redis, deltas on
the Redis channel layer, the reply saved. Tiny GPT-Neo, and a tiny Llama-family
instruction model with a chat template; real embedding model and index."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid

import pytest

from bots.chat.services import conversation_ask, conversation_start
from neo_support.redis_client import get_redis
from retrieval.services.documents import document_create_from_text
from retrieval.services.ingestion import documents_ingest_all
from tests.channel_listener import ConversationListener
from tests.conftest import ROOT, clean_env
from tests.e2e.test_worker_process import database_url, wait_for
from tests.factories import BotFactory, KnowledgeBaseFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _model_state(client) -> dict | None:
    model = client.get("/healthz").json()["checks"]["model"]
    return model if model.get("state") == "loaded" else None


def _served_model_state(client, name: str) -> dict | None:
    """`name` in /healthz's list of served models, once a worker reports it loaded."""
    [model] = [model for model in client.get("/healthz").json()["checks"]["models"]["models"] if model["name"] == name]
    return model if model.get("state") == "loaded" else None


@pytest.mark.parametrize(
    ("family", "own_queue"),
    [("gpt_neo", False), ("llama", False), ("llama", True)],
    ids=["gpt-neo", "llama", "llama-chosen-by-the-bot-on-its-own-queue"],
)
def test_a_visitor_message_is_answered_by_a_real_worker_over_redis(
    client, settings, redis_url, tiny_model_dir, tmp_path, family, own_queue
) -> None:
    """own_queue: NEO_MODEL is GPT-Neo, the bot chose the Llama of NEO_MODELS, and the
    only worker consumes that model's queue (neo_support.model_queues)."""
    from kombu import Queue

    from neo_support.celery import app
    from neo_support.model_queues import generation_queue

    model_dir = tiny_model_dir(family)
    default_model = str(tiny_model_dir("gpt_neo") if own_queue else model_dir)
    extra_models = str(model_dir) if own_queue else ""
    queue = generation_queue(str(model_dir), default_model=default_model)
    settings.NEO_MODEL, settings.NEO_MODELS = default_model, [extra_models] if own_queue else []
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.NEO_TASKS_IN_PROCESS = False
    if own_queue:  # declared as settings declare it when NEO_MODELS names the model at start-up
        app.amqp.queues.add(Queue(queue, routing_key=queue))
    get_redis.cache_clear()
    knowledge_base = KnowledgeBaseFactory()
    document = document_create_from_text(
        knowledge_base=knowledge_base, title="Billing", text="# Refunds\n\nRefunds take five days.", queue=False
    )
    documents_ingest_all(documents=[document])
    bot = BotFactory(
        organization=knowledge_base.organization,
        generation={"temperature": 0, "max_new_tokens": 8},
        base_model=extra_models,
    )
    bot.knowledge_bases.add(knowledge_base)
    conversation = conversation_start(bot=bot, visitor_id="visitor")

    listener = ConversationListener(conversation.pk)

    env = clean_env(
        DATABASE_URL=database_url(),
        REDIS_URL=redis_url,
        MEDIA_ROOT=str(settings.MEDIA_ROOT),
        NEO_MODEL=default_model,
        NEO_MODELS=extra_models,
        NEO_DEVICE="cpu",
        NEO_DTYPE="float32",
        HF_HUB_OFFLINE="1",
        NEO_HEARTBEAT_SECONDS="1",
    )
    worker = subprocess.Popen(
        [
            sys.executable, "-m", "celery", "-A", "neo_support", "worker", "-Q", queue,
            "-n", f"gen-{uuid.uuid4().hex[:8]}@%h", "--pool", "threads", "--concurrency", "2",
            "--without-gossip", "--without-mingle", "--loglevel", "INFO",
        ],
        cwd=ROOT, env=env,
    )  # fmt: skip
    try:
        _, reply = conversation_ask(conversation=conversation, text="How long do refunds take?")
        events = listener.events_until_done()
        if own_queue:  # the default model has no worker here: the chosen one is under "models"
            model = wait_for(lambda: _served_model_state(client, str(model_dir)), 15, "the worker to report it")
        else:
            model = wait_for(lambda: _model_state(client), 15, "the worker to report its model")
    finally:
        if own_queue:
            del app.amqp.queues[queue]
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.kill(worker.pid, signal.SIGKILL)

    assert [e["type"] for e in events][0] == "status"
    assert any(e["type"] == "delta" for e in events)
    reply.refresh_from_db()
    # Random weights write random text, which the output gate may hold back (the verdict
    # says why): the worker, its model and the generation are what is checked here.
    assert reply.status in ("done", "blocked"), (reply.status, reply.text)
    if reply.status == "blocked":
        assert reply.moderation, "a blocked reply carries the verdict that blocked it"
    else:
        assert reply.text == events[-1]["text"]
    assert reply.timings["mode"] == "generative" and reply.completion_tokens > 0
    assert reply.timings["model"] == str(model_dir)
    assert model["name"] == str(model_dir) and model["device"] == "cpu"
    if own_queue:
        assert model["queue"] == queue and [worker["state"] for worker in model["workers"]] == ["loaded"]
