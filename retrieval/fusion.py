"""Fusing dense and keyword rankings. Pure Python.

A convex mix of the dense cosine and the keyword score divided by the score a chunk
containing every query term would reach, i.e. how much of the query the chunk covers.
Dividing by the query's best hit instead hands the top keyword hit a full bonus however
weak it is, and reciprocal rank fusion ignores scores altogether; both lost to dense
alone on paraphrased FAQ questions and were dropped (figures in bench/README.md).

How much the keywords count is decided per query, by how far the two rankings agree:
the share of the dense top ten that is also in the keyword top ten, times
LEXICAL_WEIGHT. Where keywords find the same passages as the meaning does, they
settle the order among them (exact product names, error codes); where they point
elsewhere, which is what happens on knowledge bases whose wording the visitors do not
share, they are mostly ignored, so hybrid stays at dense's level instead of dropping
below it. docs/retrieval.md and decision 40 give the evidence.
"""

from __future__ import annotations

from collections.abc import Mapping

DENSE_WEIGHT = 0.8  # the fixed mix `weighted_fusion` defaults to
LEXICAL_WEIGHT = 0.25  # the keyword weight when the two top tens are the same
AGREEMENT_DEPTH = 10


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


def ranking_agreement(dense: Mapping[int, float], lexical: Mapping[int, float], depth: int = AGREEMENT_DEPTH) -> float:
    """The share of the `depth` best by `dense` that are also among the `depth` best by
    `lexical` (0 when keywords found nothing). With fewer candidates than `depth`, the
    share of those there are."""
    if not dense or not lexical:
        return 0.0
    best_dense = {item for item, _ in top(dense, depth)}
    best_lexical = {item for item, _ in top(lexical, depth)}
    return len(best_dense & best_lexical) / len(best_dense)


def adaptive_fusion(
    dense: Mapping[int, float],
    lexical: Mapping[int, float],
    *,
    lexical_ceiling: float,
    lexical_weight: float = LEXICAL_WEIGHT,
) -> dict[int, float]:
    """`weighted_fusion` with the keywords' weight scaled by how far the two rankings agree."""
    weight = lexical_weight * ranking_agreement(dense, lexical)
    return weighted_fusion(dense, lexical, lexical_ceiling=lexical_ceiling, dense_weight=1.0 - weight)


def top(scores: Mapping[int, float], k: int) -> list[tuple[int, float]]:
    return sorted(scores.items(), key=lambda pair: (-pair[1], pair[0]))[:k]
