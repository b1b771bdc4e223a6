"""The generation model's state in /healthz, and `download_model`."""

from __future__ import annotations

import os
import uuid

import pytest
from django.core.management import CommandError, call_command

from neo_support.heartbeat import WorkerBeat, heartbeat_clear, heartbeat_write
from neo_support.redis_client import get_redis
from workers.generation.loading import holder

pytestmark = pytest.mark.django_db


def test_in_process_the_health_shows_the_model_loading_lazily(client, settings, tiny_neo) -> None:
    settings.NEO_TASKS_IN_PROCESS = True
    assert client.get("/healthz").json()["checks"]["model"]["state"] == "not_loaded"
    holder.get()
    model = client.get("/healthz").json()["checks"]["model"]
    assert model["state"] == "loaded" and model["name"] == str(tiny_neo)


def test_a_missing_model_is_reported_with_what_to_do_but_does_not_fail_health(client, settings, tmp_path) -> None:
    settings.NEO_TASKS_IN_PROCESS = True
    settings.NEO_MODEL = str(tmp_path / "absent")
    holder.reset()
    with pytest.raises(Exception):  # noqa: B017 - the holder's ModelUnavailable
        holder.get()
    response = client.get("/healthz")
    model = response.json()["checks"]["model"]
    assert response.status_code == 200
    assert model["state"] == "unavailable" and "download_model" in model["message"]
    from tests.factories import MembershipFactory

    client.force_login(MembershipFactory().user)
    page = client.get("/dashboard/").content.decode()
    assert "Answers are extractive for now" in page and "download_model" in page
    holder.reset()


def test_with_workers_the_health_shows_what_a_generation_worker_reports(client, settings, redis_url) -> None:
    settings.NEO_TASKS_IN_PROCESS = False
    get_redis.cache_clear()
    beat = WorkerBeat(hostname=f"gen-{uuid.uuid4().hex[:8]}", pid=os.getpid(), queues=["generation"])
    report = {"model": {"state": "unavailable", "name": "EleutherAI/gpt-neo-125M", "message": "run download_model"}}
    heartbeat_write(get_redis(), beat=beat, ttl_seconds=30, details=report)
    try:
        model = client.get("/healthz").json()["checks"]["model"]
    finally:
        heartbeat_clear(get_redis(), beat=beat)
    assert model["state"] in {"unavailable", "loaded"}  # a real worker elsewhere may have it loaded


def test_download_model_says_so_for_a_local_folder(tiny_neo_dir, capsys) -> None:
    call_command("download_model", str(tiny_neo_dir))
    assert "local folder already" in capsys.readouterr().out


def test_download_model_refuses_when_offline(monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(CommandError, match="HF_HUB_OFFLINE is set"):
        call_command("download_model", "EleutherAI/gpt-neo-125M")
