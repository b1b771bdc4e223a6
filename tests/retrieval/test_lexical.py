from __future__ import annotations

from pathlib import Path

import numpy as np

from retrieval.lexical import LexicalIndex, tokenize


def index_of(texts: dict[int, str]) -> LexicalIndex:
    index = LexicalIndex()
    index.add(np.array(list(texts)), list(texts.values()))
    return index


def test_tokens_are_stemmed_and_stop_words_dropped() -> None:
    assert tokenize("How do I get REFUNDED for the invoices?") == ["get", "refund", "invoic"]


def test_it_ranks_by_bm25_and_leaves_out_chunks_without_a_query_term() -> None:
    index = index_of({1: "Refunds take five days", 2: "Reset your password", 3: "Refund a refunded invoice refund"})
    scores, ids = index.search("refund", 10)
    assert ids.tolist() == [3, 1]
    assert scores[0] > scores[1] > 0


def test_removing_and_re_adding_keeps_exactly_the_live_ids(tmp_path: Path) -> None:
    index = index_of({1: "alpha", 2: "beta", 3: "alpha beta"})
    index.remove(np.array([1, 99]))
    assert index.id_set() == {2, 3}
    index.add(np.array([4]), ["alpha gamma"])
    assert set(index.search("alpha", 5)[1].tolist()) == {3, 4}
    with (tmp_path / "lexical.npz").open("wb") as handle:
        index.save_to(handle)
    loaded = LexicalIndex.load(tmp_path / "lexical.npz")
    assert loaded.id_set() == {2, 3, 4}
    assert loaded.search("gamma", 5)[1].tolist() == [4]


def test_an_unknown_or_empty_query_finds_nothing() -> None:
    index = index_of({1: "alpha"})
    assert index.search("zeta", 5)[1].size == 0
    assert index.search("the of and", 5)[1].size == 0
    assert LexicalIndex().search("alpha", 5)[1].size == 0
