"""First-run setup: the install's first organization, its owner and, if asked, a first
knowledge base (from an upload or a web address) and a first bot over it. It runs once,
ever (neo_support.models.SetupRecord). Above `bots` and `retrieval`, like
`neo_support.demo`: it creates their rows through their services."""

from __future__ import annotations

from dataclasses import dataclass

from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from bots.models import Bot
from bots.services import bot_create
from neo_support.models import Organization, SetupRecord
from neo_support.services import organization_create
from retrieval.models import KnowledgeBase
from retrieval.services.documents import DocumentRejected, document_create_from_file, document_create_from_url
from retrieval.services.knowledge_bases import knowledge_base_create

ALREADY_SET_UP = (
    "This server is already set up: it has an organization, and setup never runs twice. "
    "Sign in, or ask an owner of your organization to invite you."
)


class SetupError(ValueError):
    """Setup could not be done; nothing was created. The message says why, for the person who asked."""


class SetupClosed(SetupError):  # noqa: N818 - a refusal the user sees, like SetupError
    """Setup has run already, or an organization exists (possibly created a moment ago by
    a visitor who got there first)."""

    def __init__(self) -> None:
        super().__init__(ALREADY_SET_UP)


@dataclass(frozen=True)
class OwnerAccount:
    """A new account for the owner, its password already checked by Django's validators."""

    username: str
    email: str
    password: str


@dataclass(frozen=True)
class FirstKnowledgeBase:
    """A first knowledge base with one document: an uploaded file (`filename`, `data`) or a web address."""

    name: str
    filename: str = ""
    data: bytes = b""
    url: str = ""


@dataclass(frozen=True)
class SetupResult:
    organization: Organization
    owner: AbstractBaseUser
    knowledge_base: KnowledgeBase | None
    bot: Bot | None


def setup_complete(
    *,
    organization_name: str,
    owner: AbstractBaseUser | OwnerAccount,
    knowledge_base: FirstKnowledgeBase | None = None,
    bot_name: str = "",
    answer_mode: str = "",
) -> SetupResult:
    """Create the install's first organization with `owner` as its owner (an existing
    user, such as a `createsuperuser` one, or a new account), then, if given, the first
    knowledge base with its document (ingestion is queued once this commits) and a bot
    over it (`answer_mode` as the New bot form would choose it).

    All in one transaction that first inserts the setup record, whose primary key is
    always 1: a second setup fails there (on Postgres its insert waits for the first
    transaction and then fails; on SQLite, whose transactions are IMMEDIATE, it starts only
    after the first commits), and so does one on an install that already has an
    organization. Either way it raises SetupClosed and nothing is created; SetupError for
    a refused document or a username taken meanwhile, also with nothing created.
    """
    with transaction.atomic():
        try:
            with transaction.atomic():
                record = SetupRecord.objects.create(pk=1)
        except IntegrityError:
            raise SetupClosed() from None
        if Organization.objects.exists():
            raise SetupClosed()  # rolls back the record too
        user = owner if isinstance(owner, AbstractBaseUser) else _owner_create(owner)
        organization = organization_create(name=organization_name, owner=user)
        record.organization = organization
        record.owner = user
        record.save(update_fields=["organization", "owner"])
        created_knowledge_base = _knowledge_base_create(organization, knowledge_base) if knowledge_base else None
        bot = None
        if bot_name.strip():
            fields = {"answer_mode": answer_mode} if answer_mode else {}
            try:
                bot = bot_create(
                    organization=organization,
                    name=bot_name.strip(),
                    knowledge_bases=[created_knowledge_base] if created_knowledge_base else [],
                    **fields,
                )
            except ValidationError as error:
                raise SetupError(" ".join(error.messages)) from None
    return SetupResult(organization=organization, owner=user, knowledge_base=created_knowledge_base, bot=bot)


def _owner_create(account: OwnerAccount) -> AbstractBaseUser:
    try:
        with transaction.atomic():
            user: AbstractBaseUser = get_user_model().objects.create_user(
                username=account.username, email=account.email, password=account.password
            )
    except IntegrityError:
        raise SetupError(f"The username {account.username!r} was taken a moment ago; choose another.") from None
    if apps.is_installed("allauth.account"):
        # The address was typed by whoever installed the server, which may not send mail
        # yet: mark it verified so signing in never waits for a confirmation email.
        from allauth.account.models import EmailAddress

        EmailAddress.objects.create(user=user, email=account.email, primary=True, verified=True)
    return user


def _knowledge_base_create(organization: Organization, first: FirstKnowledgeBase) -> KnowledgeBase:
    try:
        knowledge_base = knowledge_base_create(organization=organization, name=first.name)
        if first.data:
            document_create_from_file(knowledge_base=knowledge_base, filename=first.filename, data=first.data)
        elif first.url:
            document_create_from_url(knowledge_base=knowledge_base, url=first.url)
    except ValidationError as error:
        raise SetupError(" ".join(error.messages)) from None
    except DocumentRejected as error:
        raise SetupError(str(error)) from None
    return knowledge_base
