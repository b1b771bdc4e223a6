#!/usr/bin/env python
"""Tickets: triage accuracy, auto-answer precision and coverage, email throughput.

Runs with no arguments against a throwaway SQLite database (about 4 minutes on 2 cores):

- triage on BANKING77 (`../shared/eval/intent_banking77`, Casanueva et al. 2020,
  CC BY 4.0): `evaluate_triage` learning from the full train set, then from 10
  examples a category; the baseline is the majority class.
- auto-answer on StackFAQ (BEIR folder, Karan & Šnajder 2018): each query is a ticket
  and its gold thread the right source. The reply path's own functions (hybrid
  search, extractive answer, confidence) answer it; a ticket is auto-sent when the
  confidence reaches the threshold and the answer cites a passage. Precision is the
  share of auto-sent tickets citing the gold thread; the figure is the coverage
  (share auto-sent) at the lowest threshold whose precision is at least 0.95, next
  to answering every ticket (threshold 0).
- 1,000 generated emails (new tickets, replies that thread, HTML-only, attachments,
  auto-replies that must be ignored) through `ticket_receive_email`, triage and the
  bot's draft answer, in-process: emails per second end to end, against parsing alone.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import re
import sys
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EVAL = ROOT.parent / "shared" / "eval"
STACKFAQ_QUERIES = 400
EMAILS = 1_000


def setup_django(var_dir: Path) -> None:
    os.environ["NEO_VAR_DIR"] = str(var_dir)
    os.environ["MEDIA_ROOT"] = str(var_dir / "media")
    os.environ["NEO_MODEL"] = str(var_dir / "no-model")  # extractive answers: no weights on this machine
    for name in ("DATABASE_URL", "REDIS_URL", "EMAIL_HOST"):
        os.environ.pop(name, None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "neo_support.settings")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def tokens(line: str) -> dict[str, float]:
    return {key: float(value) for key, value in re.findall(r"(\w+)=([-\d.]+)", line)}


def bench_triage() -> dict[str, float]:
    from django.core.management import call_command

    folder = EVAL / "intent_banking77"
    results = {}
    for label, extra in (("full", []), ("ten", ["--per-category", "10"])):
        out = io.StringIO()
        call_command(
            "evaluate_triage",
            "--train", str(folder / "train.csv"), "--test", str(folder / "test.csv"), "--label-field", "category",
            *extra, stdout=out, stderr=io.StringIO(),
        )  # fmt: skip
        figures = tokens(out.getvalue().strip().splitlines()[-1])
        print(f"triage   BANKING77, {'full train set' if label == 'full' else '10 examples a category'}: "
              f"{out.getvalue().strip().splitlines()[-1]}")  # fmt: skip
        results[label] = figures["accuracy"]
    import csv

    with open(folder / "test.csv", newline="") as handle:
        labels = [row["category"] for row in csv.DictReader(handle)]
    majority = max(labels.count(label) for label in set(labels)) / len(labels)
    print(
        f"triage   baseline (majority class): accuracy={majority:.3f}; full/baseline {results['full'] / majority:.1f}x"
    )
    return results


def bench_auto_answer() -> dict[str, float]:
    from retrieval.evaluation import load_beir
    from retrieval.management.commands.evaluate_retrieval import temporary_knowledge_base
    from retrieval.search import search
    from workers.generation.confidence import confidence
    from workers.generation.extractive import extractive_answer
    from workers.generation.prompt import Passage, cited_passages

    dataset = load_beir(EVAL / "retrieval_stackfaq" / "beir")
    queries = list(dataset.queries.items())
    random.Random(7).shuffle(queries)
    queries = queries[:STACKFAQ_QUERIES]
    answered: list[tuple[float, bool]] = []  # (confidence, cites the gold thread)
    with temporary_knowledge_base(dataset, io.StringIO()) as (knowledge_base, corpus_ids):
        for query_id, query in queries:
            hits = search(knowledge_bases=[knowledge_base], query=query, k=5)
            passages = [
                Passage(h.chunk_id, h.document_id, h.document_title, tuple(h.heading_path), h.location, h.text, h.score)
                for h in hits
            ]
            answer = extractive_answer(query, passages)
            cited = cited_passages(answer, passages)
            if not cited:
                continue
            top = next((h.dense_score for h in hits if h.dense_score is not None), hits[0].score)
            score = confidence(top_score=top, answer=answer, cited_texts=[p.text for _, p in cited])
            gold = set(dataset.relevant.get(query_id, {}))
            answered.append((score, any(corpus_ids.get(p.document_id) in gold for _, p in cited)))
    total = len(queries)
    every = sum(right for _, right in answered) / len(answered)
    print(f"answer   StackFAQ {total} tickets, answered with a citation {len(answered)}: precision {every:.3f} "
          f"when every one is sent")  # fmt: skip
    chosen = None
    for threshold in sorted({round(c, 2) for c, _ in answered}):
        sent = [right for c, right in answered if c >= threshold]
        if len(sent) >= 20 and sum(sent) / len(sent) >= 0.95:
            chosen = (threshold, sum(sent) / len(sent), len(sent) / total)
            break
    if chosen is None:
        print("answer   no threshold reaches precision 0.95 on 20 or more tickets")
        return {"precision": 0.0, "coverage": 0.0, "threshold": 1.0, "every": every}
    threshold, precision, coverage = chosen
    print(
        f"answer   threshold {threshold:.2f}: precision {precision:.3f}, coverage {coverage:.3f} of tickets auto-sent"
    )
    return {"precision": precision, "coverage": coverage, "threshold": threshold, "every": every}


def generated_emails(count: int) -> list[bytes]:
    rng = random.Random(3)
    topics = [
        ("Refund", "How do I get a refund for my annual plan? I was charged last week."),
        ("Invoice wrong", "The tax on invoice 2231 is wrong, can you fix it? It should be 20%."),
        ("Cannot log in", "I cannot log in since this morning, the password reset email never arrives."),
        ("Export", "Where can I export all my clients to CSV?"),
        ("Team", "How do I add my accountant to the team with read-only access?"),
    ]
    emails, sent_ids = [], []
    for n in range(count):
        mail = EmailMessage()
        mail["From"] = f"Customer {n % 300} <customer{n % 300}@example.com>"
        mail["To"] = "help@tallyho.example"
        message_id = f"bench-{n}@example.com"
        mail["Message-ID"] = f"<{message_id}>"
        subject, body = rng.choice(topics)
        kind = n % 10
        if kind == 0 and sent_ids:  # a reply that threads to an earlier email
            earlier = rng.choice(sent_ids)
            mail["In-Reply-To"] = mail["References"] = f"<{earlier}>"
            mail["Subject"] = f"Re: {subject}"
            mail.set_content(f"Any news on this?\n\nOn Monday you wrote:\n> {body}")
        elif kind == 1:  # machine-sent: must be ignored
            mail["Subject"] = "Automatic reply: out of office"
            mail["Auto-Submitted"] = "auto-replied"
            mail.set_content("I am away until Monday.")
        elif kind == 2:  # HTML only
            mail["Subject"] = subject
            mail.set_content(f"<html><body><p>{body}</p><p>Thanks!</p></body></html>", subtype="html")
        else:
            mail["Subject"] = subject
            mail.set_content(f"Hello,\n\n{body}\n\nBest regards\nCustomer {n % 300}")
            if kind == 3:
                mail.add_attachment(b"%PDF-1.4 " + bytes(rng.randrange(256) for _ in range(2000)),
                                    maintype="application", subtype="pdf", filename=f"invoice-{n}.pdf")  # fmt: skip
        sent_ids.append(message_id)
        emails.append(mail.as_bytes())
    return emails


def bench_emails() -> dict[str, float]:
    from bots.models import Ticket
    from bots.tickets.email_parsing import parse_email
    from bots.tickets.services import ticket_receive_email
    from neo_support.demo import demo_load
    from neo_support.tasking import wait_for_in_process_tasks
    from retrieval.services.ingestion import documents_ingest_all

    emails = generated_emails(EMAILS)
    started = time.perf_counter()
    for raw in emails:
        parse_email(raw)
    parse_only = time.perf_counter() - started

    demo = demo_load(origins=[])
    documents_ingest_all(documents=list(demo.knowledge_base.documents.all()))
    bot = demo.bot
    bot.ticket_mode = "draft"
    bot.save(update_fields=["ticket_mode"])
    outcomes: dict[str, int] = {}
    started = time.perf_counter()
    for raw in emails:
        outcome = ticket_receive_email(bot=bot, raw=raw)
        outcomes[outcome.status] = outcomes.get(outcome.status, 0) + 1
    wait_for_in_process_tasks(timeout=1200)
    elapsed = time.perf_counter() - started
    drafted = Ticket.objects.filter(conversation__bot=bot).exclude(auto_answer={}).count()
    rate = len(emails) / elapsed
    print(f"email    {len(emails)} emails end to end (parse, thread, triage, draft) in {elapsed:.1f} s: "
          f"{rate:.1f} emails/s; parsing alone {len(emails) / parse_only:.0f} emails/s; outcomes {outcomes}; "
          f"{drafted} tickets drafted")  # fmt: skip
    return {"rate": rate, "parse_rate": len(emails) / parse_only}


def main(argv: list[str] | None = None) -> None:
    # No options: --help says what runs instead of starting the whole bench.
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="neo-bench-tickets-") as var:
        setup_django(Path(var))
        import logging

        logging.disable(logging.WARNING)
        triage = bench_triage()
        answer = bench_auto_answer()
        email = bench_emails()
    print(f"FIGURE triage_accuracy_banking77={triage['full']:.3f} ratio")
    print(f"FIGURE triage_accuracy_banking77_10_per_category={triage['ten']:.3f} ratio")
    print(f"FIGURE auto_answer_precision={answer['precision']:.3f} ratio")
    print(f"FIGURE auto_answer_coverage={answer['coverage']:.3f} ratio")
    print(f"FIGURE auto_answer_threshold={answer['threshold']:.2f} confidence")
    print(f"FIGURE emails_per_second={email['rate']:.1f} emails/s")


if __name__ == "__main__":
    main()
