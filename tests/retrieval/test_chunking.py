"""Chunking: heading-aware, sentence-respecting, token-sized, FAQ entries whole."""

from __future__ import annotations

import pytest

from retrieval.chunking import chunk_blocks, indexed_text, split_sentences, whitespace_token_counter
from retrieval.loaders.base import Block


def words(count: int, word: str = "word") -> str:
    return " ".join([word] * count)


def test_sentences_split_at_full_stops_but_not_after_abbreviations() -> None:
    text = "Refunds take five days. Dr. Smith approves large ones, e.g. over $500. Is that all? Yes!"
    assert split_sentences(text) == [
        "Refunds take five days.",
        "Dr. Smith approves large ones, e.g. over $500.",
        "Is that all?",
        "Yes!",
    ]


def test_lists_and_tables_split_into_their_lines() -> None:
    table = "| Plan | Price |\n|---|---|\n| Solo | $12 |"
    assert split_sentences(table) == ["| Plan | Price |", "|---|---|", "| Solo | $12 |"]
    assert split_sentences("1. Open Settings\n2. Click Billing") == ["1. Open Settings", "2. Click Billing"]


def test_chunks_never_mix_sections_and_keep_their_heading_path_and_location() -> None:
    blocks = [
        Block("Refunds take five days.", ("Billing", "Refunds"), "#refunds"),
        Block("Invoices are sent by email.", ("Billing", "Invoices"), "#invoices"),
    ]
    chunks = chunk_blocks(blocks, chunk_size=200, chunk_overlap=20)
    assert [(c.text, c.heading_path, c.location) for c in chunks] == [
        ("Refunds take five days.", ("Billing", "Refunds"), "#refunds"),
        ("Invoices are sent by email.", ("Billing", "Invoices"), "#invoices"),
    ]


def test_long_sections_are_packed_up_to_the_size_without_cutting_a_sentence() -> None:
    sentences = [f"Sentence number {n} says {words(8)}." for n in range(30)]
    chunks = chunk_blocks([Block(" ".join(sentences), ("Long",))], chunk_size=60, chunk_overlap=0)
    assert len(chunks) > 3
    for chunk in chunks:
        assert chunk.token_count <= 60
        assert chunk.text.endswith(".") and chunk.text[0] == "S"
    assert " ".join(chunk.text for chunk in chunks) == " ".join(sentences)


def test_neighbouring_chunks_share_whole_sentences_up_to_the_overlap() -> None:
    sentences = [f"Fact {n} is {words(5)}." for n in range(12)]
    chunks = chunk_blocks([Block(" ".join(sentences))], chunk_size=40, chunk_overlap=12)
    for previous, following in zip(chunks, chunks[1:], strict=False):
        last_sentence = split_sentences(previous.text)[-1]
        assert following.text.startswith(last_sentence)


def test_an_faq_entry_stays_one_chunk_even_past_the_chunk_size() -> None:
    answer = " ".join(f"Step {n} is {words(6)}." for n in range(8))
    chunks = chunk_blocks([Block(answer, ("FAQ", "How do I cancel my plan?"))], chunk_size=40, chunk_overlap=5)
    assert len(chunks) == 1
    assert chunks[0].token_count > 40


def test_a_sentence_longer_than_a_chunk_is_cut_at_word_boundaries() -> None:
    chunks = chunk_blocks([Block(words(500, "token"))], chunk_size=50, chunk_overlap=10)
    assert all(chunk.token_count <= 50 for chunk in chunks)
    assert sum(len(chunk.text.split()) for chunk in chunks) >= 500


def test_a_gigantic_single_line_is_chunked_without_blowing_up() -> None:
    chunks = chunk_blocks([Block("x" * 2_000_000)], chunk_size=100, chunk_overlap=10)
    assert len(chunks) == 1 and len(chunks[0].text) == 2_000_000


def test_empty_blocks_make_no_chunks() -> None:
    assert chunk_blocks([Block("  "), Block("\n")], chunk_size=100, chunk_overlap=10) == []


@pytest.mark.parametrize(("size", "overlap"), [(4, 0), (100, 100), (100, -1)])
def test_impossible_sizes_are_refused(size: int, overlap: int) -> None:
    with pytest.raises(ValueError):
        chunk_blocks([Block("text")], chunk_size=size, chunk_overlap=overlap)


def test_the_token_counter_is_called_once_per_document() -> None:
    calls: list[int] = []

    def counter(texts):  # type: ignore[no-untyped-def]
        calls.append(len(texts))
        return whitespace_token_counter(texts)

    chunk_blocks([Block("One. Two."), Block("Three.", ("H",))], chunk_size=50, chunk_overlap=5, count_tokens=counter)
    assert calls == [3]


def test_the_indexed_text_leads_with_title_and_headings_once() -> None:
    assert indexed_text(title="Billing", heading_path=["Billing", "Refunds"], text="Five days.") == (
        "Billing\nRefunds\nFive days."
    )


def test_a_chunk_that_opens_with_its_documents_title_says_it_once() -> None:
    assert indexed_text(title="Card arrival", heading_path=[], text="Card  arrival\nIt takes a week.") == (
        "Card  arrival\nIt takes a week."
    )
    # Only a whole first line counts: a title that merely starts the text is context.
    assert indexed_text(title="Refunds", heading_path=[], text="Refunds take five days.") == (
        "Refunds\nRefunds take five days."
    )


def test_a_chunk_that_runs_across_pages_names_the_page_range() -> None:
    blocks = [Block("First page ends here.", (), "page 2"), Block("Second page starts.", (), "page 3")]
    assert [c.location for c in chunk_blocks(blocks, chunk_size=100, chunk_overlap=0)] == ["pages 2–3"]
