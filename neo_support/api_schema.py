"""What drf-spectacular cannot guess: how an API key is sent, and the one error format."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import Direction, OpenApiResponse
from rest_framework import serializers


# drf-spectacular's extension base registers subclasses in an unannotated __init_subclass__.
class ApiKeyScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    target_class = "neo_support.api_auth.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key from Dashboard → API keys: `Authorization: Bearer neo_…`.",
        }


class ErrorBody(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    details = serializers.DictField(required=False)


class ErrorOut(serializers.Serializer):
    error = ErrorBody()


def paginated(serializer: type[serializers.Serializer]) -> serializers.Serializer:
    """The schema of one page of `serializer` objects (neo_support.api.ApiPages)."""
    name = serializer.__name__.removesuffix("Out").removesuffix("Serializer")
    page = type(
        f"Paginated{name}List",
        (serializers.Serializer,),
        {
            "count": serializers.IntegerField(),
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": serializer(many=True),
        },
    )
    return page()


ERROR_RESPONSES = {
    "400": "Invalid input; `details.fields` names each field and what is wrong with it.",
    "401": "No credentials, or an unknown or revoked API key.",
    "403": "The role or the API key's scopes do not allow this.",
    "404": "No such object in this organization.",
    "429": "Too many requests; retry after `Retry-After` seconds.",
}


class NeoAutoSchema(AutoSchema):
    """Every operation also documents the errors any request can get, in the one format."""

    def _get_response_bodies(self, direction: Direction = "response") -> dict[str, Any]:
        responses: dict[str, Any] = super()._get_response_bodies(direction=direction)
        for code, description in ERROR_RESPONSES.items():
            if code not in responses:
                # drf-spectacular leaves this (private) method unannotated.
                responses[code] = self._get_response_for_code(  # type: ignore[no-untyped-call]
                    OpenApiResponse(ErrorOut, description=description), code, direction=direction
                )
        return responses
