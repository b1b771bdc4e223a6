"""Management commands that do bulk work (ingest, reindex, evaluation, tuning)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from neo_support.priority import process_priority_lower


class BulkCommand(BaseCommand):
    """Run from the command line, the command's process takes only the CPU that live
    chats leave (neo_support.priority), as the bulk queues' workers do. `call_command`
    (tests, other code) leaves the caller's priority alone."""

    def run_from_argv(self, argv: list[str]) -> None:
        process_priority_lower()
        super().run_from_argv(argv)
