"""An organization as a whole, across every app: what it holds, and deleting it with all
of that. Above `bots` and `retrieval` (like `neo_support.demo`), because it reaches
their rows and files; the tenancy plumbing below them never imports this module."""

from __future__ import annotations

import logging

from django.db import transaction

from bots.models import Bot, Conversation, Ticket, WebhookEndpoint
from neo_support.models import ApiKey, Membership, Organization, Role, SetupRecord
from neo_support.services import TeamForbidden
from retrieval.models import Document, KnowledgeBase
from retrieval.services.knowledge_bases import knowledge_base_delete

logger = logging.getLogger(__name__)


def organization_contents(*, organization: Organization) -> dict[str, int]:
    """How many of each thing deleting `organization` deletes, by what the page calls it."""
    return {
        "bots": Bot.objects.for_organization(organization).count(),
        "conversations": Conversation.objects.for_organization(organization).count(),
        "tickets": Ticket.objects.for_organization(organization).count(),
        "knowledge bases": KnowledgeBase.objects.for_organization(organization).count(),
        "documents": Document.objects.for_organization(organization).count(),
        "API keys": ApiKey.objects.for_organization(organization).count(),
        "webhooks": WebhookEndpoint.objects.for_organization(organization).count(),
        "members": Membership.objects.for_organization(organization).count(),
    }


def organization_delete(*, organization: Organization, by: Membership) -> None:
    """Delete `organization` with everything in it: bots and their conversations, messages
    and tickets, knowledge bases with their documents, files and indexes, API keys (they
    stop working at once), webhooks, invitations and memberships. Only an owner may
    (TeamForbidden otherwise). The members' accounts stay; so does the install's setup
    record, so deleting the last organization never reopens /setup/ to strangers."""
    if by.organization_id != organization.pk or by.role != Role.OWNER:
        raise TeamForbidden("Only an owner can delete the organization.")
    # The organization's audit log goes with it, so the deletion itself is told to the server's log.
    logger.warning("Organization %s (%s) deleted by %s", organization.pk, organization.name, by.user.get_username())
    with transaction.atomic():
        SetupRecord.objects.get_or_create(pk=1)
        for knowledge_base in KnowledgeBase.objects.for_organization(organization):
            knowledge_base_delete(knowledge_base=knowledge_base)  # its files and index go after commit
        organization.delete()
