"""The bots' reads (bots/selectors.py)."""

from __future__ import annotations

import pytest

from bots.models import Bot
from bots.selectors import bot_demo
from tests.factories import BotFactory, OrganizationFactory

pytestmark = pytest.mark.django_db


def test_there_is_no_demo_bot_before_the_demo_is_loaded() -> None:
    BotFactory(name="Tallyho Helper")  # the demo's name, in another organization

    assert bot_demo() is None


def test_the_demo_bot_is_found_even_when_another_bot_of_the_demo_sorts_first() -> None:
    """Issue "The first hour of a new company", item 9: `make run`'s demo link opened the
    demo organization's first bot by name, which was the admin's own once they added one."""
    demo = OrganizationFactory(slug="tallyho-demo")
    helper = BotFactory(organization=demo, name="Tallyho Helper")
    BotFactory(organization=demo, name="Acme support")

    assert Bot.objects.filter(organization=demo).first().name == "Acme support"
    assert bot_demo() == helper


def test_a_renamed_demo_bot_is_still_the_demo_organizations_oldest() -> None:
    demo = OrganizationFactory(slug="tallyho-demo")
    renamed = BotFactory(organization=demo, name="Zed")
    BotFactory(organization=demo, name="Acme support")

    assert bot_demo() == renamed
