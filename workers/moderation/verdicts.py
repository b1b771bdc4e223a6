"""What a filter says about a text: an action, why, and where."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from enum import IntEnum
from typing import Any


class Action(IntEnum):
    """Ordered: the strongest finding decides."""

    ALLOW = 0
    REDACT = 1
    FLAG = 2
    REMOVE = 3  # this piece is withheld (an unsupported sentence); the rest goes on
    BLOCK = 4


@dataclass(frozen=True)
class Finding:
    filter: str
    action: Action
    reason: str
    start: int
    end: int
    replacement: str = ""  # what REDACT puts in place of text[start:end]
    # A classifier's probability, kept out of `reason` so that the same reason reads the
    # same whatever the probability (the log groups by reason; a verdict names each once).
    score: float | None = None

    def as_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {
            "filter": self.filter,
            "action": self.action.name.lower(),
            "reason": self.reason,
            "span": [self.start, self.end],
        }
        if self.score is not None:
            found["score"] = round(self.score, 2)
        return found


@dataclass
class Verdict:
    text: str  # after redaction
    findings: list[Finding] = field(default_factory=list)

    @property
    def action(self) -> Action:
        return max((finding.action for finding in self.findings), default=Action.ALLOW)

    def as_dict(self) -> dict[str, Any]:
        """As stored with a message: the spans point into `text`, the redacted text that is
        stored, not into the text as it was screened."""
        redactions = [(f.start, f.end, f.replacement) for f in self.findings if f.action == Action.REDACT]
        findings = rebase_spans([f.as_dict() for f in self.findings], redactions)
        return {"action": self.action.name.lower(), "findings": findings}


def distinct(findings: list[Finding]) -> list[Finding]:
    """One finding per filter and reason, where it first occurs, at the strongest action
    any of them had: a verdict says each thing once. Redactions stay one per span, since
    each replaces its own value in the stored text."""
    kept: dict[tuple[object, ...], Finding] = {}
    for finding in findings:
        key: tuple[object, ...] = (finding.filter, finding.reason)
        if finding.action == Action.REDACT:
            key += (finding.start, finding.end)
        first = kept.get(key)
        if first is None:
            kept[key] = finding
        elif finding.action > first.action or (finding.score or 0.0) > (first.score or 0.0):
            kept[key] = replace(
                first, action=max(first.action, finding.action), score=_higher(first.score, finding.score)
            )
    return list(kept.values())


def _higher(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)


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


def rebase_spans(findings: list[dict[str, Any]], redactions: Iterable[tuple[int, int, str]]) -> list[dict[str, Any]]:
    """`findings` with their spans moved from the screened text into the stored one, in
    which each redaction (start, end, replacement) was applied the way
    workers.moderation.verdicts.redact applies them: by start, an overlapping one skipped.
    A span edge inside a redaction moves to the replacement's edge."""
    applied: list[tuple[int, int, str]] = []
    for start, end, replacement in sorted(redactions, key=lambda r: (r[0], -r[1])):
        if not applied or start >= applied[-1][1]:
            applied.append((start, end, replacement))

    def move(position: int, *, is_end: bool) -> int:
        shift = 0
        for start, end, replacement in applied:
            if position >= end:
                shift += len(replacement) - (end - start)
            elif position <= start:
                break
            else:
                return start + shift + (len(replacement) if is_end else 0)
        return position + shift

    rebased = []
    for finding in findings:
        span = finding.get("span")
        if isinstance(span, list) and len(span) == 2 and all(isinstance(bound, int) for bound in span):
            finding = {**finding, "span": [move(span[0], is_end=False), move(span[1], is_end=True)]}
        rebased.append(finding)
    return rebased


# Stored verdicts name actions in lower case, weakest first as Action orders them;
# "remove" withholds one unsupported sentence of a reply.
STORED_ACTIONS = tuple(action.name.lower() for action in Action)


def strongest_action(verdicts: list[dict[str, Any]]) -> str:
    """The strongest action across `verdicts` and their findings ("" when there is none),
    in the order allow < redact < flag < remove < block. Unknown actions are ignored."""
    strongest = -1
    for verdict in verdicts:
        if not isinstance(verdict, dict):
            continue
        actions = [verdict.get("action")] + [finding.get("action") for finding in stored_findings(verdict)]
        for action in actions:
            if action in STORED_ACTIONS:
                strongest = max(strongest, STORED_ACTIONS.index(action))
    return STORED_ACTIONS[strongest] if strongest >= 0 else ""


def stored_findings(verdict: dict[str, Any]) -> list[dict[str, Any]]:
    """The findings of a stored verdict dict (`Verdict.as_dict()`), skipping malformed ones."""
    findings = verdict.get("findings")
    return [finding for finding in findings if isinstance(finding, dict)] if isinstance(findings, list) else []
