"""The ingestion pipeline on the real database, embedding model and index files."""

from __future__ import annotations

import io

import numpy as np
import pytest
from django.core.management import call_command
from docx import Document as DocxDocument
from fpdf import FPDF

from retrieval.index import load_pair, stored_versions
from retrieval.models import Chunk, Document, KnowledgeBase
from retrieval.search import index_for, search
from retrieval.services.documents import (
    DocumentRejected,
    document_create_from_file,
    document_create_from_text,
    document_delete,
    document_replace,
)
from retrieval.services.indexing import index_directory, knowledge_base_sync_index
from retrieval.services.ingestion import document_ingest
from tests.factories import KnowledgeBaseFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("in_process_tasks")]


@pytest.fixture
def knowledge_base() -> KnowledgeBase:
    return KnowledgeBaseFactory(name="Help centre")


def ingest_now(document: Document) -> Document:
    document_ingest(document=Document.objects.select_related("knowledge_base").get(pk=document.pk))
    document.refresh_from_db()
    return document


def pdf_bytes(*pages: str) -> bytes:
    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    return bytes(pdf.output())


def docx_bytes() -> bytes:
    document = DocxDocument()
    document.add_heading("Shipping guide", level=1)
    document.add_heading("International orders", level=2)
    document.add_paragraph("Parcels to Canada arrive within nine business days by tracked courier.")
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def consistent_ids(knowledge_base: KnowledgeBase) -> tuple[set[int], set[int], set[int]]:
    knowledge_base.refresh_from_db()
    pair = load_pair(index_directory(knowledge_base), knowledge_base.index_version)
    database = set(Chunk.objects.filter(document__knowledge_base=knowledge_base).values_list("pk", flat=True))
    return database, pair.vectors.id_set(), pair.lexical.id_set()


FILES = {
    "guide.pdf": (lambda: pdf_bytes("Returns are accepted within 45 days.", "Gift cards never expire."), "gift cards"),
    "shipping.docx": (docx_bytes, "parcels to Canada"),
    "page.html": (
        lambda: (
            b"<html><head><title>Warranty</title></head><body><nav>Menu</nav><h2 id='w'>Coverage</h2>"
            b"<p>Batteries are covered by a two year warranty.</p></body></html>"
        ),
        "battery warranty",
    ),
    "faq.md": (lambda: b"# FAQ\n\n## Can I pay by cheque?\n\nWe accept cheques from UK banks only.\n", "pay by cheque"),
    "notes.txt": (lambda: b"Our office cat is called Marmalade and greets every visitor.", "office cat name"),
    "plans.csv": (lambda: b"plan,price,seats\nSolo,12,1\nTeam,29,5\n", "Team plan seats"),
}


@pytest.mark.parametrize("filename", sorted(FILES))
def test_every_format_is_ingested_and_found_by_search(knowledge_base, filename: str) -> None:
    make, query = FILES[filename]
    document = document_create_from_file(knowledge_base=knowledge_base, filename=filename, data=make())
    document = ingest_now(document)
    assert document.status == "ready", document.error
    assert document.chunk_count >= 1 and document.progress == 100
    knowledge_base.refresh_from_db()
    hits = search(knowledge_bases=[knowledge_base], query=query, k=3)
    assert hits and hits[0].document_id == document.pk


def test_a_pdf_chunk_carries_its_page_and_a_markdown_chunk_its_heading(knowledge_base) -> None:
    pdf = ingest_now(
        document_create_from_file(knowledge_base=knowledge_base, filename="a.pdf", data=pdf_bytes("One.", "Two."))
    )
    assert [chunk.location for chunk in pdf.chunks.all()] == ["pages 1–2"]
    faq = ingest_now(
        document_create_from_text(
            knowledge_base=knowledge_base, title="FAQ", text="# FAQ\n\n## Refunds\n\n### How long?\n\nFive days."
        )
    )
    assert faq.chunks.get().heading_path == ["Refunds", "How long?"]


def test_add_replace_and_delete_keep_database_faiss_and_keyword_index_in_step(knowledge_base) -> None:
    first = ingest_now(document_create_from_text(knowledge_base=knowledge_base, title="A", text="Alpha facts. " * 50))
    second = ingest_now(document_create_from_text(knowledge_base=knowledge_base, title="B", text="Beta facts here."))
    database, vectors, lexical = consistent_ids(knowledge_base)
    assert database == vectors == lexical and len(database) >= 2

    old_chunks = set(first.chunks.values_list("pk", flat=True))
    document_replace(document=first, filename="a.md", data=b"# A\n\nGamma replaces alpha.")
    ingest_now(first)
    database, vectors, lexical = consistent_ids(knowledge_base)
    assert database == vectors == lexical
    assert not old_chunks & vectors

    document_delete(document=second)
    knowledge_base_sync_index(knowledge_base=knowledge_base)
    database, vectors, lexical = consistent_ids(knowledge_base)
    assert database == vectors == lexical == set(first.chunks.values_list("pk", flat=True))


def test_a_duplicate_upload_is_refused_and_stores_nothing(knowledge_base) -> None:
    document_create_from_file(knowledge_base=knowledge_base, filename="a.txt", data=b"Same content")
    with pytest.raises(DocumentRejected, match="already in the knowledge base as 'a'"):
        document_create_from_file(knowledge_base=knowledge_base, filename="copy.txt", data=b"Same content")
    assert knowledge_base.documents.count() == 1


@pytest.mark.parametrize(
    ("filename", "data", "message"),
    [
        ("virus.exe", b"MZ", "Unsupported file type"),
        ("empty.txt", b"", "The file is empty"),
    ],
)
def test_bad_uploads_are_refused_before_anything_is_stored(knowledge_base, filename, data, message) -> None:
    with pytest.raises(DocumentRejected, match=message):
        document_create_from_file(knowledge_base=knowledge_base, filename=filename, data=data)
    assert not Document.objects.exists()


def test_an_upload_over_the_size_limit_is_refused(knowledge_base, settings) -> None:
    settings.NEO_UPLOAD_MAX_BYTES = 1024
    with pytest.raises(DocumentRejected, match="the limit is"):
        document_create_from_file(knowledge_base=knowledge_base, filename="big.txt", data=b"x" * 2048)


@pytest.mark.parametrize(
    ("filename", "data", "message"),
    [
        ("broken.pdf", b"%PDF-1.4 truncated", "PDF"),
        ("latin.txt", b"\xff\xfe\x00\x00" * 300, ""),
        ("broken.docx", b"PK\x03\x04 not really a zip", ""),
    ],
)
def test_a_document_that_cannot_be_parsed_fails_alone(knowledge_base, filename, data, message) -> None:
    good = ingest_now(document_create_from_text(knowledge_base=knowledge_base, title="Good", text="Good facts."))
    knowledge_base.refresh_from_db()
    version = knowledge_base.index_version
    bad = ingest_now(document_create_from_file(knowledge_base=knowledge_base, filename=filename, data=data))
    assert bad.status == "failed" and bad.error and message in bad.error
    assert "Traceback" not in bad.error
    knowledge_base.refresh_from_db()
    assert knowledge_base.index_version == version
    good.refresh_from_db()
    assert good.status == "ready"
    assert consistent_ids(knowledge_base)[0] == set(good.chunks.values_list("pk", flat=True))


def test_a_reader_reloads_when_the_index_version_moves(knowledge_base) -> None:
    ingest_now(document_create_from_text(knowledge_base=knowledge_base, title="One", text="Unicorn care tips."))
    knowledge_base.refresh_from_db()
    before = index_for(knowledge_base)
    assert before is not None and index_for(knowledge_base) is before  # cached

    ingest_now(document_create_from_text(knowledge_base=knowledge_base, title="Two", text="Dragon feeding rules."))
    stale = KnowledgeBase.objects.get(pk=knowledge_base.pk)
    after = index_for(stale)
    assert after is not before and after.version == before.version + 1
    assert search(knowledge_bases=[stale], query="dragon feeding", k=1)[0].document_title == "Two"


def test_only_the_current_and_previous_index_versions_stay_on_disk(knowledge_base, django_capture_on_commit_callbacks):
    for n in range(4):
        with django_capture_on_commit_callbacks(execute=True):
            ingest_now(document_create_from_text(knowledge_base=knowledge_base, title=f"T{n}", text=f"Fact {n}."))
    knowledge_base.refresh_from_db()
    assert stored_versions(index_directory(knowledge_base)) == [
        knowledge_base.index_version - 1,
        knowledge_base.index_version,
    ]


def test_a_missing_index_is_rebuilt_from_stored_vectors_without_re_embedding(knowledge_base, monkeypatch) -> None:
    ingest_now(document_create_from_text(knowledge_base=knowledge_base, title="One", text="Kiwi harvest season."))
    for path in index_directory(knowledge_base).iterdir():
        path.unlink()
    monkeypatch.setattr("retrieval.embeddings.embed", lambda *a, **k: pytest.fail("must not re-embed"))
    call_command("reindex", "--kb", "Help centre", stdout=io.StringIO())
    database, vectors, lexical = consistent_ids(knowledge_base)
    assert database == vectors == lexical and database


def test_an_empty_knowledge_base_searches_to_nothing(knowledge_base) -> None:
    assert search(knowledge_bases=[knowledge_base], query="anything", k=5) == []


def test_stored_vectors_are_the_normalised_embeddings(knowledge_base) -> None:
    document = ingest_now(document_create_from_text(knowledge_base=knowledge_base, title="V", text="Vectors."))
    vector = np.frombuffer(bytes(document.chunks.get().embedding), dtype=np.float32)
    assert vector.shape == (384,) and abs(float(vector @ vector) - 1.0) < 1e-4
