from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from neo_support.tasking import enqueue
from retrieval.models import Chunk, Document, DocumentStatus, KnowledgeBase


@admin.register(KnowledgeBase)
class KnowledgeBaseAdmin(admin.ModelAdmin):
    list_display = ["name", "organization", "search_mode", "embedding_model", "index_version", "updated_at"]
    list_filter = ["organization", "search_mode"]
    search_fields = ["name"]
    readonly_fields = ["index_version"]


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin):
    list_display = ["title", "knowledge_base", "source_type", "status", "progress", "chunk_count", "updated_at"]
    list_filter = ["status", "source_type", "knowledge_base__organization"]
    search_fields = ["title", "source_url", "checksum"]
    readonly_fields = ["checksum", "status", "error", "progress", "chunk_count", "size_bytes"]
    actions = ["process_again"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # documents come in through the dashboard, the API or `ingest`, which index them

    @admin.action(description="Process the selected documents again")
    def process_again(self, request: HttpRequest, queryset: QuerySet[Document]) -> None:
        for document in queryset:
            Document.objects.filter(pk=document.pk).update(status=DocumentStatus.PENDING, progress=0, error="")
            enqueue("retrieval.tasks.ingest_document", document.pk)
        self.message_user(request, f"{queryset.count()} document(s) queued for processing.")


@admin.register(Chunk)
class ChunkAdmin(admin.ModelAdmin):
    list_display = ["document", "ordinal", "location", "token_count"]
    list_filter = ["document__knowledge_base"]
    search_fields = ["text"]
    raw_id_fields = ["document"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
