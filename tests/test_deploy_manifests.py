"""deploy/k8s: every manifest is valid against the Kubernetes schemas shipped in
kubernetes-validate (nothing is downloaded), and the deployment matches the processes:
web probed on /healthz/live and /healthz, one worker deployment per Celery queue, one
beat, GPUs for generation, and no pod sharing a disk with another."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from django.conf import settings

from tests.conftest import ROOT

K8S = ROOT / "deploy" / "k8s"
KUBERNETES_VERSION = "1.37.0"


def manifests() -> list[tuple[Path, dict[str, Any]]]:
    found = []
    for path in sorted([*K8S.glob("*.yaml"), *K8S.glob("examples/*.yaml")]):
        found.extend((path, document) for document in yaml.safe_load_all(path.read_text()) if document)
    return found


def by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {m["metadata"]["name"]: m for _, m in manifests() if m["kind"] == kind}


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    return dict(only)


@pytest.mark.parametrize(("path", "manifest"), manifests(), ids=lambda v: v.name if isinstance(v, Path) else "")
def test_each_manifest_is_valid_against_the_kubernetes_schema(path: Path, manifest: dict[str, Any]) -> None:
    try:
        kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        pytest.fail(f"{path.relative_to(ROOT)}: {manifest['kind']} {manifest['metadata']['name']}: {error.message}")


def test_the_validator_refuses_a_wrong_type_and_a_misspelt_field() -> None:
    web = by_kind("Deployment")["neo-support-web"]
    wrong_type = {**web, "spec": {**web["spec"], "replicas": "two"}}
    misspelt = {**web, "spec": {**web["spec"], "replica": 2}}
    for broken in (wrong_type, misspelt):
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_web_is_probed_on_live_and_on_full_health() -> None:
    web = container(by_kind("Deployment")["neo-support-web"])
    assert web["livenessProbe"]["httpGet"]["path"] == "/healthz/live"
    assert web["readinessProbe"]["httpGet"]["path"] == "/healthz"


def test_there_is_one_worker_deployment_per_celery_queue() -> None:
    queues = {}
    for name, deployment in by_kind("Deployment").items():
        command = container(deployment)["command"]
        if command[:3] == ["celery", "--app=neo_support", "worker"]:
            (option,) = [part for part in command if part.startswith("--queues=")]
            queues[option.removeprefix("--queues=")] = name
    assert sorted(queues) == sorted(settings.CELERY_QUEUES)


def test_beat_runs_as_a_single_replica_that_is_never_doubled_during_a_rollout() -> None:
    beats = [d for d in by_kind("Deployment").values() if container(d)["command"][2] == "beat"]
    assert len(beats) == 1
    assert beats[0]["spec"]["replicas"] == 1 and beats[0]["spec"]["strategy"]["type"] == "Recreate"


def test_generation_and_training_ask_for_a_gpu_and_the_rest_do_not() -> None:
    for name, deployment in by_kind("Deployment").items():
        limits = container(deployment)["resources"]["limits"]
        wants_gpu = name.endswith(("worker-generation", "worker-training", "worker-generation-second-model"))
        assert ("nvidia.com/gpu" in limits) == wants_gpu, name
        if wants_gpu:
            assert limits["nvidia.com/gpu"] == 1


def test_no_pod_shares_a_disk_every_process_keeps_its_caches_on_its_own() -> None:
    config = by_kind("ConfigMap")["neo-support"]["data"]
    assert config["NEO_STORAGE"].startswith("s3://")
    for name, deployment in by_kind("Deployment").items():
        volumes = deployment["spec"]["template"]["spec"].get("volumes", [])
        assert all("emptyDir" in volume for volume in volumes), name
        sources = {next(iter(s.values()))["name"] for s in container(deployment)["envFrom"]}
        assert sources == {"neo-support"}, name


def test_a_second_models_worker_consumes_only_the_queue_of_its_model() -> None:
    """The example for an extra model finds its queue by name at start, as compose's does."""
    deployment = by_kind("Deployment")["neo-support-worker-generation-second-model"]
    worker = container(deployment)
    model = next(item["value"] for item in worker["env"] if item["name"] == "NEO_WORKER_MODEL")
    assert model
    script = worker["command"][-1]
    assert 'generation_queues --queue-of "$NEO_WORKER_MODEL"' in script
    assert '--queues="$queue"' in script and "--queues=generation " not in script
    assert "NEO_MODELS" in by_kind("ConfigMap")["neo-support"]["data"]
