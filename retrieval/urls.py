from __future__ import annotations

from django.urls import path

from retrieval import api

urlpatterns = [
    path("knowledge-bases/<int:knowledge_base_id>/documents/", api.DocumentListApi.as_view()),
    path("knowledge-bases/<int:knowledge_base_id>/documents/<int:document_id>/", api.DocumentDetailApi.as_view()),
    path("knowledge-bases/<int:knowledge_base_id>/documents/<int:document_id>/retry/", api.DocumentRetryApi.as_view()),
    path("knowledge-bases/<int:knowledge_base_id>/imports/", api.SiteImportApi.as_view()),
    path("knowledge-bases/<int:knowledge_base_id>/search/", api.SearchApi.as_view()),
]
