"""How soon a ticket needs a first answer: rule-based, so every decision comes with the reasons
an agent can read and argue with.

The order of the decision, each step only ever raising the level unless it says otherwise:

1. built-in cues in the subject and text set a floor (an outage is urgent, a lock-out high, ...);
   asking for speed or naming a deadline raises the ticket to high, or to urgent if a cue
   already made it high;
2. with no cue above normal, a low cue ("feature request", "no rush") lowers it to low;
3. a very negative tone (VADER compound <= -0.6) raises normal to high;
4. an enterprise or VIP customer goes one level up; a free-plan ticket is capped at high
   unless it raises a security concern;
5. the organization's own rules set their floor last, so they also apply to free-plan tickets.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

PRIORITIES = ("low", "normal", "high", "urgent")
LOW, NORMAL, HIGH, URGENT = range(4)
# First response due, in hours, by priority; then multiplied by the customer's tier factor.
DUE_HOURS = {"urgent": 1.0, "high": 4.0, "normal": 24.0, "low": 72.0}
TIER_DUE_FACTOR = {"enterprise": 0.5, "vip": 0.5, "free": 2.0}
PREMIUM_TIERS = frozenset({"enterprise", "vip"})
FREE_TIER = "free"
VERY_NEGATIVE = -0.6


@dataclass(frozen=True)
class _Cue:
    reason: str
    level: int  # the floor it sets
    urgency: float  # how strongly it alone says "answer soon", 0..1
    pattern: re.Pattern[str]


def _words(*alternatives: str) -> re.Pattern[str]:
    return re.compile(r"\b(?:" + "|".join(alternatives) + r")\b", re.IGNORECASE)


_NOT = r"(?:can ?not|can'?t|cannot|unable to|not able to|couldn'?t|won'?t let me)"
SECURITY = _Cue(
    "security concern",
    URGENT,
    0.9,
    _words(
        r"security (?:breach|incident|issue|problem|vulnerability|hole|flaw|concern)",
        r"breach(?:ed)?",
        r"hack(?:ed|er|ers)?",
        r"data leak(?:ed|s)?",
        r"leaked",
        r"(?:account|password|data) (?:was |has been |is )?compromised",
        r"someone (?:else )?(?:has )?(?:accessed|logged into|got into) my account",
    ),
)
CUES = (
    _Cue(
        "mentions an outage",
        URGENT,
        0.9,
        _words(
            r"outages?",
            r"(?:is|are|was|went|goes|been|seems|still) (?:completely |totally |all )?down",
            r"down for (?:everyone|everybody|all|us)",
            r"not working for (?:anyone|everyone|everybody|all)",
            r"(?:nobody|no one|none of us) can (?:log ?in|sign in|access|use)",
            r"service unavailable",
        ),
    ),
    SECURITY,
    _Cue(
        "reports fraud or an unauthorised charge",
        URGENT,
        0.8,
        _words(r"fraud(?:ulent)?", r"unauthori[sz]ed (?:charges?|transactions?|payments?)", r"didn'?t authori[sz]e"),
    ),
    _Cue(
        "was charged twice",
        HIGH,
        0.5,
        _words(
            r"charged (?:me )?(?:twice|two times|double)",
            r"double[- ]charge[sd]?",
            r"duplicate (?:charges?|payments?)",
        ),
    ),
    _Cue(
        "cannot log in",
        HIGH,
        0.6,
        _words(
            _NOT + r" (?:log ?in|login|sign ?in|access my account|get into my account)",
            r"locked out",
            r"account (?:is |was |got )?locked",
        ),
    ),
    _Cue(
        "legal or data-protection request",
        HIGH,
        0.5,
        _words(
            r"lawyers?",
            r"attorneys?",
            r"law ?suits?",
            r"sue (?:you|your company|them)",
            r"suing",
            r"legal (?:action|steps|department|team)",
            r"GDPR",
            r"data subject (?:access )?request",
            r"right to (?:be forgotten|erasure)",
        ),
    ),
)
ASKS_FOR_SPEED = _Cue(
    "asks for an urgent answer",
    HIGH,
    0.7,
    _words(r"urgent(?:ly)?", r"asap", r"as soon as possible", r"immediately", r"right now", r"emergency"),
)
DEADLINE = _Cue(
    "mentions a deadline",
    HIGH,
    0.5,
    _words(
        r"(?:by|before|until) (?:today|tonight|tomorrow|end of (?:the )?day|EOD)",
        r"(?:need|needs|must|has to|have to)(?: \w+){0,5} (?:today|tonight)",
        r"today please",
        r"deadline",
    ),
)
LOW_CUES = _words(
    r"feature requests?",
    r"suggestions?",
    r"just wondering",
    r"no rush",
    r"no hurry",
    r"not urgent",
    r"whenever you (?:get a chance|can|have time)",
    r"would be nice",
)
# Removed before looking for urgency, so that "not urgent" does not read as "urgent".
_NEGATED_URGENCY = _words(r"not (?:urgent|an emergency)", r"no (?:rush|hurry)")


@dataclass(frozen=True)
class PriorityRule:
    """An organization's own rule: a keyword/phrase (case-insensitive, whole word) that sets at least this priority."""

    phrase: str
    priority: str

    def __post_init__(self) -> None:
        if not self.phrase.strip():
            raise ValueError("a priority rule needs a phrase")
        if self.priority not in PRIORITIES:
            raise ValueError(f"unknown priority {self.priority!r} (one of {', '.join(PRIORITIES)})")

    def matches(self, text: str) -> bool:
        return _rule_pattern(self.phrase).search(text) is not None


@dataclass
class PriorityDecision:
    priority: str  # "low" | "normal" | "high" | "urgent"
    reasons: list[str]  # human-readable, e.g. "mentions an outage", "enterprise customer", "very negative tone"
    sentiment: float  # VADER compound (-1..1)
    urgency: float  # 0..1 from urgency cues
    due_hours: float  # first response due: DUE_HOURS of the priority times the tier's factor


def decide_priority(
    text: str, *, subject: str = "", tier: str = "", rules: Sequence[PriorityRule] = ()
) -> PriorityDecision:
    """The priority of a ticket from its subject and text, the customer's tier ("enterprise", "vip",
    "free", or anything else for standard) and the organization's rules. Order: module docstring."""
    content = f"{subject}\n{text}" if subject else text
    tier = tier.strip().lower()
    reasons: list[str] = []
    level, urgency = NORMAL, 0.0

    problems = [cue for cue in CUES if cue.pattern.search(content)]
    for cue in problems:
        level = max(level, cue.level)
    unhurried = _NEGATED_URGENCY.sub(" ", content)
    hurries = [cue for cue in (ASKS_FOR_SPEED, DEADLINE) if cue.pattern.search(unhurried)]
    if hurries:
        # Asking for speed makes a ticket high; on top of a problem that is already high, urgent.
        level = URGENT if level >= HIGH else HIGH
    for cue in problems + hurries:
        reasons.append(cue.reason)
        urgency = 1 - (1 - urgency) * (1 - cue.urgency)
    security = SECURITY in problems

    if level == NORMAL:
        low = LOW_CUES.search(content)
        if low:
            level = LOW
            reasons.append(f"low-priority request ({low.group(0).lower()!r})")

    sentiment = _sentiment(content)
    if sentiment <= VERY_NEGATIVE and level == NORMAL:
        level = HIGH
        reasons.append("very negative tone")

    if tier in PREMIUM_TIERS:
        level = min(level + 1, URGENT)
        reasons.append("VIP customer" if tier == "vip" else "enterprise customer")
    elif tier == FREE_TIER and level > HIGH and not security:
        level = HIGH
        reasons.append("free plan: at most high unless security")

    for rule in rules:
        if rule.matches(content):
            wanted = PRIORITIES.index(rule.priority)
            reasons.append(f"organization rule {rule.phrase!r}: at least {rule.priority}")
            level = max(level, wanted)

    priority = PRIORITIES[level]
    due = DUE_HOURS[priority] * TIER_DUE_FACTOR.get(tier, 1.0)
    return PriorityDecision(
        priority=priority, reasons=reasons, sentiment=sentiment, urgency=round(urgency, 3), due_hours=due
    )


@cache
def _rule_pattern(phrase: str) -> re.Pattern[str]:
    # Whole words at the phrase's ends, any run of spaces between its words.
    words = [re.escape(word) for word in phrase.split()]
    return re.compile(r"(?<!\w)" + r"\s+".join(words) + r"(?!\w)", re.IGNORECASE)


_analyzer: Any = None
_analyzer_lock = threading.Lock()


def _sentiment(text: str) -> float:
    global _analyzer
    with _analyzer_lock:
        if _analyzer is None:
            from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

            _analyzer = SentimentIntensityAnalyzer()
    return float(_analyzer.polarity_scores(text)["compound"])
