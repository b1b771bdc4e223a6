"""Knowledge bases, their documents and the chunks that are indexed."""

from __future__ import annotations

from typing import cast

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from neo_support.choices import TextChoices
from neo_support.models import Organization
from neo_support.tenancy import TenantModel


class SearchMode(TextChoices):
    DENSE = "dense", "Dense (embeddings)"
    LEXICAL = "lexical", "Lexical (keywords)"
    HYBRID = "hybrid", "Hybrid (both, fused)"


class KnowledgeBase(TenantModel):
    organization_path = "organization"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="knowledge_bases")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    # Where the help centre these documents come from is published: citations of an
    # uploaded document link there (a document fetched from a URL links to that URL).
    public_base_url = models.URLField(max_length=500, blank=True)
    embedding_model = models.CharField(max_length=200, default="", blank=True)
    # Bumped on every change to the stored index; readers reload when it moves.
    index_version = models.PositiveIntegerField(default=0)
    chunk_size = models.PositiveIntegerField(
        default=200, validators=[MinValueValidator(32), MaxValueValidator(2048)], help_text="Tokens per chunk."
    )
    chunk_overlap = models.PositiveIntegerField(
        default=30, validators=[MaxValueValidator(512)], help_text="Tokens shared by neighbouring chunks."
    )
    search_mode = models.CharField(max_length=10, choices=SearchMode.choices, default=SearchMode.HYBRID)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="knowledge_base_unique_name"),
            models.CheckConstraint(
                condition=models.Q(chunk_overlap__lt=models.F("chunk_size")), name="knowledge_base_overlap_lt_size"
            ),
        ]

    def __str__(self) -> str:
        return cast(str, self.name)

    def save(self, *args: object, **kwargs: object) -> None:
        if not self.embedding_model:
            self.embedding_model = settings.EMBEDDING_MODEL
        super().save(*args, **kwargs)


class SourceType(TextChoices):
    FILE = "file", "Uploaded file"
    URL = "url", "Web page"
    TEXT = "text", "Text"


class DocumentStatus(TextChoices):
    PENDING = "pending", "Pending"
    PROCESSING = "processing", "Processing"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


def document_upload_path(document: Document, filename: str) -> str:
    return f"documents/{document.knowledge_base_id}/{filename}"


class Document(TenantModel):
    organization_path = "knowledge_base__organization"

    knowledge_base = models.ForeignKey(KnowledgeBase, on_delete=models.CASCADE, related_name="documents")
    source_type = models.CharField(max_length=10, choices=SourceType.choices)
    file = models.FileField(upload_to=document_upload_path, blank=True, max_length=500)
    source_url = models.URLField(blank=True, max_length=2000)
    source_filename = models.CharField(max_length=255, blank=True, help_text="The uploaded file's own name.")
    csv_columns = models.JSONField(default=list, blank=True, help_text="CSV columns to index; empty for all.")
    text = models.TextField(blank=True, help_text="The content, for documents entered as text.")
    title = models.CharField(max_length=500)
    content_type = models.CharField(max_length=100, blank=True)
    size_bytes = models.PositiveBigIntegerField(default=0)
    checksum = models.CharField(max_length=64, blank=True, db_index=True, help_text="SHA-256 of the content.")
    status = models.CharField(max_length=12, choices=DocumentStatus.choices, default=DocumentStatus.PENDING)
    error = models.TextField(blank=True, help_text="Why processing failed, in words a person can act on.")
    # False when processing failed on the content itself (a damaged, locked or empty file):
    # processing it again would fail the same way, so no retry is offered. A full disk, a
    # timeout, a fetch that failed or a missing embedding model leave it True.
    retryable = models.BooleanField(
        default=True, help_text="Whether processing this document again could succeed after a failure."
    )
    progress = models.PositiveSmallIntegerField(default=0, validators=[MaxValueValidator(100)])
    chunk_count = models.PositiveIntegerField(default=0)
    # Set when the document's chunks and vectors are stored; the index sync then makes it ready.
    embedded_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["title"]
        indexes = [models.Index(fields=["knowledge_base", "status"])]

    def __str__(self) -> str:
        return cast(str, self.title)

    @property
    def can_retry(self) -> bool:
        """Failed for a reason a retry can fix (see `retryable`)."""
        return bool(self.status == DocumentStatus.FAILED and self.retryable)


class Chunk(TenantModel):
    organization_path = "document__knowledge_base__organization"

    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="chunks")
    ordinal = models.PositiveIntegerField()
    text = models.TextField()
    heading_path = models.JSONField(default=list, blank=True)
    location = models.CharField(max_length=200, blank=True, help_text="Page number or anchor.")
    token_count = models.PositiveIntegerField(default=0)
    # float32 vector as bytes: a rebuild or a model-less machine recreates the index without re-embedding.
    embedding = models.BinaryField(editable=False, default=bytes)

    class Meta:
        ordering = ["document_id", "ordinal"]
        constraints = [models.UniqueConstraint(fields=["document", "ordinal"], name="chunk_unique_ordinal")]

    def __str__(self) -> str:
        return f"{self.document} #{self.ordinal}"
