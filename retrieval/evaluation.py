"""Retrieval metrics and the BEIR file layout. Pure Python.

BEIR: `corpus.jsonl` ({"_id", "title", "text"}), `queries.jsonl` ({"_id", "text"})
and `qrels/test.tsv` (query-id, corpus-id, score, with a header line).
"""

from __future__ import annotations

import csv
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

CUTOFFS = (1, 5, 10)


class DatasetError(Exception):
    """The evaluation files are missing or malformed; the message names the file."""


@dataclass(frozen=True)
class BeirDataset:
    corpus: dict[str, tuple[str, str]]  # id -> (title, text)
    queries: dict[str, str]
    relevant: dict[str, dict[str, int]]  # query id -> {corpus id: grade}
    # Entries merged into another with the same title and text: kept id -> merged ids.
    merged: dict[str, list[str]] = field(default_factory=dict)


def merge_duplicate_entries(dataset: BeirDataset) -> BeirDataset:
    """One corpus entry per distinct (title, text), whitespace aside: FAQ exports repeat
    an answer under two ids. The first id stays; judgements of the others point to it
    (keeping the higher grade). Entries with the same text under different titles stay
    apart: the title is part of what is searched."""
    kept: dict[tuple[str, str], str] = {}
    canonical: dict[str, str] = {}
    merged: dict[str, list[str]] = {}
    for corpus_id, (title, text) in dataset.corpus.items():
        key = (" ".join(title.split()), " ".join(text.split()))
        first = kept.setdefault(key, corpus_id)
        canonical[corpus_id] = first
        if first != corpus_id:
            merged.setdefault(first, []).append(corpus_id)
    if not merged:
        return dataset
    relevant: dict[str, dict[str, int]] = {}
    for query, judged in dataset.relevant.items():
        grades: dict[str, int] = {}
        for corpus_id, grade in judged.items():
            target = canonical.get(corpus_id, corpus_id)
            grades[target] = max(grade, grades.get(target, 0))
        relevant[query] = grades
    corpus = {corpus_id: entry for corpus_id, entry in dataset.corpus.items() if canonical[corpus_id] == corpus_id}
    return BeirDataset(corpus=corpus, queries=dataset.queries, relevant=relevant, merged=merged)


@dataclass(frozen=True)
class Metrics:
    queries: int
    recall: dict[int, float]
    mrr10: float
    ndcg10: float
    latency_ms: dict[str, float]

    def tokens(self) -> str:
        """`R@1=0.912 R@5=… MRR@10=… nDCG@10=… p50_ms=… p95_ms=… p99_ms=…`."""
        parts = [f"R@{k}={self.recall[k]:.3f}" for k in CUTOFFS]
        parts += [f"MRR@10={self.mrr10:.3f}", f"nDCG@10={self.ndcg10:.3f}"]
        parts += [f"{name}_ms={value:.1f}" for name, value in self.latency_ms.items()]
        return " ".join(parts)


def _read_jsonl(path: Path) -> list[dict[str, object]]:
    if not path.is_file():
        raise DatasetError(f"{path} is missing")
    rows = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise DatasetError(f"{path}:{number}: not JSON ({error.msg})") from None
            if not isinstance(row, dict) or "_id" not in row:
                raise DatasetError(f"{path}:{number}: expected an object with an _id")
            rows.append(row)
    return rows


def load_beir(directory: Path, split: str = "test", *, require_corpus: bool = True) -> BeirDataset:
    if not directory.is_dir():
        raise DatasetError(f"{directory} is not a folder")
    corpus = {}
    if require_corpus or (directory / "corpus.jsonl").exists():
        corpus = {
            str(row["_id"]): (str(row.get("title") or ""), str(row.get("text") or ""))
            for row in _read_jsonl(directory / "corpus.jsonl")
        }
    queries = {str(row["_id"]): str(row.get("text") or "") for row in _read_jsonl(directory / "queries.jsonl")}
    qrels_path = directory / "qrels" / f"{split}.tsv"
    if not qrels_path.is_file():
        raise DatasetError(f"{qrels_path} is missing")
    relevant: dict[str, dict[str, int]] = {}
    with qrels_path.open(encoding="utf-8") as handle:
        reader = csv.reader(handle, delimiter="\t")
        for number, row in enumerate(reader, start=1):
            if number == 1 and row and not row[-1].strip().lstrip("-").isdigit():
                continue  # header
            if len(row) < 3:
                raise DatasetError(f"{qrels_path}:{number}: expected query-id, corpus-id, score")
            grade = int(row[2])
            if grade > 0:
                relevant.setdefault(row[0], {})[row[1]] = grade
    relevant = {query: docs for query, docs in relevant.items() if query in queries}
    if not relevant:
        raise DatasetError(f"{qrels_path}: no judged query matches {directory / 'queries.jsonl'}")
    return merge_duplicate_entries(BeirDataset(corpus=corpus, queries=queries, relevant=relevant))


def write_beir(
    directory: Path, corpus: dict[str, tuple[str, str]], queries: dict[str, str], qrels: list[tuple[str, str]]
) -> None:
    """Write a BEIR folder (`load_beir`'s layout): `corpus` id -> (title, text), `qrels`
    (query id, corpus id) pairs judged relevant."""
    (directory / "qrels").mkdir(parents=True, exist_ok=True)
    with (directory / "corpus.jsonl").open("w", encoding="utf-8") as handle:
        for corpus_id, (title, text) in corpus.items():
            handle.write(json.dumps({"_id": corpus_id, "title": title, "text": text}) + "\n")
    with (directory / "queries.jsonl").open("w", encoding="utf-8") as handle:
        for query_id, text in queries.items():
            handle.write(json.dumps({"_id": query_id, "text": text}) + "\n")
    with (directory / "qrels" / "test.tsv").open("w", encoding="utf-8") as handle:
        handle.write("query-id\tcorpus-id\tscore\n")
        handle.writelines(f"{query}\t{corpus_id}\t1\n" for query, corpus_id in qrels)


def _dcg(grades: Sequence[int]) -> float:
    return float(sum((2**grade - 1) / math.log2(rank + 2) for rank, grade in enumerate(grades)))


def score_rankings(
    rankings: dict[str, list[str]], relevant: dict[str, dict[str, int]], latencies_ms: Sequence[float]
) -> Metrics:
    """Metrics over the judged queries; a query missing from `rankings` counts as a miss."""
    recall = {k: 0.0 for k in CUTOFFS}
    mrr = ndcg = 0.0
    for query, judged in relevant.items():
        ranking = rankings.get(query, [])
        for k in CUTOFFS:
            recall[k] += len(set(ranking[:k]) & judged.keys()) / len(judged)
        first = next((rank for rank, doc in enumerate(ranking[:10], start=1) if doc in judged), None)
        mrr += 1.0 / first if first else 0.0
        ideal = _dcg(sorted(judged.values(), reverse=True)[:10])
        ndcg += _dcg([judged.get(doc, 0) for doc in ranking[:10]]) / ideal if ideal else 0.0
    count = len(relevant)
    latency = np.asarray(latencies_ms, dtype=float) if len(latencies_ms) else np.zeros(1)
    return Metrics(
        queries=count,
        recall={k: value / count for k, value in recall.items()},
        mrr10=mrr / count,
        ndcg10=ndcg / count,
        latency_ms={f"p{q}": float(np.percentile(latency, q)) for q in (50, 95, 99)},
    )


def evaluate(
    search: Callable[[str], list[str]],
    dataset: BeirDataset,
    *,
    progress: Callable[[int], None] | None = None,
) -> Metrics:
    """Run every judged query through `search` (query text -> ranked corpus ids), timing each."""
    rankings: dict[str, list[str]] = {}
    latencies: list[float] = []
    for query in dataset.relevant:
        started = time.perf_counter()
        rankings[query] = search(dataset.queries[query])
        latencies.append((time.perf_counter() - started) * 1000)
        if progress is not None:
            progress(1)
    return score_rankings(rankings, dataset.relevant, latencies)
