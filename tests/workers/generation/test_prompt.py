"""Prompt fitting, stop sequences and citation mapping (pure)."""

from __future__ import annotations

import pytest

from workers.generation.prompt import (
    Passage,
    PromptTooLong,
    Turn,
    build_prompt,
    cited_passages,
    cut_at_stop,
    held_back,
    render,
    strip_unknown_citations,
)


def words(text: str) -> int:
    return len(text.split())


def passage(n: int, length: int = 20) -> Passage:
    return Passage(n, 100 + n, f"Doc {n}", ("Section",), "", " ".join([f"p{n}"] * length), 1.0 - n / 10)


TURNS = [Turn("customer", "first question " * 5), Turn("assistant", "first answer " * 5), Turn("customer", "second")]


def fit(context_window: int, passages: list[Passage] | None = None) -> object:
    return build_prompt(
        instructions="You are Tallyho's helper.",
        passages=passages if passages is not None else [passage(1), passage(2), passage(3)],
        turns=TURNS,
        question="How long do refunds take?",
        count_tokens=words,
        context_window=context_window,
        answer_budget=50,
    )


def test_everything_is_kept_when_it_fits() -> None:
    prompt = fit(1000)
    assert len(prompt.passages) == 3 and len(prompt.turns) == 3
    assert prompt.text.endswith("Customer: How long do refunds take?\nAssistant:")
    assert "[1] Doc 1 > Section" in prompt.text and "You are Tallyho's helper." in prompt.text
    assert prompt.token_count <= 950


def test_the_oldest_turns_go_first_then_the_lowest_ranked_passages() -> None:
    three = [passage(1), passage(2), passage(3)]
    question = "How long do refunds take?"

    def needed(passages: list[Passage], turns: list[Turn]) -> int:
        return words(render("You are Tallyho's helper.", passages, turns, question)) + 50

    without_first_turn = fit(needed(three, TURNS[1:]))
    assert without_first_turn.turns == tuple(TURNS[1:]) and len(without_first_turn.passages) == 3
    no_turns = fit(needed(three, []))
    assert no_turns.turns == () and len(no_turns.passages) == 3
    fewer_passages = fit(needed(three[:2], []))
    assert fewer_passages.turns == () and [p.chunk_id for p in fewer_passages.passages] == [1, 2]


def test_a_passage_is_never_cut_in_the_middle() -> None:
    for window in range(60, 200, 7):
        try:
            prompt = fit(window)
        except PromptTooLong:
            continue
        for kept in prompt.passages:
            assert kept.text in prompt.text


def test_a_question_too_long_for_the_window_is_refused() -> None:
    with pytest.raises(PromptTooLong, match="at most"):
        fit(60, passages=[])


def test_only_passages_the_answer_cites_are_listed_in_first_cited_order() -> None:
    passages = [passage(1), passage(2), passage(3)]
    cited = cited_passages("Five days [3]. Card refunds [1] and again [3]. Bogus [9].", passages)
    assert [(n, p.chunk_id) for n, p in cited] == [(3, 3), (1, 1)]
    assert strip_unknown_citations("Yes [2] and [7].", 3) == "Yes [2] and ."


def test_stop_sequences_cut_the_answer_and_their_prefixes_are_held_back() -> None:
    assert cut_at_stop("Five days.\nCustomer: thanks") == ("Five days.", True)
    assert cut_at_stop("Five days.") == ("Five days.", False)
    assert held_back("Five days.\nCust") == len("\nCust")
    assert held_back("Five days.") == 0
