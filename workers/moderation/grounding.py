"""Grounding: is a generated sentence supported by the passages the answer cites?

Two measures, cheapest first:
- token overlap: the share of the sentence's content words (stemmed, stop words
  and citation markers removed) that occur in the passages;
- embedding similarity between the sentence and the best passage (the passage
  vectors are the ones stored with the chunks; the sentence is embedded only
  when the overlap alone does not settle it).
A sentence with too few content words to claim anything ("Sure!", "Here is how:")
passes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np

from workers.moderation.verdicts import Action, Finding

CONTENT_WORD = re.compile(r"[^\W_]{3,}|\d+(?:[.,]\d+)*", re.UNICODE)
CITATION = re.compile(r"\[\d+\]")
MIN_CONTENT_WORDS = 3
OVERLAP_SUPPORTED = 0.6  # this share of content words found: supported without embedding
OVERLAP_FLOOR = 0.2  # below this, only a close paraphrase passes
SIMILAR = 0.55  # cosine to the best passage that supports a sentence on its own
SIMILAR_WITH_OVERLAP = 0.4  # ... when some of its words are found too

STOP_WORDS = frozenset(
    [
        "the",
        "and",
        "for",
        "are",
        "but",
        "not",
        "you",
        "your",
        "yours",
        "with",
        "this",
        "that",
        "these",
        "those",
        "from",
        "they",
        "them",
        "their",
        "there",
        "then",
        "than",
        "have",
        "has",
        "had",
        "was",
        "were",
        "will",
        "would",
        "can",
        "could",
        "should",
        "may",
        "might",
        "must",
        "our",
        "ours",
        "out",
        "into",
        "onto",
        "over",
        "under",
        "about",
        "above",
        "below",
        "after",
        "before",
        "again",
        "also",
        "just",
        "only",
        "very",
        "too",
        "any",
        "all",
        "each",
        "some",
        "such",
        "more",
        "most",
        "other",
        "what",
        "which",
        "who",
        "whom",
        "whose",
        "when",
        "where",
        "why",
        "how",
        "its",
        "it's",
        "i'm",
        "you're",
        "we're",
        "they're",
        "don't",
        "doesn't",
        "didn't",
        "isn't",
        "aren't",
        "won't",
        "can't",
        "yes",
        "here",
        "please",
        "thanks",
        "thank",
        "sure",
        "okay",
        "let",
        "let's",
        "get",
        "got",
        "make",
        "made",
        "use",
        "used",
        "using",
        "one",
        "two",
        "via",
        "per",
        "able",
        "need",
        "help",
        "like",
        "want",
        "see",
        "find",
        "page",
        "click",
        "select",
        "open",
        "go",
    ]
)


@cache
def _stemmer() -> object:
    import Stemmer

    return Stemmer.Stemmer("english")


def content_words(text: str) -> list[str]:
    words = [w for w in CONTENT_WORD.findall(CITATION.sub(" ", text).lower()) if w not in STOP_WORDS]
    stemmer = _stemmer()
    stems: list[str] = stemmer.stemWords(words)  # type: ignore[attr-defined]
    return stems


@dataclass
class Support:
    overlap: float
    similarity: float | None
    supported: bool


class GroundingCheck:
    name = "grounding"

    def __init__(
        self,
        passages: Sequence[str],
        passage_vectors: np.ndarray | None = None,
        embed: Callable[[str], np.ndarray] | None = None,
    ) -> None:
        self.vocabulary = {w for passage in passages for w in content_words(passage)}
        self.passage_vectors = passage_vectors if passage_vectors is not None and len(passage_vectors) else None
        self.embed = embed

    def support(self, sentence: str) -> Support:
        words = content_words(sentence)
        if len(words) < MIN_CONTENT_WORDS:
            return Support(1.0, None, True)
        overlap = sum(w in self.vocabulary for w in words) / len(words)
        if overlap >= OVERLAP_SUPPORTED:
            return Support(overlap, None, True)
        if self.passage_vectors is None or self.embed is None:
            return Support(overlap, None, overlap >= OVERLAP_SUPPORTED)
        similarity = float(np.max(self.passage_vectors @ self.embed(sentence)))
        supported = similarity >= SIMILAR or (overlap >= OVERLAP_FLOOR and similarity >= SIMILAR_WITH_OVERLAP)
        return Support(overlap, similarity, supported)

    def check(self, sentence: str) -> list[Finding]:
        support = self.support(sentence)
        if support.supported:
            return []
        similarity = "" if support.similarity is None else f", similarity {support.similarity:.2f}"
        reason = f"not supported by the passages (word overlap {support.overlap:.2f}{similarity})"
        return [Finding(self.name, Action.REMOVE, reason, 0, len(sentence))]
