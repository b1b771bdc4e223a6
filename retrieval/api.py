"""REST endpoints for knowledge bases: documents (upload, status, delete) and search."""

from __future__ import annotations

from typing import Any, cast

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Count, Q, QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, status, viewsets
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from neo_support.api import ApiPages, api_error
from neo_support.api_auth import acting_organization
from neo_support.api_schema import ErrorOut, paginated
from neo_support.permissions import Area
from retrieval.estimates import IngestEstimate, ingest_estimate, upload_estimate
from retrieval.ingest_rate import ingest_rate_measured
from retrieval.models import Document, DocumentStatus, KnowledgeBase, SearchMode
from retrieval.search import IndexUnavailable, search
from retrieval.services.documents import (
    DocumentNotRetryable,
    DocumentRejected,
    check_upload,
    document_create_from_file,
    document_create_from_text,
    document_create_from_url,
    document_delete,
    document_retry,
)
from retrieval.services.knowledge_bases import knowledge_base_create, knowledge_base_delete, knowledge_base_update
from retrieval.services.site_import import knowledge_base_import_site


class KnowledgeBaseSerializer(serializers.ModelSerializer):
    document_count = serializers.IntegerField(read_only=True)
    ready_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = KnowledgeBase
        fields = [
            "id", "name", "description", "public_base_url", "embedding_model", "chunk_size", "chunk_overlap",
            "search_mode", "document_count", "ready_count", "index_version", "created_at", "updated_at",
        ]  # fmt: skip
        extra_kwargs = {
            "public_base_url": {
                "help_text": "Public address of this help centre, where citations of uploaded documents link."
            }
        }
        read_only_fields = ["embedding_model", "index_version", "created_at", "updated_at"]

    def validate_name(self, value: str) -> str:
        organization = acting_organization(self.context["request"])
        taken = KnowledgeBase.objects.for_organization(organization).filter(name=value.strip())
        if self.instance is not None:
            taken = taken.exclude(pk=self.instance.pk)
        if taken.exists():
            raise serializers.ValidationError("Another knowledge base already has this name.")
        return value.strip()

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if self.instance is not None:
            for field in ("chunk_size", "chunk_overlap"):
                if field in attrs and attrs[field] != getattr(self.instance, field):
                    raise serializers.ValidationError(
                        {field: "Set when the knowledge base is created; its documents are already chunked."}
                    )
        size = attrs.get("chunk_size", self.instance.chunk_size if self.instance else 200)
        overlap = attrs.get("chunk_overlap", self.instance.chunk_overlap if self.instance else 30)
        if overlap >= size:
            raise serializers.ValidationError({"chunk_overlap": "Must be smaller than chunk_size."})
        return attrs

    def update(self, instance: KnowledgeBase, validated_data: dict[str, Any]) -> KnowledgeBase:
        # chunk_size and chunk_overlap can only come back unchanged (see validate).
        changes = {key: value for key, value in validated_data.items() if key not in ("chunk_size", "chunk_overlap")}
        try:
            return knowledge_base_update(knowledge_base=instance, **changes)
        except DjangoValidationError as error:
            raise serializers.ValidationError(error.message_dict) from None

    def create(self, validated_data: dict[str, Any]) -> KnowledgeBase:
        organization = acting_organization(self.context["request"])
        fields = dict(validated_data)
        knowledge_base = knowledge_base_create(organization=organization, name=fields.pop("name"), **fields)
        knowledge_base.document_count = 0
        knowledge_base.ready_count = 0
        return knowledge_base


class KnowledgeBaseViewSet(viewsets.ModelViewSet):
    """The organization's knowledge bases. Deleting one removes its documents and index."""

    api_area = Area.KNOWLEDGE
    serializer_class = KnowledgeBaseSerializer
    filterset_fields = ["search_mode"]

    def get_queryset(self) -> QuerySet[KnowledgeBase]:
        if getattr(self, "swagger_fake_view", False):
            return KnowledgeBase.objects.none()
        organization = acting_organization(self.request)
        return (
            KnowledgeBase.objects.for_organization(organization)
            .annotate(
                document_count=Count("documents", distinct=True),
                ready_count=Count("documents", filter=Q(documents__status="ready"), distinct=True),
            )
            .order_by("name", "pk")
        )

    def perform_destroy(self, instance: KnowledgeBase) -> None:
        knowledge_base_delete(knowledge_base=instance)


class DocumentOut(serializers.ModelSerializer):
    class Meta:
        model = Document
        fields = [
            "id", "knowledge_base", "title", "source_type", "source_filename", "source_url", "content_type",
            "size_bytes", "checksum", "status", "progress", "error", "retryable", "chunk_count", "created_at",
            "updated_at",
        ]  # fmt: skip
        extra_kwargs = {
            "retryable": {
                "help_text": "For a failed document, whether POST …/retry/ can help: false when its content "
                "was refused (upload a different file instead)."
            }
        }


class EstimateOut(serializers.Serializer):
    chunks = serializers.IntegerField(help_text="Chunks the file will likely make.")
    seconds = serializers.IntegerField(help_text="Likely time to index it, in seconds.")
    long = serializers.BooleanField(help_text="Whether that counts as a long upload (a minute or more).")
    message = serializers.CharField()


class DocumentCreatedOut(DocumentOut):
    estimate = serializers.SerializerMethodField(
        help_text="For an uploaded file, how many chunks it will make and how long indexing will take; "
        "null for a web page."
    )

    class Meta(DocumentOut.Meta):
        fields = [*DocumentOut.Meta.fields, "estimate"]

    @extend_schema_field(EstimateOut(allow_null=True))
    def get_estimate(self, document: Document) -> dict[str, Any] | None:
        estimate: IngestEstimate | None = self.context.get("estimate")
        if estimate is None:
            return None
        return {
            "chunks": estimate.chunks,
            "seconds": estimate.seconds,
            "long": estimate.long,
            "message": estimate.describe(),
        }


class DocumentIn(serializers.Serializer):
    file = serializers.FileField(required=False)
    url = serializers.URLField(required=False)
    text = serializers.CharField(required=False, trim_whitespace=False)
    title = serializers.CharField(required=False, max_length=500, allow_blank=True)
    csv_columns = serializers.ListField(child=serializers.CharField(), required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        given = [name for name in ("file", "url", "text") if name in attrs]
        if len(given) != 1:
            raise serializers.ValidationError("Send exactly one of: file (multipart), url, text.")
        return attrs


class SiteImportIn(serializers.Serializer):
    url = serializers.URLField()
    max_pages = serializers.IntegerField(min_value=1, max_value=10_000, required=False)


class SearchIn(serializers.Serializer):
    q = serializers.CharField(max_length=2000)
    k = serializers.IntegerField(min_value=1, max_value=50, default=5)
    mode = serializers.ChoiceField(choices=SearchMode.values, required=False)


def _knowledge_base(request: Request, knowledge_base_id: int) -> KnowledgeBase:
    organization = acting_organization(request)
    return cast(
        KnowledgeBase, get_object_or_404(KnowledgeBase.objects.for_organization(organization), pk=knowledge_base_id)
    )


class DocumentListApi(APIView):
    api_area = Area.KNOWLEDGE
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    @extend_schema(
        operation_id="knowledge_bases_documents_list",
        responses=paginated(DocumentOut),
        parameters=[OpenApiParameter("status", str, enum=list(DocumentStatus.values))],
    )
    def get(self, request: Request, knowledge_base_id: int) -> Response:
        """Newest first, paginated; `?status=` filters."""
        knowledge_base = _knowledge_base(request, knowledge_base_id)
        documents = knowledge_base.documents.order_by("-created_at", "-pk")
        if request.query_params.get("status"):
            documents = documents.filter(status=request.query_params["status"])
        pages = ApiPages()
        page = pages.paginate_queryset(documents, request, view=self)
        return pages.get_paginated_response(DocumentOut(page, many=True).data)

    @extend_schema(
        request={"multipart/form-data": DocumentIn, "application/json": DocumentIn},
        responses={
            201: DocumentCreatedOut,
            409: OpenApiResponse(ErrorOut, description="The same file is already in the knowledge base."),
        },
    )
    def post(self, request: Request, knowledge_base_id: int) -> Response:
        knowledge_base = _knowledge_base(request, knowledge_base_id)
        incoming = DocumentIn(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        estimate = None
        try:
            if "file" in data:
                upload = data["file"]
                check_upload(upload.name or "", upload.size or 0)
                content = upload.read()
                document = document_create_from_file(
                    knowledge_base=knowledge_base,
                    filename=upload.name,
                    data=content,
                    title=data.get("title", ""),
                    csv_columns=data.get("csv_columns"),
                )
                estimate = upload_estimate(
                    filename=upload.name or "",
                    data=content,
                    chunk_size=knowledge_base.chunk_size,
                    chunk_overlap=knowledge_base.chunk_overlap,
                    measured_rate=ingest_rate_measured(),
                )
            elif "url" in data:
                document = document_create_from_url(knowledge_base=knowledge_base, url=data["url"])
            else:
                document = document_create_from_text(
                    knowledge_base=knowledge_base, title=data.get("title", ""), text=data["text"]
                )
                estimate = ingest_estimate(
                    filename="",
                    size=len(data["text"].encode()),
                    chunk_size=knowledge_base.chunk_size,
                    chunk_overlap=knowledge_base.chunk_overlap,
                    measured_rate=ingest_rate_measured(),
                )
        except DocumentRejected as error:
            code = "duplicate" if "already in the knowledge base" in str(error) else "rejected"
            http_status = status.HTTP_409_CONFLICT if code == "duplicate" else status.HTTP_400_BAD_REQUEST
            return api_error(code, str(error), http_status)
        created = DocumentCreatedOut(document, context={"estimate": estimate})
        return Response(created.data, status=status.HTTP_201_CREATED)


class DocumentDetailApi(APIView):
    api_area = Area.KNOWLEDGE

    def _document(self, request: Request, knowledge_base_id: int, document_id: int) -> Document:
        knowledge_base = _knowledge_base(request, knowledge_base_id)
        return cast(Document, get_object_or_404(knowledge_base.documents, pk=document_id))

    @extend_schema(responses=DocumentOut)
    def get(self, request: Request, knowledge_base_id: int, document_id: int) -> Response:
        return Response(DocumentOut(self._document(request, knowledge_base_id, document_id)).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, knowledge_base_id: int, document_id: int) -> Response:
        document_delete(document=self._document(request, knowledge_base_id, document_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class DocumentRetryApi(APIView):
    """Process a failed document again (after the cause, a full disk or a site that was
    down, has been fixed)."""

    api_area = Area.KNOWLEDGE

    @extend_schema(
        request=None,
        responses={
            202: DocumentOut,
            400: OpenApiResponse(ErrorOut, description="Its content was refused: a retry would fail the same way."),
            409: OpenApiResponse(ErrorOut, description="The document has not failed."),
        },
    )
    def post(self, request: Request, knowledge_base_id: int, document_id: int) -> Response:
        knowledge_base = _knowledge_base(request, knowledge_base_id)
        document = get_object_or_404(knowledge_base.documents, pk=document_id)
        try:
            document_retry(document=document)
        except DocumentNotRetryable as error:
            return api_error("not_retryable", str(error), status.HTTP_400_BAD_REQUEST)
        except DocumentRejected as error:
            return api_error("rejected", str(error), status.HTTP_409_CONFLICT)
        return Response(DocumentOut(document).data, status=status.HTTP_202_ACCEPTED)


class SiteImportApi(APIView):
    """Start importing a site or sitemap; each page becomes a document (see the document list)."""

    api_area = Area.KNOWLEDGE

    @extend_schema(request=SiteImportIn, responses={202: SiteImportIn})
    def post(self, request: Request, knowledge_base_id: int) -> Response:
        knowledge_base = _knowledge_base(request, knowledge_base_id)
        incoming = SiteImportIn(data=request.data)
        incoming.is_valid(raise_exception=True)
        max_pages = incoming.validated_data.get("max_pages", settings.NEO_WEB_IMPORT_MAX_PAGES)
        try:
            knowledge_base_import_site(
                knowledge_base=knowledge_base, url=incoming.validated_data["url"], max_pages=max_pages
            )
        except DocumentRejected as error:
            return api_error("rejected", str(error), status.HTTP_400_BAD_REQUEST)
        return Response(
            {"url": incoming.validated_data["url"], "max_pages": max_pages}, status=status.HTTP_202_ACCEPTED
        )


class SearchHitOut(serializers.Serializer):
    chunk_id = serializers.IntegerField()
    document_id = serializers.IntegerField()
    document_title = serializers.CharField()
    knowledge_base_id = serializers.IntegerField()
    heading_path = serializers.ListField(child=serializers.CharField())
    location = serializers.CharField(allow_blank=True)
    text = serializers.CharField()
    snippet = serializers.CharField(allow_blank=True)
    score = serializers.FloatField()
    dense_score = serializers.FloatField(allow_null=True)
    lexical_score = serializers.FloatField(allow_null=True)


class SearchOut(serializers.Serializer):
    results = SearchHitOut(many=True)


class SearchApi(APIView):
    api_area = Area.KNOWLEDGE

    @extend_schema(parameters=[SearchIn], responses=SearchOut)
    def get(self, request: Request, knowledge_base_id: int) -> Response:
        knowledge_base = _knowledge_base(request, knowledge_base_id)
        incoming = SearchIn(data=request.query_params)
        incoming.is_valid(raise_exception=True)
        try:
            hits = search(
                knowledge_bases=[knowledge_base],
                query=incoming.validated_data["q"],
                k=incoming.validated_data["k"],
                mode=incoming.validated_data.get("mode"),
            )
        except IndexUnavailable as error:
            return api_error("index_unavailable", str(error), status.HTTP_503_SERVICE_UNAVAILABLE)
        return Response({"results": SearchHitOut(hits, many=True).data})
