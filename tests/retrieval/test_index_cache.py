"""Index files as each host's cache of the database: a host that lacks the version the
database names builds it from the chunk rows, serving the version it has meanwhile."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from django.db import connection

from retrieval.index import load_pair, stored_versions
from retrieval.models import Chunk, KnowledgeBase
from retrieval.search import forget_cached_indexes, index_for, search
from retrieval.services.documents import document_create_from_text
from retrieval.services.indexing import index_cache_fill, index_directory
from retrieval.services.ingestion import documents_ingest_all
from tests.conftest import ROOT, clean_env
from tests.factories import KnowledgeBaseFactory, OrganizationFactory

REFUNDS = "# Refunds\n\nRefunds reach your card within five working days of the return arriving."
SHIPPING = "# Shipping\n\nParcels to Norway are sent by courier and arrive in three to four days."


def ingest(knowledge_base: KnowledgeBase, title: str, text: str) -> None:
    document = document_create_from_text(knowledge_base=knowledge_base, title=title, text=text, queue=False)
    documents_ingest_all(documents=[document])
    knowledge_base.refresh_from_db()


def on_host(settings, folder: Path) -> None:  # type: ignore[no-untyped-def]
    """Make this process a host whose index cache is `folder` (and nothing in memory)."""
    settings.NEO_INDEX_DIR = folder
    forget_cached_indexes()


def titles(knowledge_base: KnowledgeBase, query: str) -> list[str]:
    return [hit.document_title for hit in search(knowledge_bases=[knowledge_base], query=query, k=3)]


@pytest.mark.django_db
def test_a_host_with_an_empty_cache_builds_the_current_version_from_the_database(settings, tmp_path: Path) -> None:
    on_host(settings, tmp_path / "indexing-host")
    knowledge_base = KnowledgeBaseFactory(organization=OrganizationFactory())
    ingest(knowledge_base, "Refunds", REFUNDS)
    ingest(knowledge_base, "Shipping", SHIPPING)
    written = load_pair(index_directory(knowledge_base), knowledge_base.index_version)

    on_host(settings, tmp_path / "web-host")
    assert not index_directory(knowledge_base).exists()
    assert titles(knowledge_base, "How long do refunds take?")[0] == "Refunds"
    assert stored_versions(index_directory(knowledge_base)) == [knowledge_base.index_version]
    built = load_pair(index_directory(knowledge_base), knowledge_base.index_version)
    stored = set(Chunk.objects.filter(document__knowledge_base=knowledge_base).values_list("pk", flat=True))
    assert built.vectors.id_set() == built.lexical.id_set() == written.vectors.id_set() == stored
    ids = sorted(stored)
    assert np.array_equal(built.vectors.index.reconstruct_batch(ids), written.vectors.index.reconstruct_batch(ids))
    assert built.meta["embedding_model"] == knowledge_base.embedding_model
    assert not list(index_directory(knowledge_base).glob(".*.tmp")), "no temporary file is left behind"


@pytest.mark.django_db
def test_a_fill_of_a_version_already_here_does_nothing(settings, tmp_path: Path) -> None:
    on_host(settings, tmp_path / "host")
    knowledge_base = KnowledgeBaseFactory(organization=OrganizationFactory())
    ingest(knowledge_base, "Refunds", REFUNDS)
    before = (index_directory(knowledge_base) / f"v{knowledge_base.index_version}.json").stat().st_ino
    assert index_cache_fill(knowledge_base=knowledge_base, version=knowledge_base.index_version) is False
    assert (index_directory(knowledge_base) / f"v{knowledge_base.index_version}.json").stat().st_ino == before


@pytest.mark.django_db
def test_a_knowledge_base_whose_documents_were_all_deleted_builds_an_empty_index(settings, tmp_path: Path) -> None:
    on_host(settings, tmp_path / "indexing-host")
    knowledge_base = KnowledgeBaseFactory(organization=OrganizationFactory())
    ingest(knowledge_base, "Refunds", REFUNDS)
    knowledge_base.documents.all().delete()
    KnowledgeBase.objects.filter(pk=knowledge_base.pk).update(index_version=knowledge_base.index_version + 1)
    knowledge_base.refresh_from_db()

    on_host(settings, tmp_path / "web-host")
    assert titles(knowledge_base, "refunds") == []
    assert len(load_pair(index_directory(knowledge_base), knowledge_base.index_version).vectors) == 0


@pytest.mark.django_db(transaction=True)
def test_a_host_serves_its_previous_version_while_it_builds_a_big_new_one(settings, tmp_path: Path) -> None:
    settings.NEO_INDEX_INLINE_BUILD_CHUNKS = 1  # "big": more chunks than this
    indexing_host, web_host = tmp_path / "indexing-host", tmp_path / "web-host"
    on_host(settings, indexing_host)
    knowledge_base = KnowledgeBaseFactory(organization=OrganizationFactory())
    ingest(knowledge_base, "Refunds", REFUNDS)
    on_host(settings, web_host)
    first = index_for(knowledge_base)
    assert first is not None and first.version == knowledge_base.index_version

    settings.NEO_INDEX_DIR = indexing_host  # the indexing worker adds a document: version 2
    ingest(knowledge_base, "Shipping", SHIPPING)
    settings.NEO_INDEX_DIR = web_host
    assert knowledge_base.index_version == first.version + 1

    served = index_for(knowledge_base)
    assert served is first, "the version in memory answers while the new one is built"
    deadline = time.monotonic() + 60
    while (current := index_for(knowledge_base)) is first and time.monotonic() < deadline:
        time.sleep(0.05)
    assert current is not None and current.version == knowledge_base.index_version
    assert titles(knowledge_base, "parcels to Norway")[0] == "Shipping"
    assert stored_versions(index_directory(knowledge_base)) == [first.version, current.version]


def database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"] != "django.db.backends.postgresql":
        pytest.skip("two processes share the database only on Postgres")
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    return f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"


SEARCH_ON_A_HOST = """
import json, sys, django
django.setup()
from retrieval.models import KnowledgeBase
from retrieval.search import search
from retrieval.services.indexing import index_directory
from retrieval.index import stored_versions
kb = KnowledgeBase.objects.get(pk=int(sys.argv[1]))
hits = search(knowledge_bases=[kb], query=sys.argv[2], k=1)
print(json.dumps({"title": hits[0].document_title if hits else None, "versions": stored_versions(index_directory(kb))}))
"""


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_two_processes_with_their_own_empty_index_folders_each_answer_from_the_database(tmp_path: Path) -> None:
    url = database_url()
    knowledge_base = KnowledgeBaseFactory(organization=OrganizationFactory())
    for title, text in (("Refunds", REFUNDS), ("Shipping", SHIPPING)):
        document_create_from_text(knowledge_base=knowledge_base, title=title, text=text, queue=False)

    def host(folder: str, code: str, *arguments: str) -> dict[str, object]:
        env = clean_env(
            DATABASE_URL=url,
            NEO_VAR_DIR=str(tmp_path / folder / "var"),
            NEO_INDEX_DIR=str(tmp_path / folder / "indexes"),
            DJANGO_SETTINGS_MODULE="neo_support.settings",
        )
        done = subprocess.run(
            [sys.executable, "-c", code, *arguments], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        return dict(json.loads(done.stdout.strip().splitlines()[-1]))

    ingest_code = (
        "import json, django\ndjango.setup()\n"
        "from retrieval.models import Document\nfrom retrieval.services.ingestion import documents_ingest_all\n"
        f"documents_ingest_all(documents=Document.objects.filter(knowledge_base_id={knowledge_base.pk}))\n"
        "print(json.dumps({}))\n"
    )
    host("indexing", ingest_code)
    knowledge_base.refresh_from_db()
    written = tmp_path / "indexing" / "indexes" / str(knowledge_base.pk) / f"v{knowledge_base.index_version}.json"
    assert written.exists()

    answers = (("web", "refunds to my card", "Refunds"), ("generation", "parcels to Norway", "Shipping"))
    for folder, query, title in answers:
        found = host(folder, SEARCH_ON_A_HOST, str(knowledge_base.pk), query)
        assert found == {"title": title, "versions": [knowledge_base.index_version]}


@pytest.mark.django_db
def test_a_small_knowledge_base_is_brought_up_to_date_before_the_search(settings, tmp_path: Path) -> None:
    indexing_host, web_host = tmp_path / "indexing-host", tmp_path / "web-host"
    on_host(settings, indexing_host)
    knowledge_base = KnowledgeBaseFactory(organization=OrganizationFactory())
    ingest(knowledge_base, "Refunds", REFUNDS)
    on_host(settings, web_host)
    assert titles(knowledge_base, "refunds")[0] == "Refunds"
    settings.NEO_INDEX_DIR = indexing_host
    ingest(knowledge_base, "Shipping", SHIPPING)
    settings.NEO_INDEX_DIR = web_host
    assert titles(knowledge_base, "parcels to Norway")[0] == "Shipping", "found by the first search after"


@pytest.mark.django_db(transaction=True)
def test_a_new_host_answers_from_an_exact_index_until_its_hnsw_graph_is_built(settings, tmp_path: Path) -> None:
    settings.NEO_HNSW_THRESHOLD = 1
    on_host(settings, tmp_path / "indexing-host")
    knowledge_base = KnowledgeBaseFactory(organization=OrganizationFactory())
    ingest(knowledge_base, "Refunds", REFUNDS)
    ingest(knowledge_base, "Shipping", SHIPPING)
    assert load_pair(index_directory(knowledge_base), knowledge_base.index_version).vectors.is_hnsw

    on_host(settings, tmp_path / "web-host")
    first = index_for(knowledge_base)
    assert first is not None and not first.vectors.is_hnsw and first.vectors.is_provisional
    assert titles(knowledge_base, "parcels to Norway")[0] == "Shipping"
    deadline = time.monotonic() + 60
    while (current := index_for(knowledge_base)) is first and time.monotonic() < deadline:
        time.sleep(0.05)
    assert current is not None and current.vectors.is_hnsw and not current.vectors.is_provisional
    assert current.version == first.version and current.vectors.id_set() == first.vectors.id_set()
    assert titles(knowledge_base, "parcels to Norway")[0] == "Shipping"
    on_host(settings, tmp_path / "web-host")  # a restart loads the graph from this host's disk
    reloaded = index_for(knowledge_base)
    assert reloaded is not None and reloaded.vectors.is_hnsw
