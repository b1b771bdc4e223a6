"""Start everything `make run` needs and stop it all on Ctrl-C.

The web server always; with REDIS_URL set, one Celery worker per queue and
Celery beat as well. Children run in their own sessions, so the terminal's
Ctrl-C reaches only this supervisor, which then stops them in order.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from neo_support.demo import ADMIN_USERNAME, demo_admin_password

# Generation tasks mostly wait on the model (which releases the GIL), so that
# worker runs threads over one model per process; the others stay small.
WORKER_POOLS = {
    "generation": ["--pool", "threads", "--concurrency", "8"],
    "indexing": ["--pool", "threads", "--concurrency", "1"],
    "default": ["--pool", "threads", "--concurrency", "4"],
    "training": ["--pool", "threads", "--concurrency", "1"],
}
STOP_GRACE_SECONDS = 15.0


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    command: list[str] = field(default_factory=list)
    restarts: list[float] = field(default_factory=list)


# A worker or beat that exits is started again, as a container's restart policy would
# (Celery can die on an unrecoverable broker error when Redis goes away mid-ack); one
# that keeps dying stops the stack.
MAX_RESTARTS_PER_MINUTE = 5


# The server drops larger websocket frames (close 1009); the chat consumer answers
# frames over NEO_WS_MAX_FRAME_BYTES (16 kB) with a readable error first.
WS_MAX_BYTES = 1_048_576


class Command(BaseCommand):
    help = "Run the web server and, when REDIS_URL is set, the Celery workers and beat. Ctrl-C stops them all."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--no-workers", action="store_true", help="Do not start Celery, even with REDIS_URL.")

    def handle(self, *args: Any, **options: Any) -> None:
        host, port = options["host"], options["port"]
        commands = {"web": self._web_command(host, port)}
        if settings.REDIS_URL and not options["no_workers"]:
            for queue, pool in WORKER_POOLS.items():
                commands[f"worker-{queue}"] = self._celery("worker", "-Q", queue, "-n", f"{queue}@%h", *pool)
            schedule = str(settings.VAR_DIR / "celerybeat-schedule")
            commands["beat"] = self._celery("beat", "--schedule", schedule)

        children: list[Child] = []
        # SIGTERM (from a supervisor or container) stops everything the way Ctrl-C does.
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        try:
            for name, command in commands.items():
                process = subprocess.Popen(command, start_new_session=True)
                children.append(Child(name, process, command))
                self.stdout.write(f"started {name} (pid {process.pid})")
            base_url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
            self._wait_until_serving(base_url, children)
            self._print_banner(base_url, with_workers=len(children) > 1)
            self._watch(children)
        except KeyboardInterrupt:
            self.stdout.write("\nStopping…")
        finally:
            # A second Ctrl-C must not cut the orderly stop short.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            self._stop(children)

    def _web_command(self, host: str, port: int) -> list[str]:
        return [
            sys.executable, "-m", "uvicorn", "neo_support.asgi:application",
            "--host", host, "--port", str(port), "--lifespan", "off", "--proxy-headers",
            "--ws-max-size", str(WS_MAX_BYTES),
        ]  # fmt: skip

    def _celery(self, *arguments: str) -> list[str]:
        return [sys.executable, "-m", "celery", "-A", "neo_support", *arguments, "--loglevel", "INFO"]

    def _wait_until_serving(self, base_url: str, children: list[Child], timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive(children)
            try:
                with urllib.request.urlopen(f"{base_url}/healthz/live", timeout=2):
                    return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.25)
        raise CommandError(f"The web server did not answer on {base_url} within {timeout:.0f} s.")

    def _print_banner(self, base_url: str, *, with_workers: bool) -> None:
        password = demo_admin_password() or "(set when the demo was first loaded; `manage.py changepassword admin`)"
        mode = "Celery workers on Redis" if with_workers else "tasks in-process (no REDIS_URL)"
        lines = [
            "",
            "Neo Support is running.",
            f"  Dashboard:  {base_url}/dashboard/   login {ADMIN_USERNAME} / {password}",
            f"  Demo page:  {base_url}/demo/",
            f"  Admin:      {base_url}/admin/",
            f"  Health:     {base_url}/healthz",
            f"  Tasks:      {mode}",
            "Press Ctrl-C to stop.",
            "",
        ]
        self.stdout.write("\n".join(lines))
        self.stdout.flush()

    def _check_alive(self, children: list[Child]) -> None:
        for child in children:
            code = child.process.poll()
            if code is not None:
                raise CommandError(f"{child.name} exited with status {code}; stopping the rest.")

    def _watch(self, children: list[Child]) -> None:
        while True:
            for child in children:
                if child.name != "web" and child.process.poll() is not None:
                    self._restart(child)
            self._check_alive(children)
            time.sleep(0.5)

    def _restart(self, child: Child) -> None:
        now = time.monotonic()
        child.restarts = [moment for moment in child.restarts if now - moment < 60] + [now]
        if len(child.restarts) > MAX_RESTARTS_PER_MINUTE:
            return  # _check_alive stops the stack
        code = child.process.returncode
        child.process = subprocess.Popen(child.command, start_new_session=True)
        self.stdout.write(f"{child.name} exited with status {code}; restarted (pid {child.process.pid})")

    def _stop(self, children: list[Child]) -> None:
        for child in children:
            if child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for child in children:
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait()
        self.stdout.write("All stopped.")
