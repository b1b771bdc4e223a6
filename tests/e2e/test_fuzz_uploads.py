"""Upload fuzzing: real PDF, DOCX, HTML, Markdown and CSV files, cut short, with bytes
flipped, inserted, deleted or spliced from another format, and raw bytes under every
supported extension, through the parser child that ingestion uses. Every input either
loads or is refused with a LoaderError that says why in plain words; nothing else
escapes, and the child's crashes and hangs stay in the child.

A bounded run here (NEO_FUZZ_EXAMPLES, 25 by default, times 4); `bench/fuzz.py` runs it long."""

from __future__ import annotations

import os
from functools import cache

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from retrieval.loaders import LoadedDocument, LoaderError
from retrieval.loaders.isolation import ParserLimits, load_bytes_isolated
from tests.retrieval.test_loaders import make_docx, make_pdf

EXAMPLES = int(os.environ.get("NEO_FUZZ_EXAMPLES", "25")) * 4
LIMITS = ParserLimits(memory_mb=1024, cpu_seconds=10, wall_seconds=20)


@cache
def seeds() -> dict[str, bytes]:
    return {
        "guide.pdf": make_pdf(["Refunds reach your card within five days.", "Shipping takes three days."], title="FAQ"),
        "guide.docx": make_docx(core_title="Guide"),
        "guide.html": b"<html><head><title>Help</title></head><body><h1>Refunds</h1><p>Five days.</p>"
        b"<table><tr><td>a</td></tr></table></body></html>",
        "guide.md": b"# Help\n\n## Refunds\n\n| plan | days |\n|---|---|\n| pro | 5 |\n\n```\ncode\n```\n",
        "rows.csv": b'question,answer\nHow long?,Five days\n"Quoted, comma","Multi\nline"\n',
    }


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, bytes]:
    name = draw(st.sampled_from(sorted(seeds())))
    data = bytearray(seeds()[name])
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["cut", "flip", "insert", "delete", "splice", "repeat"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "cut":
            del data[at:]
        elif kind == "flip" and data:
            data[at] ^= draw(st.integers(1, 255))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 256))]
        elif kind == "splice":
            other = seeds()[draw(st.sampled_from(sorted(seeds())))]
            data[at:at] = other[: draw(st.integers(1, len(other)))]
        elif kind == "repeat":
            data[at:at] = bytes(data[at : at + 32]) * draw(st.integers(2, 2000))
    # Sometimes under another supported name: the extension decides the parser.
    if draw(st.booleans()):
        name = "file" + draw(st.sampled_from([".pdf", ".docx", ".html", ".md", ".txt", ".csv"]))
    return name, bytes(data)


raw = st.tuples(st.sampled_from(["x.pdf", "x.docx", "x.html", "x.md", "x.txt", "x.csv"]), st.binary(max_size=4096))


def check(name: str, data: bytes) -> None:
    try:
        document = load_bytes_isolated(data, limits=LIMITS, filename=name)
    except LoaderError as error:
        message = str(error)
        assert message and "Traceback" not in message and len(message) < 500, message
        return
    assert isinstance(document, LoadedDocument)
    assert all(isinstance(block.text, str) and block.text for block in document.blocks)


@settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(mutated())
def test_mutated_real_files_load_or_are_refused_in_words(case: tuple[str, bytes]) -> None:
    check(*case)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw)
def test_raw_bytes_under_any_extension_load_or_are_refused_in_words(case: tuple[str, bytes]) -> None:
    check(*case)
