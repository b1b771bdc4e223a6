"""Undoing the ways people disguise words, with a map back to the original text.

`normalise("F.u.u.u.c k")` gives `"fuuuck"` (which `squeeze` makes `"fuck"`) and, for each of its characters, the index
of the character it came from, so a match can be reported (and redacted) where it
stands in the original.
"""

from __future__ import annotations

import unicodedata

ZERO_WIDTH = {"\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad"}
LEET = {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i", "|": "l", "€": "e"}
SEPARATORS = set(" .-_*,'\"~+")


def _fold(character: str) -> str:
    decomposed = unicodedata.normalize("NFKD", character)
    base = "".join(c for c in decomposed if not unicodedata.combining(c))
    return base.lower() if base else character.lower()


def _unleet(characters: list[str], position: int) -> str:
    """A leet symbol read as its letter inside a word ("d4rn", "sh!t"), not at its edge
    ("DARN!", "call 1 800")."""
    character = characters[position]
    if character not in LEET:
        return character
    after = characters[position + 1] if position + 1 < len(characters) else ""
    before = characters[position - 1] if position > 0 else ""
    if after.isalpha() or (before.isalpha() and (after.isalpha() or after in LEET)):
        return LEET[character]
    return character


def normalise(text: str) -> tuple[str, list[int]]:
    """Lower case, accents and zero-width characters removed, leetspeak decoded,
    letters spaced or dotted apart joined (repeated letters are left to `squeeze`)."""
    characters: list[str] = []
    origins: list[int] = []
    for index, character in enumerate(text):
        if character in ZERO_WIDTH:
            continue
        for piece in _fold(character):
            characters.append(piece)
            origins.append(index)
    characters = [_unleet(characters, position) for position in range(len(characters))]
    joined: list[str] = []
    joined_origins: list[int] = []
    for position, character in enumerate(characters):
        if character in SEPARATORS and _between_single_letters(characters, position):
            continue  # "f u c k", "f.u.c.k"
        joined.append(character)
        joined_origins.append(origins[position])
    return "".join(joined), joined_origins


def _between_single_letters(characters: list[str], position: int) -> bool:
    """A separator with a lone letter on each side ("f u c k"), not one between words."""

    def lone(start: int, step: int) -> bool:
        index = start
        while 0 <= index < len(characters) and characters[index] in SEPARATORS:
            index += step
        if not (0 <= index < len(characters)) or not characters[index].isalpha():
            return False
        beyond = index + step
        return not (0 <= beyond < len(characters) and characters[beyond].isalpha())

    return lone(position - 1, -1) and lone(position + 1, 1)


def squeeze(word: str) -> str:
    """Runs of a repeated letter made single: "fuuck" and "fuck" both give "fuck"."""
    out: list[str] = []
    for character in word:
        if not out or out[-1] != character:
            out.append(character)
    return "".join(out)
