"""The warning before a long upload (issue 23: a 2 MB text file became 2,000 chunks and
took minutes to index, with nothing said beforehand)."""

from __future__ import annotations

from retrieval.estimates import LONG_SECONDS, ingest_estimate, pdf_page_count, upload_estimate


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
