"""The moderation pipeline: a bot's policy, input screening, and the gate that holds
streamed output until a sentence is complete and screened."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from workers.moderation.blocklist import BlocklistFilter
from workers.moderation.leakage import LeakageFilter
from workers.moderation.pii import PiiFilter
from workers.moderation.verdicts import Action, Finding, Verdict, redact

SAFE_REPLY = "I'm sorry, I can't help with that here. Would you like me to connect you with a person?"
SENTENCE_END = re.compile(r"(?<=[.!?:;])\s+|\n+")
HOLD_CAP = 300  # characters held at most without a sentence end


@dataclass(frozen=True)
class Policy:
    """`Bot.moderation_policy`: {"blocklist": [...], "allowlist": [...],
    "blocklist_action": "block"|"flag", "pii": "redact"|"flag"|"off", "safe_reply": "..."}."""

    blocklist: tuple[str, ...] = ()
    allowlist: tuple[str, ...] = ()
    blocklist_action: Action = Action.BLOCK
    pii: Action | None = Action.REDACT
    safe_reply: str = SAFE_REPLY

    @classmethod
    def from_bot(cls, data: dict[str, Any] | None) -> Policy:
        data = data or {}

        def strings(key: str) -> tuple[str, ...]:
            value = data.get(key, [])
            return tuple(str(item) for item in value if str(item).strip()) if isinstance(value, list) else ()

        pii = {"redact": Action.REDACT, "flag": Action.FLAG, "off": None}.get(str(data.get("pii", "redact")))
        action = Action.FLAG if data.get("blocklist_action") == "flag" else Action.BLOCK
        safe = str(data.get("safe_reply") or SAFE_REPLY)
        return cls(strings("blocklist"), strings("allowlist"), action, pii, safe)

    def blocklist_filter(self) -> BlocklistFilter:
        return _blocklist_filter(self.blocklist, self.allowlist, self.blocklist_action)


@lru_cache(maxsize=256)
def _blocklist_filter(blocked: tuple[str, ...], allowed: tuple[str, ...], action: Action) -> BlocklistFilter:
    """Parsed once per distinct policy, not once per message."""
    return BlocklistFilter(blocked, allowed, action=action)


def _verdict(text: str, findings: list[Finding]) -> Verdict:
    return Verdict(text=redact(text, findings), findings=findings)


def screen_input(text: str, policy: Policy) -> Verdict:
    """A visitor's message: blocked terms, and personal data redacted before it is stored."""
    findings = policy.blocklist_filter().check(text)
    if policy.pii is not None:
        findings += PiiFilter(action=policy.pii).check(text)
    return _verdict(text, findings)


class OutputScreen:
    """The checks on a bot's answer, one piece of text at a time."""

    def __init__(self, policy: Policy, *, passages: Iterable[str] = (), canary: str = "", instructions: str = ""):
        self.policy = policy
        self.passages = list(passages)
        self.blocklist = policy.blocklist_filter()
        self.pii = PiiFilter(action=policy.pii) if policy.pii is not None else None
        self.leakage = LeakageFilter(canary=canary, instructions=instructions)

    def screen(self, text: str) -> Verdict:
        findings = self.blocklist.check(text) + self.leakage.check(text)
        if self.pii is not None:
            findings += self.pii.check(text, known=self.passages)
        return _verdict(text, findings)


@dataclass
class SentenceGate:
    """Holds streamed text until a sentence ends (or HOLD_CAP characters), screens it,
    and only then releases it. After a block, the safe reply is released instead and
    everything after it is dropped."""

    screen: OutputScreen
    release: Callable[[str], None]
    on_text: Callable[[], None] = lambda: None  # told whenever text arrives (timings)
    held: str = ""
    blocked: bool = False
    verdicts: list[dict[str, Any]] = field(default_factory=list)

    def feed(self, piece: str) -> None:
        if self.blocked:
            return
        if piece:
            self.on_text()
        self.held += piece
        end = self._last_boundary()
        if end:
            ready, self.held = self.held[:end], self.held[end:]
            self._screen_and_release(ready)

    def flush(self) -> None:
        if self.held and not self.blocked:
            ready, self.held = self.held, ""
            self._screen_and_release(ready)

    def _last_boundary(self) -> int:
        ends = [match.end() for match in SENTENCE_END.finditer(self.held)]
        if ends:
            return ends[-1]
        if len(self.held) >= HOLD_CAP:
            space = self.held.rfind(" ")
            return space + 1 if space > 0 else len(self.held)
        return 0

    def _screen_and_release(self, text: str) -> None:
        verdict = self.screen.screen(text)
        if verdict.findings:
            self.verdicts.append({"text_length": len(text), **verdict.as_dict()})
        if verdict.action == Action.BLOCK:
            self.blocked = True
            self.release(self.screen.policy.safe_reply)
            return
        self.release(verdict.text)
