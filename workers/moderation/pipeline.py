"""The moderation pipeline: a bot's policy, input screening, and the gate that holds
streamed output until a sentence is complete and screened."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

import numpy as np

from workers.moderation.blocklist import BlocklistFilter
from workers.moderation.grounding import GroundingCheck
from workers.moderation.injection import InjectionFilter, heuristic_hits
from workers.moderation.leakage import LeakageFilter
from workers.moderation.normalise import normalise
from workers.moderation.pii import PiiFilter
from workers.moderation.taught import NOTHING_TAUGHT, Taught, teachable, untaught
from workers.moderation.toxicity import ToxicityFilter
from workers.moderation.toxicity import features as toxicity_features
from workers.moderation.verdicts import Action, Finding, Verdict, distinct, redact

SAFE_REPLY = "I'm sorry, I can't help with that here. Would you like me to connect you with a person?"
SENTENCE_END = re.compile(r"(?<=[.!?:;])\s+|\n+")
HOLD_CAP = 300  # characters held at most without a sentence end


_ACTIONS = {"block": Action.BLOCK, "flag": Action.FLAG, "redact": Action.REDACT, "off": None}


@dataclass(frozen=True)
class Policy:
    """`Bot.moderation_policy`: {"blocklist": [...], "allowlist": [...],
    "blocklist_action": "block"|"flag", "pii": "redact"|"flag"|"off",
    "toxicity": "block"|"flag"|"off", "injection": "block"|"flag"|"off",
    "grounding": "remove"|"off", "safe_reply": "..."}. Absent keys take the defaults.
    `taught`: what the bot's organization marked "not a problem" (workers.moderation.taught)."""

    blocklist: tuple[str, ...] = ()
    allowlist: tuple[str, ...] = ()
    blocklist_action: Action = Action.BLOCK
    pii: Action | None = Action.REDACT
    toxicity: Action | None = Action.BLOCK
    injection: Action | None = Action.BLOCK
    grounding: bool = True
    safe_reply: str = SAFE_REPLY
    taught: Taught = field(default=NOTHING_TAUGHT, compare=False)

    @classmethod
    def from_bot(cls, data: dict[str, Any] | None, taught: Taught = NOTHING_TAUGHT) -> Policy:
        data = data or {}

        def strings(key: str) -> tuple[str, ...]:
            value = data.get(key, [])
            return tuple(str(item) for item in value if str(item).strip()) if isinstance(value, list) else ()

        def action(key: str, default: Action, allowed: tuple[str, ...]) -> Action | None:
            value = str(data.get(key, "")).lower()
            return _ACTIONS[value] if value in allowed else default

        return cls(
            blocklist=strings("blocklist"),
            allowlist=strings("allowlist"),
            blocklist_action=Action.FLAG if data.get("blocklist_action") == "flag" else Action.BLOCK,
            pii=action("pii", Action.REDACT, ("redact", "flag", "off")),
            toxicity=action("toxicity", Action.BLOCK, ("block", "flag", "off")),
            injection=action("injection", Action.BLOCK, ("block", "flag", "off")),
            grounding=data.get("grounding") != "off",
            safe_reply=str(data.get("safe_reply") or SAFE_REPLY),
            taught=taught,
        )

    def blocklist_filter(self) -> BlocklistFilter:
        return _blocklist_filter(self.blocklist, self.allowlist, self.blocklist_action)

    def allowlisted(self, text: str) -> bool:
        """Whether an admin marked this text (or text it is part of) as a false positive."""
        return _allowlisted(_flat(text), tuple(_flat(phrase) for phrase in self.allowlist))


def _flat(text: str) -> str:
    return " ".join(normalise(text)[0].split())


def _allowlisted(text: str, phrases: tuple[str, ...]) -> bool:
    return bool(text) and any(text in phrase or (len(phrase.split()) >= 3 and phrase in text) for phrase in phrases)


@lru_cache(maxsize=256)
def _blocklist_filter(blocked: tuple[str, ...], allowed: tuple[str, ...], action: Action) -> BlocklistFilter:
    """Parsed once per distinct policy, not once per message."""
    return BlocklistFilter(blocked, allowed, action=action)


def _with_action(findings: list[Finding], action: Action | None) -> list[Finding]:
    if action is None:
        return []
    return [replace(f, action=min(f.action, action)) if f.action > Action.REDACT else f for f in findings]


def _not_allowlisted(text: str, findings: list[Finding], policy: Policy) -> list[Finding]:
    """Classifier findings on text an admin marked as a false positive are dropped."""
    if not policy.allowlist:
        return findings
    kept = [f for f in findings if f.filter == "blocklist" or f.action <= Action.REDACT]
    return kept + [f for f in findings if f not in kept and not policy.allowlisted(text[f.start : f.end])]


def _allowed_by_owners(
    text: str,
    findings: list[Finding],
    policy: Policy,
    vector: np.ndarray | None,
    embed: Callable[[str], np.ndarray] | None,
) -> list[Finding]:
    """What the owners allowed: allowlisted text, then classifier findings on text like
    one they marked "not a problem"."""
    return untaught(_not_allowlisted(text, findings, policy), policy.taught, text, vector, embed)


def _verdict(text: str, findings: list[Finding]) -> Verdict:
    findings = distinct(findings)
    return Verdict(text=redact(text, findings), findings=findings)


def screen_input(
    text: str,
    policy: Policy,
    vector: np.ndarray | None = None,
    embed: Callable[[str], np.ndarray] | None = None,
) -> Verdict:
    """A visitor's message: blocked terms, personal data (redacted before it is stored),
    hate and prompt injection. The classifiers need the text's embedding (`vector`); without
    it only the rules run (the web process screens that way before storing, and the worker
    completes the check with the question's search vector: see `screen_question`)."""
    findings = policy.blocklist_filter().check(text)
    if policy.pii is not None:
        findings += PiiFilter(action=policy.pii).check(text)
    if policy.injection is not None:
        findings += _with_action(InjectionFilter(action=policy.injection).check(text, vector), policy.injection)
    if vector is not None and policy.toxicity is not None:
        findings += _with_action(ToxicityFilter().check(text, vector, embed), policy.toxicity)
    return _verdict(text, _allowed_by_owners(text, findings, policy, vector, embed))


def screen_question(
    text: str, policy: Policy, vector: np.ndarray, embed: Callable[[str], np.ndarray] | None = None
) -> Verdict:
    """The checks on a stored visitor message that need its embedding (hate, the
    injection classifier), run by the worker with the vector that searches for it."""
    findings: list[Finding] = []
    if policy.injection is not None:
        findings += _with_action(InjectionFilter(action=policy.injection).check(text, vector), policy.injection)
    if policy.toxicity is not None:
        findings += _with_action(ToxicityFilter().check(text, vector, embed), policy.toxicity)
    return _verdict(text, _allowed_by_owners(text, findings, policy, vector, embed))


def screen_passage(text: str) -> Verdict:
    """A retrieved passage: does it carry instructions for the bot? Phrase heuristics only:
    the injection classifier, trained on chat messages, reads any long help page as
    instructions (it flagged 1 in 10 of the demo's and StackExchange's passages)."""
    hits = heuristic_hits(text, passage=True)
    return _verdict(text, [Finding("injection", Action.FLAG, h.reason, h.start, h.end) for h in hits])


class OutputScreen:
    """The checks on a bot's answer, one piece of text at a time. The piece is embedded
    only when a check needs it: the hate head when a group is named or the words are
    profane, grounding when word overlap alone does not settle it."""

    def __init__(
        self,
        policy: Policy,
        *,
        passages: Iterable[str] = (),
        passage_vectors: np.ndarray | None = None,
        canary: str = "",
        instructions: str = "",
        grounded: bool = False,
        embed: Callable[[str], np.ndarray] | None = None,
    ):
        self.policy = policy
        self.passages = list(passages)
        self.blocklist = policy.blocklist_filter()
        self.pii = PiiFilter(action=policy.pii) if policy.pii is not None else None
        self.leakage = LeakageFilter(canary=canary, instructions=instructions)
        self.toxicity = ToxicityFilter(bot_output=True) if policy.toxicity is not None else None
        self.embed = embed
        self.grounding = (
            GroundingCheck(self.passages, passage_vectors, self._vector) if grounded and policy.grounding else None
        )
        self._vectors: dict[str, np.ndarray] = {}

    def _vector(self, text: str) -> np.ndarray:
        if text not in self._vectors:
            assert self.embed is not None
            self._vectors = {text: self.embed(text)}
        return self._vectors[text]

    def screen(self, text: str) -> Verdict:
        findings = self.blocklist.check(text) + self.leakage.check(text)
        if self.pii is not None:
            findings += self.pii.check(text, known=self.passages)
        if self.toxicity is not None and text.strip():
            folded, cues = toxicity_features(text)
            needs_vector = self.embed is not None and (cues["group_term"] or cues["profanity"] >= 0.3)
            vector = self._vector(text) if needs_vector else None
            findings += _with_action(self.toxicity.check(text, vector, self.embed), self.policy.toxicity)
        if self.embed is not None and any(teachable(f) and self.policy.taught.teaches(f.filter) for f in findings):
            findings = untaught(findings, self.policy.taught, text, None, self._vector)
        if self.grounding is not None and not any(f.action >= Action.FLAG for f in findings):
            findings += self.grounding.check(text)
        return _verdict(text, _not_allowlisted(text, findings, self.policy))


@dataclass
class SentenceGate:
    """Holds streamed text until a sentence ends (or HOLD_CAP characters), screens it,
    and only then releases it. An unsupported sentence is withheld; after a block, the
    safe reply is released instead and everything after it is dropped."""

    screen: OutputScreen
    release: Callable[[str], None]
    on_text: Callable[[], None] = lambda: None  # told whenever text arrives (timings)
    held: str = ""
    blocked: bool = False
    released: int = 0  # sentences published
    removed: int = 0  # sentences withheld as unsupported by the passages
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
        for sentence in _sentences(text):
            if not self.blocked:
                self._screen_sentence(sentence)

    def _screen_sentence(self, text: str) -> None:
        verdict = self.screen.screen(text)
        if verdict.findings:
            self.verdicts.append({"excerpt": verdict.text[:500], **verdict.as_dict()})
        if verdict.action == Action.BLOCK:
            self.blocked = True
            self.release(self.screen.policy.safe_reply)
            return
        if verdict.action == Action.REMOVE:
            self.removed += 1
            return
        if text.strip():
            self.released += 1
        self.release(verdict.text)


def _sentences(text: str) -> list[str]:
    """`text` cut after each sentence end, the whitespace kept with the sentence before it."""
    pieces, start = [], 0
    for match in SENTENCE_END.finditer(text):
        pieces.append(text[start : match.end()])
        start = match.end()
    if start < len(text):
        pieces.append(text[start:])
    return pieces
