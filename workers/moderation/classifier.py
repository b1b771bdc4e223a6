"""A logistic-regression head over three kinds of features of a text:

- its sentence embedding (all-MiniLM-L6-v2, shared with retrieval, so screening a
  visitor's question reuses the vector that searches the knowledge base);
- hashed character n-grams of its normalised form (language-independent, robust
  to obfuscation; no vocabulary to ship);
- a few named rule features a filter computes (heuristic hits, profanity, cues).

Training uses scikit-learn; scoring is three dot products in numpy. A model is an
`.npz` of plain arrays (no pickle) plus its settings and provenance as JSON.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

NGRAM_FEATURES = 2**18
NGRAM_RANGE = (2, 5)

Extras = Callable[[str], dict[str, float]]


def _hasher() -> Any:
    from sklearn.feature_extraction.text import HashingVectorizer

    return HashingVectorizer(
        analyzer="char_wb", ngram_range=NGRAM_RANGE, n_features=NGRAM_FEATURES, alternate_sign=False, norm=None
    )


_HASHER: Any = None


def ngram_features(texts: Sequence[str]) -> Any:
    """Sparse rows: sublinear term frequencies of hashed character n-grams, L2-normalised."""
    global _HASHER
    if _HASHER is None:
        _HASHER = _hasher()
    from sklearn.preprocessing import normalize

    matrix = _HASHER.transform(list(texts)).astype(np.float64)
    matrix.data = 1.0 + np.log(matrix.data)
    return normalize(matrix)


@dataclass
class LinearTextModel:
    name: str
    extra_names: tuple[str, ...]
    embedding_weight: float  # how the embedding block is scaled against the n-gram block
    use_ngrams: bool
    ngram_coef: np.ndarray
    embedding_coef: np.ndarray
    extra_coef: np.ndarray
    intercept: float
    threshold: float = 0.5
    info: dict[str, Any] = field(default_factory=dict)  # provenance: data, size, cross-validation

    def probability(self, normalised: str, vector: np.ndarray, extras: dict[str, float]) -> float:
        score = self.intercept + self.embedding_weight * float(vector @ self.embedding_coef)
        score += float(np.array([extras.get(n, 0.0) for n in self.extra_names]) @ self.extra_coef)
        if self.use_ngrams:
            row = ngram_features([normalised])
            score += float(row.data @ self.ngram_coef[row.indices])
        return 1.0 / (1.0 + math.exp(-score))

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        settings = {
            "name": self.name,
            "extra_names": list(self.extra_names),
            "embedding_weight": self.embedding_weight,
            "use_ngrams": self.use_ngrams,
            "intercept": self.intercept,
            "threshold": self.threshold,
            "info": self.info,
        }
        # Only the n-gram weights that are not zero: most hash buckets never occur.
        nonzero = np.flatnonzero(self.ngram_coef).astype(np.int32)
        with path.open("wb") as handle:
            np.savez_compressed(
                handle,
                settings=np.frombuffer(json.dumps(settings).encode(), dtype=np.uint8),
                ngram_index=nonzero,
                ngram_value=self.ngram_coef[nonzero].astype(np.float32),
                embedding_coef=self.embedding_coef.astype(np.float32),
                extra_coef=self.extra_coef.astype(np.float32),
            )

    @classmethod
    def load(cls, path: Path) -> LinearTextModel:
        with np.load(path, allow_pickle=False) as data:
            settings = json.loads(bytes(data["settings"]).decode())
            ngram_coef = np.zeros(NGRAM_FEATURES, dtype=np.float64)
            ngram_coef[data["ngram_index"]] = data["ngram_value"]
            return cls(
                name=settings["name"],
                extra_names=tuple(settings["extra_names"]),
                embedding_weight=float(settings["embedding_weight"]),
                use_ngrams=bool(settings["use_ngrams"]),
                ngram_coef=ngram_coef,
                embedding_coef=data["embedding_coef"].astype(np.float64),
                extra_coef=data["extra_coef"].astype(np.float64),
                intercept=float(settings["intercept"]),
                threshold=float(settings["threshold"]),
                info=settings["info"],
            )


@dataclass(frozen=True)
class TrainingSettings:
    name: str
    extra_names: tuple[str, ...]
    embedding_weight: float = 0.5
    use_ngrams: bool = True
    regularisation: float = 20.0  # scikit-learn's C
    threshold: float = 0.5


def _design(
    normalised: Sequence[str], vectors: np.ndarray, extras: Sequence[dict[str, float]], settings: TrainingSettings
) -> Any:
    from scipy.sparse import csr_matrix, hstack

    blocks = []
    if settings.use_ngrams:
        blocks.append(ngram_features(normalised))
    blocks.append(csr_matrix(vectors * settings.embedding_weight))
    named = np.array([[e.get(n, 0.0) for n in settings.extra_names] for e in extras]).reshape(len(extras), -1)
    blocks.append(csr_matrix(named))
    return hstack(blocks).tocsr()


def train(
    normalised: Sequence[str],
    vectors: np.ndarray,
    extras: Sequence[dict[str, float]],
    labels: Sequence[int],
    settings: TrainingSettings,
) -> LinearTextModel:
    from sklearn.linear_model import LogisticRegression

    design = _design(normalised, vectors, extras, settings)
    model = LogisticRegression(C=settings.regularisation, max_iter=5000, class_weight="balanced")
    model.fit(design, np.asarray(labels))
    coef = model.coef_.ravel()
    ngrams = NGRAM_FEATURES if settings.use_ngrams else 0
    dimension = vectors.shape[1]
    return LinearTextModel(
        name=settings.name,
        extra_names=settings.extra_names,
        embedding_weight=settings.embedding_weight,
        use_ngrams=settings.use_ngrams,
        ngram_coef=coef[:ngrams] if ngrams else np.zeros(NGRAM_FEATURES),
        embedding_coef=coef[ngrams : ngrams + dimension],
        extra_coef=coef[ngrams + dimension :],
        intercept=float(model.intercept_[0]),
        threshold=settings.threshold,
    )


def cross_validate(
    normalised: Sequence[str],
    vectors: np.ndarray,
    extras: Sequence[dict[str, float]],
    labels: Sequence[int],
    settings: TrainingSettings,
    *,
    folds: int = 5,
    decide: Callable[[LinearTextModel, int], bool] | None = None,
    tested: int | None = None,
) -> list[float]:
    """Accuracy per stratified fold, with near-duplicates (`near_duplicate_groups`) kept in
    one fold, so that a paraphrase in training does not score its twin. `decide(model, i)`
    is the whole filter's decision for example i (the classifier plus anything it is
    combined with); by default the model alone.
    With `tested`, only the first `tested` examples are folded; the rest are always trained
    on (data added to a user's file, which the accuracy should not be measured on)."""
    y = np.asarray(labels)
    accuracies = []
    for train_rows, test_rows in grouped_folds(vectors, labels, folds=folds, tested=tested):
        model = train(
            [normalised[i] for i in train_rows],
            vectors[train_rows],
            [extras[i] for i in train_rows],
            y[train_rows].tolist(),
            settings,
        )
        if decide is None:
            predicted = [model.probability(normalised[i], vectors[i], extras[i]) >= model.threshold for i in test_rows]
        else:
            predicted = [decide(model, int(i)) for i in test_rows]
        accuracies.append(float(np.mean(np.array(predicted, dtype=int) == y[test_rows])))
    return accuracies


def grouped_folds(
    vectors: np.ndarray, labels: Sequence[int], *, folds: int = 5, tested: int | None = None
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(training rows, test rows) per stratified fold, near-duplicates in one fold; rows
    from `tested` on are always trained on (see `cross_validate`)."""
    from sklearn.model_selection import StratifiedGroupKFold

    y = np.asarray(labels)
    folded = len(y) if tested is None else tested
    always = np.arange(folded, len(y))
    groups = near_duplicate_groups(vectors[:folded])
    if any(len(set(groups[y[:folded] == label])) < folds for label in (0, 1)):
        groups = np.arange(folded)  # too few distinct texts in a class to keep twins together
    splitter = StratifiedGroupKFold(folds, shuffle=True, random_state=0)
    for train_rows, test_rows in splitter.split(np.zeros(folded), y[:folded], groups):
        yield np.concatenate([train_rows, always]), test_rows


NEAR_DUPLICATE = 0.8  # cosine between embeddings from which two texts are one group


def near_duplicate_groups(vectors: np.ndarray, threshold: float = NEAR_DUPLICATE) -> np.ndarray:
    """A group id per row: rows whose embeddings are this close, directly or through a
    chain, share one (union-find over the similarity matrix). deepset's training file holds
    the same attack in English and German, and with a different question in front."""
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    parent = list(range(len(unit)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    similarity = unit @ unit.T
    for i in range(len(unit)):
        for j in np.flatnonzero(similarity[i, i + 1 :] >= threshold) + i + 1:
            parent[root(i)] = root(int(j))
    return np.array([root(i) for i in range(len(unit))])
