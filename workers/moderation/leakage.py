"""What must never reach a visitor: the canary placed in every prompt, the bot's
instructions, and internal ids."""

from __future__ import annotations

import hashlib
import hmac
import re

from workers.moderation.verdicts import Action, Finding

INTERNAL_ID = re.compile(r"\b(?:chunk|document|message|conversation)[_ ]?id\s*[:=]\s*\d+", re.IGNORECASE)
MIN_INSTRUCTION_RUN = 8  # words in a row from the instructions that count as leaking them


def canary_for(secret: str, bot_id: int) -> str:
    """A canary nobody can guess, the same in every prompt of one bot: a retried reply
    sees the same prompt (greedy decoding gives the same answer), and the prompt's head
    (instructions, canary, guidance) is the same at every reply, so its keys and values
    are computed once (workers.generation.prefix_cache). Nobody learns it: an answer
    that holds it is blocked."""
    digest = hmac.new(secret.encode(), f"canary:bot:{bot_id}".encode(), hashlib.sha256).hexdigest()
    return f"canary-{digest[:12]}"


class LeakageFilter:
    name = "leakage"

    def __init__(self, *, canary: str = "", instructions: str = "") -> None:
        self.canary = canary
        self.instruction_words = instructions.lower().split()

    def check(self, text: str) -> list[Finding]:
        findings = []
        if self.canary and self.canary in text:
            start = text.index(self.canary)
            findings.append(Finding(self.name, Action.BLOCK, "the prompt's canary", start, start + len(self.canary)))
        for match in INTERNAL_ID.finditer(text):
            findings.append(Finding(self.name, Action.REDACT, "internal id", match.start(), match.end(), ""))
        if self._repeats_instructions(text):
            findings.append(Finding(self.name, Action.BLOCK, "repeats the bot's instructions", 0, len(text)))
        return findings

    def _repeats_instructions(self, text: str) -> bool:
        size = MIN_INSTRUCTION_RUN
        if len(self.instruction_words) < size:
            return False
        runs = {
            tuple(self.instruction_words[start : start + size])
            for start in range(len(self.instruction_words) - size + 1)
        }
        said = text.lower().split()
        return any(tuple(said[start : start + size]) in runs for start in range(len(said) - size + 1))
