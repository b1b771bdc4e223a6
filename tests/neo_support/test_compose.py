"""The production compose file defines every service with its command, healthcheck and volumes."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from neo_support.model_queues import generation_queue
from tests.conftest import ROOT

APP_SERVICES = (
    "web", "worker-generation", "worker-generation-second", "worker-indexing", "worker-default",
    "worker-training", "beat",
)  # fmt: skip


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_every_service_is_defined(compose) -> None:
    assert set(compose["services"]) == {*APP_SERVICES, "postgres", "redis"}


@pytest.mark.parametrize("name", [*APP_SERVICES, "postgres", "redis"])
def test_every_service_has_a_healthcheck_and_a_volume(compose, name: str) -> None:
    service = compose["services"][name]
    assert service["healthcheck"]["test"], name
    assert service["volumes"], name


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("web", "uvicorn neo_support.asgi:application"),
        ("worker-generation", "worker -Q generation"),
        ("worker-indexing", "worker -Q indexing"),
        ("worker-default", "worker -Q default"),
        ("worker-training", "worker -Q training"),
        ("beat", "celery -A neo_support beat"),
    ],
)
def test_every_app_service_runs_its_command(compose, name: str, expected: str) -> None:
    assert expected in " ".join(compose["services"][name]["command"].split())


@pytest.mark.parametrize("name", ["worker-generation", "worker-generation-second", "worker-training"])
def test_the_model_workers_reserve_an_nvidia_gpu(compose, name: str) -> None:
    [device] = compose["services"][name]["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]


def test_media_and_indexes_are_named_volumes_shared_by_web_and_workers(compose) -> None:
    assert {"media", "indexes", "postgres", "redis"} <= set(compose["volumes"])
    for name in APP_SERVICES[:-1]:  # all but beat
        mounts = {volume.split(":")[0] for volume in compose["services"][name]["volumes"]}
        assert {"media", "indexes"} <= mounts, name


def test_app_services_run_in_production_mode_against_postgres_and_redis(compose) -> None:
    for name in APP_SERVICES:
        environment = compose["services"][name]["environment"]
        assert environment["DEBUG"] == "0"
        assert environment["DATABASE_URL"].startswith("postgres://")
        assert environment["REDIS_URL"].startswith("redis://redis:")


def test_redis_persists_queued_tasks(compose) -> None:
    assert "--appendonly yes" in compose["services"]["redis"]["command"]


@pytest.mark.parametrize("name", ["worker-indexing", "worker-training"])
def test_the_bulk_workers_get_less_cpu_weight_than_the_others(compose, name: str) -> None:
    # Issue 23: containers are weighed by cgroup, so the worker's own nice value is not enough.
    assert compose["services"][name]["cpu_shares"] < compose["services"]["worker-generation"].get("cpu_shares", 1024)


def test_only_the_second_model_worker_waits_for_its_profile(compose) -> None:
    profiled = {name for name, service in compose["services"].items() if service.get("profiles")}
    assert profiled == {"worker-generation-second"}
    assert compose["services"]["worker-generation-second"]["profiles"] == ["second-model"]


def test_every_process_knows_the_served_models(compose) -> None:
    for name in APP_SERVICES:
        assert compose["services"][name]["environment"]["NEO_MODELS"] == "${NEO_MODELS:-}", name
    assert compose["services"]["worker-generation-second"]["environment"]["NEO_WORKER_MODEL"] == "${NEO_SECOND_MODEL:-}"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_no_command_is_cut_by_a_line_break(compose, name: str) -> None:
    """Regression: web's folded command kept its line breaks (its lines were indented
    deeper than the first), so sh ran uvicorn without --proxy-headers, --ws-max-size and
    --workers, then tried to run "--lifespan" as a command."""
    assert "\n" not in compose["services"][name]["command"]


def run_command_with_stub_celery(command: str, tmp_path: Path, **environ: str) -> subprocess.CompletedProcess[str]:
    """The service's command as the container runs it (compose unescapes $$, splits the
    string as a shell would), with `celery` a stub printing its arguments and `python`
    this interpreter, in the repository (the image's /app)."""
    argv = shlex.split(command.replace("$$", "$"))
    assert argv[:2] == ["sh", "-c"]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for stub, body in (("celery", 'echo "$@"'), ("python", f'exec {shlex.quote(sys.executable)} "$@"')):
        (bin_dir / stub).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / stub).chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "DATABASE_URL": "", "REDIS_URL": "", **environ}
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)


def test_the_second_model_worker_consumes_its_models_queue(compose, tmp_path: Path) -> None:
    command = compose["services"]["worker-generation-second"]["command"]
    served = {"NEO_MODEL": "org/default-model", "NEO_MODELS": "org/second-model,org/third-model"}
    started = run_command_with_stub_celery(command, tmp_path, NEO_WORKER_MODEL="org/third-model", **served)
    assert started.returncode == 0, started.stderr
    queue = generation_queue("org/third-model", default_model="org/default-model")
    assert started.stdout.split() == [
        "-A", "neo_support", "worker", "-Q", queue, "-n", "second-model@%h",
        "--pool", "threads", "--concurrency", "8", "--loglevel", "INFO",
    ]  # fmt: skip


@pytest.mark.parametrize("model", ["org/unknown-model", ""])
def test_the_second_model_worker_refuses_a_model_not_served(compose, tmp_path: Path, model: str) -> None:
    command = compose["services"]["worker-generation-second"]["command"]
    served = {"NEO_MODEL": "org/default-model", "NEO_MODELS": "org/second-model"}
    refused = run_command_with_stub_celery(command, tmp_path, NEO_WORKER_MODEL=model, **served)
    assert refused.returncode != 0 and refused.stdout == ""  # celery never started
    assert "is not served here; one of: org/default-model, org/second-model." in refused.stderr
