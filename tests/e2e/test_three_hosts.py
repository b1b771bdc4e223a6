"""Issue 25's done-when: three "hosts" on this machine, each with its own empty var, media
and index folders (web; indexing worker; generation worker), sharing only Postgres,
Redis and an S3-compatible server (moto on loopback).

A document uploaded through the web host is indexed on the indexing host and answered
with a citation by the generation host; a second upload is picked up without a
restart; the generation host killed and started again with an empty cache rebuilds it
and keeps answering."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bots.models import Bot
from neo_support.services import api_key_create
from retrieval.models import Document, DocumentStatus, KnowledgeBase
from tests.conftest import ROOT, clean_env
from tests.e2e.test_worker_process import database_url
from tests.factories import BotFactory, KnowledgeBaseFactory, OrganizationFactory
from tests.own_services import OwnS3, Processes, Visitor, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

REFUNDS = b"# Refunds\n\nRefunds reach your card within five working days of the parcel arriving back."
SHIPPING = b"# Shipping to Norway\n\nParcels to Norway travel by courier and arrive in three to four days."


class Host:
    """One machine: its own folders, the shared services' addresses, its processes."""

    def __init__(self, name: str, root: Path, shared: dict[str, str]) -> None:
        self.folder = root / name
        self.folder.mkdir()
        self.indexes = self.folder / "indexes"
        self.media = self.folder / "media"
        env = clean_env(
            **shared,
            NEO_VAR_DIR=str(self.folder / "var"),
            MEDIA_ROOT=str(self.media),
            NEO_INDEX_DIR=str(self.indexes),
        )
        self.processes = Processes(env, self.folder)


@pytest.fixture
def s3() -> Iterator[OwnS3]:
    server = OwnS3()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def hosts(redis_url: str, s3: OwnS3, tmp_path: Path) -> Iterator[dict[str, Host]]:
    shared = {
        "DATABASE_URL": database_url(),
        "REDIS_URL": redis_url,
        "SECRET_KEY": "three-hosts-share-this-secret-key-" + "x" * 20,
        "NEO_MODEL": "/nonexistent/model",  # extractive answers: cited passages, no model
        "NEO_RATE_CONNECTIONS_PER_IP": "10000/minute",
        "NEO_RATE_MESSAGES_PER_IP": "10000/minute",
        "NEO_RATE_MESSAGES_PER_VISITOR": "10000/minute",
        **s3.environ(),
    }
    made = {name: Host(name, tmp_path, shared) for name in ("web", "indexing", "generation")}
    yield made
    for host in made.values():
        host.processes.stop_all()


def upload(base: str, api_key: str, knowledge_base: KnowledgeBase, name: str, data: bytes) -> int:
    response = httpx.post(
        f"{base}/api/knowledge-bases/{knowledge_base.pk}/documents/",
        headers={"Authorization": f"Bearer {api_key}"},
        files={"file": (name, data, "text/markdown")},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def ready(document_id: int) -> bool:
    return Document.objects.filter(pk=document_id, status=DocumentStatus.READY).exists()


def cited_titles(done: dict[str, object]) -> list[str]:
    citations = done.get("citations") or []
    assert isinstance(citations, list)
    return [str(citation["title"]) for citation in citations]


def test_web_indexing_and_generation_on_three_hosts_share_only_postgres_redis_and_s3(
    hosts: dict[str, Host], s3: OwnS3
) -> None:
    web, indexing, generation = hosts["web"], hosts["indexing"], hosts["generation"]
    knowledge_base = KnowledgeBaseFactory(organization=OrganizationFactory())
    bot: Bot = BotFactory(
        organization=knowledge_base.organization,
        answer_threshold=0.0,
        handoff_threshold=0.0,
        allowed_origins=[web.processes.base],
    )
    bot.knowledge_bases.add(knowledge_base)
    _, api_key = api_key_create(organization=knowledge_base.organization, name="three hosts")

    web.processes.web()
    indexing.processes.worker("indexing")
    generation.processes.worker("generation,default")

    # Uploaded through the web host: the file goes to the bucket, the indexing host makes it ready.
    first = upload(web.processes.base, api_key, knowledge_base, "refunds.md", REFUNDS)
    wait_until(lambda: ready(first), 180, "the indexing host to index the first document", every=0.5)
    assert any(key.startswith("media/documents/") for key in s3.keys("media/"))
    for host in hosts.values():
        assert not (host.media / "documents").exists(), f"{host.folder.name} kept the upload on its own disk"
    knowledge_base.refresh_from_db()
    assert (indexing.indexes / str(knowledge_base.pk) / f"v{knowledge_base.index_version}.json").exists()
    assert not (generation.indexes / str(knowledge_base.pk)).exists()

    visitor = Visitor(web.processes.base, bot.public_key)
    visitor.connect()
    _, done = visitor.ask("How long do refunds take?", "q1", timeout=180)
    assert done["status"] == "done" and "five working days" in str(done["text"])
    assert "Refunds" in cited_titles(done)
    knowledge_base.refresh_from_db()
    assert (generation.indexes / str(knowledge_base.pk) / f"v{knowledge_base.index_version}.json").exists()

    # A second upload is answered without restarting anything.
    second = upload(web.processes.base, api_key, knowledge_base, "shipping.md", SHIPPING)
    wait_until(lambda: ready(second), 180, "the indexing host to index the second document", every=0.5)
    _, done = visitor.ask("How long does a parcel to Norway take?", "q2", timeout=180)
    assert done["status"] == "done" and "three to four days" in str(done["text"])
    assert "Shipping to Norway" in cited_titles(done)

    # The generation host dies and comes back with an empty cache: it rebuilds and answers.
    (worker,) = [p for p in generation.processes.started if p.poll() is None]
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait(timeout=30)
    shutil.rmtree(generation.indexes)
    generation.processes.worker("generation,default")
    _, done = visitor.ask("How long do refunds take?", "q3", timeout=240)
    assert done["status"] == "done" and "five working days" in str(done["text"])
    knowledge_base.refresh_from_db()
    assert (generation.indexes / str(knowledge_base.pk) / f"v{knowledge_base.index_version}.json").exists()
    visitor.close()


def test_a_host_given_a_malformed_storage_setting_refuses_to_start(tmp_path: Path) -> None:
    env = clean_env(NEO_VAR_DIR=str(tmp_path / "var"), NEO_STORAGE="/mnt/shared/media")
    done = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode != 0
    assert "NEO_STORAGE: expected 'local' or s3://bucket/prefix" in done.stderr
