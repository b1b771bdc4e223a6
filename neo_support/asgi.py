"""ASGI entry point: Django for HTTP, Channels for websockets."""

from __future__ import annotations

import os
import sys
import threading

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "neo_support.settings")

from neo_support.env import ConfigError  # noqa: E402

try:
    from django.core.asgi import get_asgi_application

    django_asgi_app = get_asgi_application()
except ConfigError as error:
    print(f"Configuration error: {error}", file=sys.stderr)
    raise SystemExit(2) from None

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from bots.routing import websocket_urlpatterns  # noqa: E402

# Origins are not checked globally: each bot has its own allowed origins,
# checked by its consumer when a widget connects.


def _warm_up() -> None:
    from workers.moderation.pii import warm_up

    warm_up()  # visitors' messages are screened for personal data before they are stored


if os.environ.get("NEO_WARM_UP", "1") != "0":
    threading.Thread(target=_warm_up, name="neo-moderation-warm-up", daemon=True).start()

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": URLRouter(websocket_urlpatterns),
    }
)
