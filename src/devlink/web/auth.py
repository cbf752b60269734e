"""Who is asking and whether they may: every route's access rule, sessions in a signed cookie, CSRF tokens.

Every route has exactly one rule in ``RULES`` (a test fails for a route
without one, and at run time such a route answers 403):

* ``OPEN``: anyone.  Webhooks and the OAuth callback keep their own checks
  (signatures, ``state``); the sign-in page; the API description.
* ``READ``: anyone signed in or with a token, read-only tokens included.
* ``MEMBER``: anyone signed in or with a token that may write.
* ``ADMIN``: admins only (a read-only admin token may still read).

A read-only token may only use GET and HEAD.  What a member may read is
narrowed further by the routes themselves (project permissions, their own
tokens and addresses).

The cookie carries a random session token and its HMAC under devlink's key;
the database keeps only the token's hash.  A write made with the cookie must
carry the CSRF token (a form's ``csrf`` field or the ``X-CSRF-Token``
header), an HMAC of the session token, besides passing the Origin check of
``security.RequestGuard``.  A request with ``Authorization: Bearer`` carries
no ambient credential, so it needs no CSRF token.
"""

import hmac
import re
from enum import Enum
from typing import Any

from fastapi import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from devlink.errors import Forbidden, Unauthorized
from devlink.runtime import Runtime
from devlink.sync.people import SESSION_LIFETIME, session_principal, token_principal
from devlink.sync.principals import Principal

__all__ = ["COOKIE", "RULES", "Rule", "authorize", "clear_cookie", "csrf_token", "document_access", "rule_of",
           "set_cookie"]

COOKIE = "devlink_session"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})


class Rule(Enum):
    OPEN = "open"
    READ = "read"
    MEMBER = "member"
    ADMIN = "admin"


OPEN, READ, MEMBER, ADMIN = Rule.OPEN, Rule.READ, Rule.MEMBER, Rule.ADMIN

#: (method, route path) → rule.  HEAD follows GET.  Keep one line per route, grouped as the routers are.
RULES: dict[tuple[str, str], Rule] = {
    # accounts and hosts: configuration and credentials
    ("GET", "/api/v1/accounts"): ADMIN,
    ("POST", "/api/v1/accounts"): ADMIN,
    ("GET", "/api/v1/accounts/{account}"): ADMIN,
    ("PATCH", "/api/v1/accounts/{account}"): ADMIN,
    ("DELETE", "/api/v1/accounts/{account}"): ADMIN,
    ("GET", "/api/v1/accounts/{account}/repositories"): ADMIN,
    ("POST", "/api/v1/accounts/{account}/discover"): ADMIN,
    ("POST", "/api/v1/accounts/{account}/repositories/link"): ADMIN,
    ("POST", "/api/v1/accounts/{account}/repositories/unlink"): ADMIN,
    ("GET", "/api/v1/hosts"): ADMIN,
    ("GET", "/api/v1/hosts/{name:path}"): ADMIN,
    ("PATCH", "/api/v1/hosts/{name:path}"): ADMIN,
    # repositories: members read the ones they may see and ask for soft syncs
    ("GET", "/api/v1/repositories"): READ,
    ("POST", "/api/v1/repositories"): ADMIN,
    ("GET", "/api/v1/repositories/{repository_id}"): READ,
    ("PATCH", "/api/v1/repositories/{repository_id}"): ADMIN,
    ("DELETE", "/api/v1/repositories/{repository_id}"): ADMIN,
    ("POST", "/api/v1/repositories/{repository_id}/sync"): MEMBER,  # a full sync: admins (the route checks)
    # issues and their development data (the routes check project permissions)
    ("POST", "/api/v1/issues"): ADMIN,
    ("GET", "/api/v1/issues/{key}"): READ,
    ("GET", "/api/v1/issues/{key}/development"): READ,
    ("GET", "/api/v1/smart-commits"): READ,
    # the tracker
    ("GET", "/api/v1/tracker"): ADMIN,
    ("PUT", "/api/v1/tracker"): ADMIN,
    ("GET", "/api/v1/projects"): READ,
    ("POST", "/api/v1/projects"): ADMIN,
    ("DELETE", "/api/v1/projects/{key}"): ADMIN,
    ("POST", "/api/v1/aliases"): ADMIN,
    # people and tokens (a member sees and changes only their own)
    ("GET", "/api/v1/me"): READ,
    ("GET", "/api/v1/users"): READ,
    ("POST", "/api/v1/users"): ADMIN,
    ("GET", "/api/v1/users/{username}"): READ,
    ("PATCH", "/api/v1/users/{username}"): ADMIN,
    ("DELETE", "/api/v1/users/{username}"): ADMIN,
    ("PUT", "/api/v1/users/{username}/password"): MEMBER,
    ("GET", "/api/v1/tokens"): READ,
    ("POST", "/api/v1/tokens"): MEMBER,
    ("DELETE", "/api/v1/tokens/{token_id}"): MEMBER,
    # webhooks and OAuth: their own checks
    ("POST", "/hooks/git"): OPEN,
    ("POST", "/hooks/{kind}"): OPEN,
    ("GET", "/oauth/{kind}/start"): ADMIN,
    ("POST", "/oauth/{kind}/start"): ADMIN,
    ("GET", "/oauth/{kind}/callback"): OPEN,  # state, made for the admin who started, is checked
    # pages
    ("GET", "/"): READ,
    ("GET", "/sign-in"): OPEN,
    ("POST", "/sign-in"): OPEN,
    ("POST", "/sign-out"): MEMBER,
    ("GET", "/repositories"): READ,
    ("POST", "/repositories"): ADMIN,
    ("POST", "/repositories/{repository_id}/sync"): MEMBER,
    ("POST", "/repositories/{repository_id}/remove"): ADMIN,
    ("POST", "/repositories/{repository_id}/projects"): ADMIN,
    ("GET", "/issues"): READ,
    ("GET", "/issues/{key}"): READ,
    ("GET", "/smart-commits"): READ,
    ("GET", "/accounts"): ADMIN,
    ("POST", "/accounts"): ADMIN,
    ("GET", "/accounts/{account}"): ADMIN,
    ("POST", "/accounts/{account}/repositories"): ADMIN,
    ("POST", "/accounts/{account}/settings"): ADMIN,
    ("POST", "/accounts/{account}/discover"): ADMIN,
    ("GET", "/users"): ADMIN,
    ("POST", "/users"): ADMIN,
    ("GET", "/users/{username}"): READ,
    ("POST", "/users/{username}/password"): MEMBER,
    ("POST", "/users/{username}/role"): ADMIN,
    ("POST", "/users/{username}/remove"): ADMIN,
    ("POST", "/users/{username}/tokens"): MEMBER,
    ("POST", "/users/{username}/tokens/{token_id}/revoke"): MEMBER,
    # the API description and its page: nothing in them is secret
    ("GET", "/openapi.json"): OPEN,
    ("GET", "/docs"): OPEN,
    ("GET", "/docs/assets/{name}"): OPEN,
}


def rule_of(method: str, path: str) -> Rule | None:
    """The rule of a route (its path as declared) or of an OpenAPI path (``{name}`` for ``{name:path}``)."""
    method = "GET" if method == "HEAD" else method
    return RULES.get((method, path)) or _BY_OPENAPI_PATH.get((method, path))


_BY_OPENAPI_PATH = {(method, re.sub(r"\{(\w+):\w+\}", r"{\1}", path)): rule for (method, path), rule in RULES.items()}


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _signed(rt: Runtime, token: str) -> str:
    return f"{token}.{rt.vault.sign('session:' + token)}"


def _unsigned(rt: Runtime, value: str) -> str | None:
    token, _, signature = value.rpartition(".")
    if not token or len(value) > 200 or not hmac.compare_digest(signature, rt.vault.sign("session:" + token)):
        return None
    return token


def csrf_token(request: Request) -> str:
    """The CSRF token of this request's session ("" without one): forms put it in a hidden ``csrf`` field."""
    token: str | None = getattr(request.state, "session_token", None)
    return _runtime(request).vault.sign("csrf:" + token) if token else ""


def cookie_name(rt: Runtime) -> str:
    """Under https the cookie is ``__Host-``: the browser then takes it only Secure, for this host, path /,
    so a page on another subdomain cannot set one for devlink (cookies do not tell ports apart: see
    docs/security.md)."""
    return f"__Host-{COOKIE}" if _https(rt) else COOKIE


def _https(rt: Runtime) -> bool:
    return rt.settings.public_url.startswith("https://")


def set_cookie(response: Response, request: Request, token: str) -> None:
    rt = _runtime(request)
    response.set_cookie(cookie_name(rt), _signed(rt, token), max_age=int(SESSION_LIFETIME.total_seconds()),
                        path="/", httponly=True, samesite="lax", secure=_https(rt))


def clear_cookie(response: Response, request: Request) -> None:
    rt = _runtime(request)
    response.delete_cookie(cookie_name(rt), path="/", httponly=True, samesite="lax", secure=_https(rt))


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if not header:
        return None
    if scheme.lower() != "bearer" or not value.strip():
        raise Unauthorized("the Authorization header must be: Bearer TOKEN", reason="bad_token")
    if len(value) > 200:
        raise Unauthorized("unknown API token", reason="bad_token")
    return value.strip()


def _from_cookie(request: Request) -> Principal | None:
    rt = _runtime(request)
    value = request.cookies.get(cookie_name(rt))
    if not value:
        return None
    token = _unsigned(rt, value)
    principal = session_principal(rt, token) if token else None
    if principal is not None:
        request.state.session_token = token
    return principal


async def _csrf_sent(request: Request) -> str:
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        field = form.get(CSRF_FIELD)
        sent = field if isinstance(field, str) else None
    return sent or ""


async def authorize(request: Request) -> None:
    """The app-wide dependency: finds the principal, then applies the route's rule (module docstring)."""
    route: BaseRoute | None = request.scope.get("route")
    method = request.method
    rule = rule_of(method, getattr(route, "path", ""))
    if rule is None:
        raise Forbidden("this route has no access rule, so nobody may use it", reason="no_access_rule")
    token = _bearer(request) if rule is not OPEN else None
    principal = token_principal(_runtime(request), token) if token else _from_cookie(request)
    request.state.principal = principal
    if rule is OPEN:
        return
    if principal is None:
        raise Unauthorized.nobody()
    if method not in _SAFE:
        if principal.read_only:
            raise Forbidden("this API token is read-only", reason="read_only_token")
        if principal.session_id is not None and not hmac.compare_digest(await _csrf_sent(request),
                                                                        csrf_token(request)):
            raise Forbidden("the form is out of date or was sent from elsewhere (no valid CSRF token); reload the "
                            "page and try again", reason="bad_csrf")
    if rule is ADMIN and not principal.admin:
        raise Forbidden("only an admin may do this", reason="admin_only")


_RULE_TEXT = {
    READ: "anyone signed in or with an API token (read-only tokens included)",
    MEMBER: "anyone signed in or with an API token that is not read-only",
    ADMIN: "admins only",
}


def document_access(document: dict[str, Any]) -> dict[str, Any]:
    """Say in the OpenAPI document who may call each operation, and how to authenticate (401 and 403 too)."""
    schemes = document.setdefault("components", {}).setdefault("securitySchemes", {})
    schemes["token"] = {"type": "http", "scheme": "bearer", "description": "an API token: devlink token create"}
    schemes["session"] = {"type": "apiKey", "in": "cookie", "name": COOKIE,
                          "description": "the sign-in page's session; writes also need the X-CSRF-Token header"}
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            rule = rule_of(method.upper(), path)
            if rule is None or rule is OPEN:
                continue
            operation["security"] = [{"token": []}, {"session": []}]
            operation["x-devlink-access"] = rule.value
            operation["description"] = (operation.get("description", "") + f"\n\nWho: {_RULE_TEXT[rule]}.").strip()
            responses = operation.setdefault("responses", {})
            problem_json = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
            responses.setdefault("401", {"description": "unauthorized, bad_token, token_revoked, token_expired: "
                                         "no valid session or token", "content": problem_json})
            responses.setdefault("403", {"description": "forbidden, admin_only, read_only_token, bad_csrf, "
                                         "cross_site", "content": problem_json})
            operation["responses"] = dict(sorted(responses.items()))
    return document
