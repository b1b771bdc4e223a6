"""A bot's dashboard page: the embed code and the sites allowed to use the bot."""

from __future__ import annotations

import pytest

from tests.factories import BotFactory, MembershipFactory

pytestmark = pytest.mark.django_db


def test_an_admin_sees_the_embed_code_and_sets_the_allowed_sites(client) -> None:
    membership = MembershipFactory(role="admin")
    bot = BotFactory(organization=membership.organization)
    client.force_login(membership.user)
    page = client.get(f"/dashboard/bots/{bot.pk}/")
    assert page.status_code == 200
    assert f"data-bot-key=&quot;{bot.public_key}&quot;".encode() in page.content

    response = client.post(
        f"/dashboard/bots/{bot.pk}/",
        {"allowed_origins": "https://Shop.example/\n\nhttps://*.example.org\nhttps://shop.example"},
    )
    assert response.status_code == 302
    bot.refresh_from_db()
    assert bot.allowed_origins == ["https://shop.example", "https://*.example.org"]

    refused = client.post(f"/dashboard/bots/{bot.pk}/", {"allowed_origins": "shop.example/page"})
    assert refused.status_code == 200 and b"is not a site origin" in refused.content
    bot.refresh_from_db()
    assert bot.allowed_origins == ["https://shop.example", "https://*.example.org"]


def test_viewers_read_and_strangers_do_not_see_the_bot(client) -> None:
    viewer = MembershipFactory(role="viewer")
    bot = BotFactory(organization=viewer.organization, allowed_origins=["https://shop.example"])
    client.force_login(viewer.user)
    assert b"https://shop.example" in client.get(f"/dashboard/bots/{bot.pk}/").content
    assert client.post(f"/dashboard/bots/{bot.pk}/", {"allowed_origins": ""}).status_code == 403
    bot.refresh_from_db()
    assert bot.allowed_origins == ["https://shop.example"]

    client.force_login(MembershipFactory(role="owner").user)
    assert client.get(f"/dashboard/bots/{bot.pk}/").status_code == 404
