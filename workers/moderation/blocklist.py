"""A bot's own blocked words and phrases, matched whole-word after undoing disguises
(leetspeak, spacing, repeated letters, zero-width characters, accents). Allowlisted
words and phrases never match."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from workers.moderation.normalise import normalise, squeeze
from workers.moderation.verdicts import Action, Finding

WORD = re.compile(r"[a-z]+")


@dataclass(frozen=True)
class Word:
    text: str  # normalised and squeezed
    start: int  # in the original text
    end: int


def words(text: str) -> list[Word]:
    normal, origins = normalise(text)
    return [
        Word(squeeze(match.group()), origins[match.start()], origins[match.end() - 1] + 1)
        for match in WORD.finditer(normal)
    ]


def _phrases(entries: Iterable[str]) -> list[tuple[str, ...]]:
    phrases = []
    for entry in entries:
        phrase = tuple(word.text for word in words(entry))
        if phrase:
            phrases.append(phrase)
    return phrases


class BlocklistFilter:
    name = "blocklist"

    def __init__(self, blocked: Iterable[str], allowed: Iterable[str] = (), *, action: Action = Action.BLOCK) -> None:
        self.blocked = _phrases(blocked)
        self.allowed = _phrases(allowed)
        self.action = action

    def check(self, text: str) -> list[Finding]:
        found = words(text)
        keys = [word.text for word in found]
        allowed_positions: set[int] = set()
        for phrase in self.allowed:
            for start in _occurrences(keys, phrase):
                allowed_positions.update(range(start, start + len(phrase)))
        findings = []
        for phrase in self.blocked:
            for start in _occurrences(keys, phrase):
                covered = range(start, start + len(phrase))
                if allowed_positions.issuperset(covered):
                    continue
                first, last = found[start], found[start + len(phrase) - 1]
                findings.append(
                    Finding(self.name, self.action, f"blocked term {' '.join(phrase)!r}", first.start, last.end, "***")
                )
        return findings


def _occurrences(keys: list[str], phrase: tuple[str, ...]) -> list[int]:
    size = len(phrase)
    return [start for start in range(len(keys) - size + 1) if tuple(keys[start : start + size]) == phrase]
