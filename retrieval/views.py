"""Dashboard pages for knowledge bases: list, documents with live progress, upload,
settings and deletion, playground."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from neo_support.access import dashboard_area
from neo_support.forms import posted_text
from neo_support.models import Membership
from neo_support.permissions import Area, role_may
from neo_support.selectors import membership_current
from retrieval.estimates import estimate_parameters, upload_estimate
from retrieval.ingest_rate import ingest_rate_measured
from retrieval.models import Chunk, Document, DocumentStatus, KnowledgeBase, SearchMode
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
    retry_advice,
)
from retrieval.services.knowledge_bases import knowledge_base_create, knowledge_base_delete, knowledge_base_update
from retrieval.services.site_import import knowledge_base_import_site

NOTHING_TO_ADD = "Nothing was added: choose one or more files, enter a web address, or type a title and text."


def _membership(request: HttpRequest) -> Membership:
    membership = membership_current(user=request.user, session=request.session)
    if membership is None:
        raise PermissionDenied("You are not a member of any organization.")
    return membership


def _knowledge_base(request: HttpRequest, knowledge_base_id: int) -> tuple[Membership, KnowledgeBase]:
    membership = _membership(request)
    queryset = KnowledgeBase.objects.for_organization(membership.organization)
    return membership, get_object_or_404(queryset, pk=knowledge_base_id)


def _can_write(membership: Membership) -> bool:
    return role_may(membership.role, Area.KNOWLEDGE, write=True)


def _require_write(membership: Membership) -> None:
    if not _can_write(membership):
        raise PermissionDenied("Only owners and admins can change knowledge bases.")


class KnowledgeBaseSettingsForm(forms.Form):
    name = forms.CharField(max_length=200)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))
    public_base_url = forms.URLField(
        required=False,
        max_length=500,
        assume_scheme="https",
        label="Public address of this help centre",
        help_text="Where citations of uploaded documents link, for example https://help.example.com/.",
    )

    def __init__(self, *args: Any, knowledge_base: KnowledgeBase, **kwargs: Any) -> None:
        kwargs.setdefault("initial", {field: getattr(knowledge_base, field) for field in self.base_fields})
        super().__init__(*args, auto_id="kb-%s", **kwargs)


class KnowledgeBaseDeleteForm(forms.Form):
    confirm_name = forms.CharField(label="Type the knowledge base's name to confirm", max_length=200)

    def __init__(self, *args: Any, knowledge_base: KnowledgeBase, **kwargs: Any) -> None:
        super().__init__(*args, auto_id="kb-delete-%s", **kwargs)
        self.knowledge_base = knowledge_base

    def clean_confirm_name(self) -> str:
        typed = str(self.cleaned_data["confirm_name"])
        if typed.strip() != self.knowledge_base.name.strip():
            raise forms.ValidationError("That is not this knowledge base's name.")
        return typed


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
    """The documents with live progress and, for owners and admins, the forms that change
    the knowledge base. A POST names its `action`: "add" documents (the default),
    "settings" or "delete"."""
    membership, knowledge_base = _knowledge_base(request, knowledge_base_id)
    if request.method != "POST":
        return _detail_page(request, knowledge_base, can_write=_can_write(membership))
    _require_write(membership)
    action = request.POST.get("action") or "add"
    if action == "add":
        _add_documents(request, knowledge_base)
        return redirect("knowledge-bases:detail", knowledge_base.pk)
    if action == "settings":
        return _save_settings(request, knowledge_base)
    if action == "delete":
        return _delete(request, knowledge_base)
    return HttpResponseBadRequest("Unknown action.")


def _detail_page(
    request: HttpRequest, knowledge_base: KnowledgeBase, *, can_write: bool, bound: forms.Form | None = None
) -> HttpResponse:
    """The page, with `bound` (a form that failed validation, with what was typed and its
    errors) in place of its fresh form."""
    settings_form = bound if isinstance(bound, KnowledgeBaseSettingsForm) else None
    delete_form = bound if isinstance(bound, KnowledgeBaseDeleteForm) else None
    documents = list(knowledge_base.documents.order_by("-created_at"))
    for document in documents:
        document.retry_advice = _retry_advice(document)
    return render(
        request,
        "retrieval/knowledge_base.html",
        {
            "knowledge_base": knowledge_base,
            "documents": documents,
            "can_write": can_write,
            "settings_form": settings_form or KnowledgeBaseSettingsForm(knowledge_base=knowledge_base),
            "delete_form": delete_form or KnowledgeBaseDeleteForm(knowledge_base=knowledge_base),
            "chunk_count": Chunk.objects.filter(document__knowledge_base=knowledge_base).count(),
            "bot_names": list(knowledge_base.bots.order_by("name").values_list("name", flat=True)),
            "estimate": estimate_parameters(
                chunk_size=knowledge_base.chunk_size,
                chunk_overlap=knowledge_base.chunk_overlap,
                measured_rate=ingest_rate_measured(),
            ),
            # A draft article to start from, e.g. from the analytics page's question clusters.
            "draft_title": request.GET.get("draft_title", "")[:500],
            "draft_text": request.GET.get("draft_text", "")[:20000],
        },
    )


def _save_settings(request: HttpRequest, knowledge_base: KnowledgeBase) -> HttpResponse:
    form = KnowledgeBaseSettingsForm(request.POST, knowledge_base=knowledge_base)
    if form.is_valid():
        try:
            knowledge_base_update(knowledge_base=knowledge_base, **form.cleaned_data)
        except ValidationError as error:
            for field, errors in getattr(error, "message_dict", {None: error.messages}).items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            messages.success(request, "Settings saved.")
            return redirect("knowledge-bases:detail", knowledge_base.pk)
    knowledge_base.refresh_from_db()
    return _detail_page(request, knowledge_base, can_write=True, bound=form)


def _delete(request: HttpRequest, knowledge_base: KnowledgeBase) -> HttpResponse:
    form = KnowledgeBaseDeleteForm(request.POST, knowledge_base=knowledge_base)
    if not form.is_valid():
        return _detail_page(request, knowledge_base, can_write=True, bound=form)
    name = knowledge_base.name
    knowledge_base_delete(knowledge_base=knowledge_base)
    messages.success(request, f"{name} was deleted, with its documents and search index.")
    return redirect("knowledge-bases:index")


def _add_documents(request: HttpRequest, knowledge_base: KnowledgeBase) -> None:
    """Add what the form holds (files, a web page or site, a text); an empty form is an
    error, not a silent reload."""
    uploads = request.FILES.getlist("files")
    given = {name: bool(request.POST.get(name, "").strip()) for name in ("url", "text", "title")}
    if not (uploads or given["url"] or given["text"]):
        if given["title"]:
            messages.error(request, "Nothing was added: type the text of the document under its title.")
        else:
            messages.error(request, NOTHING_TO_ADD)
        return
    added = 0
    try:
        for upload in uploads:
            try:
                check_upload(upload.name or "", upload.size or 0)
                data = upload.read()
                document_create_from_file(knowledge_base=knowledge_base, filename=upload.name, data=data)
                added += 1
                estimate = upload_estimate(
                    filename=upload.name or "",
                    data=data,
                    chunk_size=knowledge_base.chunk_size,
                    chunk_overlap=knowledge_base.chunk_overlap,
                    measured_rate=ingest_rate_measured(),
                )
                if estimate.long:
                    messages.warning(
                        request,
                        f"{upload.name}: {estimate.describe()}. Chats keep answering meanwhile, and documents "
                        "added after it do not wait for it to finish.",
                    )
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
    """Polled by the page for live progress: each document, and the index version (it
    moves when finished documents become searchable)."""
    _, knowledge_base = _knowledge_base(request, knowledge_base_id)
    documents = [
        {
            "id": document.pk,
            "status": document.status,
            "progress": document.progress,
            "error": document.error,
            "chunk_count": document.chunk_count,
            "title": document.title,
            "can_retry": document.can_retry,
            "retry_advice": _retry_advice(document),
        }
        for document in knowledge_base.documents.only(
            "id", "status", "progress", "error", "chunk_count", "title", "retryable", "source_type"
        )
    ]
    return JsonResponse({"index_version": knowledge_base.index_version, "documents": documents})


def _retry_advice(document: Document) -> str:
    """What to do about a document that failed on its content; "" for any other."""
    if document.status != DocumentStatus.FAILED or document.retryable:
        return ""
    return retry_advice(document)


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
