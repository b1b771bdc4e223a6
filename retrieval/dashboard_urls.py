from __future__ import annotations

from django.urls import path

from retrieval import views

app_name = "knowledge-bases"

urlpatterns = [
    path("", views.knowledge_base_index, name="index"),
    path("<int:knowledge_base_id>/", views.knowledge_base_detail, name="detail"),
    path("<int:knowledge_base_id>/status.json", views.document_status, name="status"),
    path("<int:knowledge_base_id>/documents/<int:document_id>/delete", views.document_remove, name="delete"),
    path("<int:knowledge_base_id>/documents/<int:document_id>/retry", views.document_retry_view, name="retry"),
    path("<int:knowledge_base_id>/playground/", views.playground, name="playground"),
]
