"""The moderation log's pure core: how strong a message's verdicts are, which parts of
the screened text they point at, and which phrases a false positive adds to the bot's
allowlist. Verdicts are the dicts stored in `Message.moderation`:
{"action": ..., "findings": [{"filter", "action", "reason", "span": [start, end]}], "excerpt"?}.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from workers.moderation.taught import TEACHABLE_FILTERS
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


@dataclass(frozen=True)
class TaughtText:
    """A text a classifier flagged that an owner marked "not a problem"."""

    filter: str
    text: str
    score: float


def _reviewed(text: str, verdicts: list[dict[str, Any]], from_visitor: bool) -> Iterable[tuple[str, dict[str, Any]]]:
    """(screened text, finding) for each flag, remove or block finding whose text is known:
    a bot verdict without its excerpt is left out, since its spans cannot be placed in the
    reply, whose text may be the safe reply."""
    for verdict in verdicts:
        if not isinstance(verdict, dict):
            continue
        screened = text if from_visitor else verdict.get("excerpt")
        if not isinstance(screened, str) or not screened.strip():
            continue
        for finding in stored_findings(verdict):
            if finding.get("action") in REVIEWED_ACTIONS:
                yield screened, finding


def _taught_by_example(finding: dict[str, Any]) -> bool:
    """A classifier's judgement (it carries a score) of a filter that learns from examples."""
    score = finding.get("score")
    return finding.get("filter") in TEACHABLE_FILTERS and isinstance(score, int | float) and not isinstance(score, bool)


def taught_texts(*, text: str, verdicts: list[dict[str, Any]], from_visitor: bool) -> list[TaughtText]:
    """The texts a false positive teaches its filter (workers.moderation.taught): the whole
    screened text of each scored hate or injection-classifier finding, once per filter."""
    found: dict[tuple[str, str], TaughtText] = {}
    for screened, finding in _reviewed(text, verdicts, from_visitor):
        if _taught_by_example(finding):
            name, cleaned = str(finding["filter"]), screened.strip()
            found.setdefault((name, cleaned), TaughtText(name, cleaned, float(finding["score"])))
    return list(found.values())


def false_positive_phrases(*, text: str, verdicts: list[dict[str, Any]], from_visitor: bool) -> list[str]:
    """The phrases that, allowlisted, would have let this message through: for each flag,
    remove or block finding, the flagged words for the blocklist, and the whole screened text (at
    most 300 characters) for a rule of a classifier filter (an injection phrase, grounding).
    A classifier's scored judgement is taught by example instead (`taught_texts`); other
    filters (personal data, leakage) add nothing."""
    phrases: list[str] = []
    for screened, finding in _reviewed(text, verdicts, from_visitor):
        if _taught_by_example(finding):
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


@dataclass
class FindingGroup:
    """The log's messages with one filter and reason: how many, the newest, and how many
    an owner marked "not a problem"."""

    filter: str
    reason: str
    messages: int = 0
    not_a_problem: int = 0
    last_seen: datetime | None = None

    @property
    def not_a_problem_share(self) -> float:
        return self.not_a_problem / self.messages if self.messages else 0.0


def finding_groups(rows: Iterable[tuple[Any, bool, datetime]]) -> list[FindingGroup]:
    """Group the log's messages, given as (verdicts, marked not a problem, created at), by
    the filter and reason of their flag, remove and block findings; a message counts once
    per group. The largest group first."""
    groups: dict[tuple[str, str], FindingGroup] = {}
    for verdicts, not_a_problem, created_at in rows:
        keys = {
            (str(finding.get("filter", "")), str(finding.get("reason", "")))
            for verdict in (verdicts if isinstance(verdicts, list) else [])
            if isinstance(verdict, dict)
            for finding in stored_findings(verdict)
            if finding.get("action") in REVIEWED_ACTIONS
        }
        for key in keys:
            group = groups.setdefault(key, FindingGroup(*key))
            group.messages += 1
            group.not_a_problem += int(not_a_problem)
            if group.last_seen is None or created_at > group.last_seen:
                group.last_seen = created_at
    return sorted(groups.values(), key=lambda g: (-g.messages, g.filter, g.reason))
