"""The demo: a fictional company's help centre, a bot over it, and an admin to log in with.

Idempotent: loading twice changes nothing; a page whose text changed is updated
in place and queued again.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser
from django.db import transaction

from bots.models import Bot
from bots.services import bot_create, bot_set_knowledge_bases
from neo_support.models import Membership, Organization, Role
from retrieval.models import Document, DocumentStatus, KnowledgeBase, SourceType

HELP_CENTRE_DIR = Path(__file__).resolve().parent / "demo" / "help_centre"
DEMO_SLUG = "tallyho-demo"
DEMO_BOT_NAME = "Tallyho Helper"
ADMIN_USERNAME = "admin"


@dataclass(frozen=True)
class DemoResult:
    organization: Organization
    bot: Bot
    knowledge_base: KnowledgeBase
    username: str
    password: str | None
    documents_created: int
    documents_updated: int


def _password_file() -> Path:
    return cast(Path, settings.VAR_DIR) / "demo_admin_password"


def demo_admin_password() -> str | None:
    """The demo admin's password as generated on first load, if this machine still has it."""
    path = _password_file()
    return path.read_text(encoding="utf-8").strip() if path.exists() else None


def _ensure_admin() -> tuple[AbstractUser, str | None]:
    user_model = get_user_model()
    user = user_model.objects.filter(username=ADMIN_USERNAME).first()
    if user is not None:
        return user, demo_admin_password()
    password = os.environ.get("NEO_DEMO_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
    user = user_model.objects.create_superuser(ADMIN_USERNAME, "admin@tallyho.example", password)
    path = _password_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(password, encoding="utf-8")
    path.chmod(0o600)
    return user, password


def _page_title(markdown: str, fallback: str) -> str:
    for line in markdown.splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return fallback


def demo_load(*, origins: list[str]) -> DemoResult:
    """Create or refresh the demo organization, admin, knowledge base, documents and bot."""
    pages = sorted(HELP_CENTRE_DIR.glob("*.md"))
    if not pages:
        raise FileNotFoundError(f"No demo pages under {HELP_CENTRE_DIR}")
    with transaction.atomic():
        user, password = _ensure_admin()
        organization, _ = Organization.objects.get_or_create(slug=DEMO_SLUG, defaults={"name": "Tallyho (demo)"})
        Membership.objects.get_or_create(user=user, organization=organization, defaults={"role": Role.OWNER})
        knowledge_base, _ = KnowledgeBase.objects.get_or_create(
            organization=organization,
            name="Tallyho help centre",
            defaults={"description": "Help-centre articles of Tallyho, a fictional invoicing app."},
        )
        created = updated = 0
        for page in pages:
            text = page.read_text(encoding="utf-8")
            checksum = hashlib.sha256(text.encode()).hexdigest()
            title = _page_title(text, page.stem)
            document = Document.objects.filter(knowledge_base=knowledge_base, title=title).first()
            if document is None:
                Document.objects.create(
                    knowledge_base=knowledge_base,
                    source_type=SourceType.TEXT,
                    title=title,
                    text=text,
                    content_type="text/markdown",
                    size_bytes=len(text.encode()),
                    checksum=checksum,
                )
                created += 1
            elif document.checksum != checksum:
                document.text, document.checksum = text, checksum
                document.size_bytes = len(text.encode())
                document.status, document.error, document.progress = DocumentStatus.PENDING, "", 0
                document.save()
                updated += 1
        bot = Bot.objects.filter(organization=organization, name=DEMO_BOT_NAME).first()
        if bot is None:
            bot = bot_create(
                organization=organization,
                name=DEMO_BOT_NAME,
                instructions=(
                    "You are Tallyho's support assistant. Answer only from the help-centre passages, "
                    "cite them, and offer a human when you are not sure."
                ),
                knowledge_bases=[knowledge_base],
                allowed_origins=origins,
                welcome_message="Hi! I'm Tallyho's assistant. Ask me about invoices, payments or your account.",
                starter_questions=[
                    "How do I send a recurring invoice?",
                    "What does the Team plan cost?",
                    "How do I turn on two-factor authentication?",
                ],
            )
        else:
            bot.allowed_origins = sorted(set(bot.allowed_origins) | set(origins))
            bot.save(update_fields=["allowed_origins", "updated_at"])
            bot_set_knowledge_bases(bot=bot, knowledge_bases=[knowledge_base])
    return DemoResult(
        organization=organization,
        bot=bot,
        knowledge_base=knowledge_base,
        username=ADMIN_USERNAME,
        password=password,
        documents_created=created,
        documents_updated=updated,
    )
