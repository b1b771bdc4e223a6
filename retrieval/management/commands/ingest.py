from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser
from tqdm import tqdm

from neo_support.management.bulk import BulkCommand
from retrieval.loaders import SUPPORTED_EXTENSIONS
from retrieval.management.commands._common import add_knowledge_base_arguments, find_knowledge_base
from retrieval.models import Document, DocumentStatus
from retrieval.services.documents import DocumentRejected, DuplicateDocument, document_create_from_file
from retrieval.services.ingestion import documents_ingest_all


def _files(paths: list[str]) -> list[Path]:
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise CommandError(f"{raw}: no such file or directory")
        if path.is_dir():
            found.extend(p for p in sorted(path.rglob("*")) if p.is_file() and p.suffix.lower() in SUPPORTED_EXTENSIONS)
        else:
            found.append(path)
    if not found:
        raise CommandError(f"No supported files found; supported: {', '.join(sorted(SUPPORTED_EXTENSIONS))}.")
    return found


class Command(BulkCommand):
    help = "Add files (or every supported file under folders) to a knowledge base, and index them."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="+", help="Files or folders.")
        add_knowledge_base_arguments(parser)
        parser.add_argument("--csv-columns", help="Comma-separated columns to index from CSV files.")

    def handle(self, *args: Any, **options: Any) -> None:
        knowledge_base = find_knowledge_base(options["kb"], options["org"])
        columns = [c.strip() for c in (options["csv_columns"] or "").split(",") if c.strip()] or None
        documents: list[Document] = []
        refused = skipped = 0
        for path in _files(options["paths"]):
            try:
                documents.append(
                    document_create_from_file(
                        knowledge_base=knowledge_base,
                        filename=path.name,
                        data=path.read_bytes(),
                        csv_columns=columns,
                        queue=False,
                    )
                )
            except DuplicateDocument as duplicate:  # a copy under another name, or a second run
                skipped += 1
                existing = duplicate.existing.source_filename or duplicate.existing.title
                self.stderr.write(f"{path}: same text as {existing!r}, already there; skipped")
            except DocumentRejected as error:
                refused += 1
                self.stderr.write(f"{path}: {error}")
        with tqdm(total=len(documents), unit="doc", desc="ingest", disable=not documents) as bar:
            documents_ingest_all(documents=documents, on_document=lambda _: bar.update(1))
        failed = Document.objects.filter(pk__in=[d.pk for d in documents], status=DocumentStatus.FAILED)
        for document in failed:
            self.stderr.write(f"{document.source_filename}: {document.error}")
        ready = len(documents) - len(failed)
        self.stdout.write(
            f"{ready} document(s) ready, {len(failed)} failed, {refused} refused, "
            f"{skipped} skipped as already there in {knowledge_base.name!r}."
        )
        if failed or refused:
            raise CommandError("Some files were not ingested (see above).")
