from __future__ import annotations

from django.contrib import admin

from retrieval.models import Chunk, Document, KnowledgeBase


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


@admin.register(Chunk)
class ChunkAdmin(admin.ModelAdmin):
    list_display = ["document", "ordinal", "location", "token_count"]
    list_filter = ["document__knowledge_base"]
    search_fields = ["text"]
    raw_id_fields = ["document"]
