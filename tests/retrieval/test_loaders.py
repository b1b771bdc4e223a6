"""Document loaders (retrieval/loaders): uploaded bytes and typed-in text to LoadedDocument.

Plain pytest, no database. Every fixture file is built here, in the test.
"""

from __future__ import annotations

import io
import os
import time
import zipfile

import docx
import pytest
from fpdf import FPDF

from retrieval.loaders import SUPPORTED_EXTENSIONS, Block, LoadedDocument, LoaderError, load_bytes, load_text
from retrieval.loaders import markdown as markdown_loader
from retrieval.loaders import word as word_loader

# ---------------------------------------------------------------------------------------------------------------
# Builders


def make_pdf(pages: list[str], *, title: str = "", user_password: str | None = None) -> bytes:
    pdf = FPDF()
    if title:
        pdf.set_title(title)
    if user_password is not None:
        pdf.set_encryption(owner_password="owner-secret", user_password=user_password)
    pdf.set_font("helvetica", size=12)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    return bytes(pdf.output())


def make_docx(*, core_title: str = "") -> bytes:
    document = docx.Document()
    document.core_properties.title = core_title
    document.add_heading("Neo Support Handbook", level=0)
    document.add_paragraph("Welcome to the handbook.")
    document.add_heading("Getting started", level=1)
    document.add_paragraph("Install the chat widget on your site.")
    document.add_paragraph("Copy the snippet", style="List Bullet")
    document.add_paragraph("Paste it before </body>", style="List Bullet")
    document.add_heading("Billing", level=2)
    document.add_paragraph("Invoices are sent monthly.")
    table = document.add_table(rows=3, cols=2)
    for row, (plan, price) in zip(table.rows, [("Plan", "Price"), ("Free", "$0"), ("Pro", "$29")], strict=True):
        row.cells[0].text, row.cells[1].text = plan, price
    document.add_heading("Support", level=1)
    document.add_paragraph("Write to help@example.com.")
    return _saved(document)


def _saved(document: object) -> bytes:
    buffer = io.BytesIO()
    document.save(buffer)  # type: ignore[attr-defined]
    return buffer.getvalue()


def texts(document: LoadedDocument) -> list[str]:
    return [block.text for block in document.blocks]


def block_containing(document: LoadedDocument, needle: str) -> Block:
    return next(block for block in document.blocks if needle in block.text)


# ---------------------------------------------------------------------------------------------------------------
# Choosing the loader


def test_supported_extensions_map_each_extension_to_its_content_type() -> None:
    assert SUPPORTED_EXTENSIONS[".pdf"] == "application/pdf"
    assert SUPPORTED_EXTENSIONS[".htm"] == SUPPORTED_EXTENSIONS[".html"] == "text/html"
    assert SUPPORTED_EXTENSIONS[".markdown"] == SUPPORTED_EXTENSIONS[".md"] == "text/markdown"
    assert set(SUPPORTED_EXTENSIONS) == {".pdf", ".docx", ".html", ".htm", ".md", ".markdown", ".txt", ".csv"}


def test_an_unsupported_extension_is_refused_with_the_list_of_supported_types() -> None:
    with pytest.raises(LoaderError) as error:
        load_bytes(b"data", filename="archive.xyz")
    assert str(error.value) == "Unsupported file type .xyz; supported: PDF, DOCX, HTML, Markdown, text, CSV."


def test_the_extension_wins_over_the_declared_content_type() -> None:
    document = load_bytes(b"# Title\n\nBody", filename="notes.md", content_type="text/plain")
    assert document.content_type == "text/markdown"
    assert document.title == "Title"


def test_the_content_type_is_used_when_the_file_name_has_no_known_extension() -> None:
    document = load_bytes(b"<p>Hello there</p>", filename="upload", content_type="text/html; charset=utf-8")
    assert document.content_type == "text/html"
    assert texts(document) == ["Hello there"]


def test_an_unknown_content_type_without_an_extension_is_refused() -> None:
    with pytest.raises(LoaderError, match="Unsupported file type application/octet-stream"):
        load_bytes(b"data", filename="upload", content_type="application/octet-stream")


@pytest.mark.parametrize("data", [b"", b"   \n\t  \r\n"])
def test_an_empty_file_is_refused(data: bytes) -> None:
    with pytest.raises(LoaderError, match="empty"):
        load_bytes(data, filename="notes.txt")


def test_a_file_over_the_size_limit_is_refused_naming_the_limit_in_megabytes() -> None:
    with pytest.raises(LoaderError, match="larger than the 1 MB limit"):
        load_bytes(b"a" * (1024 * 1024 + 1), filename="big.txt", max_bytes=1024 * 1024)


def test_the_default_size_limit_is_25_megabytes() -> None:
    with pytest.raises(LoaderError, match="25 MB"):
        load_bytes(b"a" * (25 * 1024 * 1024 + 1), filename="big.txt")


def test_the_file_name_is_kept_in_the_metadata() -> None:
    assert (
        load_bytes(b"Hello", filename="C:\\Users\\ann\\hello.txt").metadata["filename"] == "C:\\Users\\ann\\hello.txt"
    )


# ---------------------------------------------------------------------------------------------------------------
# PDF


def test_a_pdf_gives_blocks_located_by_page() -> None:
    data = make_pdf(["Welcome to Neo Support.", "Resetting a password takes one click."], title="User manual")
    document = load_bytes(data, filename="manual.pdf")
    assert document.title == "User manual"
    assert document.content_type == "application/pdf"
    assert document.metadata["pages"] == "2"
    assert block_containing(document, "Welcome").location == "page 1"
    assert block_containing(document, "Resetting a password").location == "page 2"
    assert "Resetting a password takes one click." in document.text


def test_a_pdf_without_a_title_is_named_after_its_file() -> None:
    document = load_bytes(make_pdf(["Some text."]), filename="Quick start.pdf")
    assert document.title == "Quick start"


def test_running_page_numbers_are_dropped_from_pdf_text() -> None:
    document = load_bytes(make_pdf(["Chapter one text.\n\n\n\n\n\n3"]), filename="book.pdf")
    assert texts(document) == ["Chapter one text."]


def test_an_encrypted_pdf_is_refused_with_a_clear_message() -> None:
    data = make_pdf(["Secret plans."], user_password="letmein")
    with pytest.raises(LoaderError) as error:
        load_bytes(data, filename="secret.pdf")
    assert str(error.value) == "The PDF is password-protected; upload an unlocked copy."


def test_a_pdf_encrypted_only_against_editing_opens_with_the_empty_password() -> None:
    document = load_bytes(make_pdf(["Open to read."], user_password=""), filename="restricted.pdf")
    assert texts(document) == ["Open to read."]


def test_a_truncated_pdf_is_reported_as_damaged() -> None:
    data = make_pdf(["First page.", "Second page."])
    with pytest.raises(LoaderError) as error:
        load_bytes(data[: len(data) // 2], filename="cut.pdf")
    assert str(error.value) == "The PDF could not be read: it looks damaged or is not a PDF."


def test_random_bytes_named_pdf_are_reported_as_damaged() -> None:
    with pytest.raises(LoaderError, match="damaged or is not a PDF"):
        load_bytes(os.urandom(4096), filename="fake.pdf")


def test_a_pdf_without_text_says_it_may_be_a_scan() -> None:
    pdf = FPDF()
    pdf.add_page()
    with pytest.raises(LoaderError, match="no text"):
        load_bytes(bytes(pdf.output()), filename="scan.pdf")


# ---------------------------------------------------------------------------------------------------------------
# DOCX


def test_a_docx_builds_heading_paths_from_its_heading_styles() -> None:
    document = load_bytes(make_docx(), filename="handbook.docx")
    assert document.title == "Neo Support Handbook"
    assert document.content_type == SUPPORTED_EXTENSIONS[".docx"]
    assert block_containing(document, "Welcome").heading_path == ()
    assert block_containing(document, "Install the chat widget").heading_path == ("Getting started",)
    assert block_containing(document, "Invoices").heading_path == ("Getting started", "Billing")
    assert block_containing(document, "help@example.com").heading_path == ("Support",)
    assert "Neo Support Handbook" not in document.text


def test_docx_list_items_are_grouped_into_one_block() -> None:
    document = load_bytes(make_docx(), filename="handbook.docx")
    assert "- Copy the snippet\n- Paste it before </body>" in texts(document)


def test_a_docx_table_becomes_a_markdown_table_block() -> None:
    table = block_containing(load_bytes(make_docx(), filename="handbook.docx"), "| Plan")
    assert table.text == "| Plan | Price |\n| --- | --- |\n| Free | $0 |\n| Pro | $29 |"
    assert table.heading_path == ("Getting started", "Billing")


def test_the_docx_core_title_wins_over_the_title_paragraph() -> None:
    assert load_bytes(make_docx(core_title="Handbook 2025"), filename="h.docx").title == "Handbook 2025"


def test_a_docx_without_any_title_takes_its_first_heading_1_and_keeps_it_out_of_the_paths() -> None:
    document = docx.Document()
    document.add_heading("Returns policy", level=1)
    document.add_paragraph("Returns are free within 30 days.")
    document.add_heading("Exceptions", level=2)
    document.add_paragraph("Gift cards cannot be returned.")
    loaded = load_bytes(_saved(document), filename="returns.docx")
    assert loaded.title == "Returns policy"
    assert block_containing(loaded, "30 days").heading_path == ()
    assert block_containing(loaded, "Gift cards").heading_path == ("Exceptions",)


def test_a_docx_with_no_title_or_heading_is_named_after_its_file() -> None:
    document = docx.Document()
    document.add_paragraph("Just a paragraph.")
    assert load_bytes(_saved(document), filename="memo.docx").title == "memo"


def test_random_bytes_named_docx_are_refused() -> None:
    with pytest.raises(LoaderError, match="DOCX file could not be read"):
        load_bytes(os.urandom(2048), filename="broken.docx")


def test_a_zip_that_is_not_a_word_document_is_refused() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("readme.txt", "not a document")
    with pytest.raises(LoaderError, match="not a Word document"):
        load_bytes(buffer.getvalue(), filename="fake.docx")


def test_a_docx_with_a_broken_main_part_is_refused() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(make_docx())) as source, zipfile.ZipFile(buffer, "w") as target:
        for member in source.infolist():
            content = b"<w:document" if member.filename == "word/document.xml" else source.read(member)
            target.writestr(member, content)
    with pytest.raises(LoaderError, match="DOCX file could not be read"):
        load_bytes(buffer.getvalue(), filename="broken.docx")


def test_a_docx_that_would_unpack_too_large_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(word_loader, "MAX_UNPACKED_BYTES", 10_000)
    with pytest.raises(LoaderError, match="unpacks to more than"):
        load_bytes(make_docx(), filename="bomb.docx")


# ---------------------------------------------------------------------------------------------------------------
# HTML

HELP_PAGE = b"""<!doctype html>
<html><head><title>Pricing | Acme Help</title><style>p { color: red }</style>
<script>window.tracking = "do not index";</script></head>
<body>
<header><nav><a href="/">Home</a> <a href="/docs">Docs</a></nav></header>
<aside>Related articles</aside>
<main>
<h1>Pricing</h1>
<p>Plans for <b>every</b> team.<br>Cancel any time.</p>
<h2 id="plans">Plans</h2>
<ul><li>Free<ul><li>One bot</li></ul></li><li>Pro</li></ul>
<table><thead><tr><th>Plan</th><th>Price</th></tr></thead>
<tbody><tr><td>Free</td><td>$0</td></tr><tr><td>Pro</td><td>$29 | month</td></tr></tbody></table>
<h3>Discounts</h3>
<p>Non-profits get 50% off.</p>
<h2><a name="faq"></a>FAQ</h2>
<dl><dt>Can I pay yearly?</dt><dd>Yes, with two months free.</dd></dl>
<pre>curl https://api.example.com
  --header "Key: 1"</pre>
<blockquote><p>Best support bot we tried.</p></blockquote>
<div>Loose text in a div.</div>
<form><label>Email</label><input name="email"></form>
<noscript>Enable JavaScript</noscript>
</main>
<footer>Copyright Acme</footer>
</body></html>"""


def test_html_drops_navigation_scripts_and_page_furniture() -> None:
    text = load_bytes(HELP_PAGE, filename="pricing.html").text
    for noise in ("Home", "tracking", "color: red", "Related articles", "Email", "Enable JavaScript", "Copyright"):
        assert noise not in text


def test_html_title_comes_from_the_title_tag_without_the_site_name() -> None:
    document = load_bytes(HELP_PAGE, filename="pricing.html")
    assert document.title == "Pricing"
    assert document.content_type == "text/html"


def test_html_headings_build_the_heading_path_without_the_page_title() -> None:
    document = load_bytes(HELP_PAGE, filename="pricing.html")
    assert block_containing(document, "every team").heading_path == ()
    assert block_containing(document, "50% off").heading_path == ("Plans", "Discounts")
    assert block_containing(document, "pay yearly").heading_path == ("FAQ",)


def test_html_blocks_are_located_at_the_nearest_heading_anchor() -> None:
    document = load_bytes(HELP_PAGE, filename="pricing.html")
    assert block_containing(document, "every team").location == ""
    assert block_containing(document, "One bot").location == "#plans"
    assert block_containing(document, "50% off").location == "#plans"  # "Discounts" has no id
    assert block_containing(document, "two months free").location == "#faq"  # from <a name="faq">


def test_html_lists_tables_code_and_quotes_keep_their_shape() -> None:
    blocks = texts(load_bytes(HELP_PAGE, filename="pricing.html"))
    assert "Plans for every team. Cancel any time." in blocks
    assert "- Free\n  - One bot\n- Pro" in blocks
    assert "| Plan | Price |\n| --- | --- |\n| Free | $0 |\n| Pro | $29 \\| month |" in blocks
    assert 'curl https://api.example.com\n  --header "Key: 1"' in block_containing_text(blocks, "curl")
    assert "> Best support bot we tried." in blocks
    assert "Can I pay yearly?" in blocks and "Yes, with two months free." in blocks
    assert "Loose text in a div." in blocks


def block_containing_text(blocks: list[str], needle: str) -> str:
    return next(block for block in blocks if needle in block)


def test_html_without_a_title_tag_takes_its_first_h1_as_title() -> None:
    document = load_bytes(b"<h1 id='top'>Shipping</h1><p>We ship worldwide.</p>", filename="page.html")
    assert document.title == "Shipping"
    assert document.blocks == [Block(text="We ship worldwide.", heading_path=(), location="#top")]


def test_html_keeps_a_title_with_several_separators_whole() -> None:
    page = b"<title>Docs - API - Acme</title><p>Body text.</p>"
    assert load_bytes(page, filename="api.html").title == "Docs - API - Acme"


def test_html_an_articles_own_header_is_kept() -> None:
    page = b"<body><header>Site banner</header><article><header><h1>Release notes</h1></header><p>New.</p></article>"
    document = load_bytes(page, filename="notes.html")
    assert document.title == "Release notes"
    assert "Site banner" not in document.text


def test_html_without_any_text_is_refused() -> None:
    with pytest.raises(LoaderError, match="no readable text"):
        load_bytes(b"<html><body><div id='app'></div><script>render()</script></body></html>", filename="app.html")


def _page(charset: str, text: str) -> bytes:
    head = f'<meta http-equiv="Content-Type" content="text/html; charset={charset}"><title>Returns</title>'
    return f"<html><head>{head}</head><body><h1>Returns</h1><p>{text}</p></body></html>".encode()


@pytest.mark.parametrize(
    ("charset", "text"),
    [
        ("gb2312", "退款将在五个工作日内退回您的信用卡。如有疑问，请联系我们的客服团队。"),
        ("Shift_JIS", "返品は三十日以内に受け付けます。送料は無料です。"),
    ],
)
def test_a_utf8_page_declaring_a_legacy_charset_is_read_as_utf8(charset: str, text: str) -> None:
    # Regression (issue 23): gb2312 gave an empty tree, refused as "built by JavaScript"; Shift_JIS gave mojibake.
    document = load_bytes(_page(charset, text), filename="returns.html")
    assert document.text == text


def test_a_page_in_the_charset_it_declares_keeps_it() -> None:
    text = "返品は三十日以内に受け付けます。"
    page = _page("Shift_JIS", "").replace(b"<p></p>", b"<p>" + text.encode("shift_jis") + b"</p>")
    assert load_bytes(page, filename="returns.html").text == text


def test_a_wrong_http_charset_gives_way_to_the_bytes() -> None:
    text = "退款将在五个工作日内退回您的信用卡。"
    assert load_bytes(_page("utf-8", text), filename="upload", content_type="text/html; charset=gb2312").text == text


def test_control_characters_leave_the_file_name_and_the_title_taken_from_it() -> None:
    # Regression (issue 23): every field, the file name in the metadata included, is storable.
    document = load_bytes(b"Refunds take five days.", filename="refunds\x00\x1b.txt")
    assert document.title == "refunds"
    assert document.metadata["filename"] == "refunds.txt"


def test_typed_in_text_and_its_title_lose_control_characters() -> None:
    document = load_text("# Refunds\x07\n\nFive\x00 days.", title="Ref\x00unds")
    assert (document.title, document.text) == ("Refunds", "Five days.")


def test_deeply_nested_html_does_not_exhaust_the_stack() -> None:
    page = b"<body>" + b"<div>" * 5000 + b"deep text" + b"</div>" * 5000 + b"</body>"
    assert load_bytes(page, filename="deep.html").text == "deep text"


# ---------------------------------------------------------------------------------------------------------------
# Markdown

FAQ_MARKDOWN = """# Neo Support Guide

Neo answers your customers' questions.

## FAQ

### How do I reset my password?

Open **Settings** and click *Reset password*.

### Can I export my data?

Yes:

- Conversations as CSV
- Documents as ZIP

## Plans

| Plan | Price |
|------|-------|
| Pro  | $29   |

```bash
neo export --all

neo import
```

> Prices exclude VAT.

Limits
------

Ten bots per workspace.
"""


def test_markdown_takes_its_first_h1_as_the_title_and_keeps_it_out_of_the_paths() -> None:
    document = load_bytes(FAQ_MARKDOWN.encode(), filename="guide.md")
    assert document.title == "Neo Support Guide"
    assert document.content_type == "text/markdown"
    assert block_containing(document, "answers your customers").heading_path == ()


def test_markdown_faq_questions_stay_verbatim_in_the_heading_path() -> None:
    document = load_bytes(FAQ_MARKDOWN.encode(), filename="guide.md")
    assert block_containing(document, "Reset password").heading_path == ("FAQ", "How do I reset my password?")
    assert block_containing(document, "Conversations as CSV").heading_path == ("FAQ", "Can I export my data?")


def test_markdown_blocks_keep_their_markdown_source() -> None:
    blocks = texts(load_bytes(FAQ_MARKDOWN.encode(), filename="guide.md"))
    assert "Open **Settings** and click *Reset password*." in blocks
    assert "- Conversations as CSV\n- Documents as ZIP" in blocks
    assert "| Plan | Price |\n|------|-------|\n| Pro  | $29   |" in blocks
    assert "```bash\nneo export --all\n\nneo import\n```" in blocks
    assert "> Prices exclude VAT." in blocks


def test_markdown_blocks_are_located_at_the_github_slug_of_their_heading() -> None:
    document = load_bytes(FAQ_MARKDOWN.encode(), filename="guide.md")
    assert block_containing(document, "answers your customers").location == "#neo-support-guide"
    assert block_containing(document, "Reset password").location == "#how-do-i-reset-my-password"
    assert block_containing(document, "| Plan").location == "#plans"


def test_markdown_setext_headings_count_as_headings() -> None:
    block = block_containing(load_bytes(FAQ_MARKDOWN.encode(), filename="guide.md"), "Ten bots")
    assert block.heading_path == ("Limits",)
    assert block.location == "#limits"


def test_markdown_repeated_headings_get_numbered_anchors_like_github() -> None:
    document = load_bytes(b"## Setup\n\nOne.\n\n## Setup\n\nTwo.", filename="twice.md")
    assert [block.location for block in document.blocks] == ["#setup", "#setup-1"]


def test_markdown_headings_lose_emphasis_marks_but_keep_their_words() -> None:
    document = load_bytes(b"## Using `neo init` with **care**?\n\nText.", filename="x.md")
    assert document.blocks[0].heading_path == ("Using neo init with care?",)
    assert document.blocks[0].location == "#using-neo-init-with-care"


def test_markdown_without_an_h1_is_named_after_its_file_or_front_matter() -> None:
    assert load_bytes(b"## Only a section\n\nText.", filename="notes.markdown").title == "notes"
    front_matter = b"---\ntitle: 'Release notes'\ndate: 2025-01-01\n---\n\nText."
    document = load_bytes(front_matter, filename="notes.md")
    assert document.title == "Release notes"
    assert texts(document) == ["Text."]


def test_markdown_split_into_sections_gives_the_same_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    whole = load_bytes(FAQ_MARKDOWN.encode(), filename="guide.md")
    monkeypatch.setattr(markdown_loader, "SECTION_CHARS", 10)
    assert load_bytes(FAQ_MARKDOWN.encode(), filename="guide.md") == whole


def test_load_text_reads_typed_in_markdown_under_the_given_title() -> None:
    document = load_text("# Ignored heading\n\n## Hours\n\nWe open at nine.", title="Opening hours")
    assert document.title == "Opening hours"
    assert document.blocks == [Block(text="We open at nine.", heading_path=("Hours",), location="#hours")]


def test_load_text_can_read_plain_text() -> None:
    document = load_text("# Not a heading\n\nSecond paragraph.", title="Note", markdown=False)
    assert document.content_type == "text/plain"
    assert texts(document) == ["# Not a heading", "Second paragraph."]


def test_load_text_refuses_blank_text() -> None:
    with pytest.raises(LoaderError, match="empty"):
        load_text("  \n ", title="Nothing")


# ---------------------------------------------------------------------------------------------------------------
# Plain text


def test_text_is_split_into_paragraphs_on_blank_lines() -> None:
    document = load_bytes(b"First line\nstill first.\r\n\r\n  \nSecond.", filename="notes.txt")
    assert document.title == "notes"
    assert document.content_type == "text/plain"
    assert texts(document) == ["First line\nstill first.", "Second."]


def test_utf8_text_with_a_byte_order_mark_loses_the_mark() -> None:
    document = load_bytes("\ufeffCafé crème".encode(), filename="menu.txt")
    assert texts(document) == ["Café crème"]


def test_utf16_text_with_a_byte_order_mark_is_decoded() -> None:
    assert texts(load_bytes("Grüße".encode("utf-16"), filename="hello.txt")) == ["Grüße"]


def test_cp1252_text_is_decoded_when_it_is_not_utf8() -> None:
    document = load_bytes("Prices in € – “quoted” café".encode("cp1252"), filename="legacy.txt")
    assert texts(document) == ["Prices in € – “quoted” café"]


def test_text_that_no_encoding_decodes_cleanly_is_refused() -> None:
    with pytest.raises(LoaderError) as error:
        load_bytes(b"caf\xe9 \x81\x8d", filename="odd.txt")
    assert str(error.value) == "The file is not UTF-8 text; save it as UTF-8 and upload it again."


def test_a_binary_blob_named_txt_is_refused() -> None:
    blob = bytes(range(256)) * 64
    with pytest.raises(LoaderError, match="binary"):
        load_bytes(blob, filename="image.txt")


def test_binary_data_named_markdown_or_csv_is_refused_too() -> None:
    for name in ("x.md", "x.csv", "x.html"):
        with pytest.raises(LoaderError):
            load_bytes(b"\x00\x01\x02" * 100, filename=name)


# ---------------------------------------------------------------------------------------------------------------
# CSV

FAQ_CSV = (
    b"Question,Answer,Internal note\nHow do I log in?,Use your email.,check SSO\n,,\nCan I pay by invoice?,Yes.,\n"
)


def test_csv_rows_become_blocks_of_column_value_lines() -> None:
    document = load_bytes(FAQ_CSV, filename="faq.csv")
    assert document.title == "faq"
    assert document.content_type == "text/csv"
    assert document.blocks == [
        Block(text="Question: How do I log in?\nAnswer: Use your email.\nInternal note: check SSO", location="row 1"),
        Block(text="Question: Can I pay by invoice?\nAnswer: Yes.", location="row 3"),
    ]


def test_csv_can_be_limited_to_chosen_columns() -> None:
    document = load_bytes(FAQ_CSV, filename="faq.csv", csv_columns=["Question", "Answer"])
    assert texts(document) == [
        "Question: How do I log in?\nAnswer: Use your email.",
        "Question: Can I pay by invoice?\nAnswer: Yes.",
    ]
    assert document.metadata["columns"] == "Question, Answer"


def test_an_unknown_csv_column_is_refused_listing_the_available_columns() -> None:
    with pytest.raises(LoaderError) as error:
        load_bytes(FAQ_CSV, filename="faq.csv", csv_columns=["Question", "Reply"])
    assert str(error.value) == "Unknown CSV column: Reply. Available columns: Question, Answer, Internal note."


def test_csv_delimiters_are_sniffed() -> None:
    document = load_bytes(b"Name;City\nAnn;Paris\nBob;Oslo\n", filename="people.csv")
    assert texts(document) == ["Name: Ann\nCity: Paris", "Name: Bob\nCity: Oslo"]


def test_a_csv_with_only_a_header_is_refused() -> None:
    with pytest.raises(LoaderError, match="no rows with text"):
        load_bytes(b"Question,Answer\n", filename="empty.csv")


# ---------------------------------------------------------------------------------------------------------------
# Gigantic input


def test_a_20_mb_single_line_text_file_loads_without_blowing_up() -> None:
    started = time.perf_counter()
    document = load_bytes(b"word " * 4_000_000, filename="huge.txt")
    assert len(document.blocks) == 1
    assert time.perf_counter() - started < 5


def test_a_20_mb_single_line_markdown_file_loads_without_blowing_up() -> None:
    started = time.perf_counter()
    document = load_bytes(b"[*" * 10_000_000, filename="huge.md")
    assert len(document.blocks) == 1
    assert time.perf_counter() - started < 5


def test_a_csv_cell_beyond_the_csv_modules_limit_is_refused_cleanly() -> None:
    with pytest.raises(LoaderError, match="CSV file could not be read"):
        load_bytes(b"Question,Answer\nq," + b"a" * 2_000_000 + b"\n", filename="huge.csv")


def test_a_block_of_nothing_but_control_characters_is_dropped_and_a_file_of_them_refused() -> None:
    # Regression (upload fuzzing): stripping control characters left a block with no text.
    document = load_bytes(b"# Returns\n\nSend it back within 30 days.\n\n\x01\x02\x03\n", filename="returns.md")
    assert [block.text for block in document.blocks] == ["Send it back within 30 days."]
    with pytest.raises(LoaderError, match="no"):
        load_bytes(b"\x01\x02\x03 \x04", filename="noise.md")
