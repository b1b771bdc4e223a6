from __future__ import annotations

import os
import uuid

import pytest

from neo_support.heartbeat import WorkerBeat, heartbeat_clear, heartbeat_read, heartbeat_write
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
