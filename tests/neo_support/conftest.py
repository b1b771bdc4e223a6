"""Fixtures of the staff-account tests (test_sign_in, test_two_factor, test_sign_up)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from allauth.mfa.totp.internal import auth as totp_auth

from tests.neo_support.accounts_support import Clock


@pytest.fixture
def own_cache(settings: Any) -> Iterator[None]:
    """A cache of this test's own: the sign-in throttles and the memory of used TOTP codes
    live in the cache, and must neither leak into other tests nor be left over from them."""
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": f"test-{uuid.uuid4()}"}
    }
    yield


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The time allauth's TOTP check reads, frozen until a test moves it."""
    frozen = Clock()
    monkeypatch.setattr(totp_auth, "time", SimpleNamespace(time=frozen.time))
    return frozen
