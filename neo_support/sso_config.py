"""Single sign-on settings from the environment: the install's OpenID Connect provider
and which email domains it signs into which organization, with which role.

    NEO_OIDC_ISSUER=https://login.example.com/realms/staff
    NEO_OIDC_CLIENT_ID=neo-support
    NEO_OIDC_CLIENT_SECRET=...            (or NEO_OIDC_CLIENT_SECRET_FILE)
    NEO_OIDC_DOMAINS=example.com=acme:agent, contractors.example.com=acme:viewer
    NEO_OIDC_NAME=Example staff login     (the button's label; optional)

Pure Python, like neo_support.env, so settings can read it and a malformed value stops
start-up with a message naming the variable."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from neo_support.env import ConfigError, Environ, check_url, env_secret, env_str

# The allauth app id of the provider: its URLs are /accounts/oidc/sso/login/ and
# /accounts/oidc/sso/login/callback/ (the redirect URI to register at the provider).
PROVIDER_ID = "sso"

# Roles a domain may grant. Owner is left out on purpose: an organization's owners are
# people someone chose, never everyone at a domain.
DOMAIN_ROLES = ("admin", "agent", "viewer")

_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_SLUG = re.compile(r"^[-a-zA-Z0-9_]+$")


@dataclass(frozen=True)
class DomainRule:
    """Where an address at one email domain lands on its first sign-in."""

    organization_slug: str
    role: str


@dataclass(frozen=True)
class SsoConfig:
    issuer: str
    client_id: str
    client_secret: str
    name: str
    domains: dict[str, DomainRule]

    def rule_for(self, email: str) -> DomainRule | None:
        """The rule for `email`'s domain (exact match, any case); None if not allowed."""
        _, at, domain = email.strip().rpartition("@")
        return self.domains.get(domain.lower()) if at else None


def parse_domain_rules(name: str, text: str) -> dict[str, DomainRule]:
    """`domain=organization-slug:role` entries separated by commas."""
    rules: dict[str, DomainRule] = {}
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        domain, equals, target = entry.partition("=")
        slug, colon, role = target.partition(":")
        domain, slug, role = domain.strip().lower(), slug.strip(), role.strip().lower()
        if not equals or not colon:
            raise ConfigError(name, f"expected domain=organization-slug:role, got {entry!r}")
        if not _DOMAIN.match(domain):
            raise ConfigError(name, f"not an email domain: {domain!r}")
        if not _SLUG.match(slug):
            raise ConfigError(name, f"not an organization slug: {slug!r}")
        if role not in DOMAIN_ROLES:
            raise ConfigError(name, f"role must be one of {', '.join(DOMAIN_ROLES)}, got {role!r} for {domain}")
        if domain in rules:
            raise ConfigError(name, f"{domain} is listed twice")
        rules[domain] = DomainRule(organization_slug=slug, role=role)
    return rules


def sso_config_from_env(environ: Environ | None = None) -> SsoConfig | None:
    """The install's single sign-on, or None when NEO_OIDC_ISSUER is not set."""
    issuer = env_str("NEO_OIDC_ISSUER", "", environ=environ)
    if not issuer:
        return None
    check_url("NEO_OIDC_ISSUER", issuer, schemes=("https", "http"))
    client_id = env_str("NEO_OIDC_CLIENT_ID", "", environ=environ)
    if not client_id:
        raise ConfigError("NEO_OIDC_CLIENT_ID", "required when NEO_OIDC_ISSUER is set")
    secret = env_secret("NEO_OIDC_CLIENT_SECRET", environ=environ)
    if not secret:
        raise ConfigError("NEO_OIDC_CLIENT_SECRET", "required when NEO_OIDC_ISSUER is set")
    domains = parse_domain_rules("NEO_OIDC_DOMAINS", env_str("NEO_OIDC_DOMAINS", "", environ=environ))
    if not domains:
        raise ConfigError("NEO_OIDC_DOMAINS", "list at least one domain=organization-slug:role")
    return SsoConfig(
        issuer=issuer,
        client_id=client_id,
        client_secret=secret,
        name=env_str("NEO_OIDC_NAME", "Single sign-on", environ=environ),
        domains=domains,
    )


def socialaccount_providers(config: SsoConfig | None) -> dict[str, Any]:
    """allauth's SOCIALACCOUNT_PROVIDERS for `config`: the openid_connect provider with
    our nonce-checking class, PKCE, and one app when single sign-on is configured."""
    apps = []
    if config is not None:
        apps.append(
            {
                "provider_id": PROVIDER_ID,
                "name": config.name,
                "client_id": config.client_id,
                "secret": config.client_secret,
                "settings": {"server_url": config.issuer.rstrip("/"), "oauth_pkce_enabled": True},
            }
        )
    return {
        "openid_connect": {
            "provider_class": "neo_support.sso.NonceCheckingProvider",
            "OAUTH_PKCE_ENABLED": True,
            "APPS": apps,
        }
    }


def sign_in_origins(config: SsoConfig | None) -> list[str]:
    """Origins the sign-in page's form may lead to besides our own (the Content Security
    Policy's form-action, which browsers apply to the redirect after a form's POST): the
    provider's, where "Log in with …" sends the browser."""
    if config is None:
        return []
    parts = urlsplit(config.issuer)
    return [f"{parts.scheme}://{parts.netloc}"]
