#!/usr/bin/env python
"""Retrieval benchmark: quality, query latency, ingest throughput, index load time, memory.

Runs with no arguments (about 4 minutes on 2 cores) against a throwaway SQLite
database and media folder. Every ratio compares our path with the raw library
calls on the same data, measured in the same run:

- quality on StackFAQ (BEIR layout under ../shared/eval): the default
  configuration against plain dense all-MiniLM-L6-v2 over "title + text";
- query latency on a synthetic 100k-chunk knowledge base: `retrieval.search`
  (embed + search + fusion + rows) against `SentenceTransformer.encode` + FAISS
  search, 200 queries;
- ingest throughput on 2,000 generated Markdown pages end to end (parse, chunk,
  embed, index, database rows) against raw `encode` of the same chunk texts;
- load time of the 100k-chunk index, and the resident memory of a fresh search
  process (model and index loaded);
- cold start (`coldstart`): the first search's index on a host with an empty index
  folder, built from the 100k chunk rows (FAISS + BM25, float32 vectors), against loading
  the same version from a ready local file;
- interference (`--parts interference`): a visitor's searches (one every 0.25 s) against
  a knowledge base while a bulk ingest of generated pages runs into it, first on the
  embedded default's in-process indexing pool, then in a separate indexing process at
  the priority a bulk Celery worker takes; p95 search latency during each over p95 idle
  just before it, and the ingest's chunks/s over raw `encode` of the same chunks.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BEIR = ROOT.parent / "shared" / "eval" / "retrieval_stackfaq" / "beir"
SYNTHETIC_CHUNKS = 100_000
LATENCY_QUERIES = 200
INGEST_PAGES = 2_000
INTERFERENCE_PAGES = 2_000
SEARCH_EVERY_S = 0.25
IDLE_SEARCHES = 60
WORDS = [
    "invoice",
    "payment",
    "refund",
    "account",
    "password",
    "login",
    "team",
    "member",
    "role",
    "permission",
    "export",
    "report",
    "currency",
    "tax",
    "client",
    "estimate",
    "quote",
    "recurring",
    "schedule",
    "reminder",
    "card",
    "bank",
    "transfer",
    "fee",
    "plan",
    "upgrade",
    "downgrade",
    "cancel",
    "trial",
    "receipt",
    "expense",
    "mobile",
    "app",
    "notification",
    "webhook",
    "integration",
    "api",
    "key",
    "security",
    "session",
    "device",
    "address",
    "email",
    "phone",
    "support",
    "hours",
    "response",
    "billing",
    "cycle",
    "annual",
    "monthly",
    "discount",
    "coupon",
    "vat",
    "gst",
    "statement",
    "balance",
    "overdue",
    "draft",
    "sent",
    "paid",
    "partial",
    "archive",
    "delete",
    "restore",
    "backup",
    "privacy",
    "data",
    "request",
]


def setup_django(var_dir: Path) -> None:
    os.environ["NEO_VAR_DIR"] = str(var_dir)
    os.environ["MEDIA_ROOT"] = str(var_dir / "media")
    for name in ("DATABASE_URL", "REDIS_URL"):
        os.environ.pop(name, None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "neo_support.settings")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def percentile(values: list[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(np.asarray(values), q))


def _vocabulary(size: int = 20_000) -> tuple[list[str], list[float]]:
    """Support-article words first, then made-up ones, drawn with Zipf's law (weight 1/rank)
    the way real text uses its words: a few very common, most rare."""
    rng = random.Random(5)
    syllables = [c + v for c in "bcdfghklmnprstvz" for v in "aeiou"]
    made_up = {"".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))) for _ in range(size * 2)}
    words = WORDS + sorted(made_up - set(WORDS))[: size - len(WORDS)]
    cumulative, total = [], 0.0
    for rank in range(1, len(words) + 1):
        total += 1.0 / rank
        cumulative.append(total)
    return words, cumulative


VOCABULARY, ZIPF = _vocabulary()


def sentence(rng: random.Random, length: int) -> str:
    return " ".join(rng.choices(VOCABULARY, cum_weights=ZIPF, k=length)).capitalize() + "."


# Quality ------------------------------------------------------------------------------------------


def bench_quality(beir: Path) -> dict[str, float]:
    import numpy as np

    from retrieval import embeddings
    from retrieval.evaluation import evaluate, load_beir
    from retrieval.management.commands.evaluate_retrieval import rank_documents, temporary_knowledge_base

    dataset = load_beir(beir)
    ids = list(dataset.corpus)
    corpus_vectors = embeddings.embed([f"{title} {text}" for title, text in dataset.corpus.values()])

    def raw_dense(query: str) -> list[str]:
        scores = corpus_vectors @ embeddings.embed([query])[0]
        return [ids[i] for i in np.argsort(-scores)[:10]]

    baseline = evaluate(raw_dense, dataset)
    print(f"quality  baseline (raw dense, title + text)  {baseline.tokens()}")
    results = {"baseline_r1": baseline.recall[1]}
    with temporary_knowledge_base(dataset, sys.stderr) as (knowledge_base, corpus_ids):
        for mode in ("dense", "lexical", "hybrid"):
            metrics = evaluate(lambda q, mode=mode: rank_documents(knowledge_base, corpus_ids, q, mode), dataset)
            default = " (default)" if mode == knowledge_base.search_mode else ""
            print(f"quality  {mode}{default:<10} {metrics.tokens()}")
            results[f"{mode}_r1"] = metrics.recall[1]
        results["default_r1"] = results[f"{knowledge_base.search_mode}_r1"]
    return results


# Synthetic 100k knowledge base: latency, load time, memory ------------------------------------


def build_synthetic_knowledge_base(chunks: int) -> int:
    """A knowledge base of `chunks` chunks with random unit vectors (speed does not depend on
    the weights) and generated text, written through the same index code as ingestion."""
    import numpy as np
    from django.db import transaction

    from neo_support.models import Organization
    from retrieval.models import Chunk, Document
    from retrieval.services.indexing import knowledge_base_sync_index
    from retrieval.services.knowledge_bases import knowledge_base_create

    rng = random.Random(7)
    vectors = np.random.default_rng(7).normal(size=(chunks, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    organization = Organization.objects.create(name="Synthetic", slug="synthetic")
    knowledge_base = knowledge_base_create(organization=organization, name="synthetic-100k")
    per_document = 50
    with transaction.atomic():
        documents = Document.objects.bulk_create(
            [
                Document(knowledge_base=knowledge_base, source_type="text", title=f"Article {n}", status="processing")
                for n in range(chunks // per_document)
            ]
        )
        Document.objects.filter(knowledge_base=knowledge_base).update(embedded_at=time_now())
        rows = (
            Chunk(
                document=documents[n // per_document],
                ordinal=n % per_document,
                text=" ".join(sentence(rng, rng.randint(8, 20)) for _ in range(4)),
                embedding=vectors[n].tobytes(),
            )
            for n in range(chunks)
        )
        Chunk.objects.bulk_create(rows, batch_size=5000)
    started = time.perf_counter()
    knowledge_base_sync_index(knowledge_base=knowledge_base)
    print(f"synthetic  {chunks} chunks indexed in {time.perf_counter() - started:.1f} s")
    return knowledge_base.pk


def time_now():  # type: ignore[no-untyped-def]
    from django.utils import timezone

    return timezone.now()


def bench_latency(knowledge_base_id: int) -> dict[str, float]:
    from retrieval import embeddings
    from retrieval.index import load_pair
    from retrieval.models import KnowledgeBase
    from retrieval.search import SearchTimings, forget_cached_indexes, index_for, search
    from retrieval.services.indexing import index_directory

    knowledge_base = KnowledgeBase.objects.get(pk=knowledge_base_id)
    rng = random.Random(11)
    queries = [sentence(rng, rng.randint(4, 12)).rstrip(".") + "?" for _ in range(LATENCY_QUERIES)]

    forget_cached_indexes()
    started = time.perf_counter()
    load_pair(index_directory(knowledge_base), knowledge_base.index_version)
    load_seconds = time.perf_counter() - started
    pair = index_for(knowledge_base)
    assert pair is not None
    model = embeddings.get_model()
    for query in queries[:10]:  # warm both paths
        model.encode([query], normalize_embeddings=True)
        search(knowledge_bases=[knowledge_base], query=query, k=5)

    raw: list[float] = []
    for query in queries:
        started = time.perf_counter()
        vector = model.encode([query], normalize_embeddings=True, convert_to_numpy=True)
        pair.vectors.search(vector, 5)
        raw.append((time.perf_counter() - started) * 1000)
    ours: dict[str, list[float]] = {"dense": [], "hybrid": [], "lexical": []}
    core: dict[str, list[float]] = {mode: [] for mode in ours}  # embed + search + fusion, as raw does
    for mode, samples in ours.items():
        for query in queries:
            parts = SearchTimings()
            started = time.perf_counter()
            search(knowledge_bases=[knowledge_base], query=query, k=5, mode=mode, timings=parts)
            samples.append((time.perf_counter() - started) * 1000)
            core[mode].append(parts.embed_ms + parts.search_ms)
    default = knowledge_base.search_mode
    print(
        f"latency  raw encode+faiss p50={percentile(raw, 50):.1f} ms p95={percentile(raw, 95):.1f} ms  "
        f"({'HNSW' if pair.vectors.is_hnsw else 'exact'} index, {len(pair.vectors)} vectors)"
    )
    for mode, samples in ours.items():
        print(
            f"latency  search mode={mode:<8} embed+search+fusion p50={percentile(core[mode], 50):.1f} ms "
            f"p95={percentile(core[mode], 95):.1f} ms; with chunk rows p50={percentile(samples, 50):.1f} ms"
        )
    print(f"index    load of the 100k-chunk index (FAISS + BM25): {load_seconds:.2f} s")
    return {
        "ratio": percentile(core[default], 50) / percentile(raw, 50),
        "ratio_with_rows": percentile(ours[default], 50) / percentile(raw, 50),
        "load_s": load_seconds,
    }


def cpu_description() -> str:
    """The instruction set faiss was built for and runs with, for the figures' context."""
    import faiss

    flags = set()
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    best = next((name for name in ("avx512f", "avx2", "sse4_2", "neon") if name in flags), "baseline")
    build = faiss.get_compile_options().strip()
    return f"CPU {best.upper()}, faiss {faiss.__version__} ({build}), {os.cpu_count()} cores"


def bench_cold_start(knowledge_base_id: int, var_dir: Path) -> dict[str, float]:
    """A new host's first search: its index folder is empty, so `index_for` builds the
    current version from the chunk rows; the baseline loads that version's local files."""
    from django.conf import settings

    from retrieval.index import load_pair
    from retrieval.models import KnowledgeBase
    from retrieval.search import forget_cached_indexes, index_for
    from retrieval.services.indexing import index_directory

    knowledge_base = KnowledgeBase.objects.get(pk=knowledge_base_id)
    forget_cached_indexes()
    loads = []
    for _ in range(3):
        started = time.perf_counter()
        load_pair(index_directory(knowledge_base), knowledge_base.index_version)
        loads.append(time.perf_counter() - started)
    load_seconds = min(loads)
    previous = settings.NEO_INDEX_DIR
    settings.NEO_INDEX_DIR = var_dir / "new-host-indexes"
    try:
        forget_cached_indexes()
        started = time.perf_counter()
        pair = index_for(knowledge_base)
        cold_seconds = time.perf_counter() - started
        assert pair is not None
        provisional = pair.vectors.is_provisional
        final = pair
        while final is not None and final.vectors.is_provisional:  # the HNSW graph, built in the background
            time.sleep(0.5)
            final = index_for(knowledge_base)
        graph_seconds = time.perf_counter() - started
    finally:
        settings.NEO_INDEX_DIR = previous
        forget_cached_indexes()
    assert pair.version == knowledge_base.index_version
    print(f"cold     {cpu_description()}; float32 vectors, SQLite rows")
    print(
        f"cold     {len(pair.vectors)} chunks: first search's index "
        f"({'provisional exact' if provisional else 'final'}) "
        f"built from the database on an empty host in {cold_seconds:.2f} s; HNSW graph in place after "
        f"{graph_seconds:.1f} s; the same version loaded from local files in {load_seconds:.2f} s"
    )
    return {"cold_s": cold_seconds, "ratio": cold_seconds / load_seconds, "graph_s": graph_seconds}


def rss_probe(var_dir: str, knowledge_base_id: int) -> None:
    """Run in a fresh process: load the model and index, search, report resident memory."""
    import psutil

    setup_django(Path(var_dir))
    from retrieval.models import KnowledgeBase
    from retrieval.search import search

    knowledge_base = KnowledgeBase.objects.get(pk=knowledge_base_id)
    for query in ("How do I export an invoice?", "refund to card", "api key security"):
        search(knowledge_bases=[knowledge_base], query=query, k=5)
    print(json.dumps({"rss_mb": psutil.Process().memory_info().rss / (1024 * 1024)}))


# Ingest throughput ---------------------------------------------------------------------------------


def generated_page(rng: random.Random, number: int) -> str:
    """A short help article: a summary and one or two sections of a paragraph or two."""
    sections = []
    for section in range(rng.randint(1, 2)):
        paragraphs = "\n\n".join(
            " ".join(sentence(rng, rng.randint(6, 14)) for _ in range(3)) for _ in range(rng.randint(1, 2))
        )
        sections.append(f"## Topic {number}.{section}\n\n{paragraphs}")
    return f"# Help article {number}\n\nSummary: {sentence(rng, 12)}\n\n" + "\n\n".join(sections)


def bench_ingest(pages: int) -> float:
    from neo_support.models import Organization
    from retrieval import embeddings
    from retrieval.models import Chunk, KnowledgeBase
    from retrieval.services.documents import document_create_from_text
    from retrieval.services.ingestion import documents_ingest_all
    from retrieval.services.knowledge_bases import knowledge_base_create

    rng = random.Random(3)
    texts = [generated_page(rng, n) for n in range(pages)]
    organization = Organization.objects.create(name="Ingest", slug="ingest")
    knowledge_base = knowledge_base_create(organization=organization, name="ingest")
    documents = [
        document_create_from_text(knowledge_base=knowledge_base, title=f"Page {n}", text=text, queue=False)
        for n, text in enumerate(texts)
    ]
    embeddings.embed(["warm up"])
    started = time.perf_counter()
    documents_ingest_all(documents=documents)
    ours = time.perf_counter() - started
    chunk_texts = [
        "\n".join([title, *heading, text])
        for title, heading, text in Chunk.objects.filter(document__knowledge_base=knowledge_base)
        .order_by("pk")
        .values_list("document__title", "heading_path", "text")
    ]
    model = embeddings.get_model()
    started = time.perf_counter()
    model.encode(chunk_texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    raw = time.perf_counter() - started
    ready = KnowledgeBase.objects.get(pk=knowledge_base.pk).documents.filter(status="ready").count()
    print(
        f"ingest   {pages} pages, {len(chunk_texts)} chunks ({ready} ready): pipeline {len(chunk_texts) / ours:.0f} "
        f"chunks/s ({ours:.1f} s), raw encode {len(chunk_texts) / raw:.0f} chunks/s ({raw:.1f} s)"
    )
    return raw / ours


# Interference: searches while a bulk ingest runs ------------------------------------------------


RELOADS: list[float] = []  # milliseconds of the searches that loaded a new index version first


def _search_latencies(knowledge_base_id: int, queries: list[str], until: Any) -> list[float]:
    """Search at a visitor's pace until `until()` says stop; milliseconds per search."""
    from retrieval.models import KnowledgeBase
    from retrieval.search import search

    samples: list[float] = []
    version = -1
    for n in range(10**9):
        if until(n):
            break
        knowledge_base = KnowledgeBase.objects.get(pk=knowledge_base_id)  # as a reply does, at its version
        started = time.perf_counter()
        search(knowledge_bases=[knowledge_base], query=queries[n % len(queries)], k=5)
        elapsed = time.perf_counter() - started
        samples.append(elapsed * 1000)
        if version not in (-1, knowledge_base.index_version):
            RELOADS.append(elapsed * 1000)
        version = knowledge_base.index_version
        time.sleep(max(0.0, SEARCH_EVERY_S - elapsed))
    return samples


def _queue_pages(knowledge_base_id: int, pages: int, seed: int, *, manual_pages: int = 0) -> list[int]:
    """`pages` generated pages as documents: the first `manual_pages` of them as one big
    document (a manual), queued first, then one document per page."""
    from retrieval.models import KnowledgeBase
    from retrieval.services.documents import document_create_from_text

    knowledge_base = KnowledgeBase.objects.get(pk=knowledge_base_id)
    rng = random.Random(seed)
    texts = [generated_page(rng, n) for n in range(pages)]
    documents = [("\n\n".join(texts[:manual_pages]), f"Manual {seed}")] if manual_pages else []
    documents += [(text, f"Bulk {seed}.{n}") for n, text in enumerate(texts[manual_pages:])]
    return [
        document_create_from_text(knowledge_base=knowledge_base, title=title, text=text, queue=False).pk
        for text, title in documents
    ]


def _bulk_done(document_ids: list[int]) -> bool:
    from retrieval.models import Document

    return not Document.objects.filter(pk__in=document_ids).exclude(status__in=["ready", "failed"]).exists()


def bulk_worker(var_dir: str, document_ids_file: str) -> None:
    """Run in a separate process: the indexing worker. Lowers its priority as a Celery
    worker consuming only bulk queues does, then runs the ingest tasks one at a time in
    arrival order (concurrency 1, continuations at the back), as that worker would."""
    os.environ["NEO_IN_PROCESS_THREADS"] = "1"
    setup_django(Path(var_dir))
    from neo_support.priority import process_priority_lower
    from neo_support.tasking import dispatch_now, wait_for_in_process_tasks

    process_priority_lower()
    for document_id in json.loads(Path(document_ids_file).read_text()):
        dispatch_now("retrieval.tasks.ingest_document", document_id)
    wait_for_in_process_tasks(timeout=3600)


def _raw_chunks_per_second(document_ids: list[int]) -> float:
    from retrieval import embeddings
    from retrieval.models import Chunk

    texts = [
        "\n".join([title, *heading, text])
        for title, heading, text in Chunk.objects.filter(document_id__in=document_ids)
        .order_by("pk")
        .values_list("document__title", "heading_path", "text")[:1024]
    ]
    started = time.perf_counter()
    embeddings.get_model().encode(
        texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    )
    return len(texts) / (time.perf_counter() - started)


def bench_interference(pages: int, var_dir: Path) -> dict[str, float]:
    from django.utils import timezone

    from neo_support.models import Organization
    from neo_support.tasking import dispatch_now, wait_for_in_process_tasks
    from retrieval.models import Chunk, Document
    from retrieval.services.ingestion import documents_ingest_all
    from retrieval.services.knowledge_bases import knowledge_base_create

    organization = Organization.objects.create(name="Chat", slug="chat")
    knowledge_base = knowledge_base_create(organization=organization, name="help-centre")
    documents_ingest_all(
        documents=list(knowledge_base.documents.filter(pk__in=_queue_pages(knowledge_base.pk, 300, 21)))
    )
    rng = random.Random(13)
    queries = [sentence(rng, rng.randint(4, 12)).rstrip(".") + "?" for _ in range(100)]
    _search_latencies(knowledge_base.pk, queries, lambda n: n >= 10)  # warm up
    results: dict[str, float] = {}
    for mode in ("embedded", "workers"):
        idle = _search_latencies(knowledge_base.pk, queries, lambda n: n >= IDLE_SEARCHES)
        RELOADS.clear()
        # Half the pages as one big manual uploaded first, the rest as pages added after it.
        document_ids = _queue_pages(knowledge_base.pk, pages, 100 + len(results), manual_pages=pages // 2)
        started = time.perf_counter()
        first_queued = timezone.now()
        worker = None
        if mode == "embedded":
            for document_id in document_ids:
                dispatch_now("retrieval.tasks.ingest_document", document_id)
        else:
            ids_file = var_dir / "bulk-ids.json"
            ids_file.write_text(json.dumps(document_ids))
            worker = subprocess.Popen([sys.executable, __file__, "--bulk-worker", str(var_dir), str(ids_file)])
        busy = _search_latencies(knowledge_base.pk, queries, lambda n, ids=document_ids: n % 8 == 0 and _bulk_done(ids))
        elapsed = time.perf_counter() - started
        if worker is not None:
            worker.wait(timeout=600)
        else:
            wait_for_in_process_tasks(timeout=600)
        # Idle before and after: the baseline spans the same stretch of a shared machine.
        idle += _search_latencies(knowledge_base.pk, queries, lambda n: n >= IDLE_SEARCHES)
        chunks = Chunk.objects.filter(document_id__in=document_ids).count()
        ready_at = {
            pk: (updated - first_queued).total_seconds()
            for pk, updated in Document.objects.filter(pk__in=document_ids).values_list("pk", "updated_at")
        }
        pages_ready = sorted(ready_at[pk] for pk in document_ids[1:])
        print(
            f"interference {mode:<8} the manual (first in) ready at {ready_at[document_ids[0]]:.0f} s; the pages "
            f"queued after it: first ready at {pages_ready[0]:.0f} s, half at {percentile(pages_ready, 50):.0f} s"
        )
        reloads = list(RELOADS)
        raw = _raw_chunks_per_second(document_ids)
        ratio = percentile(busy, 95) / percentile(idle, 95)
        print(
            f"interference {mode:<8} {pages} pages, {chunks} chunks in {elapsed:.0f} s "
            f"({chunks / elapsed:.0f} chunks/s, raw encode {raw:.0f}/s); search idle "
            f"p50={percentile(idle, 50):.1f} p95={percentile(idle, 95):.1f} ms, during ingest "
            f"p50={percentile(busy, 50):.1f} p95={percentile(busy, 95):.1f} max={max(busy):.0f} ms "
            f"({len(busy)} searches, {len(reloads)} of them loaded a new index version first: "
            f"p50={percentile(reloads or [0.0], 50):.0f} ms)"
        )
        results[f"{mode}_ratio"] = ratio
        results[f"{mode}_throughput"] = chunks / elapsed / raw
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--beir", type=Path, default=DEFAULT_BEIR, help="BEIR folder for the quality figures.")
    parser.add_argument("--chunks", type=int, default=SYNTHETIC_CHUNKS)
    parser.add_argument("--pages", type=int, default=INGEST_PAGES)
    parser.add_argument(
        "--parts",
        default="quality,latency,coldstart,ingest",
        help="Comma-separated parts to run (default: all but interference).",
    )
    parser.add_argument("--interference-pages", type=int, default=INTERFERENCE_PAGES)
    parser.add_argument("--rss-probe", nargs=2, metavar=("VAR_DIR", "KB_ID"), help=argparse.SUPPRESS)
    parser.add_argument("--bulk-worker", nargs=2, metavar=("VAR_DIR", "IDS_FILE"), help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.rss_probe:
        rss_probe(arguments.rss_probe[0], int(arguments.rss_probe[1]))
        return
    if arguments.bulk_worker:
        bulk_worker(*arguments.bulk_worker)
        return

    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    with tempfile.TemporaryDirectory(prefix="neo-bench-") as temporary:
        var_dir = Path(temporary)
        setup_django(var_dir)
        figures: dict[str, tuple[float, str]] = {}
        parts = set(arguments.parts.split(","))
        if "quality" not in parts:
            pass
        elif arguments.beir.is_dir():
            quality = bench_quality(arguments.beir)
            figures["stackfaq_r1_default"] = (quality["default_r1"], "")
            figures["stackfaq_r1_dense_baseline"] = (quality["baseline_r1"], "")
            figures["stackfaq_r1_ratio"] = (quality["default_r1"] / quality["baseline_r1"], "x")
        else:
            print(f"quality  skipped: {arguments.beir} not found (pass --beir DIR)")
        knowledge_base_id = None
        if "latency" in parts or "coldstart" in parts:
            knowledge_base_id = build_synthetic_knowledge_base(arguments.chunks)
        if "latency" in parts and knowledge_base_id is not None:
            latency = bench_latency(knowledge_base_id)
            probe = subprocess.run(
                [sys.executable, __file__, "--rss-probe", str(var_dir), str(knowledge_base_id)],
                capture_output=True,
                text=True,
                check=True,
            )
            rss = json.loads(probe.stdout.strip().splitlines()[-1])["rss_mb"]
            print(f"memory   fresh search process with model and 100k index: {rss:.0f} MB RSS")
            figures["query_latency_ratio"] = (latency["ratio"], "x")
            figures["query_latency_with_rows_ratio"] = (latency["ratio_with_rows"], "x")
            figures["index_load_s"] = (latency["load_s"], "s")
            figures["search_rss_mb"] = (rss, "MB")
        if "coldstart" in parts and knowledge_base_id is not None:
            cold = bench_cold_start(knowledge_base_id, var_dir)
            figures["index_cold_start_s"] = (cold["cold_s"], "s")
            figures["index_cold_start_over_load_ratio"] = (cold["ratio"], "x")
            figures["index_cold_start_hnsw_s"] = (cold["graph_s"], "s")
        if "ingest" in parts:
            figures["ingest_throughput_ratio"] = (bench_ingest(arguments.pages), "x")
        if "interference" in parts:
            interference = bench_interference(arguments.interference_pages, var_dir)
            figures["search_p95_during_ingest_ratio"] = (interference["embedded_ratio"], "x")
            figures["search_p95_during_ingest_workers_ratio"] = (interference["workers_ratio"], "x")
            figures["ingest_during_search_throughput_ratio"] = (interference["embedded_throughput"], "x")
            figures["ingest_during_search_workers_throughput_ratio"] = (interference["workers_throughput"], "x")
        for name, (value, unit) in figures.items():
            print(f"FIGURE {name}={value:.3f} {unit}".rstrip())


if __name__ == "__main__":
    main()
