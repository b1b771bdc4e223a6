from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser
from tqdm import tqdm

from neo_support.management.bulk import BulkCommand
from retrieval.embeddings import EmbeddingModelError
from retrieval.management.commands._common import add_knowledge_base_arguments, find_knowledge_base
from retrieval.models import DocumentStatus
from retrieval.services.indexing import knowledge_base_sync_index
from retrieval.services.ingestion import documents_ingest_all
from retrieval.services.knowledge_bases import knowledge_base_reembed


class Command(BulkCommand):
    help = "Rebuild a knowledge base's indexes from its stored chunks (or re-embed every document first)."

    def add_arguments(self, parser: CommandParser) -> None:
        add_knowledge_base_arguments(parser)
        parser.add_argument("--reembed", action="store_true", help="Parse, chunk and embed every document again.")
        parser.add_argument("--embedding-model", help="Switch to this embedding model (re-embeds everything).")

    def handle(self, *args: Any, **options: Any) -> None:
        knowledge_base = find_knowledge_base(options["kb"], options["org"])
        if options["embedding_model"]:
            try:
                documents = knowledge_base_reembed(
                    knowledge_base=knowledge_base, embedding_model=options["embedding_model"], queue=False
                )
            except EmbeddingModelError as error:
                raise CommandError(str(error)) from None
            with tqdm(total=len(documents), unit="doc", desc="re-embed") as bar:
                documents_ingest_all(documents=documents, on_document=lambda _: bar.update(1))
        elif options["reembed"]:
            documents = list(
                knowledge_base.documents.exclude(status=DocumentStatus.FAILED).select_related("knowledge_base")
            )
            with tqdm(total=len(documents), unit="doc", desc="re-embed") as bar:
                documents_ingest_all(documents=documents, on_document=lambda _: bar.update(1))
        result = knowledge_base_sync_index(knowledge_base=knowledge_base, rebuild=True)
        chunks = knowledge_base.documents.filter(embedded_at__isnull=False).values_list("chunk_count", flat=True)
        self.stdout.write(
            f"Rebuilt {knowledge_base.name!r}: index version {result.version}, {sum(chunks)} chunk(s) indexed."
        )
