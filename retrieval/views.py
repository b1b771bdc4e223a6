"""Dashboard pages for knowledge bases: list, documents with live progress, upload, playground."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from neo_support.access import dashboard_area
from neo_support.forms import posted_text
from neo_support.models import Membership
from neo_support.permissions import Area
from neo_support.selectors import membership_current
from retrieval.models import Document, KnowledgeBase, SearchMode
from retrieval.search import IndexUnavailable, search
from retrieval.selectors import knowledge_base_list
from retrieval.services.documents import (
    DocumentRejected,
    check_upload,
    document_create_from_file,
    document_create_from_text,
    document_create_from_url,
    document_delete,
    document_retry,
)
from retrieval.services.knowledge_bases import knowledge_base_create
from retrieval.services.site_import import knowledge_base_import_site

WRITE_ROLES = {"owner", "admin"}


def _membership(request: HttpRequest) -> Membership:
    membership = membership_current(user=request.user)
    if membership is None:
        raise PermissionDenied("You are not a member of any organization.")
    return membership


def _knowledge_base(request: HttpRequest, knowledge_base_id: int) -> tuple[Membership, KnowledgeBase]:
    membership = _membership(request)
    queryset = KnowledgeBase.objects.for_organization(membership.organization)
    return membership, get_object_or_404(queryset, pk=knowledge_base_id)


def _require_write(membership: Membership) -> None:
    if membership.role not in WRITE_ROLES:
        raise PermissionDenied("Only owners and admins can change knowledge bases.")


@dashboard_area(Area.KNOWLEDGE)
def knowledge_base_index(request: HttpRequest) -> HttpResponse:
    membership = _membership(request)
    if request.method == "POST":
        _require_write(membership)
        try:
            knowledge_base = knowledge_base_create(
                organization=membership.organization, name=posted_text(request, "name")
            )
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            return redirect("knowledge-bases:detail", knowledge_base.pk)
    return render(
        request,
        "retrieval/knowledge_bases.html",
        {"knowledge_bases": knowledge_base_list(organization=membership.organization), "membership": membership},
    )


@dashboard_area(Area.KNOWLEDGE)
def knowledge_base_detail(request: HttpRequest, knowledge_base_id: int) -> HttpResponse:
    membership, knowledge_base = _knowledge_base(request, knowledge_base_id)
    if request.method == "POST":
        _require_write(membership)
        _add_documents(request, knowledge_base)
        return redirect("knowledge-bases:detail", knowledge_base.pk)
    return render(
        request,
        "retrieval/knowledge_base.html",
        {
            "knowledge_base": knowledge_base,
            "documents": knowledge_base.documents.order_by("-created_at"),
            "can_write": membership.role in WRITE_ROLES,
            # A draft article to start from, e.g. from the analytics page's question clusters.
            "draft_title": request.GET.get("draft_title", "")[:500],
            "draft_text": request.GET.get("draft_text", "")[:20000],
        },
    )


def _add_documents(request: HttpRequest, knowledge_base: KnowledgeBase) -> None:
    added = 0
    try:
        for upload in request.FILES.getlist("files"):
            try:
                check_upload(upload.name or "", upload.size or 0)
                document_create_from_file(knowledge_base=knowledge_base, filename=upload.name, data=upload.read())
                added += 1
            except DocumentRejected as error:
                messages.error(request, f"{upload.name}: {error}")
        if url := posted_text(request, "url").strip():
            if request.POST.get("whole_site"):
                knowledge_base_import_site(
                    knowledge_base=knowledge_base, url=url, max_pages=settings.NEO_WEB_IMPORT_MAX_PAGES
                )
                messages.success(request, f"Importing up to {settings.NEO_WEB_IMPORT_MAX_PAGES} pages from {url}.")
            else:
                document_create_from_url(knowledge_base=knowledge_base, url=url)
                added += 1
        if text := posted_text(request, "text").strip():
            document_create_from_text(knowledge_base=knowledge_base, title=posted_text(request, "title"), text=text)
            added += 1
    except DocumentRejected as error:
        messages.error(request, str(error))
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    if added:
        messages.success(request, f"{added} document(s) added; processing has started.")


@dashboard_area(Area.KNOWLEDGE)
@require_GET
def document_status(request: HttpRequest, knowledge_base_id: int) -> JsonResponse:
    """Polled by the page for live progress."""
    _, knowledge_base = _knowledge_base(request, knowledge_base_id)
    rows = knowledge_base.documents.values("id", "status", "progress", "error", "chunk_count", "title")
    return JsonResponse({"documents": list(rows)})


@dashboard_area(Area.KNOWLEDGE)
@require_POST
def document_remove(request: HttpRequest, knowledge_base_id: int, document_id: int) -> HttpResponse:
    membership, knowledge_base = _knowledge_base(request, knowledge_base_id)
    _require_write(membership)
    document = Document.objects.filter(knowledge_base=knowledge_base, pk=document_id).first()
    if document is None:
        raise Http404("No such document.")
    document_delete(document=document)
    messages.success(request, f"Deleted {document.title!r}.")
    return redirect("knowledge-bases:detail", knowledge_base.pk)


@dashboard_area(Area.KNOWLEDGE)
@require_POST
def document_retry_view(request: HttpRequest, knowledge_base_id: int, document_id: int) -> HttpResponse:
    membership, knowledge_base = _knowledge_base(request, knowledge_base_id)
    _require_write(membership)
    document = get_object_or_404(Document, knowledge_base=knowledge_base, pk=document_id)
    try:
        document_retry(document=document)
    except DocumentRejected as error:
        messages.error(request, str(error))
    else:
        messages.success(request, f"Processing {document.title!r} again.")
    return redirect("knowledge-bases:detail", knowledge_base.pk)


@dashboard_area(Area.KNOWLEDGE)
@require_GET
def playground(request: HttpRequest, knowledge_base_id: int) -> HttpResponse:
    _, knowledge_base = _knowledge_base(request, knowledge_base_id)
    query = request.GET.get("q", "").strip()[:2000]
    mode = request.GET.get("mode") if request.GET.get("mode") in SearchMode.values else None
    hits, error = [], ""
    if query:
        try:
            hits = search(knowledge_bases=[knowledge_base], query=query, k=10, mode=mode)
        except IndexUnavailable as problem:
            error = str(problem)
    return render(
        request,
        "retrieval/playground.html",
        {
            "knowledge_base": knowledge_base,
            "query": query,
            "mode": mode or knowledge_base.search_mode,
            "modes": SearchMode.choices,
            "hits": hits,
            "error": error,
        },
    )
