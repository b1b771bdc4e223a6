"""The bots' reads (bots/selectors.py)."""

from __future__ import annotations

import pytest

from bots.models import Bot, ModelVersion, ModelVersionStatus
from bots.selectors import bot_demo, bot_tuned_version_unused
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


DEFAULT, SECOND = "org/default-model", "org/second-model"


def deployed_version(bot: Bot, *, trained_on: str) -> ModelVersion:
    version = ModelVersion.objects.create(bot=bot, number=3, base_model=trained_on, status=ModelVersionStatus.READY)
    bot.model_version = version
    bot.save()
    return version


def test_a_tuned_version_on_the_answering_model_or_none_deployed_needs_no_warning(settings) -> None:
    settings.NEO_MODEL, settings.NEO_MODELS = DEFAULT, [SECOND]
    bot = BotFactory(base_model=SECOND)
    assert bot_tuned_version_unused(bot=bot) is None
    deployed_version(bot, trained_on=SECOND)
    assert bot_tuned_version_unused(bot=bot) is None


def test_a_tuned_version_on_another_served_model_says_how_to_use_it_again(settings) -> None:
    settings.NEO_MODEL, settings.NEO_MODELS = DEFAULT, [SECOND]
    bot = BotFactory(base_model=SECOND)
    deployed_version(bot, trained_on=DEFAULT)

    assert bot_tuned_version_unused(bot=bot) == (
        f"Tuned version v3 was trained on {DEFAULT} and will not be used until it is re-tuned on {SECOND} "
        f"or the base model is switched back to {DEFAULT}."
    )


def test_a_tuned_version_on_a_model_no_longer_served_can_only_be_re_tuned(settings) -> None:
    settings.NEO_MODEL, settings.NEO_MODELS = DEFAULT, [SECOND]
    bot = BotFactory(base_model=SECOND)
    deployed_version(bot, trained_on=SECOND)
    settings.NEO_MODELS = []  # the operator stopped serving it: NEO_MODEL answers

    unused = bot_tuned_version_unused(bot=bot)
    assert unused is not None
    assert f"trained on {SECOND}, which this server no longer serves" in unused
    assert f"re-tuned on {DEFAULT}" in unused and "switched back" not in unused
