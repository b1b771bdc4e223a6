"""Helpers shared by the retrieval commands."""

from __future__ import annotations

from django.core.management.base import CommandError, CommandParser

from retrieval.models import KnowledgeBase


def add_knowledge_base_arguments(parser: CommandParser, *, required: bool = True) -> None:
    parser.add_argument("--kb", required=required, help="Knowledge base name.")
    parser.add_argument(
        "--org", help="Organization slug, when several organizations have a knowledge base of that name."
    )


def find_knowledge_base(name: str, organization_slug: str | None) -> KnowledgeBase:
    matches = KnowledgeBase.objects.filter(name=name).select_related("organization")
    if organization_slug:
        matches = matches.filter(organization__slug=organization_slug)
    found: list[KnowledgeBase] = list(matches[:2])
    if not found:
        known = ", ".join(sorted(KnowledgeBase.objects.values_list("name", flat=True)[:20])) or "none"
        raise CommandError(f"No knowledge base named {name!r}. Known: {known}.")
    if len(found) > 1:
        raise CommandError(f"Several organizations have a knowledge base named {name!r}; pass --org SLUG.")
    return found[0]
