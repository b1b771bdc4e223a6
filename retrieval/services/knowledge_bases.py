"""Knowledge bases themselves: create, delete (with their files and indexes) and switch
the embedding model."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from neo_support.models import Organization
from retrieval import embeddings
from retrieval.index import prune_versions
from retrieval.models import Document, DocumentStatus, KnowledgeBase
from retrieval.services.documents import queue_ingest
from retrieval.services.indexing import index_directory


def knowledge_base_create(*, organization: Organization, name: str, **fields: Any) -> KnowledgeBase:
    knowledge_base = KnowledgeBase(organization=organization, name=name.strip(), **fields)
    knowledge_base.full_clean()
    knowledge_base.save()
    return knowledge_base


def knowledge_base_delete(*, knowledge_base: KnowledgeBase) -> None:
    directory = index_directory(knowledge_base)
    files = [document.file.name for document in knowledge_base.documents.exclude(file="")]
    knowledge_base.delete()

    def remove_files() -> None:
        prune_versions(directory, keep=set())
        for name in files:
            Document.file.field.storage.delete(name)

    transaction.on_commit(remove_files)


def knowledge_base_reembed(
    *, knowledge_base: KnowledgeBase, embedding_model: str, queue: bool = True
) -> list[Document]:
    """Switch the embedding model. Every document is embedded again; until it is, its old
    vectors are left out of the index, which the next sync rebuilds for the new model."""
    embeddings.get_model(embedding_model)  # fail now, with a clear message, if it cannot load
    with transaction.atomic():
        KnowledgeBase.objects.filter(pk=knowledge_base.pk).update(embedding_model=embedding_model)
        knowledge_base.embedding_model = embedding_model
        documents = list(knowledge_base.documents.exclude(status=DocumentStatus.FAILED))
        Document.objects.filter(pk__in=[d.pk for d in documents]).update(
            status=DocumentStatus.PENDING, embedded_at=None, progress=0
        )
        if queue:
            for document in documents:
                queue_ingest(document)
    for document in documents:
        document.knowledge_base = knowledge_base
    return documents
