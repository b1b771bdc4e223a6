"""Fusing dense and keyword rankings. Pure Python.

A convex mix of the dense cosine and the keyword score divided by the score a
chunk containing every query term would reach, i.e. how much of the query the
chunk covers. Dividing by the query's best hit instead hands the top keyword hit a
full bonus however weak it is, and reciprocal rank fusion ignores scores
altogether; both lost to dense alone on paraphrased FAQ questions and were
dropped (figures in bench/README.md).
"""

from __future__ import annotations

from collections.abc import Mapping

DENSE_WEIGHT = 0.8


def weighted_fusion(
    dense: Mapping[int, float],
    lexical: Mapping[int, float],
    *,
    lexical_ceiling: float,
    dense_weight: float = DENSE_WEIGHT,
) -> dict[int, float]:
    """`dense` holds cosine similarities, `lexical` raw BM25 scores (missing means no
    match) and `lexical_ceiling` the BM25 score of a chunk matching the whole query."""
    if not 0.0 <= dense_weight <= 1.0:
        raise ValueError("dense_weight must be between 0 and 1")
    fused: dict[int, float] = {}
    for item in dense.keys() | lexical.keys():
        keyword = min(1.0, lexical.get(item, 0.0) / lexical_ceiling) if lexical_ceiling > 0 else 0.0
        fused[item] = dense_weight * dense.get(item, 0.0) + (1.0 - dense_weight) * keyword
    return fused


def top(scores: Mapping[int, float], k: int) -> list[tuple[int, float]]:
    return sorted(scores.items(), key=lambda pair: (-pair[1], pair[0]))[:k]
