"""Measuring a filter (or the whole input screen) on labelled examples: the figures that
`manage.py evaluate_moderation` prints and `bench/moderation.py` reports."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from workers.moderation.blocklist import BlocklistFilter
from workers.moderation.datasets import Example
from workers.moderation.injection import InjectionFilter
from workers.moderation.pii import PiiFilter
from workers.moderation.pipeline import Policy, screen_input
from workers.moderation.toxicity import ToxicityFilter
from workers.moderation.vectors import embed_text, embed_texts
from workers.moderation.verdicts import Action, Finding

FILTERS = ("all", "blocklist", "pii", "toxicity", "injection")
# What counts as caught: "flag" (flagged, withheld or blocked: listed for an owner to
# read) or "block" (the visitor gets the safe reply instead of an answer).
COUNTS = {"flag": Action.FLAG, "block": Action.BLOCK}
Check = Callable[[str, "np.ndarray | None"], list[Finding]]


@dataclass
class Report:
    examples: int
    positive: int
    accuracy: float
    recall: float
    precision: float
    f1: float
    false_positive_rate: float
    latency_ms: dict[str, float]  # p50, p95, p99 of the screening call, given the embedding
    embedding_ms_per_text: float  # the embedding itself, batched (shared with retrieval in chat)
    groups: dict[str, tuple[int, float]] = field(default_factory=dict)  # group -> (n, accuracy)
    count: str = "flag"  # what counted as caught (COUNTS)

    def lines(self) -> list[str]:
        lines = [
            f"examples={self.examples} positive={self.positive} negative={self.examples - self.positive} "
            f"count={self.count}"
        ]
        lines += [f"group={name} n={n} accuracy={accuracy:.3f}" for name, (n, accuracy) in sorted(self.groups.items())]
        lines.append(
            f"accuracy={self.accuracy:.3f} recall={self.recall:.3f} precision={self.precision:.3f} f1={self.f1:.3f} "
            f"false_positive_rate={self.false_positive_rate:.3f}"
        )
        latency = " ".join(f"latency_{name}_ms={value:.2f}" for name, value in self.latency_ms.items())
        lines.append(f"{latency} embedding_ms_per_text={self.embedding_ms_per_text:.2f}")
        return lines


def checker(name: str, policy: Policy) -> Check:
    """The check for one filter, or the whole input screen: (text, vector) -> findings."""
    if name == "blocklist":
        blocklist = BlocklistFilter(policy.blocklist, policy.allowlist, action=policy.blocklist_action)
        return lambda text, vector: blocklist.check(text)
    if name == "pii":
        pii = PiiFilter(action=Action.FLAG)
        return lambda text, vector: pii.check(text)
    if name == "toxicity":
        toxicity = ToxicityFilter()
        return lambda text, vector: toxicity.check(text, vector, embed=embed_text)
    if name == "injection":
        injection = InjectionFilter()
        return lambda text, vector: injection.check(text, vector)
    return lambda text, vector: screen_input(text, policy, vector, embed=embed_text).findings


def evaluate(
    examples: list[Example], name: str, policy: Policy, *, progress: bool = False, count: str = "flag"
) -> Report:
    """A text counts as caught when the check's strongest action reaches `count` (see COUNTS)."""
    if count not in COUNTS:
        raise ValueError(f"count must be one of {', '.join(COUNTS)}, not {count!r}")
    least = COUNTS[count]
    needs_vectors = name in {"all", "toxicity", "injection"}
    started = time.perf_counter()
    vectors = embed_texts([e.text for e in examples], progress=progress) if needs_vectors else None
    embed_ms = (time.perf_counter() - started) * 1000 / len(examples) if needs_vectors else 0.0
    check = checker(name, policy)
    rows = examples
    if progress:
        from tqdm import tqdm

        rows = tqdm(examples, desc="screening", unit="text")
    caught, latencies = [], []
    for i, example in enumerate(rows):
        started = time.perf_counter()
        findings = check(example.text, vectors[i] if vectors is not None else None)
        latencies.append((time.perf_counter() - started) * 1000)
        caught.append(any(f.action >= least for f in findings))
    return replace(_report(examples, np.array(caught), latencies, embed_ms), count=count)


def _report(examples: list[Example], said: np.ndarray, latencies: list[float], embed_ms: float) -> Report:
    truth = np.array([e.positive for e in examples])
    positives, negatives = int(truth.sum()), int((~truth).sum())
    true_positive = int((truth & said).sum())
    recall = true_positive / positives if positives else 0.0
    precision = true_positive / int(said.sum()) if said.any() else 0.0
    groups: dict[str, list[bool]] = defaultdict(list)
    for example, right in zip(examples, truth == said, strict=True):
        if example.group:
            groups[example.group].append(bool(right))
    p50, p95, p99 = np.percentile(latencies, [50, 95, 99])
    return Report(
        examples=len(examples),
        positive=positives,
        accuracy=float((truth == said).mean()),
        recall=recall,
        precision=precision,
        f1=2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        false_positive_rate=int((~truth & said).sum()) / negatives if negatives else 0.0,
        latency_ms={"p50": float(p50), "p95": float(p95), "p99": float(p99)},
        embedding_ms_per_text=embed_ms,
        groups={name: (len(results), float(np.mean(results))) for name, results in groups.items()},
    )
