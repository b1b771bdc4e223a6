"""Word lists the hate filter and the spelling repair share: VADER's sentiment lexicon
and the words that dehumanise when said of people, which VADER lacks."""

from __future__ import annotations

from functools import cache
from typing import Any


@cache
def sentiment() -> Any:
    """VADER's analyser (its `lexicon` maps a word to its valence, -4 to 4)."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


_DEHUMANISING = "vermin parasites parasite rats rat cockroaches cockroach animals animal scum trash garbage filth"
DEHUMANISING = frozenset(
    f"{_DEHUMANISING} filthy plague disease cancer subhuman savages pests pest leeches leech maggots swine".split(" ")
)
_SWEARING = "shit bullshit shitty crap damn damned hell fuck fucking fucked ass bloody"
SWEARING = frozenset(_SWEARING.split(" "))  # intensifiers: negating one takes nothing back
