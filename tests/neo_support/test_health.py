from __future__ import annotations

import os
import uuid

import pytest

from neo_support.heartbeat import WorkerBeat, heartbeat_clear, heartbeat_read, heartbeat_write
from neo_support.model_queues import generation_queue
from neo_support.redis_client import get_redis

pytestmark = pytest.mark.django_db


@pytest.fixture
def fresh_redis_client():
    get_redis.cache_clear()
    yield
    get_redis.cache_clear()


def test_embedded_mode_is_healthy_with_the_database_and_in_process_workers(client, settings) -> None:
    settings.REDIS_URL = None
    settings.NEO_TASKS_IN_PROCESS = True
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["workers"]["mode"] == "in-process"
    assert "redis" not in body["checks"]


def test_an_unreachable_redis_makes_it_unavailable(client, settings, fresh_redis_client) -> None:
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    settings.NEO_TASKS_IN_PROCESS = False
    response = client.get("/healthz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["redis"]["ok"] is False and "ConnectionError" in checks["redis"]["error"]
    assert checks["workers"]["ok"] is False


def test_with_redis_it_reports_which_queues_have_a_live_worker(client, settings, redis_url, fresh_redis_client) -> None:
    settings.NEO_TASKS_IN_PROCESS = False
    redis = get_redis()
    beats = [
        WorkerBeat(hostname=f"test-{uuid.uuid4().hex[:8]}", pid=os.getpid(), queues=[queue])
        for queue in ("generation", "indexing", "training", "default")
    ]
    try:
        for beat in beats[:3]:
            heartbeat_write(redis, beat=beat, ttl_seconds=30)
        partial = client.get("/healthz")
        heartbeat_write(redis, beat=beats[3], ttl_seconds=30)
        full = client.get("/healthz")
    finally:
        for beat in beats:
            heartbeat_clear(redis, beat=beat)

    if partial.status_code == 503:  # unless a real worker for "default" happens to be running
        assert "default" in partial.json()["checks"]["workers"]["error"]
    assert full.status_code == 200
    queues = full.json()["checks"]["workers"]["queues"]
    for beat in beats:
        assert f"{beat.hostname}:{beat.pid}" in queues[beat.queues[0]]


def test_heartbeats_expire_and_malformed_ones_are_skipped(redis_url, fresh_redis_client) -> None:
    redis = get_redis()
    beat = WorkerBeat(hostname=f"test-{uuid.uuid4().hex[:8]}", pid=1, queues=["default"])
    heartbeat_write(redis, beat=beat, ttl_seconds=30)
    assert 0 < redis.ttl(f"neo:heartbeat:{beat.hostname}:1") <= 30
    redis.set(f"neo:heartbeat:{beat.hostname}:broken", "not json", ex=30)
    try:
        hostnames = {b.hostname for b in heartbeat_read(redis)}
        assert beat.hostname in hostnames
    finally:
        heartbeat_clear(redis, beat=beat)
        redis.delete(f"neo:heartbeat:{beat.hostname}:broken")


def test_liveness_needs_nothing_but_the_process(client) -> None:
    response = client.get("/healthz/live")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_health_only_answers_get(client) -> None:
    assert client.post("/healthz").status_code == 405


def test_embedded_mode_reports_every_served_model_with_its_queue(client, settings) -> None:
    settings.REDIS_URL = None
    settings.NEO_TASKS_IN_PROCESS = True
    settings.NEO_MODEL, settings.NEO_MODELS = "/nonexistent/default-model", ["/nonexistent/second-model"]
    checks = client.get("/healthz").json()["checks"]
    default, second = checks["models"]["models"]
    assert (default["name"], default["queue"], default["default"]) == ("/nonexistent/default-model", "generation", True)
    assert second["name"] == "/nonexistent/second-model" and second["default"] is False
    assert second["queue"] == generation_queue(second["name"], default_model=default["name"])
    assert default["state"] == second["state"] == "unavailable"  # no weights here: it says what to do
    assert "second-model" in second["message"]
    assert checks["model"]["name"] == "/nonexistent/default-model"  # the one-model check is still there


def test_with_redis_each_served_model_lists_the_workers_of_its_queue(
    client, settings, redis_url, fresh_redis_client
) -> None:
    settings.NEO_TASKS_IN_PROCESS = False
    tag = uuid.uuid4().hex[:8]
    default, second, third = (f"org/{name}-{tag}" for name in ("default", "second", "third"))
    settings.NEO_MODEL, settings.NEO_MODELS = default, [second, third]
    queues = {model: generation_queue(model, default_model=default) for model in (default, second, third)}
    loaded = {"state": "loaded", "name": default, "device": "cuda:0", "dtype": "bfloat16"}
    loading = {"state": "not_loaded", "name": second}
    beats = [
        WorkerBeat(hostname=f"gen-{tag}", pid=1, queues=["generation"], details={"model": loaded, "models": [loaded]}),
        WorkerBeat(hostname=f"second-{tag}", pid=2, queues=[queues[second]], details={"models": [loading]}),
        WorkerBeat(hostname=f"second-{tag}", pid=3, queues=[queues[second]]),  # just started
    ]
    redis = get_redis()
    try:
        for beat in beats:
            heartbeat_write(redis, beat=beat, ttl_seconds=30)
        checks = client.get("/healthz").json()["checks"]
    finally:
        for beat in beats:
            heartbeat_clear(redis, beat=beat)

    assert checks["models"]["ok"] is True
    reported = {model["name"]: model for model in checks["models"]["models"]}
    assert list(reported) == [default, second, third]
    assert {model: reported[model]["queue"] for model in reported} == queues
    assert reported[default]["state"] == "loaded" and reported[default]["device"] == "cuda:0"
    assert [worker["worker"] for worker in reported[default]["workers"]] == [f"gen-{tag}:1"]
    assert reported[second]["state"] == "not_loaded"
    workers = {worker["worker"]: worker for worker in reported[second]["workers"]}
    assert workers[f"second-{tag}:2"]["state"] == "not_loaded"
    assert workers[f"second-{tag}:3"]["state"] == "unknown"
    assert all(0 <= worker["seen_seconds_ago"] < 30 for worker in workers.values())
    assert reported[third]["state"] == "unknown" and reported[third]["workers"] == []
    assert queues[third] in reported[third]["message"]
    assert checks["model"]["state"] == "loaded" and checks["model"]["name"] == default  # as before
