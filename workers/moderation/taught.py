"""What owners taught the classifier filters by marking a flag "not a problem": per
organization and filter, the unit vectors of the texts they marked. A classifier finding
on a text whose vector is close to one of them (cosine >= SIMILAR) is allowed, with a
reason the owner can read in the message's verdict.

Only findings a classifier judged (they carry a score) are taught: hate and the
injection head. Rules are corrected by the allowlist instead, and personal data, the
blocklist, leakage and grounding are never taught (a paraphrase of an allowed address
or a supported sentence is not itself allowed)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace

import numpy as np

from workers.moderation.toxicity import mask_groups
from workers.moderation.verdicts import Action, Finding

TEACHABLE_FILTERS = ("toxicity", "injection")
# Cosine between all-MiniLM-L6-v2 vectors (of `compared_text`) at or above which a text
# counts as "like" a taught one. Chosen on the project's own hate exemplars, not on an
# evaluation set: the cosine between a hateful exemplar and its nearest non-hateful one
# (the hard contrasts: negated, quoted, counter-speech), groups masked, is below 0.807
# for 99 % of them, rounded up to 0.85 (bench/moderation_feedback.py prints it), so a
# taught benign text rarely reaches hateful wording.
SIMILAR = 0.85
TAUGHT_REASON = "allowed: like a message you marked not a problem"


@dataclass(frozen=True, eq=False)
class Taught:
    """One organization's taught examples: filter -> (n, d) float32 unit rows, and the
    examples' ids in the same order."""

    vectors: Mapping[str, np.ndarray] = field(default_factory=dict)
    ids: Mapping[str, tuple[int, ...]] = field(default_factory=dict)

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[int, str, bytes]]) -> Taught:
        """From (id, filter, float32 vector bytes) rows; empty or malformed vectors are skipped."""
        found: dict[str, list[tuple[int, np.ndarray]]] = {}
        size = 0  # the newest example's dimension: vectors of another model cannot be compared
        for pk, name, data in sorted(rows, key=lambda row: -row[0]):
            vector = np.frombuffer(bytes(data), dtype=np.float32)
            norm = float(np.linalg.norm(vector)) if vector.size else 0.0
            if name not in TEACHABLE_FILTERS or norm == 0 or (size and vector.size != size):
                continue
            size = vector.size
            found.setdefault(name, []).append((pk, vector / norm))
        return cls(
            vectors={name: np.stack([v for _, v in entries]) for name, entries in found.items()},
            ids={name: tuple(pk for pk, _ in entries) for name, entries in found.items()},
        )

    def __bool__(self) -> bool:
        return bool(self.vectors)

    def teaches(self, name: str) -> bool:
        return name in self.vectors

    def nearest(self, name: str, vector: np.ndarray) -> tuple[int, float] | None:
        """The closest taught example of filter `name` (its id and cosine), or None."""
        matrix = self.vectors.get(name)
        if matrix is None or vector.shape[-1] != matrix.shape[1]:
            return None
        norm = float(np.linalg.norm(vector))
        if norm == 0:
            return None
        similarities = matrix @ (vector.astype(np.float32) / norm)
        best = int(np.argmax(similarities))
        return self.ids[name][best], float(similarities[best])


NOTHING_TAUGHT = Taught()


def teachable(finding: Finding) -> bool:
    return finding.filter in TEACHABLE_FILTERS and finding.score is not None and finding.action >= Action.FLAG


def compared_text(name: str, text: str) -> str:
    """The text whose embedding is compared for filter `name`: for hate, with every
    protected group named replaced by "people", as the hate head reads it, so a sentence
    marked not a problem carries to the same sentence about another group."""
    return mask_groups(text) if name == "toxicity" else text


def untaught(
    findings: list[Finding],
    taught: Taught,
    text: str,
    vector: np.ndarray | None,
    embed: Callable[[str], np.ndarray] | None = None,
) -> list[Finding]:
    """`findings` on `text` (whose embedding `vector` is, when known) with each teachable
    one on a text like a taught example of its filter allowed instead, its reason saying
    why (the original reason kept in brackets). A text that must be compared masked is
    embedded with `embed` (once), only when such a finding is there."""
    if not taught:
        return findings
    vectors: dict[str, np.ndarray | None] = {text: vector}
    kept: list[Finding] = []
    for finding in findings:
        if teachable(finding) and taught.teaches(finding.filter):
            compared = compared_text(finding.filter, text)
            if vectors.get(compared) is None:
                vectors[compared] = embed(compared) if embed is not None else None
            found = vectors[compared]
            match = taught.nearest(finding.filter, found) if found is not None else None
            if match is not None and match[1] >= SIMILAR:
                finding = replace(finding, action=Action.ALLOW, reason=f"{TAUGHT_REASON} ({finding.reason})")
        kept.append(finding)
    return kept
