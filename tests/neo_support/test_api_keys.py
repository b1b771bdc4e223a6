from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from neo_support.models import ApiKey
from neo_support.services import api_key_authenticate, api_key_create, api_key_revoke

pytestmark = pytest.mark.django_db


def test_a_key_is_stored_hashed_and_shown_once(organization) -> None:
    api_key, raw_key = api_key_create(organization=organization, name="Zapier")
    stored = ApiKey.objects.get(pk=api_key.pk)
    assert raw_key.startswith(f"neo_{stored.prefix}_")
    assert raw_key not in (stored.key_hash, stored.prefix, stored.name)
    assert len(stored.key_hash) == 64


def test_a_key_authenticates_to_its_organization_and_records_its_use(organization) -> None:
    api_key, raw_key = api_key_create(organization=organization, name="CRM")
    found = api_key_authenticate(raw_key=raw_key)
    assert found == api_key
    assert found.organization == organization
    assert ApiKey.objects.get(pk=api_key.pk).last_used_at is not None


def test_last_use_is_written_at_most_once_a_minute(organization) -> None:
    api_key, raw_key = api_key_create(organization=organization, name="CRM")
    recent = timezone.now() - timedelta(seconds=10)
    ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=recent)
    api_key_authenticate(raw_key=raw_key)
    assert ApiKey.objects.get(pk=api_key.pk).last_used_at == recent


@pytest.mark.parametrize("mangle", [lambda k: k[:-1] + ("A" if k[-1] != "A" else "B"), lambda k: "x" + k, str.upper])
def test_a_wrong_or_tampered_key_is_refused(organization, mangle) -> None:
    _, raw_key = api_key_create(organization=organization, name="CRM")
    assert api_key_authenticate(raw_key=mangle(raw_key)) is None


def test_a_revoked_key_is_refused(organization) -> None:
    api_key, raw_key = api_key_create(organization=organization, name="Old")
    api_key_revoke(api_key=api_key)
    assert api_key_authenticate(raw_key=raw_key) is None
    assert ApiKey.objects.get(pk=api_key.pk).revoked_at is not None
