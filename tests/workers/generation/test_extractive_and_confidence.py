from __future__ import annotations

from workers.generation.confidence import confidence, grounding
from workers.generation.extractive import extractive_answer
from workers.generation.prompt import Passage


def passage(n: int, text: str) -> Passage:
    return Passage(n, n, f"Doc {n}", (), "", text, 0.9)


def test_it_quotes_the_sentences_that_answer_and_cites_them() -> None:
    passages = [
        passage(1, "We love our customers. Refunds reach your card within five working days. Call us any time."),
        passage(2, "Gift cards cannot be refunded."),
    ]
    answer = extractive_answer("How long do refunds take to reach my card?", passages)
    assert "Refunds reach your card within five working days." in answer
    assert answer.split("\n\n")[0].endswith("[1]")
    assert "We love our customers" not in answer


def test_with_no_passages_there_is_nothing_to_quote() -> None:
    assert extractive_answer("anything", []) == ""


def test_grounding_is_the_share_of_answer_words_found_in_the_cited_passages() -> None:
    assert grounding("Refunds take five days", ["Refunds take five working days."]) == 1.0
    assert grounding("Bananas are yellow", ["Refunds take five days."]) == 0.0


def test_confidence_needs_both_a_strong_match_and_a_grounded_answer() -> None:
    grounded = confidence(top_score=0.8, answer="Refunds take five days", cited_texts=["Refunds take five days."])
    ungrounded = confidence(top_score=0.8, answer="Bananas are yellow", cited_texts=["Refunds take five days."])
    weak_match = confidence(top_score=0.1, answer="Refunds take five days", cited_texts=["Refunds take five days."])
    assert grounded > ungrounded and grounded > weak_match
    assert 0.0 <= weak_match <= grounded <= 1.0


def test_table_rows_are_quoted_with_their_headers() -> None:
    from workers.generation.extractive import table_rows_as_sentences

    table = "Plans:\n\n| Plan | Monthly | Users |\n|---|---|---|\n| Solo | $12 | 1 |\n| Team | $29 | 5 |\n\nAfter."
    assert table_rows_as_sentences(table) == (
        "Plans:\n\nPlan: Solo; Monthly: $12; Users: 1.\nPlan: Team; Monthly: $29; Users: 5.\n\nAfter."
    )
    passage = Passage(1, 1, "Plans", ("Pricing",), "", table, 0.9)
    answer = extractive_answer("What does the Team plan cost per month?", [passage])
    assert "Plan: Team; Monthly: $29" in answer and "| Plan |" not in answer
