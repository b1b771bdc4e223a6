"""Measuring the category model on labelled tickets: train on one file, predict another, and
report the figures that `manage.py evaluate_triage` prints."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from workers.moderation.datasets import DatasetError, read_rows
from workers.triage.categories import CategoryModel, TriageError


@dataclass(frozen=True)
class LabelledTicket:
    text: str
    label: str


@dataclass
class TriageReport:
    examples: int  # test tickets
    train_examples: int  # training tickets used, "none" rows excluded
    categories: int
    accuracy: float  # a "none" test ticket is right when the model says none fits
    macro_f1: float  # over the categories, plus "none" when the test file has such rows
    none_fits_rate: float  # share of test tickets the model routed nowhere
    ms_per_ticket: float  # embedding and prediction of the test tickets, batched
    out_of_scope_recall: float | None = None  # "none" tickets the model routed nowhere
    in_scope_accuracy: float | None = None  # accuracy on the other tickets

    def line(self) -> str:
        tokens = [
            f"examples={self.examples}",
            f"train_examples={self.train_examples}",
            f"categories={self.categories}",
            f"accuracy={self.accuracy:.3f}",
            f"macro_f1={self.macro_f1:.3f}",
        ]
        if self.out_of_scope_recall is not None and self.in_scope_accuracy is not None:
            tokens += [
                f"out_of_scope_recall={self.out_of_scope_recall:.3f}",
                f"in_scope_accuracy={self.in_scope_accuracy:.3f}",
            ]
        tokens += [f"none_fits_rate={self.none_fits_rate:.3f}", f"ms_per_ticket={self.ms_per_ticket:.2f}"]
        return " ".join(tokens)


def read_tickets(path: Path, *, text_field: str = "text", label_field: str = "label") -> list[LabelledTicket]:
    """Rows of a `.jsonl`/`.ndjson` file, or of a CSV file with a header row (any other extension)."""
    if not path.is_file():
        raise TriageError(f"{path}: no such file")
    try:
        rows = read_rows(path)
    except DatasetError as error:
        raise TriageError(str(error)) from None
    if not rows:
        raise TriageError(f"{path}: no rows")
    for name in (text_field, label_field):
        if name not in rows[0]:
            raise TriageError(f"{path}: no field {name!r} (fields: {', '.join(sorted(rows[0]))})")
    return [
        LabelledTicket(text=str(row.get(text_field) or ""), label=str(row.get(label_field) or "").strip())
        for row in rows
    ]


def sample_per_category(tickets: Sequence[LabelledTicket], per_category: int, *, seed: int = 0) -> list[LabelledTicket]:
    """At most `per_category` tickets of each label, drawn at random (reproducibly, by `seed`), in file order."""
    by_label: dict[str, list[int]] = {}
    for index, ticket in enumerate(tickets):
        by_label.setdefault(ticket.label, []).append(index)
    rng = np.random.default_rng(seed)
    chosen: list[int] = []
    for label in sorted(by_label):
        indices = by_label[label]
        if len(indices) > per_category:
            indices = [int(i) for i in rng.choice(indices, size=per_category, replace=False)]
        chosen += indices
    return [tickets[i] for i in sorted(chosen)]


def evaluate_categories(
    train: Sequence[LabelledTicket],
    test: Sequence[LabelledTicket],
    *,
    none_label: str | None = None,
    model: CategoryModel | None = None,
    progress: bool = False,
) -> TriageReport:
    """Fit `model` (default settings if None) on `train`, leaving out rows labelled `none_label`, and
    predict `test`, where rows labelled `none_label` should come back as "none fits"."""
    from workers.moderation.vectors import embed_texts

    in_scope = [ticket for ticket in train if ticket.label != none_label]
    if not test:
        raise TriageError("the test set is empty")
    if not in_scope:
        raise TriageError("the training set has no labelled tickets (other than the none label)")
    model = model or CategoryModel()
    texts = [ticket.text for ticket in in_scope]
    model.fit(embed_texts(texts, progress=progress), [ticket.label for ticket in in_scope], texts=texts)

    started = time.perf_counter()
    test_texts = [ticket.text for ticket in test]
    predictions = model.predict_many(embed_texts(test_texts, progress=progress), texts=test_texts)
    ms_per_ticket = (time.perf_counter() - started) * 1000 / len(test)

    truth = [None if ticket.label == none_label else ticket.label for ticket in test]
    said = [prediction.category for prediction in predictions]
    right = np.array([t == s for t, s in zip(truth, said, strict=True)])
    out_of_scope = np.array([t is None for t in truth])
    report = TriageReport(
        examples=len(test),
        train_examples=len(in_scope),
        categories=len(model.categories),
        accuracy=float(right.mean()),
        macro_f1=_macro_f1(truth, said, model.categories),
        none_fits_rate=float(np.mean([s is None for s in said])),
        ms_per_ticket=ms_per_ticket,
    )
    if none_label is not None:
        report.out_of_scope_recall = float(right[out_of_scope].mean()) if out_of_scope.any() else 0.0
        report.in_scope_accuracy = float(right[~out_of_scope].mean()) if (~out_of_scope).any() else 0.0
    return report


def _macro_f1(truth: Sequence[str | None], said: Sequence[str | None], categories: Sequence[str]) -> float:
    """Mean F1 over the trained categories, and over "none" when some test ticket should get it."""
    classes: list[str | None] = list(categories)
    if None in truth:
        classes.append(None)
    scores = []
    for name in classes:
        true_positive = sum(t == name and s == name for t, s in zip(truth, said, strict=True))
        predicted = sum(s == name for s in said)
        actual = sum(t == name for t in truth)
        if not predicted and not actual:
            continue  # a category absent from the test set and never predicted says nothing either way
        scores.append(2 * true_positive / (predicted + actual))
    return float(np.mean(scores)) if scores else 0.0
