"""`manage.py runstack` (what `make run` ends in) serves, prints its URLs and stops everything on Ctrl-C."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings

from neo_support.management.commands.runstack import Command, answers_lines
from tests.conftest import ROOT, clean_env, free_port, run_manage


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
def test_it_serves_the_dashboard_and_demo_then_stops_every_child_on_ctrl_c(tmp_path: Path) -> None:
    env = clean_env(NEO_VAR_DIR=str(tmp_path), NEO_HEARTBEAT_SECONDS="1")
    if settings.REDIS_URL:
        env["REDIS_URL"] = settings.REDIS_URL
    port = free_port()
    assert run_manage("migrate", "--noinput", env=env).returncode == 0
    assert run_manage("load_demo", "--port", str(port), env=env).returncode == 0

    log_path = tmp_path / "runstack.log"
    with log_path.open("wb") as log:
        stack = subprocess.Popen(
            [sys.executable, "manage.py", "runstack", "--port", str(port)],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while "Press Ctrl-C to stop." not in log_path.read_text() and time.monotonic() < deadline:
            assert stack.poll() is None, log_path.read_text()
            time.sleep(0.25)
        output = log_path.read_text()
        password = (tmp_path / "demo_admin_password").read_text()
        assert f"http://127.0.0.1:{port}/dashboard/   login admin / {password}" in output
        assert f"http://127.0.0.1:{port}/demo/" in output
        assert "  Answers:    " in output
        children = {name: int(pid) for name, pid in re.findall(r"started (\S+) \(pid (\d+)\)", output)}
        expected = {"web"} | (
            {"worker-generation", "worker-indexing", "worker-default", "worker-training", "beat"}
            if settings.REDIS_URL
            else set()
        )
        assert set(children) == expected

        status, body = get(f"http://127.0.0.1:{port}/accounts/login/")
        assert status == 200 and b"Log in" in body
        status, body = get(f"http://127.0.0.1:{port}/demo/")
        assert status == 200 and b"Tallyho Helper" in body
        deadline = time.monotonic() + 60
        while (health := get(f"http://127.0.0.1:{port}/healthz"))[0] != 200 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert health[0] == 200, health[1]
        assert json.loads(health[1])["checks"]["workers"]["ok"] is True

        if settings.REDIS_URL:
            # A worker that dies is started again, as a container's restart policy would.
            os.kill(children["worker-default"], signal.SIGKILL)
            deadline = time.monotonic() + 30
            pattern = r"worker-default exited with status -9; restarted \(pid (\d+)\)"
            while not (match := re.search(pattern, log_path.read_text())) and time.monotonic() < deadline:
                time.sleep(0.25)
            assert match, log_path.read_text()
            children["worker-default"] = int(match.group(1))
            assert stack.poll() is None and pid_alive(children["worker-default"])

        stack.send_signal(signal.SIGINT)
        assert stack.wait(timeout=60) == 0, log_path.read_text()
        assert "All stopped." in log_path.read_text()
        assert not [name for name, pid in children.items() if pid_alive(pid)]
    finally:
        if stack.poll() is None:
            stack.kill()
        # Children run in sessions of their own: a failed stop must not leave them behind.
        for pid in re.findall(r"(?:started \S+|restarted) \(pid (\d+)\)", log_path.read_text()):
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)


# The banner's word on answers (no server started)


def test_without_the_model_the_banner_says_answers_are_quoted_until_it_is_downloaded(settings, tmp_path) -> None:
    settings.NEO_MODEL = str(tmp_path / "no-model-here")
    settings.VAR_DIR = tmp_path
    out = StringIO()
    Command(stdout=out)._print_banner("http://127.0.0.1:8000", with_workers=False)
    banner = out.getvalue()
    assert f"quoted from the documents until the model {settings.NEO_MODEL} is downloaded" in banner
    assert "manage.py download_model` (it needs internet access)" in banner
    assert "picked up within 5 minutes, without a restart" in banner
    assert banner.index("Answers:") < banner.index("Press Ctrl-C to stop.")


def test_the_banner_names_the_python_to_run_download_model_with(settings, tmp_path, monkeypatch) -> None:
    settings.NEO_MODEL = str(tmp_path / "no-model-here")
    settings.NEO_MODEL_RETRY_SECONDS = 90
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(sys, "executable", str(ROOT / ".venv" / "bin" / "python"))
    lines = "\n".join(answers_lines(settings.NEO_MODEL))
    assert "run `.venv/bin/python manage.py download_model`" in lines and "within 90 seconds" in lines
    monkeypatch.setattr(sys, "executable", "/usr/bin/python3")
    assert "run `python manage.py download_model`" in "\n".join(answers_lines(settings.NEO_MODEL))


def test_with_the_model_on_disk_the_banner_says_answers_are_generated(tiny_neo_dir) -> None:
    assert answers_lines(str(tiny_neo_dir)) == [f"  Answers:    generated by {tiny_neo_dir}"]
