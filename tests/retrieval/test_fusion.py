"""Fusing the dense and keyword rankings: keywords count as far as they agree with the
meaning, so they break near-ties (an exact product name) but cannot carry a passage the
meaning ranks low above the one it ranks first."""

from __future__ import annotations

import pytest

from retrieval.fusion import (
    LEXICAL_WEIGHT,
    adaptive_fusion,
    ranking_agreement,
    top,
    weighted_fusion,
)


def test_agreement_is_the_share_of_the_dense_top_ten_the_keywords_also_rank_top_ten() -> None:
    dense = {i: 1.0 - i / 100 for i in range(20)}
    assert ranking_agreement(dense, {i: 10.0 - i for i in range(10)}) == 1.0
    assert ranking_agreement(dense, {i: 1.0 for i in range(5, 15)}) == 0.5
    assert ranking_agreement(dense, {i: 1.0 for i in range(10, 20)}) == 0.0
    assert ranking_agreement(dense, {}) == 0.0
    assert ranking_agreement({}, {1: 2.0}) == 0.0


def test_with_fewer_candidates_than_ten_agreement_counts_those_there_are() -> None:
    assert ranking_agreement({1: 0.9, 2: 0.8, 3: 0.7}, {1: 3.0, 2: 1.0}) == pytest.approx(2 / 3)


def test_agreeing_keywords_break_a_near_tie_in_favour_of_the_exact_match() -> None:
    # Two passages about error codes, nearly tied by meaning; only one names E42.
    dense = {1: 0.61, 2: 0.60} | {i: 0.3 - i / 1000 for i in range(3, 12)}
    lexical = {2: 8.0, 1: 2.0} | {i: 1.0 for i in range(3, 11)}
    fused = adaptive_fusion(dense, lexical, lexical_ceiling=8.0)
    assert top(fused, 1)[0][0] == 2


def test_keywords_that_point_elsewhere_cannot_overturn_the_dense_ranking() -> None:
    # The meaning ranks 1..10 first; the keywords' whole top ten is other passages.
    dense = {i: 0.8 - i / 100 for i in range(1, 11)} | {i: 0.55 for i in range(11, 21)}
    lexical = {i: 10.0 for i in range(11, 21)}
    fused = adaptive_fusion(dense, lexical, lexical_ceiling=10.0)
    assert [item for item, _ in top(fused, 10)] == list(range(1, 11))
    # The fixed mix would have let a keyword match jump over the meaning's first choice.
    fixed = weighted_fusion(dense, lexical, lexical_ceiling=10.0)
    assert top(fixed, 1)[0][0] > 10


def test_full_agreement_gives_the_keywords_their_whole_weight() -> None:
    dense = {i: 0.5 for i in range(1, 4)}
    lexical = {1: 4.0, 2: 2.0, 3: 1.0}
    fused = adaptive_fusion(dense, lexical, lexical_ceiling=4.0)
    assert fused[1] == pytest.approx((1 - LEXICAL_WEIGHT) * 0.5 + LEXICAL_WEIGHT * 1.0)


def test_a_dense_weight_outside_zero_to_one_is_refused() -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        weighted_fusion({1: 0.5}, {}, lexical_ceiling=1.0, dense_weight=1.5)
