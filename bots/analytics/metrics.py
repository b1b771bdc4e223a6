"""Analytics' pure core: percentiles, rates, question normalising, moderation pairs,
and clustering the questions the bot could not answer well into topics with article
drafts. No database: plain values in and out (the reads are bots.analytics.selectors)."""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from workers.moderation.verdicts import STORED_ACTIONS as ACTIONS

# Actions the moderation figures count: everything but "allow".
TAKEN_ACTIONS = tuple(action for action in ACTIONS if action != "allow")
QUESTION_CHARS = 300
CLUSTER_SAMPLES = 5
CLUSTER_TERMS = 3
# Average cosine distance under which questions share a topic. With all-MiniLM-L6-v2,
# paraphrases sit around 0.2-0.5 apart and different topics around 0.7-1.0.
CLUSTER_DISTANCE = 0.6


# Words of asking, not of the topic ("does", "want", "please"), left out of cluster labels
# on top of scikit-learn's English stop words.
QUESTION_STOP_WORDS = frozenset({
    "able", "anybody", "anyone", "does", "did", "doesn", "don", "didn", "isn", "wasn", "want", "wants", "need",
    "needs", "help", "hi", "hello", "hey", "please", "thanks", "thank", "tell", "know", "like", "way", "possible",
    "trying", "tried",
})  # fmt: skip


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100) with linear interpolation between the closest ranks,
    as numpy's default computes it; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


_SPACES = re.compile(r"\s+")


def normalise_question(text: str) -> str:
    """Case-folded, single-spaced, without surrounding punctuation: "How do I pay?" and
    "how do i pay" count as one question."""
    return _SPACES.sub(" ", text).strip().casefold().strip(" ?!.,;:")[:QUESTION_CHARS]


def latency_figures(values: Sequence[float]) -> dict[str, float | int | None]:
    p50, p95 = percentile(values, 50), percentile(values, 95)
    return {
        "p50": None if p50 is None else round(p50, 1),
        "p95": None if p95 is None else round(p95, 1),
        "count": len(values),
    }


def milliseconds(timings: Any, key: str) -> float | None:
    value = timings.get(key) if isinstance(timings, dict) else None
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def moderation_pairs(verdicts: Any) -> set[tuple[str, str]]:
    """The (filter, action) pairs one message's verdicts took, "allow" left out; a message
    counts once per pair however many findings it has."""
    pairs: set[tuple[str, str]] = set()
    for verdict in verdicts if isinstance(verdicts, list) else []:
        findings = verdict.get("findings") if isinstance(verdict, dict) else None
        for finding in findings if isinstance(findings, list) else []:
            if not isinstance(finding, dict):
                continue
            name, action = finding.get("filter"), finding.get("action")
            if isinstance(name, str) and name and action in TAKEN_ACTIONS:
                pairs.add((name, action))
    return pairs


@dataclass
class QuestionCluster:
    terms: list[str]
    size: int  # questions asked, repeats included
    questions: list[str]  # the most representative first
    members: list[int] = field(default_factory=list)  # indices into the clustered texts


def cluster_questions(
    texts: Sequence[str],
    vectors: np.ndarray,
    *,
    weights: Sequence[int] | None = None,
    distance_threshold: float = CLUSTER_DISTANCE,
    samples: int = CLUSTER_SAMPLES,
) -> list[QuestionCluster]:
    """Group `texts` by topic: agglomerative clustering of their unit `vectors` (cosine
    distance, average linkage, cut at `distance_threshold`), each cluster labelled with
    its most characteristic words (TF-IDF over clusters) and its questions nearest the
    centroid first. Largest first; `weights` counts repeats of a text."""
    if not texts:
        return []
    counts = list(weights) if weights is not None else [1] * len(texts)
    if len(texts) == 1:
        labels = np.zeros(1, dtype=int)
    else:
        from sklearn.cluster import AgglomerativeClustering

        model = AgglomerativeClustering(
            n_clusters=None, metric="cosine", linkage="average", distance_threshold=distance_threshold
        )
        labels = model.fit_predict(vectors)
    groups: dict[int, list[int]] = defaultdict(list)
    for index, label in enumerate(labels):
        groups[int(label)].append(index)
    clusters: list[QuestionCluster] = []
    for members in groups.values():
        centroid = vectors[members].mean(axis=0)
        nearest = sorted(members, key=lambda i: (-float(vectors[i] @ centroid), -counts[i], i))
        clusters.append(
            QuestionCluster(
                terms=[],
                size=sum(counts[i] for i in members),
                questions=[texts[i] for i in nearest[:samples]],
                members=nearest,
            )
        )
    for cluster, terms in zip(clusters, cluster_terms([[texts[i] for i in c.members] for c in clusters]), strict=True):
        cluster.terms = terms
    clusters.sort(key=lambda cluster: (-cluster.size, cluster.questions[0]))
    return clusters


def cluster_terms(clusters: Sequence[Sequence[str]], *, count: int = CLUSTER_TERMS) -> list[list[str]]:
    """Each cluster's `count` most characteristic words: TF-IDF with one document per
    cluster, English stop words left out; no words when nothing but stop words is left."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer

    documents = [" ".join(texts) for texts in clusters]
    stop_words = sorted(ENGLISH_STOP_WORDS | QUESTION_STOP_WORDS)
    vectorizer = TfidfVectorizer(stop_words=stop_words, token_pattern=r"(?u)\b[^\W\d_]{2,}\b")
    try:
        weights = vectorizer.fit_transform(documents).toarray()
    except ValueError:  # an empty vocabulary
        return [[] for _ in clusters]
    vocabulary = vectorizer.get_feature_names_out()
    terms: list[list[str]] = []
    for row in weights:
        ranked = sorted((i for i in range(len(row)) if row[i] > 0), key=lambda i: (-row[i], vocabulary[i]))
        terms.append([str(vocabulary[i]) for i in ranked[:count]])
    return terms


def article_draft(*, questions: Sequence[str], terms: Sequence[str]) -> tuple[str, str]:
    """A knowledge-base article skeleton for a cluster: its most representative question
    as the title, then each question as a heading with an "Answer: " line to fill in."""
    title = questions[0].strip()[:200] if questions else "New article"
    title = title[:1].upper() + title[1:]
    parts = [f"# {title}\n"]
    if terms:
        parts.append(f"Visitors asked about: {', '.join(terms)}.\n")
    parts += [f"## {' '.join(question.split())[:200]}\n\nAnswer: \n" for question in questions]
    return title, "\n".join(parts)
