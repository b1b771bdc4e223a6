"""Long PDFs read batch by batch of pages (retrieval/loaders/pdf.py, issue 23).

Regression: a 117-page PDF took 8 s to parse in one call, so a 1,000-page manual would
outrun the parser child's 60 s CPU limit, and the progress bar stood still meanwhile. The
PDFs are built here with fpdf2; batches are made small so that a short PDF has several.
"""

from __future__ import annotations

from typing import Any

import pytest
from fpdf import FPDF

from retrieval.loaders import LoaderError, load_bytes
from retrieval.loaders import pdf as pdf_loader
from retrieval.loaders.isolation import IsolatedRunner, ParserLimits, load_bytes_isolated
from retrieval.models import Document
from retrieval.services import ingestion
from retrieval.services.documents import document_create_from_file
from retrieval.services.ingestion import document_ingest
from tests.factories import KnowledgeBaseFactory

PAGES = 120


def manual(pages: int = PAGES) -> bytes:
    """A manual with a chapter heading and a paragraph on every page."""
    pdf = FPDF()
    pdf.set_title("Printer manual")
    for number in range(1, pages + 1):
        pdf.add_page()
        pdf.set_font("helvetica", size=18)
        pdf.cell(0, 10, f"Chapter {number}", new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("helvetica", size=11)
        pdf.multi_cell(0, 7, f"Hold the reset button for {number} seconds to clear error E{number}.")
    return bytes(pdf.output())


@pytest.fixture(scope="module")
def long_pdf() -> bytes:
    return manual()


@pytest.fixture(autouse=True)
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pdf_loader, "PAGES_PER_CALL", 25)


def test_a_long_pdf_is_read_in_batches_reporting_progress(long_pdf: bytes) -> None:
    progress: list[tuple[int, int]] = []
    document = load_bytes(
        long_pdf, filename="manual.pdf", on_progress=lambda read, total: progress.append((read, total))
    )
    assert progress == [(25, PAGES), (50, PAGES), (75, PAGES), (100, PAGES), (120, PAGES)]
    assert document.title == "Printer manual"
    assert document.metadata["pages"] == str(PAGES)
    last = document.blocks[-1]
    assert (last.text, last.heading_path, last.location) == (
        "Hold the reset button for 120 seconds to clear error E120.",
        ("Chapter 120",),
        "page 120",
    )


def test_each_batch_is_one_call_to_the_parser_child_so_the_cpu_limit_applies_per_batch(
    long_pdf: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real_call = IsolatedRunner.call

    def counted(self: IsolatedRunner, target: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(target)
        return real_call(self, target, *args, **kwargs)

    monkeypatch.setattr(IsolatedRunner, "call", counted)
    isolated = load_bytes_isolated(long_pdf, limits=ParserLimits(), filename="manual.pdf")
    assert calls == ["retrieval.loaders.pdf:pdf_outline"] + ["retrieval.loaders.pdf:pdf_pages"] * 5
    assert isolated == load_bytes(long_pdf, filename="manual.pdf")


def test_a_pdf_over_the_page_limit_is_refused_before_its_pages_are_read(
    long_pdf: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pdf_loader, "MAX_PAGES", 100)
    with pytest.raises(LoaderError, match="The PDF has 120 pages; split it into files of at most 100"):
        load_bytes(long_pdf, filename="manual.pdf")


@pytest.mark.django_db
@pytest.mark.usefixtures("in_process_tasks")
def test_ingesting_a_long_pdf_moves_the_documents_progress_page_batch_by_page_batch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(pdf_loader, "PAGES_PER_CALL", 20)  # three batches of a 60-page manual
    seen: list[int] = []
    real_set_progress = ingestion._set_progress

    def recorded(document: Document, progress: int, **fields: Any) -> None:
        seen.append(progress)
        real_set_progress(document, progress, **fields)

    monkeypatch.setattr(ingestion, "_set_progress", recorded)
    document = document_create_from_file(
        knowledge_base=KnowledgeBaseFactory(), filename="manual.pdf", data=manual(60), queue=False
    )
    document_ingest(document=Document.objects.select_related("knowledge_base").get(pk=document.pk))
    stored = Document.objects.get(pk=document.pk)
    assert (stored.status, stored.progress, stored.title) == ("ready", 100, "Printer manual")
    # Loading 5 to 40 in three page batches, then embedding up to 90.
    assert seen[:5] == [5, 16, 28, 40, 40]
    assert seen == sorted(seen)
