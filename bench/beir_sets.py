"""Build more BEIR folders from the public data in ../shared/eval, to see whether a
retrieval change holds beyond StackFAQ (never written into the repository):

    python bench/beir_sets.py /tmp/beir-sets
    for set in /tmp/beir-sets/*; do python manage.py evaluate_retrieval --beir $set --compare; done
    for set in /tmp/beir-sets/*; do python bench/retrieval.py --parts quality --beir $set; done

- banking77: one entry per BANKING77 intent (its name as a question, three of its
  training requests as the text), 1,200 of its test requests as queries. Paraphrase
  retrieval where the keywords are weaker than on StackFAQ.
- banking77_thin: the intent name and one request only.
- banking77_label: the intent name alone: hardly any words to match.
- stackfaq_notitle: StackFAQ's answers without their questions, so the queries must
  meet the answer text.
- stackfaq_short: StackFAQ with each answer cut to 300 characters.
"""

from __future__ import annotations

import argparse
import collections
import csv
import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from retrieval.evaluation import write_beir  # noqa: E402 - pure Python, no Django

EVAL = Path(__file__).resolve().parents[2] / "shared" / "eval"
QUERIES = 1200

Corpus = dict[str, tuple[str, str]]


def write_set(folder: Path, corpus: Corpus, queries: dict[str, str], qrels: list[tuple[str, str]]) -> None:
    write_beir(folder, corpus, queries, qrels)
    print(f"{folder.name}: {len(corpus)} entries, {len(queries)} queries")


def banking_sets(out: Path, rng: random.Random) -> None:
    folder = EVAL / "intent_banking77"
    train: dict[str, list[str]] = collections.defaultdict(list)
    with (folder / "train.csv").open() as handle:
        for row in csv.DictReader(handle):
            train[row["category"]].append(row["text"])
    with (folder / "test.csv").open() as handle:
        test = list(csv.DictReader(handle))
    rng.shuffle(test)
    test = test[:QUERIES]
    queries = {f"q{i}": row["text"] for i, row in enumerate(test)}
    qrels = [(f"q{i}", row["category"]) for i, row in enumerate(test)]

    def name(category: str) -> str:
        return category.replace("_", " ").capitalize()

    write_set(
        out / "banking77",
        {c: (name(c) + "?", " ".join(rng.sample(texts, 3))) for c, texts in train.items()},
        queries,
        qrels,
    )
    write_set(out / "banking77_thin", {c: (name(c), rng.choice(texts)) for c, texts in train.items()}, queries, qrels)
    write_set(out / "banking77_label", {c: ("", name(c)) for c in train}, queries, qrels)


def stackfaq_sets(out: Path) -> None:
    folder = EVAL / "retrieval_stackfaq" / "beir"
    rows = [json.loads(line) for line in (folder / "corpus.jsonl").open()]
    queries = {row["_id"]: row["text"] for row in map(json.loads, (folder / "queries.jsonl").open())}
    lines = (folder / "qrels" / "test.tsv").read_text().splitlines()[1:]
    qrels = [(query, corpus_id) for query, corpus_id, *_ in (line.split("\t") for line in lines)]
    write_set(out / "stackfaq_notitle", {row["_id"]: ("", row["text"]) for row in rows}, queries, qrels)
    write_set(out / "stackfaq_short", {row["_id"]: (row["title"], row["text"][:300]) for row in rows}, queries, qrels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="Folder to write the BEIR folders into (outside the repository).")
    arguments = parser.parse_args()
    rng = random.Random(7)
    banking_sets(arguments.out, rng)
    stackfaq_sets(arguments.out)


if __name__ == "__main__":
    main()
