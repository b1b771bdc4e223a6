"""Websocket routes."""

from __future__ import annotations

from django.urls import URLPattern, re_path

from bots.chat.consumers import ChatConsumer, UnknownPathConsumer

websocket_urlpatterns: list[URLPattern] = [
    re_path(r"^ws/chat/$", ChatConsumer.as_asgi()),
    re_path(r"", UnknownPathConsumer.as_asgi()),
]
