"""Throwaway Redis and Postgres servers, the web server and workers as processes, and a
widget-like websocket client, for fault tests that restart services.

The shared services on 127.0.0.1:5432 and :6379 carry the rest of the suite; restarting
them would break it, so each fault test starts its own on a free port in a temporary
folder and throws it away after.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.conftest import ROOT, free_port


def wait_until(condition: Callable[[], Any], timeout: float, what: str, every: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


class OwnRedis:
    """redis-server with the production compose file's persistence (append-only file,
    fsync every second), on a free port; `crash()` is a SIGKILL, `start()` again loads
    what was on disk."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory),
                "--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--logfile", "redis.log",
            ],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        wait_until(self.answers, 20, "redis to answer")

    def answers(self) -> bool:
        done = subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True, text=True)
        return done.stdout.strip() == "PONG"

    def crash(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


class OwnPostgres:
    """A Postgres cluster of the installed version in a temporary folder, owned by the
    `postgres` user (the server refuses to run as root)."""

    def __init__(self) -> None:
        versions = sorted(Path("/usr/lib/postgresql").iterdir())
        self.bin = versions[-1] / "bin"
        # Not under pytest's tmp_path: its parents are closed to the `postgres` user.
        self.directory = Path(tempfile.mkdtemp(prefix="neo-test-pg-"))
        self.data = self.directory / "data"
        self.port = free_port()
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/neo"

    def _as_postgres(self, *command: str) -> subprocess.CompletedProcess[str]:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        return subprocess.run([*prefix, *command], capture_output=True, text=True, timeout=120)

    def create(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres", "postgres")
        done = self._as_postgres(
            str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync"
        )
        assert done.returncode == 0, done.stderr
        self.start()
        done = self._as_postgres(str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "neo")
        assert done.returncode == 0, done.stderr

    def start(self) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        done = self._as_postgres(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.directory / "log"), "-w",
            "start",
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr

    def crash(self) -> None:
        """Immediate shutdown: no checkpoint; the next start recovers from the WAL."""
        done = self._as_postgres(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        assert done.returncode == 0, done.stdout + done.stderr

    def stop(self) -> None:
        if self.data.exists():
            self._as_postgres(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.directory, ignore_errors=True)


class OwnS3:
    """An S3-compatible server (moto in server mode) on a free loopback port, with one
    bucket; `environ()` is what a process sets to keep its files there."""

    def __init__(self, bucket: str = "neo-test") -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.bucket = bucket
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        server = Path(sys.executable).with_name("moto_server")
        self.process = subprocess.Popen(
            [str(server), "-H", "127.0.0.1", "-p", str(self.port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_until(self.answers, 30, "the S3 server to answer")
        self.client().create_bucket(Bucket=self.bucket)

    def answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.endpoint}/", timeout=2):
                return True
        except (urllib.error.URLError, ConnectionError):
            return False

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )

    def keys(self, prefix: str = "") -> list[str]:
        listed = self.client().list_objects_v2(Bucket=self.bucket, Prefix=prefix)
        return sorted(item["Key"] for item in listed.get("Contents", []))

    def environ(self, prefix: str = "media") -> dict[str, str]:
        return {
            "NEO_STORAGE": f"s3://{self.bucket}/{prefix}",
            "NEO_S3_ENDPOINT_URL": self.endpoint,
            "NEO_S3_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


class Processes:
    """The web server and workers, started with one environment and all killed at the end."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.started: list[subprocess.Popen[bytes]] = []
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"

    def _start(self, name: str, command: list[str]) -> subprocess.Popen[bytes]:
        with (self.log_dir / f"{name}.log").open("ab") as log:
            process = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.started.append(process)
        return process

    def web(self) -> subprocess.Popen[bytes]:
        process = self._start(
            "web",
            [sys.executable, "-m", "uvicorn", "neo_support.asgi:application", "--host", "127.0.0.1",
             "--port", str(self.port), "--lifespan", "off"],
        )  # fmt: skip
        wait_until(lambda: http_get(f"{self.base}/healthz/live")[0] == 200, 90, "the web server")
        return process

    def worker(self, queues: str = "generation,default") -> subprocess.Popen[bytes]:
        return self._start(
            "worker",
            [sys.executable, "-m", "celery", "-A", "neo_support", "worker", "-Q", queues,
             "-n", f"fault-{uuid.uuid4().hex[:8]}@%h", "--pool", "threads", "--concurrency", "2",
             "--without-gossip", "--without-mingle", "--loglevel", "WARNING"],
        )  # fmt: skip

    def log(self, name: str) -> str:
        path = self.log_dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop_all(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.kill()
                process.wait()


def http_get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except OSError:
        return 0, b""


class Visitor:
    """What the widget does: one socket, `hello` with the token and the last event id
    after a reconnect, and every event kept in order of arrival."""

    def __init__(self, base_url: str, bot_key: str) -> None:
        self.url = base_url.replace("http://", "ws://") + f"/ws/chat/?key={bot_key}"
        self.origin = base_url
        self.token: str | None = None
        self.last_event_id: str | None = None
        self.events: list[dict[str, Any]] = []
        self.reconnects = 0
        self.socket: ClientConnection | None = None

    def connect(self) -> dict[str, Any]:
        self.socket = connect(self.url, origin=self.origin, open_timeout=15).__enter__()  # type: ignore[arg-type]
        self.socket.send(
            json.dumps({"type": "hello", "v": 1, "visitor_token": self.token, "last_event_id": self.last_event_id})
        )
        welcome = self._next(15)
        assert welcome is not None and welcome["type"] == "welcome", welcome
        self.token = welcome["visitor_token"]
        return welcome

    def _next(self, timeout: float) -> dict[str, Any] | None:
        assert self.socket is not None
        try:
            event: dict[str, Any] = json.loads(self.socket.recv(timeout=timeout))
        except TimeoutError:
            return None
        self.events.append(event)
        if event.get("id"):
            self.last_event_id = event["id"]
        return event

    def reconnect(self, timeout: float) -> None:
        """Back off and retry until the server takes the socket, as the widget does."""
        deadline = time.monotonic() + timeout
        while True:
            self.close()
            self.reconnects += 1
            try:
                self.connect()
                return
            except (OSError, ConnectionClosed, AssertionError, TimeoutError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def send(self, frame: dict[str, Any]) -> None:
        assert self.socket is not None
        self.socket.send(json.dumps(frame))

    def wait_for(self, matches: Callable[[dict[str, Any]], bool], timeout: float) -> dict[str, Any]:
        """The first event (already received or coming) that `matches`, reconnecting on a drop."""
        for event in self.events:
            if matches(event):
                return event
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                event = self._next(min(1.0, max(0.05, deadline - time.monotonic())))
            except ConnectionClosed:
                self.reconnect(deadline - time.monotonic())
                continue
            if event is not None and matches(event):
                return event
        raise AssertionError(f"no matching event in {timeout:.0f}s; last events: {self.events[-5:]}")

    def ask(self, text: str, client_id: str, timeout: float = 120) -> tuple[dict[str, Any], dict[str, Any]]:
        """Send a question; (its ack, the reply's done)."""
        self.send({"type": "message", "client_id": client_id, "text": text})
        ack = self.wait_for(lambda e: e["type"] == "ack" and e.get("client_id") == client_id, timeout)
        done = self.wait_for(lambda e: e["type"] == "done" and e.get("message_id") == ack["reply_id"], timeout)
        return ack, done

    def close(self) -> None:
        if self.socket is not None:
            with contextlib.suppress(Exception):  # already gone
                self.socket.close()
            self.socket = None
