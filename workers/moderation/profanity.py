"""alt-profanity-check's packaged model, scored without scikit-learn's per-call overhead.

The package's `predict_prob` costs about 4 ms a call, nearly all of it input
validation; the model itself is a TF-IDF vocabulary and five calibrated linear SVMs.
We read those once and score a text in tens of microseconds, with the same result.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from functools import cache

import numpy as np

TOKEN = re.compile(r"(?u)\b\w\w+\b")


@dataclass(frozen=True)
class ProfanityModel:
    vocabulary: dict[str, int]
    idf: np.ndarray  # (terms,)
    weights: np.ndarray  # (terms, folds): each fold's SVM coefficients
    intercepts: np.ndarray  # (folds,)
    calibration: np.ndarray  # (folds, 2): sigmoid a, b; p = 1 / (1 + exp(a * f + b))

    def probability(self, text: str) -> float:
        counts = Counter(self.vocabulary[t] for t in TOKEN.findall(text.lower()) if t in self.vocabulary)
        if not counts:
            return float(np.mean(self._calibrate(self.intercepts)))
        index = np.fromiter(counts.keys(), dtype=np.int64)
        tfidf = np.fromiter(counts.values(), dtype=np.float64) * self.idf[index]
        tfidf /= math.sqrt(float(tfidf @ tfidf))
        decision = tfidf @ self.weights[index] + self.intercepts
        return float(np.mean(self._calibrate(decision)))

    def _calibrate(self, decision: np.ndarray) -> np.ndarray:
        result: np.ndarray = 1.0 / (1.0 + np.exp(self.calibration[:, 0] * decision + self.calibration[:, 1]))
        return result


@cache
def profanity_model() -> ProfanityModel:
    import profanity_check.profanity_check as packaged

    vectorizer, model = packaged.vectorizer, packaged.model
    folds = model.calibrated_classifiers_
    weights = np.stack([fold.estimator.coef_.ravel() for fold in folds], axis=1)
    intercepts = np.array([float(fold.estimator.intercept_[0]) for fold in folds])
    calibration = np.array([[fold.calibrators[0].a_, fold.calibrators[0].b_] for fold in folds], dtype=np.float64)
    return ProfanityModel(
        vocabulary=dict(vectorizer.vocabulary_),
        idf=np.asarray(vectorizer.idf_, dtype=np.float64),
        weights=weights,
        intercepts=intercepts,
        calibration=calibration,
    )


def profanity(text: str) -> float:
    """Probability that `text` is profane or offensive (0..1)."""
    return profanity_model().probability(text)
