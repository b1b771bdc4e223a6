"""Knowledge bases themselves: create, update, delete (with their files and indexes) and
switch the embedding model."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from neo_support import audit
from neo_support.models import Organization
from retrieval import embeddings
from retrieval.index import prune_versions
from retrieval.models import Document, DocumentStatus, KnowledgeBase
from retrieval.services.documents import queue_ingest
from retrieval.services.indexing import index_directory


def knowledge_base_create(*, organization: Organization, name: str, **fields: Any) -> KnowledgeBase:
    knowledge_base = KnowledgeBase(organization=organization, name=name.strip(), **fields)
    knowledge_base.full_clean()
    with transaction.atomic():
        knowledge_base.save()
        audit.record(
            organization=organization,
            action="knowledge_base.create",
            target=knowledge_base,
            after=audit.snapshot(knowledge_base, ["name", *fields]),
        )
    return knowledge_base


def knowledge_base_update(
    *,
    knowledge_base: KnowledgeBase,
    name: str | None = None,
    description: str | None = None,
    public_base_url: str | None = None,
    search_mode: str | None = None,
) -> KnowledgeBase:
    """Rename a knowledge base, describe it, say where its help centre is published or
    change how it is searched; the fields left None keep their value. Its documents,
    chunks and index are untouched, and bots keep using it under its new name.

    Raises ValidationError (by field) for a name another knowledge base of the
    organization has, an invalid address or an unknown search mode; nothing is saved then.
    """
    changes: dict[str, str] = {}
    if name is not None:
        changes["name"] = name.strip()
    if description is not None:
        changes["description"] = description.strip()
    if public_base_url is not None:
        changes["public_base_url"] = public_base_url.strip()
    if search_mode is not None:
        changes["search_mode"] = search_mode
    if "name" in changes:
        taken = KnowledgeBase.objects.filter(organization_id=knowledge_base.organization_id, name=changes["name"])
        if taken.exclude(pk=knowledge_base.pk).exists():
            raise ValidationError({"name": "Another knowledge base already has this name."})
    previous = {field: getattr(knowledge_base, field) for field in changes}
    for field, value in changes.items():
        setattr(knowledge_base, field, value)
    try:
        knowledge_base.full_clean(validate_constraints=False)
    except ValidationError:
        for field, value in previous.items():
            setattr(knowledge_base, field, value)
        raise
    with transaction.atomic():
        knowledge_base.save(update_fields=[*changes, "updated_at"])
        was, now = audit.changes(previous, changes)
        audit.record(
            organization=knowledge_base.organization_id,
            action="knowledge_base.update",
            target=knowledge_base,
            before=was,
            after=now,
        )
    return knowledge_base


def knowledge_base_delete(*, knowledge_base: KnowledgeBase) -> None:
    """Delete a knowledge base with its documents, their chunks and files, and its index.
    Bots that used it keep answering from their other knowledge bases (or without any)."""
    directory = index_directory(knowledge_base)
    files = [document.file.name for document in knowledge_base.documents.exclude(file="")]
    with transaction.atomic():
        audit.record(
            organization=knowledge_base.organization_id,
            action="knowledge_base.delete",
            target=knowledge_base,
            before={"documents": len(files)},
        )
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
