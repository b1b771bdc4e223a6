"""A real OpenID Connect provider for the single sign-on tests: django-oauth-toolkit's OIDC
server, as a small Django project of its own, in its own process on loopback.

    python tests/oidc_provider.py CONFIG.json

CONFIG names the provider's SQLite file, its clients and its users (see `main`). It binds
a free port on 127.0.0.1, prints `http://127.0.0.1:PORT/o` (its issuer) on stdout, and
serves until killed. Its sign-in page is a plain Django LoginView.

To see our side refuse a provider that misbehaves, the file named by `fault_file` may hold
one word, read on every request: `audience` (ID tokens for another client), `nonce` (a
nonce other than the one sent), `issuer` (the discovery document and the tokens name
another issuer) or nothing."""

from __future__ import annotations

import json
import socketserver
import sys
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

CONFIG: dict[str, Any] = {}

LOGIN_TEMPLATE = """<!doctype html><title>Example IdP sign-in</title>
<h1>Example IdP</h1>
<form method="post">{% csrf_token %}
<label>Username <input name="username" id="provider-username"></label>
<label>Password <input name="password" id="provider-password" type="password"></label>
<input type="hidden" name="next" value="{{ next }}">
<button type="submit">Sign in to Example IdP</button>
{% if form.errors %}<p>Wrong username or password.</p>{% endif %}
</form>"""

# Clients skip the consent page, so the authorize page only ever shows a refused request.
AUTHORIZE_ERROR_TEMPLATE = """<!doctype html><title>Example IdP: request refused</title>
<h1>Request refused</h1><p id="error">{{ error.error }}: {{ error.description }}</p>"""

TEMPLATES = {"login.html": LOGIN_TEMPLATE, "oauth2_provider/authorize.html": AUTHORIZE_ERROR_TEMPLATE}


def fault() -> str:
    path = CONFIG.get("fault_file")
    if not path:
        return ""
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def another_issuer(issuer: str) -> str:
    """The issuer the `issuer` fault names instead of this provider's own."""
    return issuer.rstrip("/").removesuffix("/o") + "/another-issuer"


def configure(port_hint: str) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from django.conf import settings

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    settings.configure(
        DEBUG=False,
        SECRET_KEY="an OpenID provider for tests " + port_hint,
        ALLOWED_HOSTS=["127.0.0.1", "localhost"],
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=[
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "oauth2_provider",
        ],
        MIDDLEWARE=[
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
        ],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": CONFIG["db"]}},
        TEMPLATES=[
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "OPTIONS": {
                    "loaders": [("django.template.loaders.locmem.Loader", TEMPLATES)],
                    "context_processors": ["django.template.context_processors.request"],
                },
            }
        ],
        # Browsers share cookies between ports of one host: the provider's own names keep
        # its session apart from the site under test on the same 127.0.0.1.
        SESSION_COOKIE_NAME="provider_sessionid",
        CSRF_COOKIE_NAME="provider_csrftoken",
        LOGIN_URL="/login/",
        USE_TZ=True,
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
        LOGGING={
            "version": 1,
            "handlers": {"stderr": {"class": "logging.StreamHandler"}},
            "loggers": {"django.request": {"handlers": ["stderr"], "level": "ERROR"}},
        },
        OAUTH2_PROVIDER={
            "OIDC_ENABLED": True,
            "OIDC_RSA_PRIVATE_KEY": pem,
            "PKCE_REQUIRED": True,
            "OAUTH2_VALIDATOR_CLASS": f"{__name__}.Validator",
            "SCOPES": {"openid": "OpenID Connect", "profile": "Profile", "email": "Email address"},
        },
    )


def build() -> None:
    """Models, views and URL patterns, once Django is set up."""
    from django.contrib.auth.views import LoginView
    from django.http import HttpRequest, HttpResponse, JsonResponse
    from django.urls import include, path
    from oauth2_provider.oauth2_validators import OAuth2Validator
    from oauth2_provider.views import ConnectDiscoveryInfoView

    module = sys.modules[__name__]

    class Validator(OAuth2Validator):  # type: ignore[misc]
        def get_additional_claims(self, request: Any) -> dict[str, Any]:
            user = request.user
            profile = CONFIG["users"][user.username]
            return {
                "email": user.email,
                "email_verified": profile.get("email_verified", True),
                "preferred_username": user.username,
                "name": profile.get("name", user.username),
            }

        def get_id_token_dictionary(self, token: Any, token_handler: Any, request: Any) -> tuple[dict[str, Any], Any]:
            claims, expires = super().get_id_token_dictionary(token, token_handler, request)
            kind = fault()
            if kind == "audience":
                claims["aud"] = "another-client"
            elif kind == "nonce":
                claims["nonce"] = "a-nonce-from-another-sign-in"
            elif kind == "issuer":
                claims["iss"] = another_issuer(claims["iss"])
            return claims, expires

    def discovery(request: HttpRequest) -> HttpResponse:
        response = ConnectDiscoveryInfoView.as_view()(request)
        if fault() != "issuer":
            return response
        document = json.loads(response.content)
        document["issuer"] = another_issuer(document["issuer"])
        return JsonResponse(document)

    module.Validator = Validator  # type: ignore[attr-defined]
    module.urlpatterns = [  # type: ignore[attr-defined]
        path("o/.well-known/openid-configuration", discovery),
        path("o/", include("oauth2_provider.urls", namespace="oauth2_provider")),
        path("login/", LoginView.as_view(template_name="login.html")),
    ]


def seed() -> None:
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from oauth2_provider.models import Application

    call_command("migrate", verbosity=0, interactive=False)
    for username, profile in CONFIG["users"].items():
        User.objects.create_user(username=username, password=profile["password"], email=profile["email"])
    for client in CONFIG["clients"]:
        Application.objects.create(
            name=client["client_id"],
            client_id=client["client_id"],
            client_secret=client["client_secret"],
            client_type=Application.CLIENT_CONFIDENTIAL,
            authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
            redirect_uris=" ".join(client["redirect_uris"]),
            algorithm=Application.RS256_ALGORITHM,
            skip_authorization=True,
        )


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


def main() -> None:
    """CONFIG.json: {"db": path, "fault_file": path or null,
    "clients": [{"client_id", "client_secret", "redirect_uris": [...]}],
    "users": {username: {"password", "email", "email_verified"?, "name"?}}}"""
    CONFIG.update(json.loads(Path(sys.argv[1]).read_text()))
    configure(sys.argv[1])
    import django

    django.setup()
    build()
    seed()
    from django.core.handlers.wsgi import WSGIHandler

    server = make_server("127.0.0.1", 0, WSGIHandler(), server_class=ThreadingServer, handler_class=QuietHandler)
    print(f"http://127.0.0.1:{server.server_port}/o", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
