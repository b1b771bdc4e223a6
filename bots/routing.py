"""Websocket routes. The chat consumer (/ws/chat/) is added with the widget."""

from __future__ import annotations

from django.urls import URLPattern, re_path

from bots.consumers import UnknownPathConsumer

websocket_urlpatterns: list[URLPattern] = [
    re_path(r"", UnknownPathConsumer.as_asgi()),
]
