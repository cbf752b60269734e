"""Every route, for every kind of caller, against a real ``devlink serve``: who gets in, who gets 401 or 403.

The table is generated from the routers themselves, so a new route without a rule in ``web/auth.py`` fails
``test_every_route_has_exactly_one_rule``; a route whose rule changes changes the expected statuses here.
A request that passes the gate may still be refused by the route (404, 409, 422): what matters is that an
anonymous caller and a revoked or expired token get 401, a member 403 on admin routes, a read-only token
403 on every write, and everyone allowed gets past the gate.  Writes name ids that do not exist (or send
an empty body), so the table changes nothing while it runs.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest

from devlink.config import load_settings
from devlink.runtime import Runtime
from devlink.store.models import utcnow
from devlink.store.people import ApiToken
from devlink.sync.people import add_person, create_token, revoke_token
from devlink.sync.principals import LOCAL_ADMIN
from devlink.trackers.builtin import create_issue, create_project
from devlink.web.app import ROUTERS
from devlink.web.auth import RULES, Rule
from servers import ADMIN, Server, start_server, stop_server

CALLERS = ("anonymous", "member_without", "member_with", "admin", "read_only", "revoked", "expired")
_SAFE = {"GET", "HEAD"}
_MISSING = "999999"  # a row id no table has: writes reach the route and are answered 404, changing nothing


def routes() -> list[tuple[str, str]]:
    found = [(method, route.path) for router in ROUTERS for route in router.routes
             for method in sorted(route.methods) if method != "HEAD"]  # type: ignore[attr-defined]
    return sorted(set(found))


def test_every_route_has_exactly_one_rule() -> None:
    declared = set(RULES) - {("GET", "/openapi.json")}  # FastAPI's own route, open like the /docs page
    assert set(routes()) == declared, {"without a rule": set(routes()) - declared,
                                       "rule without a route": declared - set(routes())}


def expected(rule: Rule, method: str, caller: str) -> int | None:
    """401 or 403 when the gate refuses; None when the caller gets past it."""
    if rule is Rule.OPEN:
        return None
    if caller in ("anonymous", "revoked", "expired"):
        return 401
    if caller == "read_only" and method not in _SAFE:
        return 403
    if rule is Rule.ADMIN and caller.startswith("member"):
        return 403
    return None


#: What the routes themselves add for members, beyond the rule: development data of a project needs the
#: project's "view development" permission (mia has it on APP, not on OPS).
NARROWED: dict[tuple[str, str, str], int] = {
    ("GET", "/api/v1/issues/{key}/development", "member_without"): 403,
}


def _path(method: str, path: str) -> str:
    values = {"{account}": _MISSING, "{name:path}": "no.such.host", "{repository_id}": _MISSING, "{key}": "APP-1",
              "{username}": "nobody-here" if method not in _SAFE else "mia", "{token_id}": _MISSING,
              "{kind}": "github", "{name}": "swagger-ui.css"}
    if method in _SAFE and path.startswith(("/api/v1/repositories/", "/repositories/")):
        values["{repository_id}"] = "1"
    for name, value in values.items():
        path = path.replace(name, value)
    return path


@dataclass
class World:
    server: Server
    tokens: dict[str, str | None]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("access")
    server = start_server(root / "home")
    rt = Runtime.open(load_settings(server.env))
    try:
        add_person(rt, "mia", role="member", password="mia-password-1", emails=["mia@devlink.test"])
        add_person(rt, "noah", role="member", password="noah-password-1", emails=["noah@devlink.test"])
        with rt.sessions.begin() as session:
            create_project(session, "APP", "App", permissions={"browse": ["everyone"], "view_development": ["mia"]})
            create_issue(session, "APP-1", "An issue")
            create_project(session, "OPS", "Ops", permissions={})  # nobody but admins may browse it
            create_issue(session, "OPS-1", "The secret ops issue")
        bare = root / "repo.git"
        import subprocess

        subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
        with server.client() as client:
            assert client.post("/api/v1/repositories", json={"url": str(bare), "name": "access"}).status_code == 201
        revoked = create_token(rt, ADMIN, "revoked")
        revoke_token(rt, LOCAL_ADMIN, revoked.view["id"])
        expired = create_token(rt, ADMIN, "expired", expires_days=1)
        with rt.sessions.begin() as session:
            row = session.get(ApiToken, expired.view["id"])
            assert row is not None
            row.expires_at = utcnow() - timedelta(seconds=1)
        tokens: dict[str, str | None] = {
            "anonymous": None,
            "member_without": create_token(rt, "noah", "table").secret,
            "member_with": create_token(rt, "mia", "table").secret,
            "admin": server.token,
            "read_only": create_token(rt, ADMIN, "read-only", read_only=True).secret,
            "revoked": revoked.secret,
            "expired": expired.secret,
        }
        yield World(server, tokens)
    finally:
        rt.close()
        stop_server(server)


def _ask(client: httpx.Client, method: str, path: str, token: str | None) -> httpx.Response:
    headers = {"Accept": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    body: dict[str, Any] = {}
    if method in _SAFE:
        return client.request(method, path, headers=headers)
    if path.startswith("/api/"):
        return client.request(method, path, headers=headers, json=body)
    return client.request(method, path, headers=headers, data=body)


@pytest.mark.parametrize("caller", CALLERS)
def test_each_route_answers_each_caller_as_its_rule_says(world: World, caller: str) -> None:
    wrong: list[str] = []
    with httpx.Client(base_url=world.server.url, timeout=30, follow_redirects=False) as client:
        for method, path in routes():
            rule = RULES[(method, path)]
            want = NARROWED.get((method, path, caller), expected(rule, method, caller))
            answer = _ask(client, method, _path(method, path), world.tokens[caller])
            got = answer.status_code
            passed_gate_wrongly = want is not None and got != want
            stopped_wrongly = want is None and got in (401, 403) and rule is not Rule.OPEN  # hooks refuse on their own
            if got >= 500 or passed_gate_wrongly or stopped_wrongly:
                wrong.append(f"{method} {path}: {rule.value} rule, {caller} → {got} (want {want or 'past the gate'})"
                             f" {answer.text[:160]}")
    assert not wrong, "\n".join(wrong)


def test_a_refusal_says_why(world: World) -> None:
    with httpx.Client(base_url=world.server.url, timeout=30) as client:
        for caller, reason in (("anonymous", "unauthorized"), ("revoked", "token_revoked"),
                               ("expired", "token_expired")):
            token = world.tokens[caller]
            answer = client.get("/api/v1/repositories",
                                headers={"Authorization": f"Bearer {token}"} if token else {})
            assert answer.status_code == 401 and answer.json()["type"] == reason, answer.text
            assert answer.headers["www-authenticate"].startswith("Bearer")
        member = client.post("/api/v1/projects", json={"key": "NEW", "name": "New"},
                             headers={"Authorization": f"Bearer {world.tokens['member_with']}"})
        assert (member.status_code, member.json()["type"]) == (403, "admin_only")
        read_only = client.post(f"/api/v1/repositories/{_MISSING}/sync",
                                headers={"Authorization": f"Bearer {world.tokens['read_only']}"})
        assert (read_only.status_code, read_only.json()["type"]) == (403, "read_only_token")
        garbled = client.get("/api/v1/repositories", headers={"Authorization": "Basic YWRtaW46YWRtaW4="})
        assert (garbled.status_code, garbled.json()["type"]) == (401, "bad_token")


def test_a_project_a_member_may_not_browse_is_not_there_for_them(world: World) -> None:
    def ask(caller: str, path: str) -> httpx.Response:
        return httpx.get(f"{world.server.url}{path}", timeout=30,
                         headers={"Authorization": f"Bearer {world.tokens[caller]}"})

    assert ask("admin", "/api/v1/issues/OPS-1").json()["summary"] == "The secret ops issue"
    hidden = ask("member_with", "/api/v1/issues/OPS-1")
    assert hidden.status_code == 404 and "secret" not in hidden.text
    assert ask("member_with", "/api/v1/issues/APP-1").status_code == 200
    assert [p["key"] for p in ask("member_with", "/api/v1/projects").json()] == ["APP"]
    assert [p["key"] for p in ask("admin", "/api/v1/projects").json()] == ["APP", "OPS"]
    page = httpx.get(f"{world.server.url}/issues/OPS-1", timeout=30,
                     headers={"Authorization": f"Bearer {world.tokens['member_with']}", "Accept": "text/html"})
    assert page.status_code == 200 and "secret ops issue" not in page.text
