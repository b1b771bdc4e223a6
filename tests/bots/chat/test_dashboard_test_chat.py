"""The bot page's test chat embeds the widget exactly as a site does, plus the test mark."""

from __future__ import annotations

import re

import pytest

from tests.factories import BotFactory, MembershipFactory


@pytest.mark.django_db
def test_the_test_chat_takes_its_look_from_the_saved_theme_not_from_attributes(client) -> None:
    owner = MembershipFactory(role="owner")
    bot = BotFactory(organization=owner.organization, theme={"accent": "#0a7d32", "position": "left", "title": "Hi"})
    client.force_login(owner.user)
    page = client.get(f"/dashboard/bots/{bot.pk}/").content.decode()
    tag = re.search(r'<script id="test-chat-widget"[^>]*>', page)
    assert tag is not None
    assert f'data-bot-key="{bot.public_key}"' in tag.group() and "data-test-chat" in tag.group()
    assert "data-color" not in tag.group() and "data-position" not in tag.group()
