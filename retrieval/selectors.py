"""Reads for knowledge bases, always scoped to one organization."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from neo_support.models import Organization
from retrieval.models import DocumentStatus, KnowledgeBase


def knowledge_base_list(*, organization: Organization) -> QuerySet[KnowledgeBase]:
    return KnowledgeBase.objects.for_organization(organization).annotate(
        document_count=Count("documents"),
        ready_count=Count("documents", filter=Q(documents__status=DocumentStatus.READY)),
    )
