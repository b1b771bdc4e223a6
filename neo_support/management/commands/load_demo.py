from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from tqdm import tqdm

from neo_support.demo import demo_load
from retrieval.models import DocumentStatus
from retrieval.services.ingestion import documents_ingest_all


class Command(BaseCommand):
    help = "Create or refresh the demo organization, admin user, help-centre knowledge base and bot (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--origin",
            action="append",
            default=[],
            help="An origin the demo widget may be embedded on (repeatable); the local server's are always added.",
        )
        parser.add_argument("--port", type=int, default=8000, help="Port of the local server (default 8000).")

    def handle(self, *args: Any, **options: Any) -> None:
        port = options["port"]
        origins = [f"http://127.0.0.1:{port}", f"http://localhost:{port}", *options["origin"]]
        result = demo_load(origins=origins)
        self.stdout.write(
            f"Demo ready: organization {result.organization.name!r}, bot {result.bot.name!r} "
            f"(key {result.bot.public_key}), knowledge base {result.knowledge_base.name!r}: "
            f"{result.documents_created} page(s) added, {result.documents_updated} updated."
        )
        # Index what is new or changed now, so the demo answers as soon as the server is up.
        waiting = list(
            result.knowledge_base.documents.exclude(status=DocumentStatus.READY).select_related("knowledge_base")
        )
        if waiting:
            with tqdm(total=len(waiting), unit="page", desc="index demo pages", file=self.stderr) as bar:
                documents_ingest_all(documents=waiting, on_document=lambda _: bar.update(1))
        password = result.password or "(unknown here: reset it with `python manage.py changepassword admin`)"
        self.stdout.write(f"Admin login: {result.username} / {password}")
