"""Repairing the misspellings that hide hostile words from the hate head: a letter left
out ("hatrd"), two swapped ("haet"), one doubled or repeated ("haaate"), or the space
before the word dropped ("Ihate"). Leetspeak and spaced letters are `normalise`'s.

A word is repaired only when it is unknown (not in the embedding model's vocabulary nor
in VADER's lexicon) and one edit away from a hostile word (VADER valence -1.5 or lower,
or a dehumanising word), or when it splits into a known word and a hostile one. Known
words are never changed, nor first letters, so "hat" and "sill" stay what they are.
"""

from __future__ import annotations

import re
from functools import cache, lru_cache

from workers.moderation.lexicon import DEHUMANISING, sentiment
from workers.moderation.normalise import normalise, squeeze

HOSTILE_VALENCE = -1.5
MIN_LENGTH = 4  # shorter words have too many neighbours
WORD = re.compile(r"[a-z]+")


@cache
def _known() -> frozenset[str]:
    words: set[str] = set(sentiment().lexicon)
    try:
        from retrieval.embeddings import model_path
        from workers.moderation.vectors import MODEL

        with open(f"{model_path(MODEL)}/vocab.txt", encoding="utf-8") as handle:
            words.update(line.strip() for line in handle if line.strip().isalpha())
    except OSError:
        pass
    return frozenset(words)


@cache
def _hostile() -> frozenset[str]:
    lexicon: dict[str, float] = sentiment().lexicon
    words = {w for w, valence in lexicon.items() if valence <= HOSTILE_VALENCE and w.isalpha()}
    return frozenset(w for w in words | DEHUMANISING if len(w) >= MIN_LENGTH)


def _edits(word: str) -> set[str]:
    """Every string one deletion, insertion, transposition or substitution away."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    deletes = {a + b[1:] for a, b in splits if b}
    swaps = {a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1}
    replaces = {a + c + b[1:] for a, b in splits if b for c in letters}
    inserts = {a + c + b for a, b in splits for c in letters}
    return deletes | swaps | replaces | inserts


@lru_cache(maxsize=4096)
def repair_word(word: str) -> str:
    """The hostile word an unknown word stands for, or the word itself."""
    known, hostile = _known(), _hostile()
    if word in known or len(word) < MIN_LENGTH - 1:
        return word
    squeezed = squeeze(word)
    if squeezed in hostile:
        return squeezed
    for first in range(1, len(word) - 2):
        head, tail = word[:first], word[first:]
        if head in known and tail in hostile:
            return f"{head} {tail}"
    if len(word) >= MIN_LENGTH:
        # A typo rarely changes the first letter; "sill" is not "kill".
        near = sorted(w for w in _edits(word) & hostile if w[0] == word[0])
        if near:
            return near[0]
    return word


def repaired(text: str) -> str:
    """The normalised text with misspelt hostile words repaired."""
    folded = normalise(text)[0]
    return WORD.sub(lambda m: repair_word(m.group()), folded)
