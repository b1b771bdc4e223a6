#!/usr/bin/env python
"""What "not a problem" teaches the hate filter, measured on HateCheck
(`../shared/eval/moderation_hatecheck`, Röttger et al. 2021, CC BY 4.0).

1. The similarity threshold, from the project's own data (not HateCheck): over the hate
   exemplars the filter is trained on, the cosine between each hateful exemplar and its
   nearest non-hateful one (the hard contrasts: negated, quoted, counter-speech), compared
   as the screen compares them (groups masked, `taught.compared_text`). The
   99th percentile is how close a benign text can come to hateful wording;
   `workers.moderation.taught.SIMILAR` is that figure rounded up to 0.05, and the script
   says whether it still is.
2. HateCheck's cases through the worker's screen (`screen_question`, hate only, with the
   text's embedding as the worker has it). The non-hateful cases the filter flags are
   split by template (`templ_id`: a template's cases differ only in the group named, so a
   template is wholly reviewed or wholly unseen): templates are drawn at random (fixed
   seeds) until 20 % of those cases are "reviewed" and marked not a problem, i.e.
   taught. Then every other non-hateful case ("unseen") and every hateful case is
   screened again with what was taught.
   Reported: the false-positive rate on the unseen non-hateful cases and the recall on the
   hateful cases, before and after, averaged over 5 seeds (seed 0 through the real
   screen, the others by applying `untaught` to seed 0's findings, which is what the
   screen does; the script checks the two agree on seed 0). Other thresholds are printed
   for information only. For comparison only, the same with the reviewed cases drawn one
   by one rather than by template ("by case": the unseen cases then include the same
   sentences naming another group), which shows how far a marked sentence carries to its
   rewordings for other groups; the headline figures are the grouped ones.
3. Latency: the worker's screen (`screen_question`, hate and injection) of 400 Banking77
   questions and 100 hateful HateCheck cases (so the taught check runs), given their
   vectors, with nothing taught and with 1,000 taught examples per filter, alternating
   per text; p50 both ways.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import random
import statistics
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
EVAL = ROOT.parent / "shared" / "eval"
SEEDS = (0, 1, 2, 3, 4)
REVIEWED_SHARE = 0.2


@dataclass
class Case:
    text: str
    hateful: bool
    template: str


def read_cases() -> list[Case]:
    with open(EVAL / "moderation_hatecheck" / "test_suite_cases.csv", newline="") as handle:
        return [
            Case(row["test_case"].strip(), row["label_gold"] == "hateful", row["templ_id"])
            for row in csv.DictReader(handle)
        ]


def exemplar_cosine_p99() -> float:
    from workers.moderation.taught import compared_text
    from workers.moderation.vectors import embed_texts

    path = ROOT / "workers" / "moderation" / "data" / "hate_exemplars.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    vectors = embed_texts([compared_text("toxicity", row["text"]) for row in rows])
    hateful = np.array([row["label"] == "hateful" for row in rows])
    nearest = (vectors[hateful] @ vectors[~hateful].T).max(axis=1)
    return float(np.percentile(nearest, 99))


def reviewed_templates(cases: list[Case], flagged: list[bool], seed: int) -> set[str]:
    """Whole templates of flagged non-hateful cases, drawn at random until REVIEWED_SHARE of
    those cases are covered."""
    by_template: dict[str, int] = defaultdict(int)
    for case, was_flagged in zip(cases, flagged, strict=True):
        if was_flagged and not case.hateful:
            by_template[case.template] += 1
    templates = sorted(by_template)
    random.Random(seed).shuffle(templates)
    goal, chosen, covered = REVIEWED_SHARE * sum(by_template.values()), set(), 0
    for template in templates:
        if covered >= goal:
            break
        chosen.add(template)
        covered += by_template[template]
    return chosen


def reviewed_cases(cases: list[Case], flagged: list[bool], seed: int) -> set[str]:
    """REVIEWED_SHARE of the flagged non-hateful cases, one by one (each case its own
    "template" in the returned keys)."""
    indices = [i for i, (case, was) in enumerate(zip(cases, flagged, strict=True)) if was and not case.hateful]
    random.Random(seed).shuffle(indices)
    return {f"case {i}" for i in indices[: round(REVIEWED_SHARE * len(indices))]}


def rates(cases: list[Case], flagged: list[bool], reviewed: set[str]) -> tuple[float, float]:
    """False-positive rate on the unseen non-hateful cases, recall on the hateful ones."""
    unseen = [f for c, f in zip(cases, flagged, strict=True) if not c.hateful and c.template not in reviewed]
    hateful = [f for c, f in zip(cases, flagged, strict=True) if c.hateful]
    return sum(unseen) / len(unseen), sum(hateful) / len(hateful)


def screening_latency() -> tuple[float, float]:
    import time

    from workers.moderation.pipeline import Policy, screen_question
    from workers.moderation.taught import Taught
    from workers.moderation.vectors import embed_text, embed_texts

    with open(EVAL / "intent_banking77" / "test.csv", newline="") as handle:
        texts = [row["text"] for row in csv.DictReader(handle)][:400]
    texts += [case.text for case in read_cases() if case.hateful][::20][:100]
    vectors = embed_texts(texts)
    noise = np.random.default_rng(0).standard_normal((1000, vectors.shape[1])).astype(np.float32)
    rows = [(i, name, row.tobytes()) for name in ("toxicity", "injection") for i, row in enumerate(noise)]
    plain, taught = Policy(), Policy.from_bot({}, Taught.from_rows(rows))
    times: dict[str, list[float]] = {"plain": [], "taught": []}
    screen_question(texts[0], plain, vectors[0], embed_text)  # warm up
    for index, (text, vector) in enumerate(zip(texts, vectors, strict=True)):
        order = [("plain", plain), ("taught", taught)]
        for name, policy in order if index % 2 else order[::-1]:
            started = time.perf_counter()
            screen_question(text, policy, vector, embed_text)
            times[name].append((time.perf_counter() - started) * 1000)
    return statistics.median(times["plain"]), statistics.median(times["taught"])


def main(argv: list[str] | None = None) -> None:
    # No options: --help says what runs instead of starting the whole bench.
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args(argv)
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logging.disable(logging.WARNING)
    from workers.moderation.pipeline import Policy, screen_question
    from workers.moderation.taught import SIMILAR, Taught, compared_text, untaught
    from workers.moderation.vectors import embed_text, embed_texts
    from workers.moderation.verdicts import Action

    p99 = exemplar_cosine_p99()
    derived = float(np.ceil(p99 * 20) / 20)
    print(f"threshold: hateful exemplar -> nearest non-hateful exemplar, cosine p99 {p99:.3f}; rounded up to 0.05: "
          f"{derived:.2f}; SIMILAR in the code: {SIMILAR:.2f}{'' if derived == SIMILAR else ' (DIFFERS)'}")  # fmt: skip

    cases = read_cases()
    vectors = embed_texts([case.text for case in cases])
    # What a taught example and a screened text are compared by (groups masked for hate).
    compared = embed_texts([compared_text("toxicity", case.text) for case in cases])
    policy = Policy.from_bot({"injection": "off", "pii": "off"})
    findings = [
        screen_question(case.text, policy, vector, embed_text).findings
        for case, vector in zip(cases, vectors, strict=True)
    ]

    def flagged_of(found: list[list]) -> list[bool]:  # type: ignore[type-arg]
        return [any(f.filter == "toxicity" and f.action >= Action.FLAG for f in each) for each in found]

    before = flagged_of(findings)
    print(f"HateCheck {len(cases)} cases ({sum(c.hateful for c in cases)} hateful); the hate filter flags "
          f"{sum(b for c, b in zip(cases, before, strict=True) if not c.hateful)} non-hateful ones")  # fmt: skip

    def taught_for(reviewed: set[str]) -> Taught:
        rows = [
            (index, "toxicity", compared[index].astype(np.float32).tobytes())
            for index, case in enumerate(cases)
            if case.template in reviewed and before[index] and not case.hateful
        ]
        return Taught.from_rows(rows)

    results: dict[float, list[tuple[float, float, float, float]]] = defaultdict(list)
    for seed in SEEDS:
        reviewed = reviewed_templates(cases, before, seed)
        taught = taught_for(reviewed)
        fpr_before, recall_before = rates(cases, before, reviewed)
        if seed == SEEDS[0]:
            taught_policy = Policy.from_bot({"injection": "off", "pii": "off"}, taught)
            screened = flagged_of(
                [
                    screen_question(case.text, taught_policy, vector, embed_text).findings
                    for case, vector in zip(cases, vectors, strict=True)
                ]
            )
            shortcut = flagged_of(
                [
                    untaught(f, taught, case.text, v, embed_text)
                    for f, case, v in zip(findings, cases, vectors, strict=True)
                ]
            )
            assert screened == shortcut, "untaught on the findings must match the taught screen"
        for threshold in sorted({0.7, 0.75, 0.8, 0.85, 0.9, SIMILAR}):
            after = []
            for was_flagged, vector in zip(before, compared, strict=True):
                match = taught.nearest("toxicity", vector) if was_flagged else None
                after.append(was_flagged and (match is None or match[1] < threshold))
            fpr_after, recall_after = rates(cases, after, reviewed)
            results[threshold].append((fpr_before, fpr_after, recall_before, recall_after))

    by_case = [Case(case.text, case.hateful, f"case {i}") for i, case in enumerate(cases)]
    by_case_runs = []
    for seed in SEEDS:
        reviewed = reviewed_cases(by_case, before, seed)
        taught = Taught.from_rows(
            (i, "toxicity", compared[i].astype(np.float32).tobytes())
            for i, case in enumerate(by_case)
            if case.template in reviewed
        )
        after = []
        for was_flagged, vector in zip(before, compared, strict=True):
            match = taught.nearest("toxicity", vector) if was_flagged else None
            after.append(was_flagged and (match is None or match[1] < SIMILAR))
        by_case_runs.append((*rates(by_case, before, reviewed), *rates(by_case, after, reviewed)))
    by_case_mean = [statistics.mean(run[i] for run in by_case_runs) for i in range(4)]
    print(f"by case (for comparison): unseen non-hateful FPR {by_case_mean[0]:.3f} -> {by_case_mean[2]:.3f}, "
          f"hateful recall {by_case_mean[1]:.3f} -> {by_case_mean[3]:.3f}")  # fmt: skip

    for threshold, runs in sorted(results.items()):
        mean = [statistics.mean(run[i] for run in runs) for i in range(4)]
        chosen = " (chosen)" if threshold == SIMILAR else ""
        print(f"cosine >= {threshold:.2f}{chosen}: unseen non-hateful FPR {mean[0]:.3f} -> {mean[1]:.3f}, "
              f"hateful recall {mean[2]:.3f} -> {mean[3]:.3f} (mean of {len(runs)} seeds)")  # fmt: skip
    mean = [statistics.mean(run[i] for run in results[SIMILAR]) for i in range(4)]
    plain_p50, taught_p50 = screening_latency()
    print(f"latency: screen_question p50 {plain_p50:.2f} ms with nothing taught, {taught_p50:.2f} ms with 1,000 "
          f"taught examples per filter (alternating, same texts)")  # fmt: skip
    print(f"FIGURE feedback_similar_threshold={SIMILAR:.2f} cosine")
    print(f"FIGURE feedback_exemplar_cosine_p99={p99:.3f} cosine")
    print(f"FIGURE feedback_fpr_before={mean[0]:.3f} ratio")
    print(f"FIGURE feedback_fpr_after={mean[1]:.3f} ratio")
    print(f"FIGURE feedback_recall_before={mean[2]:.3f} ratio")
    print(f"FIGURE feedback_recall_after={mean[3]:.3f} ratio")
    print(f"FIGURE feedback_screen_p50_ms={taught_p50:.2f} ms")
    print(f"FIGURE feedback_screen_p50_ratio={taught_p50 / plain_p50:.3f} ratio")


if __name__ == "__main__":
    main()
