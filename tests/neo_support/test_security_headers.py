"""Security headers: a Content-Security-Policy that admits no inline or foreign script
on every page, and templates that need none."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.factories import MembershipFactory

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def policy(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in header.split(";") if part.strip()}


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/dashboard/", "/dashboard/analytics/", "/api/docs/", "/accounts/login/"])
def test_pages_allow_scripts_from_this_server_only(client, path) -> None:
    client.force_login(MembershipFactory(role="owner").user)
    response = client.get(path)
    assert response.status_code == 200
    directives = policy(response)
    assert directives["script-src"] == ["'self'"]
    assert directives["frame-ancestors"] == ["'none'"] and directives["object-src"] == ["'none'"]
    assert response["X-Frame-Options"] == "DENY" and response["X-Content-Type-Options"] == "nosniff"


def test_no_template_has_an_inline_script_or_event_handler() -> None:
    for template in TEMPLATES.rglob("*.html"):
        text = template.read_text()
        inline = [tag for tag in re.findall(r"<script\b[^>]*>", text) if "src=" not in tag and "json" not in tag]
        assert inline == [], template
        assert not re.search(r"\son[a-z]+\s*=", text), template


def test_production_settings_send_hsts(tmp_path) -> None:
    from tests.conftest import clean_env, run_python

    code = "import django; django.setup(); from django.conf import settings; print(settings.SECURE_HSTS_SECONDS)"
    env = clean_env(
        DJANGO_SETTINGS_MODULE="neo_support.settings",
        DEBUG="0",
        SECRET_KEY="x" * 50,
        ALLOWED_HOSTS="support.example.com",
        NEO_VAR_DIR=str(tmp_path),
    )
    result = run_python(code, env)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.strip().splitlines()[-1]) >= 31_536_000
