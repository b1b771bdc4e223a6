"""Django admin stays available to superusers for every model."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.contrib import admin

from tests.factories import DocumentFactory, UserFactory

pytestmark = pytest.mark.django_db

PROJECT_APPS = {"neo_support", "retrieval", "bots"}


@pytest.fixture
def superuser_client(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def test_every_project_model_has_a_working_admin_list(superuser_client) -> None:
    models = [model for model in admin.site._registry if model._meta.app_label in PROJECT_APPS]
    project_models = [m for app in PROJECT_APPS for m in apps.get_app_config(app).get_models()]
    assert set(models) == set(project_models)
    for model in models:
        response = superuser_client.get(f"/admin/{model._meta.app_label}/{model._meta.model_name}/")
        assert response.status_code == 200, model


def test_documents_cannot_be_added_past_ingestion_but_can_be_processed_again(superuser_client, settings) -> None:
    settings.NEO_TASKS_IN_PROCESS = True
    assert superuser_client.get("/admin/retrieval/document/add/").status_code == 403
    document = DocumentFactory(status="failed", error="old error")
    response = superuser_client.post(
        "/admin/retrieval/document/",
        {"action": "process_again", "_selected_action": [document.pk]},
        follow=True,
    )
    assert b"1 document(s) queued for processing" in response.content
    document.refresh_from_db()
    assert document.error == ""
