"""The whole GitLab path over loopback, on SQLite and PostgreSQL: a real ``devlink serve``, the stub GitLab API,
real git over HTTP on the stub's origin.

Link a group with subgroups, discover, link a project three levels deep, see its hook on the stub, push a smart
commit, post the push hook with the hook's token, and read the commit, the smart commit's effect and a merge
request (with an approval) from ``/api/v1/issues/{key}/development``.
"""

import json
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from gitlab_world import TOKEN, GitLabWorld
from servers import Server, start_server, stop_server

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "gitlab-webhooks"
BASE_URL = "http://devlink.example.test"  # what hooks are registered with; never dialled
DEEP = "acme/platform/core/app"


def push_payload(gitlab: GitLabWorld, path: str, before: str, after: str, message: str) -> bytes:
    """The corpus's push example with our project, ref and commit spliced in (derived data)."""
    payload: dict[str, Any] = json.loads((CORPUS / "go-scm" / "push.json").read_text())
    project = gitlab.stub.project(path)
    web = f"{gitlab.stub.web_url}/{path}"
    payload["project"].update(id=project["id"], path_with_namespace=path, web_url=web, git_http_url=f"{web}.git",
                              http_url=f"{web}.git", homepage=web, default_branch="main")
    payload.update(project_id=project["id"], ref="refs/heads/main", before=before, after=after, checkout_sha=after,
                   total_commits_count=1)
    payload["commits"] = [{"id": after, "message": message, "timestamp": "2026-11-23T12:00:00Z",
                           "url": f"{web}/-/commit/{after}", "author": {"name": "Ada", "email": "ada@example.com"},
                           "added": [], "modified": ["file.txt"], "removed": []}]
    return json.dumps(payload).encode()


def wait_for(check: Any, what: str, server: Server, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} never happened\n{server.log.read_text()[-3000:]}")
        time.sleep(0.05)
    return result


def test_link_a_group_push_a_smart_commit_and_read_development(
    gitlab: GitLabWorld, tmp_path: Path, database_url: str
) -> None:
    gitlab.group("acme/platform/core")
    app = gitlab.project("acme/platform/core", "app")
    gitlab.project("acme", "web")
    gitlab.stub.add_user("grace")
    app._clock = int(time.time()) - 600  # smart commits only act on recent commits
    server = start_server(tmp_path / "home", {"DEVLINK_BASE_URL": BASE_URL, "DEVLINK_DATABASE_URL": database_url})
    try:
        with server.client() as client:
            client.post("/api/v1/users", json={"username": "ada", "name": "Ada", "emails": ["ada@example.com"]})
            client.post("/api/v1/projects", json={"key": "API", "name": "API"})
            assert client.post("/api/v1/issues", json={"key": "API-7", "summary": "Rate limits"}).status_code == 201

            created = client.post("/api/v1/accounts", json={
                "host": "gitlab", "name": "acme", "url": gitlab.stub.web_url, "token": TOKEN, "link": [DEEP]})
            assert created.status_code == 201, created.text
            account = created.json()
            assert TOKEN not in created.text
            assert (account["kind"], account["host"]["host_kind"]) == ("group", "gitlab")
            assert account["discovery"]["found"] == 2 and len(account["discovery"]["linked"]) == 1
            repos = {r["name"]: r for r in client.get(f"/api/v1/accounts/{account['id']}/repositories").json()}
            assert set(repos) == {DEEP, "acme/web"}  # the full path, every segment of it
            assert (repos[DEEP]["linked"], repos["acme/web"]["linked"]) == (True, False)
            assert repos[DEEP]["host_path"] == DEEP and repos[DEEP]["kind"] == "gitlab"

            project = gitlab.stub.project(DEEP)
            [hook] = gitlab.stub.hooks(DEEP)
            assert hook["url"] == f"{BASE_URL}/hooks/gitlab?project={project['id']}"
            assert hook["push_events"] and hook["tag_push_events"] and hook["merge_requests_events"]
            assert gitlab.stub.hooks("acme/web") == []
            repository_id = repos[DEEP]["id"]
            view = server.wait_idle(repository_id)
            assert view["sync"]["commits_indexed"] == 1, view
            assert view["webhook"]["state"] == "installed" and view["webhook"]["realtime"] is True

            # a merge request whose branch names the issue, approved; then a pushed smart commit and its hook
            gitlab.stub.add_merge_request(DEEP, title="Limit the API", source_branch="API-7-rate-limits",
                                          author="ada", reviewers=["grace"])
            gitlab.stub.add_approval(DEEP, 1, "grace")
            before = app.sha("HEAD")
            after = app.commit("API-7 #comment throttled the clients #time 30m")
            app.git("push", "-q", "origin", "main")
            body = push_payload(gitlab, DEEP, before, after, "API-7 #comment throttled the clients #time 30m")
            query = parse_qs(urlsplit(hook["url"]).query)
            headers = gitlab.stub.delivery_headers("Push Hook", hook["token"], uuid=str(uuid.uuid4()))
            answer = client.post("/hooks/gitlab", params={"project": query["project"][0]}, content=body,
                                 headers=headers)
            assert answer.status_code == 202 and answer.json()["status"] in ("queued", "coalesced"), answer.text

            def linked() -> dict[str, Any] | None:
                doc: dict[str, Any] = client.get("/api/v1/issues/API-7/development").json()
                return doc if doc["summary"]["commits"] and doc["summary"]["pull_requests"] else None

            doc = wait_for(linked, "commit and merge request on API-7", server)
            [commit] = doc["commits"]
            assert commit["sha"] == after
            [pull] = doc["pull_requests"]
            assert (pull["number"], pull["state"], pull["source_branch"], pull["target_branch"]) == (
                1, "open", "API-7-rate-limits", "main")
            assert pull["url"] == f"{gitlab.stub.web_url}/{DEEP}/-/merge_requests/1"
            assert {(r["login"], r["state"]) for r in pull["reviewers"]} == {("grace", "approved")}
            issue = wait_for(lambda: client.get("/api/v1/issues/API-7").json()["comments"] and
                             client.get("/api/v1/issues/API-7").json(), "the smart-commit comment", server)
            assert [c["body"] for c in issue["comments"]] == ["throttled the clients"]
            assert [w["seconds"] for w in issue["worklogs"]] == [1800]

            # the same delivery again changes nothing; a wrong token is refused
            again = client.post("/hooks/gitlab", params={"project": query["project"][0]}, content=body,
                                headers=headers)
            assert again.status_code == 202 and again.json()["status"] == "duplicate"
            wrong = client.post("/hooks/gitlab", params={"project": query["project"][0]}, content=body,
                                headers={**headers, "X-Gitlab-Token": "not-the-secret"})
            assert wrong.status_code == 401

            # unlinking removes the project's hook
            unlinked = client.post(f"/api/v1/accounts/{account['id']}/repositories/unlink",
                                   json={"repositories": [DEEP]})
            assert unlinked.status_code in (200, 204), unlinked.text
            assert gitlab.stub.hooks(DEEP) == []
        for path in server.home.rglob("*"):
            if path.is_file() and path.suffix not in (".db", ".db-wal", ".db-shm"):
                assert TOKEN.encode() not in path.read_bytes(), path
        log = server.log.read_text()
        assert TOKEN not in log and hook["token"] not in log
    finally:
        stop_server(server)


def test_a_self_managed_gitlab_behind_a_private_ca_reaches_git_too(tmp_path: Path) -> None:
    """The CA bundle given for the host reaches git as well as the API: the first fetch verifies it."""
    from tls import self_signed

    (tmp_path / "tls").mkdir()
    cert, key = self_signed(tmp_path / "tls")
    world = GitLabWorld(tmp_path / "gitlab", tls=(cert, key))
    try:
        world.group("acme")
        world.project("acme", "api")
        server = start_server(tmp_path / "home", {"DEVLINK_BASE_URL": BASE_URL})
        try:
            with server.client() as client:
                refused = client.post("/api/v1/accounts", json={
                    "host": "gitlab", "name": "acme", "url": world.stub.web_url, "token": TOKEN})
                assert refused.status_code == 422 and refused.json()["type"] == "tls", refused.text
                assert "ca" in refused.json()["hint"].lower()
            added = server.cli("account", "add", "gitlab", "acme", "--url", world.stub.web_url, "--token", "-",
                               "--ca-bundle", str(cert), "--link", "all", input=TOKEN + "\n")
            assert added.returncode == 0, added.stderr
            with server.client() as client:
                [repo] = client.get("/api/v1/repositories").json()
                view = server.wait_idle(repo["id"])
            assert view["sync"]["state"] == "idle" and view["sync"]["commits_indexed"] == 1, view
        finally:
            stop_server(server)
    finally:
        world.close()


def test_the_wizard_offers_gitlab(gitlab: GitLabWorld, tmp_path: Path) -> None:
    gitlab.group("acme")
    gitlab.project("acme", "api")
    server = start_server(tmp_path / "home", {"DEVLINK_BASE_URL": BASE_URL})
    try:
        with server.client() as client:
            page = client.get("/accounts").text
            assert '<option value="gitlab">GitLab</option>' in page
            answer = client.post("/accounts", data={"kind": "gitlab", "url": gitlab.stub.web_url, "name": "acme",
                                                    "token": TOKEN, "link_all": "1"},
                                 headers={"Origin": server.url})
            assert answer.status_code == 303, answer.text
            account_page = client.get(answer.headers["location"]).text
            assert "acme/api" in account_page and TOKEN not in account_page
    finally:
        stop_server(server)
    assert httpx.get(f"{gitlab.stub.api_url}/version").status_code in (200, 401)
