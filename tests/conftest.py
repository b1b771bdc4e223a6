"""Shared fixtures. Nothing here downloads anything: HF_HUB_OFFLINE is forced."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
# No background warm-up thread when a test imports the ASGI app: it would create loggers
# while pytest's logging plugin walks them (RuntimeError: dictionary changed size).
os.environ["NEO_WARM_UP"] = "0"
# Redis keys of this run only: a fresh test database reuses conversation ids, and another
# run's event log for "conversation 1" must not be replayed to this one. pytest-django has
# read the settings already, so they are changed here too; servers and workers the tests
# start read the variable.
os.environ["NEO_CHANNEL_PREFIX"] = f"neo-test-{os.getpid()}"

ROOT = Path(__file__).resolve().parent.parent

# Variables that change what settings.py builds; subprocess tests start from none of them.
SETTINGS_VARIABLES = (
    "DEBUG", "SECRET_KEY", "SECRET_KEY_FILE", "ALLOWED_HOSTS", "CSRF_TRUSTED_ORIGINS", "DATABASE_URL",
    "REDIS_URL", "NEO_VAR_DIR", "MEDIA_ROOT", "STATIC_ROOT", "NEO_MODEL", "NEO_DEVICE", "NEO_DTYPE",
    "EMBEDDING_MODEL", "EMAIL_HOST", "EMAIL_USE_TLS", "EMAIL_USE_SSL", "SECURE_SSL_REDIRECT", "NEO_IMAP_MAILBOXES",
    "NEO_IMAP_MAILBOXES_FILE",
)  # fmt: skip


def clean_env(**overrides: str) -> dict[str, str]:
    """This process's environment without settings variables, plus `overrides`."""
    env = {key: value for key, value in os.environ.items() if key not in SETTINGS_VARIABLES}
    env.update(overrides)
    return env


def run_python(code: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def run_manage(*arguments: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *arguments], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def database_url() -> str:
    """A URL for the database this test runs on, so a process it starts shares it."""
    from django.db import connection

    db = connection.settings_dict
    if db["ENGINE"] != "django.db.backends.postgresql":
        pytest.skip("a worker process cannot share the in-memory SQLite test database")
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    return f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(autouse=True, scope="session")
def _this_runs_redis_keys() -> None:
    from django.conf import settings

    settings.NEO_CHANNEL_PREFIX = os.environ["NEO_CHANNEL_PREFIX"]
    layer = settings.CHANNEL_LAYERS["default"]
    if "CONFIG" in layer:
        layer["CONFIG"]["prefix"] = os.environ["NEO_CHANNEL_PREFIX"]


@pytest.fixture(autouse=True, scope="session")
def _fast_password_hashing() -> None:
    """Factories and logins hash passwords; PBKDF2's deliberate slowness costs ~0.3 s a
    user, which adds up over thousands of tests. Subprocess servers keep the default."""
    from django.conf import settings

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_event_log() -> None:
    """The embedded default keeps conversation events in this process; ids a rolled-back
    test used come back in the next one, so each test starts with an empty log."""
    from bots.chat import event_log

    event_log.memory_reset()


@pytest.fixture(autouse=True)
def _no_measured_ingest_rate() -> None:
    """Upload estimates in one test do not depend on the ingests other tests ran."""
    from django.core.cache import cache

    from retrieval.ingest_rate import RATE_KEY

    cache.delete(RATE_KEY)


@pytest.fixture
def redis_url() -> str:
    from django.conf import settings

    if not settings.REDIS_URL:
        pytest.skip("needs REDIS_URL (runs in CI against a real Redis)")
    return str(settings.REDIS_URL)


@pytest.fixture
def organization(db: None):  # type: ignore[no-untyped-def]
    from tests.factories import OrganizationFactory

    return OrganizationFactory()


@pytest.fixture
def member(db: None, organization):  # type: ignore[no-untyped-def]
    from tests.factories import MembershipFactory

    return MembershipFactory(organization=organization, role="admin").user


@pytest.fixture
def in_process_tasks(settings, tmp_path: Path) -> Iterator[None]:
    """Media in a temporary folder and tasks on the in-process pool, drained before the
    database is flushed so no task writes into the next test."""
    from neo_support.tasking import wait_for_in_process_tasks

    settings.MEDIA_ROOT = tmp_path / "media"
    settings.NEO_TASKS_IN_PROCESS = True
    yield
    wait_for_in_process_tasks(timeout=120)


@pytest.fixture
def var_dir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "var"
    path.mkdir()
    yield path


# Browser tests: headless Chromium driven by Playwright (Debian's /usr/bin/chromium, no download).

CHROMIUM = "/usr/bin/chromium"
# Without these, Chromium keeps dialling out to services this sandbox cannot reach.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def page(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    if shutil.which(CHROMIUM) is None:
        pytest.skip(f"{CHROMIUM} is not installed (.ci/run installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; Django's ORM guard would refuse the live server's data.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context()
            yield context.new_page()
            context.close()
        finally:
            browser.close()


# Tiny models (GPT-Neo, and the other families): built from a config, with a byte-level
# BPE tokenizer trained on the fly, saved to a folder and loaded through the production
# loader. Nothing downloads.


@pytest.fixture(scope="session")
def tiny_neo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.tiny_models import build_tiny_model

    return build_tiny_model("gpt_neo", tmp_path_factory.mktemp("tiny-gpt-neo"))


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory, tiny_neo_dir: Path) -> Callable[[str], Path]:
    """A tiny model of a family ("gpt_neo", "gpt2", "llama", "qwen2"; tests.tiny_models),
    built once per session: `tiny_model_dir("llama")`."""
    from tests.tiny_models import build_tiny_model

    built: dict[str, Path] = {"gpt_neo": tiny_neo_dir}

    def folder(family: str) -> Path:
        if family not in built:
            built[family] = build_tiny_model(family, tmp_path_factory.mktemp(f"tiny-{family}"))
        return built[family]

    return folder


@pytest.fixture
def tiny_neo(settings, tiny_neo_dir: Path) -> Iterator[Path]:
    """NEO_MODEL pointing at the tiny model, with the process's model holder reset around the test."""
    from workers.generation.loading import holder

    settings.NEO_MODEL = str(tiny_neo_dir)
    settings.NEO_DEVICE = "cpu"
    settings.NEO_DTYPE = "float32"
    holder.reset()
    yield tiny_neo_dir
    holder.reset()


# Email: a real SMTP server on loopback, as tickets, invitations and sign-up send through.


class Inbox:
    """A real SMTP server on loopback (aiosmtpd) that keeps what it receives."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[EmailMessage] = []
        self.arrived = threading.Event()
        self.port = free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))  # type: ignore[arg-type]
        self.arrived.set()
        return "250 OK"


@pytest.fixture
def smtp(settings) -> Iterator[Inbox]:  # type: ignore[no-untyped-def]
    """A real SMTP server on loopback receiving what the server sends."""
    box = Inbox()
    box.controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", box.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    yield box
    box.controller.stop()
