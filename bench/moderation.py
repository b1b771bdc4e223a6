#!/usr/bin/env python
"""Moderation latency: the filters that have landed (blocklist, personal data, leakage),
against an unscreened run in the same process.

- input: Banking77's test questions (`../shared/eval/intent_banking77/test.csv`, real
  customer messages) through `screen_input` with a 50-term blocklist; p50 and p95 per
  message, against the cost of merely copying the text (the unscreened path);
- output: StackFAQ answers (`../shared/eval/retrieval_stackfaq/beir/corpus.jsonl`)
  split into sentences and streamed word by word through the `SentenceGate` that
  holds, screens and releases them, against the same words streamed with no gate;
  the added time per sentence.

The accuracy figures of this issue (HateCheck, prompt injection, XSTest) need the
toxicity and injection filters, which have not landed yet.
"""

from __future__ import annotations

import csv
import json
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EVAL = ROOT.parent / "shared" / "eval"
BLOCKLIST = [f"badword{n}" for n in range(48)] + ["darn", "go away"]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from workers.moderation.pipeline import OutputScreen, Policy, SentenceGate, screen_input

    policy = Policy.from_bot({"blocklist": BLOCKLIST})
    with open(EVAL / "intent_banking77" / "test.csv", newline="") as handle:
        messages = [row["text"] for row in csv.DictReader(handle)][:1000]
    screen_input("warm up jo@example.com", policy)

    screened, raw = [], []
    for text in messages:
        started = time.perf_counter()
        screen_input(text, policy)
        screened.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        _ = "".join(list(text))
        raw.append((time.perf_counter() - started) * 1000)
    p50, p95 = percentile(screened, 0.5), percentile(screened, 0.95)
    print(f"input    {len(messages)} Banking77 messages: screened p50 {p50:.2f} ms, p95 {p95:.2f} ms; "
          f"unscreened p50 {percentile(raw, 0.5):.4f} ms")  # fmt: skip

    answers = []
    with open(EVAL / "retrieval_stackfaq" / "beir" / "corpus.jsonl") as handle:
        for line in handle:
            answers.append(json.loads(line)["text"])
    answers = answers[:120]
    sentences = sum(len([s for s in re.split(r"(?<=[.!?])\s+|\n+", a) if s.strip()]) for a in answers)

    def stream(gated: bool) -> float:
        started = time.perf_counter()
        for answer in answers:
            released: list[str] = []
            sink = released.append
            if gated:
                gate = SentenceGate(OutputScreen(policy, passages=[answer], canary="canary-0123456789ab"), sink)
                for word in re.findall(r"\S+\s*", answer):
                    gate.feed(word)
                gate.flush()
            else:
                for word in re.findall(r"\S+\s*", answer):
                    sink(word)
        return time.perf_counter() - started

    stream(True)
    gated = statistics.median(stream(True) for _ in range(3))
    plain = statistics.median(stream(False) for _ in range(3))
    per_sentence = (gated - plain) * 1000 / sentences
    print(f"output   {len(answers)} StackFAQ answers, {sentences} sentences streamed word by word: gated "
          f"{gated:.2f} s, ungated {plain:.4f} s; {per_sentence:.2f} ms added per sentence")  # fmt: skip
    print(f"FIGURE input_screen_p50_ms={p50:.2f} ms")
    print(f"FIGURE input_screen_p95_ms={p95:.2f} ms")
    print(f"FIGURE output_screen_ms_per_sentence={per_sentence:.2f} ms")


if __name__ == "__main__":
    main()
