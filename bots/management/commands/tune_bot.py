from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser

from neo_support.management.bulk import BulkCommand


class Command(BulkCommand):
    help = (
        "Tune a bot's model on its own resolved history (docs/tuning.md): --export writes the training data as "
        "JSONL for inspection; otherwise a run is queued on the training queue (or, with --now, run here)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("bot", type=int, help="The bot's id.")
        parser.add_argument("--export", type=Path, help="Write the examples (redacted) to this JSONL file and stop.")
        parser.add_argument("--epochs", type=float, default=3.0)
        parser.add_argument("--rank", type=int, default=8)
        parser.add_argument("--learning-rate", type=float, default=5e-4)
        parser.add_argument("--now", action="store_true", help="Train in this process instead of queueing.")

    def handle(self, *args: Any, **options: Any) -> None:
        from tqdm import tqdm

        from bots.models import Bot
        from bots.tuning.examples import build_examples
        from bots.tuning.runs import model_version_train
        from bots.tuning.services import TuningRefused, model_version_start
        from workers.training.dataset import NotEnoughHistory, write_jsonl

        bot = Bot.objects.filter(pk=options["bot"]).first()
        if bot is None:
            raise CommandError(f"No bot with id {options['bot']}.")
        if options["export"] is not None:
            with tqdm(desc="answers", unit="answer") as bar:
                try:
                    examples = build_examples(bot, on_answer=lambda: bar.update(1))
                except NotEnoughHistory as problem:
                    raise CommandError(str(problem)) from None
            count = write_jsonl(examples, options["export"])
            held = sum(1 for e in examples if e.split == "validation")
            self.stdout.write(f"Wrote {count} examples ({held} held back for validation) to {options['export']}.")
            return
        settings = {"epochs": options["epochs"], "rank": options["rank"], "learning_rate": options["learning_rate"]}
        try:
            if options["now"]:
                version = model_version_start(bot=bot, options=settings, queue=False)
                status = model_version_train(version)
                version.refresh_from_db()
                self.stdout.write(f"{version.label}: {status}. {version.error or version.metrics}")
                return
            version = model_version_start(bot=bot, options=settings)
        except TuningRefused as problem:
            raise CommandError(str(problem)) from None
        self.stdout.write(f"{version.label} is queued on the training queue; follow it on the bot's model page.")
