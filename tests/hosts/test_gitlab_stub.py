"""The GitLab stub is faithful: corpus shapes, GitLab's auth errors, visibility, offset and keyset pagination,
hooks, merge requests, rate limits, OAuth with PKCE and rotating refresh tokens, git over HTTP, TLS — over real HTTP."""

import base64
import hashlib
import re
import ssl
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from gitlab_stub import GitLabStub, encoded, example
from gitrepos import GitRepo
from tls import self_signed

TOKEN = "glpat-" + "a" * 20
pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def stub() -> Iterator[GitLabStub]:
    with GitLabStub() as server:
        server.add_user("ada")
        server.add_token(TOKEN, "ada")
        server.add_group("acme")
        server.add_group("platform", "acme")
        server.add_group("core", "acme/platform")
        server.add_member("acme", "ada", 40)
        yield server
        assert server.errors == []  # no request hit a bug of the stub


def api(stub: GitLabStub, token: str | None = TOKEN) -> httpx.Client:
    return httpx.Client(base_url=stub.api_url, headers={"PRIVATE-TOKEN": token} if token else {}, timeout=10)


def test_answers_keep_the_corpus_shapes(stub: GitLabStub) -> None:
    stub.add_project("acme/platform/core", "widgets")
    stub.add_merge_request("acme/platform/core/widgets", title="KEY-1 fix", source_branch="KEY-1-fix", author="bob",
                           reviewers=["cy"], user_notes_count=3, draft=True)
    with api(stub) as client:
        listed = client.get("/groups/acme/projects", params={"include_subgroups": "true"}).json()
        project = client.get(f"/projects/{encoded('acme/platform/core/widgets')}").json()
        mrs = client.get(f"/projects/{project['id']}/merge_requests").json()
        mr = client.get(f"/projects/{project['id']}/merge_requests/1").json()
        group = client.get(f"/groups/{encoded('acme/platform')}").json()
        namespace = client.get(f"/namespaces/{encoded('acme/platform/core')}").json()
    template = example("GET_api_v4_groups_{id}_projects")
    conditional = {"forked_from_project", "license", "license_url", "statistics", "custom_attributes", "owner"}
    assert set(listed[0]) == set(template) - conditional  # runners_token stays: ada is a maintainer
    assert set(project) == set(listed[0]) | {"permissions"}
    assert project["path_with_namespace"] == "acme/platform/core/widgets"
    assert project["http_url_to_repo"] == f"{stub.web_url}/acme/platform/core/widgets.git"
    assert project["web_url"] == f"{stub.web_url}/acme/platform/core/widgets"
    assert project["namespace"]["full_path"] == "acme/platform/core" and project["namespace"]["kind"] == "group"
    assert project["permissions"] == {"project_access": None, "group_access": {"access_level": 40,
                                                                               "notification_level": 3}}
    assert "string" not in project.values()  # schema placeholders never leak
    assert set(mrs[0]) == set(example("GET_api_v4_projects_{id}_merge_requests")) - {"title_html",
                                                                                     "description_html"}
    assert (mr["title"], mr["draft"], mr["user_notes_count"]) == ("Draft: KEY-1 fix", True, 3)
    assert [r["username"] for r in mr["reviewers"]] == ["cy"] and mr["author"]["username"] == "bob"
    assert mr["references"]["full"] == "acme/platform/core/widgets!1" and mr["merged_at"] is None
    assert mr["web_url"] == f"{stub.web_url}/acme/platform/core/widgets/-/merge_requests/1"
    assert {"diff_refs", "user", "changes_count"} <= set(mr) - set(mrs[0])
    assert group["full_path"] == "acme/platform" and group["full_name"] == "acme / platform"
    assert group["web_url"] == f"{stub.web_url}/groups/acme/platform" and "runners_token" not in group
    assert namespace["kind"] == "group" and namespace["parent_id"] == group["id"] and namespace["plan"] == "free"


def test_tokens_scopes_and_errors_as_gitlab_answers_them(stub: GitLabStub) -> None:
    stub.add_project("acme", "widgets")
    stub.add_token("read-user-only", "ada", scopes=("read_user",))
    stub.add_token("old", "ada", expires_at=date.today() - timedelta(days=1))
    stub.add_token("glgat-bot", "group_9_bot_1f2e", kind="group", resource="acme", scopes=("read_api",),
                   name="devlink", expires_at=date(2099, 1, 1))
    stub.version = "17.2.1-ee"
    with api(stub, None) as anonymous:
        assert anonymous.get("/user").json() == {"message": "401 Unauthorized"}
        assert anonymous.get(f"/projects/{encoded('acme/widgets')}").json() == {"message": "404 Project Not Found"}
    with api(stub, "nope") as client:
        assert client.get("/user").status_code == 401
    with api(stub, "old") as client:
        expired = client.get("/user")
        assert expired.status_code == 401 and expired.json()["error"] == "invalid_token"
        assert "expired" in expired.json()["error_description"] and "invalid_token" in expired.headers[
            "WWW-Authenticate"]
    with api(stub, "read-user-only") as client:
        assert client.get("/user").json()["username"] == "ada"
        refused = client.get("/groups/acme/projects")
        assert refused.status_code == 403 and refused.json()["error"] == "insufficient_scope"
        assert refused.json()["scope"] == "api read_api"
    with httpx.Client(base_url=stub.api_url, headers={"Authorization": "Bearer glgat-bot"}) as bot:
        me, token = bot.get("/user").json(), bot.get("/personal_access_tokens/self").json()
        assert (me["username"], me["bot"]) == ("group_9_bot_1f2e", True)
        assert token == token | {"name": "devlink", "scopes": ["read_api"], "active": True, "revoked": False,
                                 "expires_at": "2099-01-01", "user_id": me["id"]}
        assert [p["path"] for p in bot.get("/groups/acme/projects").json()] == ["widgets"]
        assert bot.post(f"/projects/{encoded('acme/widgets')}/hooks", json={"url": "http://x"}).status_code == 403
        assert bot.get("/version").json()["version"] == "17.2.1-ee"
    with api(stub) as client:
        assert client.get("/groups/nowhere").json() == {"message": "404 Group Not Found"}
        assert client.get("/no/such/route").json() == {"error": "404 Not Found"}
        assert client.get("/users", params={"username": "ADA"}).json()[0]["username"] == "ada"
    assert stub.requests[0].auth is None and stub.requests[-1].auth == "private-token"


def test_visibility_follows_membership_and_namespaces(stub: GitLabStub) -> None:
    stub.add_user("bob")
    stub.add_token("bob-token", "bob")
    stub.add_project("acme", "private-one")
    stub.add_project("acme/platform/core", "deep", archived=True)
    stub.add_project("bob", "dotfiles")
    with pytest.raises(ValueError):
        stub.add_project("acme/platform", "leak", visibility="public")  # GitLab refuses it: the group is private
    stub.groups["acme"]["visibility"] = "public"
    stub.add_project("acme", "open", visibility="public")
    stub.add_project("acme", "inside", visibility="internal")
    with api(stub) as ada, api(stub, "bob-token") as bob, api(stub, None) as anonymous:
        everything = ada.get("/groups/acme/projects", params={"include_subgroups": "true"}).json()
        assert {p["path"] for p in everything} == {"private-one", "deep", "open", "inside"}
        direct = ada.get("/groups/acme/projects").json()
        assert {p["path"] for p in direct} == {"private-one", "open", "inside"}
        archived = ada.get("/groups/acme/projects", params={"include_subgroups": "true", "archived": "true"})
        assert [p["path"] for p in archived.json()] == ["deep"]
        assert {p["path"] for p in bob.get("/groups/acme/projects").json()} == {"open", "inside"}
        assert {p["path"] for p in anonymous.get("/groups/acme/projects").json()} == {"open"}
        assert bob.get(f"/projects/{encoded('acme/private-one')}").status_code == 404
        own = bob.get("/users/bob/projects").json()
        assert [p["path_with_namespace"] for p in own] == ["bob/dotfiles"] and own[0]["owner"]["username"] == "bob"
        assert ada.get("/users/bob/projects").json() == []
        assert bob.get("/namespaces/bob").json()["kind"] == "user" and ada.get("/namespaces/bob").status_code == 404
    stub.rename_project("acme/open", "opened")
    stub.transfer_project("acme/opened", "acme/platform")
    with api(stub) as ada:
        moved = ada.get(f"/projects/{encoded('acme/open')}").json()  # old paths keep resolving
        assert moved["path_with_namespace"] == "acme/platform/opened"
        stub.delete_project("acme/platform/opened")
        assert ada.get(f"/projects/{moved['id']}").json() == {"message": "404 Project Not Found"}


def test_offset_and_keyset_pagination(stub: GitLabStub) -> None:
    ids = [stub.add_project("acme", f"p{n}", created_at=datetime(2024, 1, 1, tzinfo=UTC) + timedelta(days=n))["id"]
           for n in range(5)]
    with api(stub) as client:
        first = client.get("/groups/acme/projects", params={"per_page": 2})
        assert [p["id"] for p in first.json()] == ids[::-1][:2]  # created_at desc by default
        assert (first.headers["X-Page"], first.headers["X-Next-Page"], first.headers["X-Total"]) == ("1", "2", "5")
        assert first.headers["X-Total-Pages"] == "3" and first.headers["X-Prev-Page"] == ""
        assert set(first.links) == {"next", "first", "last"}
        last = client.get(first.links["last"]["url"])
        assert last.headers["X-Next-Page"] == "" and [p["id"] for p in last.json()] == [ids[0]]
        assert client.get("/groups/acme/projects", params={"per_page": 500}).headers["X-Per-Page"] == "100"
        walked, url = [], f"{stub.api_url}/groups/acme/projects?pagination=keyset&order_by=id&sort=asc&per_page=2"
        while True:
            page = client.get(url)
            assert "X-Total" not in page.headers and set(page.links) <= {"next"}
            walked += [p["id"] for p in page.json()]
            if "next" not in page.links:
                break
            url = page.links["next"]["url"]
        assert walked == ids
        refused = client.get("/groups/acme/projects", params={"pagination": "keyset"})
        assert refused.status_code == 405
        assert refused.json() == {"error": "Keyset pagination is not yet available for this type of request"}


def test_hooks_crud_keeps_the_token_write_only(stub: GitLabStub) -> None:
    stub.add_project("acme", "widgets")
    stub.add_user("dev")
    stub.add_member("acme/widgets", "dev", 30)
    stub.add_token("dev-token", "dev")
    hooks = f"/projects/{encoded('acme/widgets')}/hooks"
    with api(stub) as client:
        created = client.post(hooks, json={"url": "http://127.0.0.1:9/hooks/gitlab", "token": "s3cret",
                                           "merge_requests_events": True, "push_events": True})
        assert created.status_code == 201
        hook = created.json()
        assert "token" not in hook and hook["merge_requests_events"] is True and hook["tag_push_events"] is False
        assert hook["enable_ssl_verification"] is True and hook["project_id"] == stub.project("acme/widgets")["id"]
        assert stub.hooks("acme/widgets")[0]["token"] == "s3cret"
        assert client.post(hooks, json={}).json() == {"error": "url is missing"}
        edited = client.put(f"{hooks}/{hook['id']}", data={"tag_push_events": "true"}).json()
        assert edited["tag_push_events"] is True and edited["url"] == hook["url"]
        assert [h["id"] for h in client.get(hooks).json()] == [hook["id"]]
        assert client.delete(f"{hooks}/{hook['id']}").status_code == 204
        assert client.get(f"{hooks}/{hook['id']}").json() == {"message": "404 Not found"}
        assert client.get("/groups/acme/hooks").json() == {"error": "404 Not Found"}  # Free: no group hooks
        stub.tier = "premium"
        assert client.get("/groups/acme/hooks").status_code == 403  # Maintainer of acme, not Owner
        stub.add_member("acme", "ada", 50)
        assert client.post("/groups/acme/hooks", json={"url": "http://127.0.0.1:9/h"}).json()["group_id"] > 0
        with api(stub, "dev-token") as developer:  # a Developer may not manage hooks
            assert developer.post(hooks, json={"url": "http://127.0.0.1:9/h"}).json() == {"message": "403 Forbidden"}
        stub.deny_hooks("acme/widgets")
        assert client.get(hooks).json() == {"message": "403 Forbidden"}


def test_merge_requests_filters_approvals_and_disabled_feature(stub: GitLabStub) -> None:
    stub.add_project("acme", "widgets")
    stub.add_project("acme", "no-mrs", merge_requests_enabled=False)
    base = datetime(2024, 5, 1, tzinfo=UTC)
    for n in range(1, 4):
        stub.add_merge_request("acme/widgets", title=f"KEY-{n}", source_branch=f"b{n}", author="ada",
                               updated_at=base + timedelta(hours=n))
    stub.update_merge_request("acme/widgets", 2, state="merged", updated_at=base + timedelta(hours=10))
    stub.add_approval("acme/widgets", 2, "cy")
    path = f"/projects/{encoded('acme/widgets')}/merge_requests"
    with api(stub) as client:
        recent = client.get(path, params={"state": "all", "order_by": "updated_at", "sort": "desc",
                                          "updated_after": (base + timedelta(hours=2)).isoformat(), "per_page": 1})
        assert [m["iid"] for m in recent.json()] == [2] and recent.headers["X-Total"] == "2"  # KEY-1 is older
        assert [m["iid"] for m in client.get(recent.links["next"]["url"]).json()] == [3]
        assert [m["iid"] for m in client.get(path, params={"state": "opened"}).json()] == [3, 1]
        merged = client.get(f"{path}/2").json()
        assert merged["state"] == "merged" and merged["merged_at"] == "2024-05-01T10:00:00.000Z"
        approvals = client.get(f"{path}/2/approvals").json()
        assert approvals["approved"] is True and approvals["approved_by"][0]["user"]["username"] == "cy"
        assert client.get(f"{path}/9").json() == {"message": "404 Not found"}
        disabled = client.get(f"/projects/{encoded('acme/no-mrs')}/merge_requests")
        assert (disabled.status_code, disabled.json()) == (403, {"message": "403 Forbidden"})


def test_rate_limits_injected_failures_and_request_log(stub: GitLabStub) -> None:
    with api(stub) as client:
        first = client.get("/user")
        assert first.headers["RateLimit-Limit"] == "2000" and first.headers["RateLimit-Observed"] == "1"
        assert int(first.headers["RateLimit-Reset"]) > time.time()
        stub.set_rate_limit(1, limit=10, reset=time.time() + 30)
        assert client.get("/user").headers["RateLimit-Remaining"] == "0"
        limited = client.get("/user")
        assert limited.status_code == 429 and limited.text == "Retry later\n"
        assert 1 <= int(limited.headers["Retry-After"]) <= 30
        stub.set_rate_limit(100)
        stub.fail_next("GET", re.compile(r"/groups/[^/]+/projects$"), 502, times=2)
        assert [client.get("/groups/acme/projects").status_code for _ in range(3)] == [502, 502, 200]
        stub.fail_next("*", "/user", 500, body={"message": "boom"})
        assert client.get("/user").json() == {"message": "boom"}
        etag = client.get("/user").headers["ETag"]
        assert client.get("/user", headers={"If-None-Match": etag}).status_code == 304
    assert [r.path for r in stub.requests[-3:]] == ["/api/v4/user"] * 3
    assert stub.requests[-1].headers["if-none-match"] == etag


def _pkce() -> tuple[str, str]:
    verifier = base64.urlsafe_b64encode(b"v" * 40).rstrip(b"=").decode()
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def test_oauth_pkce_code_flow_and_rotating_refresh_tokens(stub: GitLabStub) -> None:
    callback = "http://127.0.0.1:9/oauth/callback"
    stub.add_oauth_app("app-id", "app-secret", callback)
    stub.oauth_user = "ada"
    verifier, challenge = _pkce()
    with httpx.Client(base_url=stub.web_url, timeout=10) as web:
        def authorize() -> str:
            answer = web.get("/oauth/authorize", params={
                "client_id": "app-id", "redirect_uri": callback, "response_type": "code", "state": "xyz",
                "scope": "api read_repository", "code_challenge": challenge, "code_challenge_method": "S256"})
            assert answer.status_code == 302
            query = parse_qs(urlsplit(answer.headers["Location"]).query)
            assert query["state"] == ["xyz"] and answer.headers["Location"].startswith(callback + "?")
            return query["code"][0]

        exchange = {"grant_type": "authorization_code", "client_id": "app-id", "client_secret": "app-secret",
                    "redirect_uri": callback}
        code = authorize()
        bad = web.post("/oauth/token", data=exchange | {"code": code, "code_verifier": "wrong" * 10})
        assert (bad.status_code, bad.json()["error"]) == (400, "invalid_grant")
        code = authorize()
        assert web.post("/oauth/token", data=exchange | {"code": code, "code_verifier": verifier,
                                                         "client_secret": "x"}).json()["error"] == "invalid_client"
        code = authorize()
        granted = web.post("/oauth/token", data=exchange | {"code": code, "code_verifier": verifier}).json()
        assert granted["token_type"] == "Bearer" and granted["expires_in"] == 7200
        assert granted["scope"] == "api read_repository"
        again = web.post("/oauth/token", data=exchange | {"code": code, "code_verifier": verifier})
        assert again.json()["error"] == "invalid_grant"  # codes are single-use
        info = web.get("/oauth/token/info", headers={"Authorization": f"Bearer {granted['access_token']}"}).json()
        assert info["scope"] == ["api", "read_repository"] and 0 < info["expires_in_seconds"] <= 7200
        refresh = {"grant_type": "refresh_token", "client_id": "app-id", "client_secret": "app-secret"}
        renewed = web.post("/oauth/token", data=refresh | {"refresh_token": granted["refresh_token"]}).json()
        assert renewed["refresh_token"] != granted["refresh_token"]
        reused = web.post("/oauth/token", data=refresh | {"refresh_token": granted["refresh_token"]})
        assert (reused.status_code, reused.json()["error"]) == (400, "invalid_grant")
    with httpx.Client(base_url=stub.api_url, headers={"Authorization": f"Bearer {granted['access_token']}"}) as old:
        assert "revoked" in old.get("/user").json()["error_description"]  # refreshing revoked the old pair
    assert stub.token_requests == {"authorization_code": 4, "refresh_token": 2}
    with httpx.Client(base_url=stub.api_url, headers={"Authorization": f"Bearer {renewed['access_token']}"}) as me:
        assert me.get("/user").json()["username"] == "ada"
        assert me.get("/personal_access_tokens/self").status_code == 404  # an OAuth token is no PAT
        stub.expire_access_token(renewed["access_token"])
        assert me.get("/user").json()["error"] == "invalid_token"


def test_git_over_http_takes_tokens_as_basic_passwords(stub: GitLabStub, tmp_path: Path, git_repo: GitRepo) -> None:
    stub.add_group("empty")
    stub.add_project("acme", "widgets")
    stub.add_token("read-only", "ada", scopes=("read_api",))
    root = tmp_path / "repos"
    bare = root / "acme" / "widgets.git"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    sha = git_repo.commit("KEY-1 first")
    git_repo.git("push", "-q", str(bare), "HEAD:refs/heads/main")
    stub.serve_git(root)
    host = stub.web_url.removeprefix("http://")

    def ls_remote(userinfo: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", "ls-remote", f"http://{userinfo}{host}/acme/widgets.git"], capture_output=True,
                              text=True, env={"GIT_TERMINAL_PROMPT": "0", "PATH": "/usr/bin:/bin"}, timeout=30)

    good = ls_remote(f"oauth2:{TOKEN}@")
    assert good.returncode == 0 and f"{sha}\trefs/heads/main" in good.stdout
    assert ls_remote("oauth2:wrong@").returncode != 0
    assert ls_remote("oauth2:read-only@").returncode != 0  # read_api is no git scope
    assert ls_remote("").returncode != 0  # a private project wants credentials
    refused = httpx.get(f"{stub.web_url}/acme/widgets.git/info/refs?service=git-upload-pack")
    assert refused.status_code == 401 and refused.headers["WWW-Authenticate"] == 'Basic realm="GitLab"'
    assert ("GET", "/acme/widgets.git/info/refs", "oauth2") in stub.git_requests


def test_tls_and_delivery_headers(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    with GitLabStub(tls=(cert, key)) as stub:
        stub.add_token(TOKEN, "ada")
        assert stub.web_url.startswith("https://127.0.0.1:")
        with httpx.Client(verify=ssl.create_default_context(cafile=str(cert)), timeout=10) as client:
            version = client.get(f"{stub.api_url}/version", headers={"PRIVATE-TOKEN": TOKEN}).json()
        assert version["version"] == "17.5.0-ee" and version["revision"]
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{stub.api_url}/version", timeout=10)  # the private CA is not trusted by default
        headers = stub.delivery_headers("Push Hook", "s3cret", uuid="u-1")
        assert headers["X-Gitlab-Event"] == "Push Hook" and headers["X-Gitlab-Token"] == "s3cret"
        assert headers["X-Gitlab-Event-UUID"] == "u-1" and headers["X-Gitlab-Instance"] == stub.web_url
        assert headers["User-Agent"] == "GitLab/17.5.0" and headers["Content-Type"] == "application/json"
        assert headers["X-Gitlab-Webhook-UUID"] != headers["X-Gitlab-Event-UUID"]
        assert stub.errors == []
