"""Uploaded files are parsed in a child process with limits: a file that crashes, hangs
or bloats its parser fails alone, with a reason, and the process that asked lives on."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from retrieval.loaders import load_bytes
from retrieval.loaders.base import LoaderError
from retrieval.loaders.isolation import IsolatedRunner, ParserCrashError, ParserLimits, load_bytes_isolated
from retrieval.models import Document, DocumentStatus
from retrieval.services.documents import document_create_from_file
from retrieval.services.ingestion import document_ingest
from tests.conftest import ROOT, clean_env
from tests.e2e.test_worker_process import database_url
from tests.factories import KnowledgeBaseFactory
from tests.own_services import wait_until

GUIDE = b"# Setup guide\n\n## Install\n\nRun the installer and follow the prompts.\n"
# A Markdown table that takes markdown-it several seconds of processor time to parse.
# About 6 s of processor time to parse here: well past the 1 s allowance plus the whole
# second the child's own start-up can round it up to (60,000 rows took 2 s, right at it).
SLOW_TABLE = ("| a | b |\n|---|---|\n" + "| x *y* | [l](http://z) |\n" * 180_000).encode()


@pytest.fixture
def runner() -> IsolatedRunner:
    # The product's wall-clock limit: on a loaded machine a child's 1 s of processor time
    # can take many seconds of wall time, and the processor limit must be what stops it.
    runner = IsolatedRunner(ParserLimits(memory_mb=1024, cpu_seconds=1))
    yield runner
    runner.stop()


@pytest.fixture
def impatient_runner() -> IsolatedRunner:
    # 5 s: more than ten times what a fresh child takes to start and read a short file.
    runner = IsolatedRunner(ParserLimits(memory_mb=1024, cpu_seconds=1, wall_seconds=5))
    yield runner
    runner.stop()


def test_the_child_reads_a_file_as_the_worker_would() -> None:
    limits = ParserLimits()
    assert load_bytes_isolated(GUIDE, limits=limits, filename="guide.md") == load_bytes(GUIDE, filename="guide.md")


def test_a_loader_error_comes_back_with_its_message() -> None:
    with pytest.raises(LoaderError, match="The file is empty"):
        load_bytes_isolated(b"   ", limits=ParserLimits(), filename="empty.md")
    with pytest.raises(LoaderError, match="PDF"):
        load_bytes_isolated(b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog", limits=ParserLimits(), filename="cut.pdf")


def test_a_segfault_costs_one_call_and_the_next_gets_a_fresh_child(runner: IsolatedRunner) -> None:
    with pytest.raises(ParserCrashError, match=r"crashed on this file \(signal SIGSEGV\)"):
        runner.call("ctypes:string_at", 0)  # a real segfault in C code
    assert runner.call("retrieval.loaders.files:load_bytes", GUIDE, filename="guide.md").title == "Setup guide"


def test_a_parse_past_its_processor_time_is_stopped(runner: IsolatedRunner) -> None:
    with pytest.raises(ParserCrashError, match="more than 1 seconds of processor time"):
        runner.call("retrieval.loaders.files:load_bytes", SLOW_TABLE, filename="table.md")
    assert runner.call("retrieval.loaders.files:load_bytes", GUIDE, filename="guide.md").title == "Setup guide"


def test_a_hang_is_killed_at_the_wall_clock_limit(impatient_runner: IsolatedRunner) -> None:
    runner = impatient_runner
    started = time.monotonic()
    with pytest.raises(ParserCrashError, match="took longer than 5 seconds"):
        runner.call("time:sleep", 60)  # blocked, using no processor time
    assert time.monotonic() - started < 30
    assert runner.call("retrieval.loaders.files:load_bytes", GUIDE, filename="guide.md").title == "Setup guide"


def test_memory_past_the_limit_fails_the_file_not_the_process(runner: IsolatedRunner) -> None:
    with pytest.raises(LoaderError, match="needs more memory"):
        runner.call("builtins:bytearray", 4 * 1024**3)
    assert runner.call("retrieval.loaders.files:load_bytes", GUIDE, filename="guide.md").title == "Setup guide"


def test_an_unexpected_parser_exception_is_raised_with_the_childs_traceback(runner: IsolatedRunner) -> None:
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        runner.call("operator:truediv", 1, 0)


@pytest.mark.django_db
def test_ingestion_marks_a_document_that_outruns_its_parser_failed(settings, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = tmp_path
    settings.NEO_PARSER_CPU_SECONDS = 1
    knowledge_base = KnowledgeBaseFactory()
    document = document_create_from_file(
        knowledge_base=knowledge_base, filename="table.md", data=SLOW_TABLE, queue=False
    )
    document_ingest(document=document)
    document.refresh_from_db()
    assert document.status == DocumentStatus.FAILED
    assert "processor time" in document.error


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_an_indexing_worker_outlives_a_file_that_kills_its_parser(redis_url: str, settings, tmp_path: Path) -> None:
    """A real Celery worker: the hostile file fails with its reason, the worker keeps its
    pid and ingests the next file."""
    settings.MEDIA_ROOT = tmp_path
    settings.NEO_TASKS_IN_PROCESS = False
    env = clean_env(
        DATABASE_URL=database_url(), REDIS_URL=redis_url, MEDIA_ROOT=str(tmp_path), NEO_PARSER_CPU_SECONDS="1"
    )
    worker = subprocess.Popen(
        [
            sys.executable, "-m", "celery", "-A", "neo_support", "worker", "-Q", "indexing",
            "-n", f"parser-{os.getpid()}@%h", "--pool", "threads", "--concurrency", "1",
            "--without-gossip", "--without-mingle", "--loglevel", "WARNING",
        ],
        cwd=ROOT, env=env,
    )  # fmt: skip
    try:
        knowledge_base = KnowledgeBaseFactory()
        hostile = document_create_from_file(knowledge_base=knowledge_base, filename="table.md", data=SLOW_TABLE)
        failed = wait_until(
            lambda: Document.objects.filter(pk=hostile.pk, status=DocumentStatus.FAILED).first(), 120, "the failure"
        )
        assert "processor time" in failed.error
        assert worker.poll() is None

        guide = document_create_from_file(knowledge_base=knowledge_base, filename="guide.md", data=GUIDE)
        wait_until(
            lambda: Document.objects.filter(pk=guide.pk, status=DocumentStatus.READY).exists(), 120, "the next file"
        )
        assert worker.poll() is None
        assert guide.chunks.exists()
    finally:
        worker.kill()
        worker.wait()
