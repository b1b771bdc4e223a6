from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser
from tqdm import tqdm

from neo_support.management.bulk import BulkCommand
from neo_support.models import Organization
from retrieval.evaluation import BeirDataset, DatasetError, Metrics, evaluate, load_beir
from retrieval.management.commands._common import add_knowledge_base_arguments, find_knowledge_base
from retrieval.models import KnowledgeBase, SearchMode
from retrieval.search import search
from retrieval.services.documents import DocumentRejected, document_create_from_text
from retrieval.services.ingestion import documents_ingest_all
from retrieval.services.knowledge_bases import knowledge_base_create, knowledge_base_delete

DOCUMENT_DEPTH = 50  # chunks fetched per query before ranking documents
TITLE_CHARS = 500  # a document title's limit


@contextmanager
def temporary_knowledge_base(dataset: BeirDataset, stdout: Any) -> Iterator[tuple[KnowledgeBase, dict[int, str]]]:
    """The corpus in a throwaway knowledge base with the default configuration, one document per entry."""
    organization = Organization.objects.create(name="Retrieval evaluation", slug=f"eval-{uuid.uuid4().hex[:12]}")
    try:
        knowledge_base = knowledge_base_create(organization=organization, name="evaluation")
        corpus_ids: dict[int, str] = {}
        documents = []
        for corpus_id, (title, text) in dataset.corpus.items():
            try:
                document = document_create_from_text(
                    knowledge_base=knowledge_base,
                    title=title or _opening(text, corpus_id),
                    text=_body(title, text),
                    queue=False,
                )
            except DocumentRejected as error:  # same text as another entry, too long, ...: counts as never found
                stdout.write(f"corpus entry {corpus_id!r} left out: {error}\n")
                continue
            corpus_ids[document.pk] = corpus_id
            documents.append(document)
        with tqdm(total=len(documents), unit="doc", desc="ingest corpus", file=stdout) as bar:
            documents_ingest_all(documents=documents, on_document=lambda _: bar.update(1))
        knowledge_base.refresh_from_db()
        yield knowledge_base, corpus_ids
    finally:
        for knowledge_base in organization.knowledge_bases.all():
            knowledge_base_delete(knowledge_base=knowledge_base)
        organization.delete()


def _opening(text: str, fallback: str) -> str:
    """An untitled entry's name: its first line, as a file's first line names it. Not its
    corpus id, which would be searched as if it were part of the entry."""
    first = " ".join(text.strip().split("\n", 1)[0].split())
    return first[:TITLE_CHARS] if first else fallback


def _body(title: str, text: str) -> str:
    return f"# {title}\n\n{text}" if title else text


def rank_documents(
    knowledge_base: KnowledgeBase, corpus_ids: dict[int, str], query: str, mode: str | None
) -> list[str]:
    ranked: list[str] = []
    for hit in search(knowledge_bases=[knowledge_base], query=query, k=DOCUMENT_DEPTH, mode=mode):
        corpus_id = corpus_ids.get(hit.document_id)
        if corpus_id is not None and corpus_id not in ranked:
            ranked.append(corpus_id)
    return ranked[:10]


class Command(BulkCommand):
    help = (
        "Measure retrieval quality: R@1, R@5, R@10, MRR@10, nDCG@10 and query latency, on a BEIR folder "
        "(ingested into a temporary knowledge base) or on an existing knowledge base with judged queries."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--beir", type=Path, help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/test.tsv.")
        add_knowledge_base_arguments(parser, required=False)
        parser.add_argument(
            "--queries",
            type=Path,
            help="With --kb: a folder with queries.jsonl and qrels/test.tsv whose corpus ids are document titles.",
        )
        parser.add_argument("--mode", choices=SearchMode.values, help="Search mode (default: the knowledge base's).")
        parser.add_argument("--compare", action="store_true", help="Print dense, lexical and hybrid.")
        parser.add_argument("--limit", type=int, help="Evaluate only the first N judged queries.")

    def handle(self, *args: Any, **options: Any) -> None:
        if (options["beir"] is None) == (not options["kb"]):
            raise CommandError("Pass either --beir DIR or --kb NAME --queries DIR.")
        modes: list[str | None] = list(SearchMode.values) if options["compare"] else [options["mode"]]
        try:
            if options["beir"] is not None:
                dataset = self._limited(load_beir(options["beir"]), options["limit"])
                self._report_merged(dataset)
                with temporary_knowledge_base(dataset, self.stderr) as (knowledge_base, corpus_ids):
                    self._report(knowledge_base, corpus_ids, dataset, modes)
                return
            if options["queries"] is None:
                raise CommandError("--kb needs --queries DIR (queries.jsonl and qrels/test.tsv).")
            knowledge_base = find_knowledge_base(options["kb"], options["org"])
            dataset = self._limited(load_beir(options["queries"], require_corpus=False), options["limit"])
            titles = dict(knowledge_base.documents.values_list("pk", "title"))
            self._report(knowledge_base, titles, dataset, modes)
        except DatasetError as error:
            raise CommandError(str(error)) from None

    def _limited(self, dataset: BeirDataset, limit: int | None) -> BeirDataset:
        if limit is None:
            return dataset
        if limit < 1:
            raise CommandError("--limit must be at least 1.")
        relevant = dict(list(dataset.relevant.items())[:limit])
        return BeirDataset(corpus=dataset.corpus, queries=dataset.queries, relevant=relevant, merged=dataset.merged)

    def _report_merged(self, dataset: BeirDataset) -> None:
        """Say which corpus entries repeat another's title and text (searched once, and a
        query judged relevant to either finds it)."""
        if not dataset.merged:
            return
        repeats = sum(len(ids) for ids in dataset.merged.values())
        entries = "entry repeats" if repeats == 1 else "entries repeat"
        self.stderr.write(f"{repeats} corpus {entries} another's title and text; kept once:")
        for kept, ids in dataset.merged.items():
            self.stderr.write(f"  {kept} (also {', '.join(ids)})")

    def _report(
        self, knowledge_base: KnowledgeBase, corpus_ids: dict[int, str], dataset: BeirDataset, modes: list[str | None]
    ) -> None:
        for mode in modes:
            label = mode or knowledge_base.search_mode

            def search(query: str, mode: str | None = mode) -> list[str]:
                return rank_documents(knowledge_base, corpus_ids, query, mode)

            with tqdm(total=len(dataset.relevant), unit="query", desc=f"{label}", file=self.stderr) as bar:
                metrics: Metrics = evaluate(search, dataset, progress=bar.update)
            self.stdout.write(f"mode={label} queries={metrics.queries} {metrics.tokens()}")
