from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser

from neo_support.management.bulk import BulkCommand
from workers.triage.categories import TriageError
from workers.triage.evaluation import evaluate_categories, read_tickets, sample_per_category


class Command(BulkCommand):
    help = (
        "Measure ticket categorisation: train the category model on one labelled CSV or JSONL file, predict "
        "another, and print accuracy, macro F1, the share routed nowhere (none fits) and the time per ticket "
        "(embedding and prediction, batched) as name=value tokens."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--train", type=Path, required=True, help="Labelled past tickets (.csv or .jsonl).")
        parser.add_argument("--test", type=Path, required=True, help="Tickets to predict (.csv or .jsonl).")
        parser.add_argument("--text-field", default="text")
        parser.add_argument("--label-field", default="label")
        parser.add_argument(
            "--none-label",
            default=None,
            help="The label of tickets no category fits: left out of training, expected as none fits in the test.",
        )
        parser.add_argument(
            "--per-category", type=int, default=0, help="Train on at most N random tickets per category (0: all)."
        )
        parser.add_argument("--seed", type=int, default=0, help="Seed of the --per-category sample.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["per_category"] < 0:
            raise CommandError("--per-category must be 0 (all) or more.")
        fields = {"text_field": options["text_field"], "label_field": options["label_field"]}
        try:
            train = read_tickets(options["train"], **fields)
            test = read_tickets(options["test"], **fields)
            if options["per_category"]:
                train = sample_per_category(train, options["per_category"], seed=options["seed"])
            report = evaluate_categories(train, test, none_label=options["none_label"], progress=True)
        except TriageError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(report.line())
