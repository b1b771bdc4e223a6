"""Schemathesis against our own OpenAPI schema: generated requests, valid and not, to
every operation, through the real WSGI application with a real API key. No answer may be
a server error, and every answer must match the schema's status codes and bodies."""

from __future__ import annotations

import os

import pytest
import schemathesis
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from neo_support import rate_limits
from neo_support.services import api_key_create
from tests.factories import BotFactory, ConversationFactory, KnowledgeBaseFactory, MessageFactory


def load_schema() -> schemathesis.BaseSchema:
    """The schema `/api/schema/` serves, generated here so that loading it needs no request."""
    from drf_spectacular.generators import SchemaGenerator

    loaded = schemathesis.openapi.from_dict(SchemaGenerator().get_schema(request=None, public=True))
    loaded.app = WSGIHandler()
    return loaded


schema = load_schema()


@pytest.fixture(autouse=True)
def _requests_share_the_test_transaction(settings):  # type: ignore[no-untyped-def]
    settings.NEO_RATE_API = "100000/minute"
    settings.NEO_API_REPLY_WAIT_SECONDS = 0
    rate_limits.rate_reset()
    # As Django's test client does: the test's transaction outlives each request.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def api_key(db) -> str:  # type: ignore[no-untyped-def]
    knowledge_base = KnowledgeBaseFactory()
    bot = BotFactory(organization=knowledge_base.organization)
    bot.knowledge_bases.add(knowledge_base)
    MessageFactory(conversation=ConversationFactory(bot=bot), role="bot", text="Refunds take five days.")
    _, raw_key = api_key_create(organization=knowledge_base.organization, name="schemathesis")
    return raw_key


@schema.parametrize()
@settings(
    max_examples=int(os.environ.get("NEO_FUZZ_EXAMPLES", "25")),
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_request_makes_a_server_error_or_breaks_the_schema(case, api_key: str) -> None:
    case.call_and_validate(
        headers={"Authorization": f"Bearer {api_key}"},
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )
