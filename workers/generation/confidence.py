"""How sure a reply is: retrieval strength and how well the answer sticks to its
passages. Pure Python."""

from __future__ import annotations

from collections.abc import Sequence

from retrieval.lexical import tokenize

RETRIEVAL_WEIGHT = 0.6


def grounding(answer: str, cited_texts: Sequence[str]) -> float:
    """Share of the answer's content words that appear in the passages it cites."""
    words = tokenize(answer)
    if not words:
        return 0.0
    source = set(tokenize(" ".join(cited_texts)))
    return sum(word in source for word in words) / len(words)


def confidence(*, top_score: float | None, answer: str, cited_texts: Sequence[str]) -> float:
    """0..1. The top passage's cosine counts most (an answer is at most as good as what was
    found); an answer that cites nothing, or strays from what it cites, loses the rest."""
    retrieval = max(0.0, min(1.0, top_score or 0.0))
    return round(RETRIEVAL_WEIGHT * retrieval + (1 - RETRIEVAL_WEIGHT) * grounding(answer, cited_texts), 4)
