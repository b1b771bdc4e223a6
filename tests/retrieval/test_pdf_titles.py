"""PDF titles and headings (issue "The first hour of a new company", item 7).

Regression: a PDF was named after its file although its metadata or its first heading had
a real title, and that heading ran into the first paragraph of the body. The PDFs are built
here, with fpdf2 or written by hand.
"""

from __future__ import annotations

import pytest
from fpdf import FPDF

from retrieval.loaders import load_bytes
from retrieval.models import Document
from retrieval.services.documents import document_create_from_file
from retrieval.services.ingestion import document_ingest
from tests.factories import KnowledgeBaseFactory

BODY = "Refunds reach your card within five working days of the return arriving at our warehouse."


def fpdf_document(*parts: tuple[int, str], title: str = "", pages: int = 1) -> bytes:
    """A PDF with each (font size, text) part in turn on the first page; more pages of body text."""
    pdf = FPDF()
    if title:
        pdf.set_title(title)
    pdf.add_page()
    for size, text in parts:
        pdf.set_font("helvetica", size=size)
        pdf.multi_cell(0, size * 0.6, text, new_x="LMARGIN", new_y="NEXT")
    for _ in range(pages - 1):
        pdf.add_page()
        pdf.set_font("helvetica", size=11)
        pdf.multi_cell(0, 7, "Exchanges are free within 30 days.")
    return bytes(pdf.output())


def handmade_pdf(lines: list[tuple[float, bytes]], *, info: bytes = b"") -> bytes:
    """A one-page PDF written byte by byte: each (size, text) line drawn with Helvetica set at
    1 pt and scaled by the text matrix, as many PDF producers do; `info` is the document
    information dictionary's content (e.g. b"/Title (Refunds)")."""
    content = b"BT\n/F1 1 Tf\n"
    y = 760.0
    for size, text in lines:
        content += b"%g 0 0 %g 72 %g Tm (%s) Tj\n" % (size, size, y, text)
        y -= size * 1.6
    content += b"ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 5 0 R >> >> "
        b"/Contents 4 0 R >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< " + info + b" /Producer (hand) >>",
    ]
    out = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info 6 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return out


def test_the_metadata_title_names_the_document() -> None:
    document = load_bytes(fpdf_document((11, BODY), title="Returns and refunds"), filename="scan_0042.pdf")
    assert document.title == "Returns and refunds"


@pytest.mark.parametrize(
    "junk",
    ["Microsoft Word - refunds v3.docx", "untitled", "Untitled-1", "refunds-final.pdf", "C:\\Users\\ann\\x.doc", " "],
)
def test_a_metadata_title_naming_the_tool_or_file_gives_way_to_the_first_heading(junk: str) -> None:
    data = fpdf_document((22, "Refund policy"), (11, BODY), title=junk)
    assert load_bytes(data, filename="scan_0042.pdf").title == "Refund policy"


def test_a_metadata_title_that_is_only_the_file_name_gives_way_to_the_first_heading() -> None:
    data = fpdf_document((22, "Refund policy"), (11, BODY), title="scan_0042")
    assert load_bytes(data, filename="scan_0042.pdf").title == "Refund policy"


def test_the_first_line_in_a_larger_font_names_the_document_and_stays_out_of_the_body() -> None:
    document = load_bytes(fpdf_document((22, "Refund policy"), (11, BODY)), filename="scan_0042.pdf")
    assert document.title == "Refund policy"
    assert document.blocks[0].text == BODY  # the heading no longer runs into the first paragraph
    assert all("Refund policy" not in block.text for block in document.blocks)


def test_the_first_heading_is_found_below_a_running_header() -> None:
    data = fpdf_document((9, "ACME Outdoor, internal"), (22, "Refund policy"), (11, BODY))
    assert load_bytes(data, filename="scan_0042.pdf").title == "Refund policy"


def test_a_heading_scaled_by_the_text_matrix_is_a_heading() -> None:
    data = handmade_pdf([(24, b"Shipping guide"), (11, b"Parcels to Canada arrive within nine business days.")])
    document = load_bytes(data, filename="doc.pdf")
    assert document.title == "Shipping guide"
    assert [block.text for block in document.blocks] == ["Parcels to Canada arrive within nine business days."]


def test_without_larger_fonts_a_short_first_line_is_the_heading() -> None:
    document = load_bytes(fpdf_document((11, "Refund policy"), (11, BODY)), filename="scan_0042.pdf")
    assert document.title == "Refund policy"
    assert document.blocks[0].text == BODY


def test_a_first_line_that_reads_as_a_sentence_is_body_text_and_the_file_names_the_document() -> None:
    document = load_bytes(fpdf_document((11, "Thank you for shopping with us."), (11, BODY)), filename="Refunds.pdf")
    assert document.title == "Refunds"
    assert document.blocks[0].text.startswith("Thank you for shopping with us.")


def test_with_a_metadata_title_the_first_heading_is_a_heading_for_chunking() -> None:
    data = fpdf_document((22, "Refunds"), (11, BODY), (15, "Exchanges"), (11, "Exchanges are free."), title="Policies")
    document = load_bytes(data, filename="handbook.pdf")
    assert document.title == "Policies"
    assert [(block.heading_path, block.text) for block in document.blocks] == [
        (("Refunds",), BODY),
        (("Refunds", "Exchanges"), "Exchanges are free."),
    ]


def test_smaller_headings_nest_under_larger_ones_across_pages() -> None:
    data = fpdf_document((22, "Returns"), (15, "Refunds"), (11, BODY), pages=2)
    document = load_bytes(data, filename="returns.pdf")
    assert document.title == "Returns"
    assert [(block.heading_path, block.location) for block in document.blocks] == [
        (("Refunds",), "page 1"),
        (("Refunds",), "page 2"),
    ]


def test_a_heading_equal_to_the_metadata_title_is_not_repeated_in_the_heading_path() -> None:
    document = load_bytes(fpdf_document((22, "Refund policy"), (11, BODY), title="Refund policy"), filename="x.pdf")
    assert document.title == "Refund policy"
    assert [(block.heading_path, block.text) for block in document.blocks] == [((), BODY)]


def test_control_characters_are_stripped_from_the_metadata_title() -> None:
    data = handmade_pdf([(11, b"Refunds take five days.")], info=b"/Title (Refund\\000 pol\x00icy\\007)")
    assert load_bytes(data, filename="x.pdf").title == "Refund policy"


def test_control_characters_are_stripped_from_headings_and_text() -> None:
    data = handmade_pdf([(24, b"Ship\\000ping"), (11, b"Parcels\\001 arrive in nine days.")])
    document = load_bytes(data, filename="x.pdf")
    assert document.title == "Shipping"
    assert document.blocks[0].text == "Parcels arrive in nine days."


@pytest.mark.django_db
@pytest.mark.usefixtures("in_process_tasks")
def test_a_pdf_with_nul_in_its_metadata_title_is_stored_with_a_clean_title() -> None:
    knowledge_base = KnowledgeBaseFactory()
    data = handmade_pdf(
        [(11, b"Refunds reach your card within five working days.")], info=b"/Title (Refund\\000 policy)"
    )
    document = document_create_from_file(
        knowledge_base=knowledge_base, filename="scan_0042.pdf", data=data, queue=False
    )
    document_ingest(document=Document.objects.select_related("knowledge_base").get(pk=document.pk))
    stored = Document.objects.get(pk=document.pk)
    assert (stored.status, stored.error) == ("ready", "")
    assert stored.title == "Refund policy"
    assert "\x00" not in stored.chunks.get().text


@pytest.mark.django_db
@pytest.mark.usefixtures("in_process_tasks")
def test_a_pdf_title_ending_in_nul_and_a_file_name_with_control_characters_are_stored_clean() -> None:
    # Regression (issue 23): a metadata title ending in NUL, which PostgreSQL cannot store.
    knowledge_base = KnowledgeBaseFactory()
    data = fpdf_document((11, BODY), title="Returns and refunds\x00")
    document = document_create_from_file(
        knowledge_base=knowledge_base, filename="scan\x00_0042\x1b.pdf", data=data, queue=False
    )
    document_ingest(document=Document.objects.select_related("knowledge_base").get(pk=document.pk))
    stored = Document.objects.get(pk=document.pk)
    assert (stored.status, stored.error) == ("ready", "")
    assert (stored.title, stored.source_filename) == ("Returns and refunds", "scan_0042.pdf")
