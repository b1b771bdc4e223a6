from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from neo_support.model_queues import generation_queue, model_not_served, queue_models


class Command(BaseCommand):
    help = (
        "List each served base model (NEO_MODEL, then NEO_MODELS) with the generation queue its workers consume: "
        "start one `celery -A neo_support worker -Q <queue>` (or more) per line. With --queue-of MODEL, print "
        "that model's queue alone (for a worker's command line); a model not served is an error."
    )
    requires_system_checks: list[str] = []  # a worker's start-up asks: nothing here needs them

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--queue-of", metavar="MODEL", help="print the queue of this served model only")

    def handle(self, *args: Any, **options: Any) -> None:
        model = options["queue_of"]
        if model is not None:
            problem = model_not_served(model, default_model=settings.NEO_MODEL, extra_models=settings.NEO_MODELS)
            if problem:
                raise CommandError(f"--queue-of: {problem} Served models are NEO_MODEL and NEO_MODELS.")
            self.stdout.write(generation_queue(model, default_model=settings.NEO_MODEL))
            return
        for queue, served_model in queue_models(settings.NEO_MODEL, settings.NEO_MODELS).items():
            self.stdout.write(f"{queue}\t{served_model}")
