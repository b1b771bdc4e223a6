"""The moderation log's pure core: how strong a message's verdicts are, which parts of
the screened text they point at, and which phrases a false positive adds to the bot's
allowlist. Verdicts are the dicts stored in `Message.moderation`:
{"action": ..., "findings": [{"filter", "action", "reason", "span": [start, end]}], "excerpt"?}.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from workers.moderation.verdicts import stored_findings

REVIEWED_ACTIONS = ("flag", "remove", "block")  # what the moderation log lists
FILTERS = ("blocklist", "pii", "toxicity", "injection", "grounding", "leakage")
# Filters that judge a whole text rather than a phrase in it: their false positive is the text.
CLASSIFIER_FILTERS = ("toxicity", "injection", "grounding")
CLASSIFIER_PHRASE_CHARS = 300


@dataclass(frozen=True)
class Segment:
    text: str
    marked: bool = False
    title: str = ""  # the reasons, for a marked segment


@dataclass(frozen=True)
class FindingRow:
    filter: str
    action: str
    reason: str


@dataclass
class Piece:
    """A text the filters screened, cut into segments so the flagged spans can be marked
    up by the template (which escapes every segment). `located` is False when the
    findings' spans cannot be placed: a bot verdict stored without its excerpt."""

    segments: list[Segment]
    findings: list[FindingRow] = field(default_factory=list)
    located: bool = True


def screened_pieces(*, text: str, verdicts: list[dict[str, Any]], from_visitor: bool) -> list[Piece]:
    """What to show for one message: a visitor's spans refer to the message text; a bot
    reply's spans refer to each verdict's excerpt (the piece of the answer screened)."""
    verdicts = [verdict for verdict in verdicts if isinstance(verdict, dict)]
    if from_visitor:
        findings = [finding for verdict in verdicts for finding in stored_findings(verdict)]
        return [Piece(highlight(text, findings), _rows(findings))] if findings else []
    pieces: list[Piece] = []
    unlocated: list[dict[str, Any]] = []
    for verdict in verdicts:
        excerpt = verdict.get("excerpt")
        if isinstance(excerpt, str) and excerpt:
            pieces.append(Piece(highlight(excerpt, stored_findings(verdict)), _rows(stored_findings(verdict))))
        else:
            unlocated.extend(stored_findings(verdict))
    if unlocated:
        pieces.append(Piece([Segment(text)], _rows(unlocated), located=False))
    return pieces


def highlight(text: str, findings: Iterable[dict[str, Any]]) -> list[Segment]:
    """`text` cut at the findings' spans; overlapping spans merge into one marked segment.
    Spans outside the text are clamped, empty or malformed ones ignored."""
    spans: list[tuple[int, int, str]] = []
    for finding in findings:
        span = _span(finding, len(text))
        if span is not None:
            spans.append((*span, str(finding.get("reason", ""))))
    spans.sort()
    merged: list[tuple[int, int, list[str]]] = []
    for start, end, reason in spans:
        if merged and start < merged[-1][1]:
            last_start, last_end, reasons = merged[-1]
            merged[-1] = (last_start, max(last_end, end), reasons + [reason] if reason not in reasons else reasons)
        else:
            merged.append((start, end, [reason]))
    segments: list[Segment] = []
    position = 0
    for start, end, reasons in merged:
        if start > position:
            segments.append(Segment(text[position:start]))
        segments.append(Segment(text[start:end], marked=True, title="; ".join(r for r in reasons if r)))
        position = end
    if position < len(text) or not segments:
        segments.append(Segment(text[position:]))
    return segments


def false_positive_phrases(*, text: str, verdicts: list[dict[str, Any]], from_visitor: bool) -> list[str]:
    """The phrases that, allowlisted, would have let this message through: for each flag,
    remove or block finding, the flagged words for the blocklist, and the whole screened text (at
    most 300 characters) for a classifier. Other filters (personal data, leakage) add
    nothing. A bot verdict without its excerpt adds nothing either: its spans cannot be
    placed in the reply, whose text may be the safe reply."""
    phrases: list[str] = []
    for verdict in verdicts:
        if not isinstance(verdict, dict):
            continue
        screened = text if from_visitor else verdict.get("excerpt")
        if not isinstance(screened, str) or not screened:
            continue
        for finding in stored_findings(verdict):
            if finding.get("action") not in REVIEWED_ACTIONS:
                continue
            name = finding.get("filter")
            if name == "blocklist":
                span = _span(finding, len(screened))
                phrase = screened[span[0] : span[1]] if span is not None else ""
            elif name in CLASSIFIER_FILTERS:
                phrase = screened.strip()[:CLASSIFIER_PHRASE_CHARS]
            else:
                continue
            phrases.append(phrase.strip())
    return merge_phrases([], phrases)


def merge_phrases(existing: Iterable[str], added: Iterable[str]) -> list[str]:
    """`existing` then the new entries of `added`, without blanks or case-insensitive repeats."""
    merged: list[str] = []
    seen: set[str] = set()
    for phrase in [*existing, *added]:
        key = phrase.strip().casefold()
        if key and key not in seen:
            seen.add(key)
            merged.append(phrase)
    return merged


def _rows(findings: Iterable[dict[str, Any]]) -> list[FindingRow]:
    return [
        FindingRow(str(finding.get("filter", "")), str(finding.get("action", "")), str(finding.get("reason", "")))
        for finding in findings
    ]


def _span(finding: dict[str, Any], length: int) -> tuple[int, int] | None:
    span = finding.get("span")
    if not isinstance(span, list | tuple) or len(span) != 2:
        return None
    if not all(isinstance(bound, int) and not isinstance(bound, bool) for bound in span):
        return None
    start, end = max(0, span[0]), min(length, span[1])
    return (start, end) if start < end else None
