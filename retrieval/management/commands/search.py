from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from retrieval.management.commands._common import add_knowledge_base_arguments, find_knowledge_base
from retrieval.models import SearchMode
from retrieval.search import IndexUnavailable, search


class Command(BaseCommand):
    help = "Search a knowledge base and print the ranked chunks."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("query")
        add_knowledge_base_arguments(parser)
        parser.add_argument("-k", type=int, default=5, help="How many results (default 5).")
        parser.add_argument("--mode", choices=SearchMode.values, help="Override the knowledge base's search mode.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["k"] < 1:
            raise CommandError("-k must be at least 1.")
        knowledge_base = find_knowledge_base(options["kb"], options["org"])
        try:
            hits = search(
                knowledge_bases=[knowledge_base], query=options["query"], k=options["k"], mode=options["mode"]
            )
        except IndexUnavailable as error:
            raise CommandError(str(error)) from None
        if not hits:
            self.stdout.write("No results.")
        for rank, hit in enumerate(hits, start=1):
            where = " > ".join([hit.document_title, *hit.heading_path])
            location = f" ({hit.location})" if hit.location else ""
            self.stdout.write(f"{rank}. [{hit.score:.3f}] {where}{location}\n   {hit.snippet}")
