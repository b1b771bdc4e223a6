"""What a filter says about a text: an action, why, and where."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any


class Action(IntEnum):
    """Ordered: the strongest finding decides."""

    ALLOW = 0
    REDACT = 1
    FLAG = 2
    BLOCK = 3


@dataclass(frozen=True)
class Finding:
    filter: str
    action: Action
    reason: str
    start: int
    end: int
    replacement: str = ""  # what REDACT puts in place of text[start:end]

    def as_dict(self) -> dict[str, Any]:
        return {
            "filter": self.filter,
            "action": self.action.name.lower(),
            "reason": self.reason,
            "span": [self.start, self.end],
        }


@dataclass
class Verdict:
    text: str  # after redaction
    findings: list[Finding] = field(default_factory=list)

    @property
    def action(self) -> Action:
        return max((finding.action for finding in self.findings), default=Action.ALLOW)

    def as_dict(self) -> dict[str, Any]:
        return {"action": self.action.name.lower(), "findings": [f.as_dict() for f in self.findings]}


def redact(text: str, findings: list[Finding]) -> str:
    """`text` with every REDACT finding's span replaced (overlaps merged, first wins)."""
    spans = sorted((f for f in findings if f.action == Action.REDACT), key=lambda f: (f.start, -f.end))
    out: list[str] = []
    position = 0
    for finding in spans:
        if finding.start < position:
            continue
        out.append(text[position : finding.start])
        out.append(finding.replacement)
        position = finding.end
    out.append(text[position:])
    return "".join(out)
