from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser

from neo_support.management.bulk import BulkCommand
from workers.moderation.datasets import DatasetError, read_examples
from workers.moderation.evaluation import COUNTS, FILTERS, evaluate
from workers.moderation.pipeline import Policy


class Command(BulkCommand):
    help = (
        "Measure the moderation filters on a labelled CSV or JSONL file: accuracy, recall, precision, "
        "false-positive rate, per-group accuracy and latency, printed as name=value tokens. A text counts as "
        "caught when the filter flags, withholds or blocks it (--count flag, the default) or only when it blocks "
        "it (--count block)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--jsonl", type=Path)
        source.add_argument("--csv", type=Path)
        parser.add_argument("--text-field", default="text")
        parser.add_argument("--label-field", default="label")
        parser.add_argument("--positive", default="1", help='The label meaning "should be flagged or blocked".')
        parser.add_argument("--filter", default="all", choices=FILTERS, help="One filter, or the whole input screen.")
        parser.add_argument("--group-field", default="", help="Report accuracy per value of this field.")
        parser.add_argument("--policy", default="{}", help="A bot's moderation policy as JSON (for blocklist terms).")
        parser.add_argument("--limit", type=int, default=0, help="Only the first N rows.")
        parser.add_argument(
            "--count",
            default="flag",
            choices=sorted(COUNTS),
            help="What counts as caught: flag (flagged, withheld or blocked) or block (blocked only).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
        try:
            examples = read_examples(
                options["jsonl"] or options["csv"],
                text_field=options["text_field"],
                label_field=options["label_field"],
                positive=options["positive"],
                group_field=options["group_field"],
                file_format="jsonl" if options["jsonl"] else "csv",
            )
            data = json.loads(options["policy"])
            if not isinstance(data, dict):
                raise ValueError
        except DatasetError as error:
            raise CommandError(str(error)) from None
        except ValueError:
            raise CommandError('--policy must be a JSON object, for example \'{"blocklist": ["darn"]}\'.') from None
        if options["limit"] > 0:
            examples = examples[: options["limit"]]
        report = evaluate(examples, options["filter"], Policy.from_bot(data), progress=True, count=options["count"])
        for line in report.lines():
            self.stdout.write(line)
