from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from neo_support.model_queues import queue_models


class Command(BaseCommand):
    help = (
        "List each served base model (NEO_MODEL, then NEO_MODELS) with the generation queue its workers consume: "
        "start one `celery -A neo_support worker -Q <queue>` (or more) per line."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        for queue, model in queue_models(settings.NEO_MODEL, settings.NEO_MODELS).items():
            self.stdout.write(f"{queue}\t{model}")
