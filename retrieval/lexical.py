"""BM25 keyword index keyed by chunk id, with incremental add and remove.

Pure Python over numpy and scipy. Terms are lower-cased words with English
stop words dropped and Snowball stems (PyStemmer), so "refunds" finds
"refunded". Rows live in a sparse chunk x term matrix of term frequencies;
removals are applied at once, so the index always holds exactly the ids added
and not removed.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import IO, Any

import numpy as np
from scipy import sparse

K1 = 1.2
B = 0.75
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
STOP_WORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "for",
        "from",
        "had",
        "has",
        "have",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "me",
        "my",
        "no",
        "not",
        "of",
        "on",
        "or",
        "our",
        "so",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "too",
        "us",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
    ]
)


@cache
def _stemmer() -> Any:
    import Stemmer

    return Stemmer.Stemmer("english")


def tokenize(text: str) -> list[str]:
    words = [word for word in _WORD.findall(text.lower()) if word not in STOP_WORDS]
    stems: list[str] = _stemmer().stemWords(words)
    return stems


@dataclass
class LexicalIndex:
    ids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    lengths: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    vocabulary: dict[str, int] = field(default_factory=dict)
    matrix: sparse.csr_matrix = field(default_factory=lambda: sparse.csr_matrix((0, 0), dtype=np.float32))
    _weight_columns: sparse.csc_matrix | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def id_set(self) -> set[int]:
        return set(self.ids.tolist())

    def add(self, ids: np.ndarray, texts: list[str]) -> None:
        if len(ids) != len(texts):
            raise ValueError("ids and texts differ in length")
        if not len(ids):
            return
        if np.intersect1d(self.ids, ids).size:
            raise ValueError("some ids are already in the lexical index")
        rows, cols, counts, lengths = [], [], [], []
        for row, text in enumerate(texts):
            terms = tokenize(text)
            lengths.append(len(terms))
            for term, count in Counter(terms).items():
                column = self.vocabulary.setdefault(term, len(self.vocabulary))
                rows.append(row)
                cols.append(column)
                counts.append(count)
        added = sparse.csr_matrix(
            (np.array(counts, dtype=np.float32), (rows, cols)), shape=(len(texts), len(self.vocabulary))
        )
        current = self.matrix
        current.resize((current.shape[0], len(self.vocabulary)))
        self.matrix = sparse.vstack([current, added], format="csr")
        self.ids = np.concatenate([self.ids, np.asarray(ids, dtype=np.int64)])
        self.lengths = np.concatenate([self.lengths, np.array(lengths, dtype=np.float32)])
        self._weight_columns = None

    def remove(self, ids: np.ndarray) -> None:
        keep = ~np.isin(self.ids, np.asarray(ids, dtype=np.int64))
        if keep.all():
            return
        self.matrix = self.matrix[keep]
        self.ids = self.ids[keep]
        self.lengths = self.lengths[keep]
        self._weight_columns = None

    def _idf(self, documents_with_term: int) -> float:
        n = len(self)
        return float(np.log1p((n - documents_with_term + 0.5) / (documents_with_term + 0.5)))

    def _weights(self) -> sparse.csc_matrix:
        """Per (chunk, term) BM25 weight without the idf, by term: tf saturated and
        length-normalised. Computed once after a change, so a query only sums columns."""
        if self._weight_columns is None:
            average = float(self.lengths.mean()) if len(self) else 1.0
            norm = K1 * (1 - B + B * self.lengths / (average or 1.0))
            matrix = self.matrix.tocoo()
            weights = matrix.data * (K1 + 1) / (matrix.data + norm[matrix.row])
            self._weight_columns = sparse.csc_matrix(
                (weights.astype(np.float32), (matrix.row, matrix.col)), shape=self.matrix.shape
            )
        return self._weight_columns

    def _query_columns(self, query: str) -> list[int]:
        return [self.vocabulary[term] for term in dict.fromkeys(tokenize(query)) if term in self.vocabulary]

    def score_ceiling(self, query: str) -> float:
        """The BM25 score a chunk would get by containing every query term very often: the
        yardstick that turns a raw score into "how much of the query this chunk covers"."""
        indptr = self._weights().indptr
        columns = self._query_columns(query)
        return sum(self._idf(int(indptr[c + 1] - indptr[c])) for c in columns) * (K1 + 1)

    def search(self, query: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top `k` (scores, ids) by BM25, best first; chunks sharing no term are left out."""
        columns = self._query_columns(query)
        if not columns or not len(self):
            return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
        weights = self._weights()
        scores = np.zeros(len(self), dtype=np.float32)
        for column in columns:
            start, end = weights.indptr[column], weights.indptr[column + 1]
            if start == end:
                continue
            rows = weights.indices[start:end]
            scores[rows] += np.float32(self._idf(int(end - start))) * weights.data[start:end]
        hits = np.flatnonzero(scores)
        if hits.size > k:
            hits = hits[np.argpartition(-scores[hits], k - 1)[:k]]
        order = hits[np.argsort(-scores[hits], kind="stable")]
        return scores[order], self.ids[order]

    def save_to(self, handle: IO[bytes]) -> None:
        """Write as .npz to an open file; the caller makes the write atomic."""
        csr = self.matrix
        np.savez(
            handle,
            ids=self.ids,
            lengths=self.lengths,
            indptr=csr.indptr,
            indices=csr.indices,
            data=csr.data,
            shape=np.array(csr.shape, dtype=np.int64),
            vocabulary=np.frombuffer(json.dumps(list(self.vocabulary)).encode(), dtype=np.uint8),
        )

    @classmethod
    def load(cls, path: Path) -> LexicalIndex:
        with np.load(path, allow_pickle=False) as stored:
            shape = tuple(int(size) for size in stored["shape"])
            matrix = sparse.csr_matrix((stored["data"], stored["indices"], stored["indptr"]), shape=shape)
            terms = json.loads(stored["vocabulary"].tobytes().decode())
            return cls(
                ids=stored["ids"],
                lengths=stored["lengths"],
                vocabulary={term: column for column, term in enumerate(terms)},
                matrix=matrix,
            )
