"""A generation model that is not on this machine: known at once, never fetched on a
visitor's request, looked for again in the background.

Pins the bug where, with no weights and no internet, the first reply waited about 50 s
on the Hugging Face hub's retries while the widget showed "typing"."""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import clean_env, run_python
from workers.generation import loading
from workers.generation.loading import holder
from workers.generation.model import ModelUnavailable, local_weights

HUB_ID = "EleutherAI/gpt-neo-125M"
SNAPSHOT = "0123456789abcdef0123456789abcdef01234567"


def place_in_hub_cache(model_dir: Path, hub_cache: Path, repo_id: str = HUB_ID) -> Path:
    """Lay `model_dir` out as `download_model` leaves a model in the Hugging Face cache;
    the ref is written last, so the model appears all at once."""
    repo = hub_cache / f"models--{repo_id.replace('/', '--')}"
    staging = repo / "staging"
    shutil.copytree(model_dir, staging)
    snapshot = repo / "snapshots" / SNAPSHOT
    snapshot.parent.mkdir(parents=True)
    staging.rename(snapshot)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(SNAPSHOT)
    return snapshot


def retry_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "neo-model-retry"]


@pytest.fixture
def fresh_holder():
    holder.reset()
    yield holder
    holder.reset()


# Run in a fresh process, with HF_HOME pointing at an empty folder and the hub's offline
# switches off, as on a new server without internet; every socket refuses loudly and
# records the attempt.
MISSING_THEN_DOWNLOADED = r"""
import json, os, socket, threading, time

attempts = []

def refuse(*args, **kwargs):
    attempts.append(repr(args[:2]))
    raise OSError("a network connection was attempted")

socket.socket.connect = refuse
socket.getaddrinfo = refuse
socket.create_connection = refuse

import django

django.setup()
from django.conf import settings

settings.NEO_MODEL_RETRY_SECONDS = 0.2
from bots.chat.replies import loaded_model
from workers.generation import loading

report = {}
started = time.perf_counter()
report["first_is_none"] = loaded_model() is None
report["first_seconds"] = time.perf_counter() - started
report["status"] = loading.holder.status()

calls = []
real_load_model = loading.load_model

def counted(*args, **kwargs):
    calls.append(threading.current_thread().name)
    return real_load_model(*args, **kwargs)

loading.load_model = counted
started = time.perf_counter()
report["second_is_none"] = loaded_model() is None
report["second_seconds"] = time.perf_counter() - started
time.sleep(0.5)  # a few retry intervals with the model still missing
report["calls_while_missing"] = list(calls)

import shutil

# As download_model leaves it: a snapshot, then the ref naming it.
repo = os.path.join(os.environ["HF_HOME"], "hub", "models--EleutherAI--gpt-neo-125M")
shutil.copytree(os.environ["TINY_NEO_DIR"], os.path.join(repo, "staging"))
os.makedirs(os.path.join(repo, "snapshots"))
os.rename(os.path.join(repo, "staging"), os.path.join(repo, "snapshots", "0" * 40))
os.makedirs(os.path.join(repo, "refs"))
with open(os.path.join(repo, "refs", "main"), "w") as ref:
    ref.write("0" * 40)
deadline = time.monotonic() + 60
while loading.holder.status()["state"] != "loaded" and time.monotonic() < deadline:
    time.sleep(0.1)
loaded = loaded_model()
report["picked_up"] = loaded is not None and loaded.name == "EleutherAI/gpt-neo-125M"
report["load_threads"] = calls
report["attempts"] = attempts
print("REPORT " + json.dumps(report))
"""


def test_a_model_not_in_the_cache_is_known_at_once_offline_and_picked_up_once_downloaded(
    tmp_path: Path, tiny_neo_dir: Path
) -> None:
    hf_home = tmp_path / "hf-home"
    hf_home.mkdir()
    env = clean_env(
        DJANGO_SETTINGS_MODULE="neo_support.settings",
        NEO_VAR_DIR=str(tmp_path / "var"),
        HF_HOME=str(hf_home),
        NEO_MODEL=HUB_ID,
        NEO_DEVICE="cpu",
        NEO_DTYPE="float32",
        TINY_NEO_DIR=str(tiny_neo_dir),
    )
    for switch in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        env.pop(switch, None)
    result = run_python(MISSING_THEN_DOWNLOADED, env, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.split("REPORT ", 1)[1])

    assert report["attempts"] == [], "nothing on a reply's path may reach for the network"
    assert report["first_is_none"] and report["second_is_none"]
    # Defect guards, far above the normal (milliseconds): the hub's retries took ~50 s.
    assert report["first_seconds"] < 5 and report["second_seconds"] < 1
    status = report["status"]
    assert status["state"] == "unavailable" and status["retry_seconds"] == 0.2
    assert "download_model" in status["message"] and "not in the Hugging Face cache" in status["message"]
    assert report["calls_while_missing"] == [], "nothing is loaded while the weights are still missing"
    assert report["picked_up"], result.stderr[-3000:]
    assert set(report["load_threads"]) == {"neo-model-retry"}, "only the background thread loads after a failure"


def test_a_failed_load_is_remembered_and_never_retried_on_a_request(settings, tmp_path, monkeypatch, fresh_holder):
    settings.NEO_MODEL = str(tmp_path / "not-here")
    with pytest.raises(ModelUnavailable, match="download_model") as first:
        holder.get()
    monkeypatch.setattr(loading, "load_model", lambda *a, **k: pytest.fail("a request must not load after a failure"))
    started = time.perf_counter()
    for _ in range(20):
        with pytest.raises(ModelUnavailable) as again:
            holder.get()
        assert str(again.value) == str(first.value)
    assert time.perf_counter() - started < 1


def test_the_background_retry_loads_the_model_once_its_folder_appears(
    settings, tmp_path, tiny_neo_dir, fresh_holder
) -> None:
    folder = tmp_path / "model"
    settings.NEO_MODEL, settings.NEO_DEVICE, settings.NEO_DTYPE = str(folder), "cpu", "float32"
    settings.NEO_MODEL_RETRY_SECONDS = 0.1
    with pytest.raises(ModelUnavailable):
        holder.get()
    assert holder.status()["state"] == "unavailable"

    shutil.copytree(tiny_neo_dir, tmp_path / "staging")
    (tmp_path / "staging").rename(folder)
    deadline = time.monotonic() + 60
    while holder.status()["state"] != "loaded" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert holder.get().name == str(folder)
    for thread in retry_threads():
        thread.join(timeout=5)
    assert not retry_threads(), "the retry thread ends once the model is loaded"


def test_reset_stops_looking_for_the_model(settings, tmp_path, fresh_holder) -> None:
    settings.NEO_MODEL = str(tmp_path / "not-here")
    settings.NEO_MODEL_RETRY_SECONDS = 0.05
    with pytest.raises(ModelUnavailable):
        holder.get()
    assert retry_threads()
    holder.reset()
    for thread in retry_threads():
        thread.join(timeout=5)
    assert not retry_threads()


def test_the_status_says_the_model_is_missing_before_anything_tried_to_load_it(
    settings, tmp_path, monkeypatch, fresh_holder
) -> None:
    settings.NEO_MODEL = str(tmp_path / "not-here")
    monkeypatch.setattr(loading, "load_model", lambda *a, **k: pytest.fail("the status must never load the model"))
    status = holder.status()
    assert status["state"] == "unavailable" and "download_model" in status["message"]
    assert "extractively" in status["message"]


def test_the_status_of_a_model_on_disk_not_yet_loaded_is_not_loaded(settings, tiny_neo_dir, fresh_holder) -> None:
    settings.NEO_MODEL = str(tiny_neo_dir)
    assert holder.status()["state"] == "not_loaded"


def test_local_weights_finds_a_folder_or_a_hub_cache_snapshot_and_nothing_else(
    tmp_path, tiny_neo_dir, monkeypatch
) -> None:
    from huggingface_hub import constants

    hub_cache = tmp_path / "hub"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hub_cache))
    assert local_weights(str(tiny_neo_dir)) == tiny_neo_dir
    assert local_weights(str(tmp_path / "absent")) is None
    assert local_weights(HUB_ID) is None
    assert local_weights("not a valid/repo/id!") is None
    snapshot = place_in_hub_cache(tiny_neo_dir, hub_cache)
    assert local_weights(HUB_ID) == snapshot
    (snapshot / "model.safetensors").unlink()
    assert local_weights(HUB_ID) is None, "a config without weights is no model"
