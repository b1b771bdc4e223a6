"""The warning before a long upload (issue 23: a 2 MB text file became 2,000 chunks and
took minutes to index, with nothing said beforehand)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from retrieval.estimates import LONG_SECONDS, ingest_estimate, pdf_page_count, upload_estimate
from retrieval.ingest_rate import MIN_CHUNKS, ingest_rate_measured, ingest_rate_record
from retrieval.services.documents import document_create_from_text
from retrieval.services.ingestion import document_ingest
from tests.factories import KnowledgeBaseFactory


def test_a_two_megabyte_text_file_is_estimated_at_about_two_thousand_chunks_and_called_long() -> None:
    estimate = ingest_estimate(filename="manual.txt", size=2_000_000, chunk_size=200, chunk_overlap=30, cores=2)
    assert 1_500 <= estimate.chunks <= 2_500
    assert estimate.seconds >= LONG_SECONDS and estimate.long
    assert estimate.describe().startswith(f"about {estimate.chunks:,} chunks, about ")


def test_a_short_article_is_not_called_long() -> None:
    estimate = ingest_estimate(filename="refunds.md", size=3_000, chunk_size=200, chunk_overlap=30, cores=2)
    assert estimate.chunks <= 5 and not estimate.long


def test_more_cores_and_smaller_chunks_change_the_time_and_the_count() -> None:
    two = ingest_estimate(filename="a.txt", size=500_000, chunk_size=200, chunk_overlap=30, cores=2)
    eight = ingest_estimate(filename="a.txt", size=500_000, chunk_size=200, chunk_overlap=30, cores=8)
    small = ingest_estimate(filename="a.txt", size=500_000, chunk_size=100, chunk_overlap=30, cores=2)
    assert eight.seconds < two.seconds
    assert small.chunks > two.chunks


def test_a_pdf_is_estimated_from_its_pages_when_they_show() -> None:
    data = b"%PDF-1.4\n" + b"".join(b"%d 0 obj << /Type /Page /Parent 1 0 R >> endobj\n" % n for n in range(300))
    data += b"1 0 obj << /Type /Pages /Count 300 >> endobj\n"
    assert pdf_page_count(data) == 300
    by_pages = upload_estimate(filename="guide.pdf", data=data, chunk_size=200, chunk_overlap=30)
    assert by_pages.chunks > 300  # hundreds of pages of text, not the few kilobytes of the file


def test_a_measured_rate_replaces_the_per_core_constant() -> None:
    guessed = ingest_estimate(filename="a.txt", size=500_000, chunk_size=200, chunk_overlap=30, cores=2)
    measured = ingest_estimate(
        filename="a.txt", size=500_000, chunk_size=200, chunk_overlap=30, cores=2, measured_rate=100.0
    )
    assert measured.chunks == guessed.chunks
    assert measured.seconds == round(measured.chunks / 100.0)
    halved = ingest_estimate(
        filename="a.txt", size=500_000, chunk_size=400, chunk_overlap=30, cores=2, measured_rate=100.0
    )
    assert halved.seconds == round(halved.chunks / 50.0)  # chunks twice the reference size go half as fast


def test_the_rate_is_a_moving_average_of_ingests_big_enough_to_time() -> None:
    assert ingest_rate_measured() is None
    ingest_rate_record(chunks=10, chunk_size=200, seconds=1.0)  # too few chunks to time
    assert ingest_rate_measured() is None
    ingest_rate_record(chunks=100, chunk_size=200, seconds=10.0)
    assert ingest_rate_measured() == pytest.approx(10.0)
    ingest_rate_record(chunks=400, chunk_size=100, seconds=10.0)  # 20 reference chunks a second
    assert ingest_rate_measured() == pytest.approx(10.0 + 0.3 * (20.0 - 10.0))


@pytest.mark.django_db
def test_an_ingest_measures_the_rate_the_next_upload_is_estimated_with(settings: Any, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"
    knowledge_base = KnowledgeBaseFactory()
    text = "\n\n".join(f"## Topic {n}\n\nArticle {n} explains how parcel {n} is packed and sent." for n in range(60))
    document = document_create_from_text(knowledge_base=knowledge_base, title="Parcels", text=text, queue=False)
    document_ingest(document=document, sync=False)
    document.refresh_from_db()
    assert document.chunk_count >= MIN_CHUNKS
    rate = ingest_rate_measured()
    assert rate is not None and rate > 0
    estimate = ingest_estimate(
        filename="b.txt", size=100_000, chunk_size=200, chunk_overlap=30, measured_rate=ingest_rate_measured()
    )
    assert estimate.seconds == max(1, round(estimate.chunks / rate))
