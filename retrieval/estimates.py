"""How long an upload will take to index, from its size, before anything is parsed.

Pure Python. A rough figure a person can plan around ("about 2,000 chunks, about 4
minutes"): chunks from the text the file likely holds, time from the embedding rate of
the packaged model on this machine's cores. The knowledge base page's script
(retrieval/static/retrieval/upload_estimate.js) computes the same from the numbers of
`estimate_parameters`, so the warning shows as soon as a file is chosen.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import PurePath

# Characters of text per token of new content in a chunk (English under the MiniLM
# word-piece tokenizer, chunks packed with whole sentences): a 2 MB text file at the
# default 200-token chunks with 30 shared makes about 2,000 chunks.
CHARS_PER_TOKEN = 6.0
# Characters of text per byte of file, by extension: markup, compression and fonts.
TEXT_PER_BYTE = {".html": 0.35, ".htm": 0.35, ".docx": 0.8, ".pdf": 0.05}
PDF_PAGE_CHARS = 2500
# Chunks of 200 tokens the packaged model embeds per second per core, with the rows and
# index writes: 8-16 a second on the development machine's 2 cores (shared), and the
# report behind issue 23 saw 2,000 in 6 minutes. Only until the deployment's own
# ingests have measured its rate (retrieval.ingest_rate).
CHUNKS_PER_SECOND_PER_CORE = 5.0
REFERENCE_CHUNK_TOKENS = 200
# An upload expected to take longer is announced as long.
LONG_SECONDS = 60
_PDF_PAGE = re.compile(rb"/Type\s*/Page(?![a-zA-Z])")


@dataclass(frozen=True)
class IngestEstimate:
    chunks: int
    seconds: int

    @property
    def long(self) -> bool:
        return self.seconds >= LONG_SECONDS

    def describe(self) -> str:
        return f"about {self.chunks:,} chunk{'s' * (self.chunks != 1)}, about {duration(self.seconds)} to index"


def duration(seconds: int) -> str:
    if seconds < 90:
        return f"{max(1, seconds)} second{'s' * (seconds != 1)}"
    minutes = round(seconds / 60)
    if minutes < 90:
        return f"{minutes} minutes"
    return f"{minutes / 60:.1f} hours"


def pdf_page_count(data: bytes) -> int | None:
    """Pages of a PDF by its page objects, without parsing it (None when they are hidden
    in compressed object streams)."""
    pages = len(_PDF_PAGE.findall(data))
    return pages or None


def estimate_parameters(
    *, chunk_size: int, chunk_overlap: int, cores: int | None = None, measured_rate: float | None = None
) -> dict[str, float]:
    """What the estimate needs besides the file: characters per chunk and chunks per second.

    `measured_rate` is the deployment's own indexing rate in reference chunks a second
    (retrieval.ingest_rate), used instead of the per-core constant once ingests measured it."""
    cores = cores or os.cpu_count() or 1
    reference_rate = measured_rate or CHUNKS_PER_SECOND_PER_CORE * cores
    return {
        "chars_per_chunk": max(1, chunk_size - chunk_overlap) * CHARS_PER_TOKEN,
        "chunks_per_second": reference_rate * REFERENCE_CHUNK_TOKENS / max(1, chunk_size),
        "pdf_page_chars": PDF_PAGE_CHARS,
        "long_seconds": LONG_SECONDS,
    }


def ingest_estimate(
    *,
    filename: str,
    size: int,
    chunk_size: int,
    chunk_overlap: int,
    pdf_pages: int | None = None,
    cores: int | None = None,
    measured_rate: float | None = None,
) -> IngestEstimate:
    """Chunks and seconds to index a file of `size` bytes named `filename` (or typed-in
    text: any name without a known extension counts as plain text)."""
    parameters = estimate_parameters(
        chunk_size=chunk_size, chunk_overlap=chunk_overlap, cores=cores, measured_rate=measured_rate
    )
    extension = PurePath(filename).suffix.lower()
    by_pages = extension == ".pdf" and pdf_pages
    text = float(pdf_pages or 0) * PDF_PAGE_CHARS if by_pages else size * TEXT_PER_BYTE.get(extension, 1.0)
    chunks = max(1, round(text / parameters["chars_per_chunk"]))
    return IngestEstimate(chunks=chunks, seconds=max(1, round(chunks / parameters["chunks_per_second"])))


def upload_estimate(
    *, filename: str, data: bytes, chunk_size: int, chunk_overlap: int, measured_rate: float | None = None
) -> IngestEstimate:
    """The estimate for an uploaded file's bytes (a PDF's pages counted when they show)."""
    pages = pdf_page_count(data) if PurePath(filename).suffix.lower() == ".pdf" else None
    return ingest_estimate(
        filename=filename,
        size=len(data),
        chunk_size=chunk_size,
        chunk_overlap=chunk_overlap,
        pdf_pages=pages,
        measured_rate=measured_rate,
    )
