"""The production compose file defines every service with its command, healthcheck and volumes."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.conftest import ROOT

APP_SERVICES = ("web", "worker-generation", "worker-indexing", "worker-default", "worker-training", "beat")


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


@pytest.mark.parametrize("name", ["worker-generation", "worker-training"])
def test_the_model_workers_reserve_an_nvidia_gpu(compose, name: str) -> None:
    [device] = compose["services"][name]["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]


def test_media_and_indexes_are_named_volumes_shared_by_web_and_workers(compose) -> None:
    assert {"media", "indexes", "postgres", "redis"} <= set(compose["volumes"])
    for name in ("web", "worker-generation", "worker-indexing", "worker-default", "worker-training"):
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
