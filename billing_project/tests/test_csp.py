"""The Content-Security-Policy header: on every response, strict outside the admin, and the nonce on inline code."""

import re
from pathlib import Path

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db

PROJECT_DIR = Path(__file__).resolve().parents[2]
INLINE_HANDLER = re.compile(r"""\son[a-z]+\s*=|javascript:""", re.IGNORECASE)


def directives(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {name: values for name, *values in (part.split() for part in header.split(";"))}


@pytest.mark.parametrize(
    "path", ["/portal/login/", "/api/docs/", "/api/schema/", "/api/customers", "/health", "/favicon.ico"]
)
def test_pages_outside_the_admin_allow_no_inline_code_and_no_eval(client, path):
    policy = directives(client.get(path))

    assert policy["default-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["base-uri"] == ["'self'"]
    assert policy["form-action"] == ["'self'"]
    for directive in ("script-src", "style-src"):
        assert policy[directive][0] == "'self'"
        assert not {"'unsafe-inline'", "'unsafe-eval'", "*"} & set(policy[directive]), directive


@pytest.mark.parametrize("path", ["/admin/login/", "/admin/"])
def test_the_admin_allows_eval_and_inline_styles_but_no_inline_scripts(client, admin_user, path):
    client.force_login(admin_user)

    policy = directives(client.get(path))

    assert policy["script-src"] == ["'self'", "'unsafe-eval'"]
    assert policy["style-src"] == ["'self'", "'unsafe-inline'"]
    assert policy["frame-ancestors"] == ["'none'"]


def test_the_portal_has_a_policy_for_signed_in_users_too(client, portal_user):
    client.force_login(portal_user)

    response = client.get(reverse("portal:home"))

    assert response.status_code == 200
    assert directives(response)["script-src"] == ["'self'"]


def test_the_api_docs_inline_script_and_style_carry_the_nonce_of_their_response(client):
    response = client.get("/api/docs/")

    nonce = re.fullmatch(r"'nonce-(.+)'", directives(response)["script-src"][1]).group(1)
    assert directives(response)["style-src"] == ["'self'", f"'nonce-{nonce}'"]
    html = response.content.decode()
    inline_scripts = re.findall(r"<script(?![^>]*\bsrc=)([^>]*)>", html)
    assert inline_scripts == [f' nonce="{nonce}"']
    assert re.findall(r"<style([^>]*)>", html) == [f' nonce="{nonce}"']
    assert nonce not in client.get("/api/docs/")["Content-Security-Policy"]  # a new one for every response


def test_no_template_of_ours_holds_code_the_policy_would_refuse():
    """Inline scripts need the nonce (`nonce="{{ request.csp_nonce }}"`), or better a static file; handlers such
    as onclick= and javascript: links never run."""
    refused = []
    for template in sorted(PROJECT_DIR.glob("*/templates/**/*.html")) + sorted(PROJECT_DIR.glob("templates/**/*.html")):
        html = template.read_text()
        for tag in re.findall(r"<script\b[^>]*>", html):
            if "src=" not in tag and "nonce=" not in tag:
                refused.append(f"{template.relative_to(PROJECT_DIR)}: {tag}")
        refused += [f"{template.relative_to(PROJECT_DIR)}: {found}" for found in INLINE_HANDLER.findall(html)]
    assert refused == []
