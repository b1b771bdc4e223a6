from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from neo_support.demo import demo_load


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
        password = result.password or "(unknown here: reset it with `python manage.py changepassword admin`)"
        self.stdout.write(f"Admin login: {result.username} / {password}")
