"""The whole GitHub path over loopback: a real ``devlink serve``, the stub GitHub API, real git over HTTP.

Link an account with a token, discover two repositories, link one, see the
webhook created on the stub, push a smart commit, post the matching signed
push webhook, and read the commit, the tracker comment and the pull request
from ``/api/v1/issues/{key}/development`` — then the CLI and the pages.
"""

import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from github_world import TOKEN, GitHubWorld
from servers import Server, start_server, stop_server

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "github-webhooks"


def push_payload(github: GitHubWorld, owner: str, name: str, before: str, after: str, message: str) -> bytes:
    """The corpus's push example with our repository, ref and commit spliced in (derived data)."""
    payload: dict[str, Any] = json.loads((CORPUS / "push.none.2.json").read_text())
    repo = github.stub.repo(owner, name)
    payload["repository"].update(id=repo["id"], name=name, full_name=f"{owner}/{name}",
                                 clone_url=repo["clone_url"], html_url=f"{github.stub.web_url}/{owner}/{name}")
    payload["repository"]["owner"].update(login=owner, name=owner)
    payload.update(ref="refs/heads/main", before=before, after=after, created=False, deleted=False)
    commit = {"id": after, "tree_id": after, "distinct": True, "message": message, "timestamp": "2026-11-23T12:00:00Z",
              "url": f"{github.stub.web_url}/{owner}/{name}/commit/{after}",
              "author": {"name": "Ada Lovelace", "email": "ada@example.com", "username": "ada"},
              "committer": {"name": "Ada Lovelace", "email": "ada@example.com", "username": "ada"},
              "added": [], "removed": [], "modified": ["file.txt"]}
    payload["commits"], payload["head_commit"] = [commit], commit
    return json.dumps(payload).encode()


def deliver(client: httpx.Client, github: GitHubWorld, event: str, body: bytes, *, signed: bytes | None = None,
            delivery: str | None = None) -> httpx.Response:
    """POST ``body`` as octo/api's hook delivers it (with the signature of ``signed``, if given, to tamper)."""
    headers = github.stub.delivery_headers(event, body if signed is None else signed, owner="octo", repo="api",
                                           delivery=delivery or str(uuid.uuid4()))
    return client.post("/hooks/github", content=body, headers=headers)


def wait_for(check: Any, what: str, server: Server, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} never happened\n{server.log.read_text()[-3000:]}")
        time.sleep(0.05)
    return result


def test_link_push_webhook_and_read_development(github: GitHubWorld, tmp_path: Path) -> None:
    api = github.repo("octo", "api")
    github.repo("octo", "web")
    api._clock = int(time.time()) - 600  # smart commits only act on recent commits
    server = start_server(tmp_path / "home", {"DEVLINK_BASE_URL": "http://devlink.example.test"})
    try:
        with server.client() as client:
            client.post("/api/v1/users", json={"username": "ada", "name": "Ada", "emails": ["ada@example.com"]})
            client.post("/api/v1/projects", json={"key": "API", "name": "API"})
            assert client.post("/api/v1/issues", json={"key": "API-7", "summary": "Rate limits"}).status_code == 201

            # link with a token: two repositories discovered, one linked
            created = client.post("/api/v1/accounts", json={
                "name": "octo", "url": github.stub.web_url, "token": TOKEN, "link": ["api"]})
            assert created.status_code == 201, created.text
            account = created.json()
            assert TOKEN not in created.text
            assert account["discovery"]["found"] == 2 and len(account["discovery"]["linked"]) == 1
            repos = {r["name"]: r for r in client.get(f"/api/v1/accounts/{account['id']}/repositories").json()}
            assert (repos["octo/api"]["linked"], repos["octo/web"]["linked"]) == (True, False)
            [hook] = github.stub.hooks("octo", "api")
            assert hook["config"]["url"] == "http://devlink.example.test/hooks/github"
            assert github.stub.hooks("octo", "web") == []
            repository_id = repos["octo/api"]["id"]
            view = server.wait_idle(repository_id)
            assert view["sync"]["commits_indexed"] == 1 and view["webhook"]["realtime"] is True

            # a pull request whose branch names the issue, then a pushed smart commit and its webhook
            github.stub.add_pull("octo", "api", title="Limit the API", head="API-7-rate-limits", user="ada")
            before = api.sha("HEAD")
            after = api.commit("API-7 #comment throttled the clients #time 30m")
            api.git("push", "-q", "origin", "main")
            body = push_payload(github, "octo", "api", before, after, "API-7 #comment throttled the clients")
            answer = deliver(client, github, "push", body)
            assert answer.status_code == 202 and answer.json()["status"] in ("queued", "coalesced")

            def linked() -> dict[str, Any] | None:
                doc: dict[str, Any] = client.get("/api/v1/issues/API-7/development").json()
                return doc if doc["summary"]["commits"] and doc["summary"]["pull_requests"] else None

            doc = wait_for(linked, "commit and pull request on API-7", server)
            [commit] = doc["commits"]
            assert commit["sha"] == after and commit["url"] == f"{github.stub.web_url}/octo/api/commit/{after}"
            [pull] = doc["pull_requests"]
            assert (pull["number"], pull["state"], pull["source_branch"], pull["target_branch"]) == (
                1, "open", "API-7-rate-limits", "main")
            assert pull["url"] == f"{github.stub.web_url}/octo/api/pull/1"
            assert doc["summary"]["pull_request_states"] == {"open": 1}
            issue = wait_for(lambda: client.get("/api/v1/issues/API-7").json()["comments"] and
                             client.get("/api/v1/issues/API-7").json(), "the smart-commit comment", server)
            assert [c["body"] for c in issue["comments"]] == ["throttled the clients"]
            assert [w["seconds"] for w in issue["worklogs"]] == [1800]

            # the same delivery again changes nothing; a tampered one is refused
            replay = deliver(client, github, "push", body, delivery="fixed-id")
            again = client.post("/hooks/github", content=body, headers=dict(replay.request.headers))
            assert again.json()["status"] == "duplicate"
            tampered = deliver(client, github, "push", body.replace(b"throttled", b"hijacked"), signed=body)
            assert tampered.status_code == 401

            # a pull request webhook updates that pull request at once
            github.stub.add_review("octo", "api", 1, "grace", "APPROVED")
            merged = json.loads((CORPUS / "pull_request.closed.1.json").read_text())
            stub_pull = json.loads(httpx.get(f"{github.stub.api_url}/repos/octo/api/pulls/1",
                                             headers={"Authorization": f"token {TOKEN}"}).text)
            # derived: GitHub sends the pull request as its API shows it; merged by us for the test
            merged["pull_request"] = {**stub_pull, "state": "closed", "merged": True,
                                      "merged_at": stub_pull["updated_at"], "updated_at": stub_pull["updated_at"]}
            merged["repository"] = json.loads(body)["repository"]
            assert deliver(client, github, "pull_request", json.dumps(merged).encode()).json()["status"] == "updated"
            doc = client.get("/api/v1/issues/API-7/development").json()
            assert doc["pull_requests"][0]["state"] == "merged"
            page = client.get("/issues/API-7").text
            assert 'class="badge pr-merged"' in page and "API-7-rate-limits" in page

            # the wizard pages
            accounts_page = client.get("/accounts").text
            assert "octo" in accounts_page and "1 of 2 linked" in accounts_page
            account_page = client.get(f"/accounts/{account['id']}").text
            assert "octo/web" in account_page and TOKEN not in account_page
        listed = server.cli("account", "list")
        assert listed.returncode == 0 and "octo" in listed.stdout and TOKEN not in listed.stdout
        for path in server.home.rglob("*"):
            if path.is_file() and path.suffix not in (".db", ".db-wal", ".db-shm"):
                assert TOKEN.encode() not in path.read_bytes(), path
        assert TOKEN not in server.log.read_text()
    finally:
        stop_server(server)


def test_the_ping_of_a_hook_being_created_is_accepted(github: GitHubWorld, tmp_path: Path) -> None:
    """GitHub pings a new hook at once, often before devlink has its id: that ping must verify, not get 401."""
    github.repo("octo", "api")
    github.stub.add_org("acme", members=["octo"])
    github.repo("acme", "tools")
    github.stub.add_token(TOKEN, "octo", "repo, admin:repo_hook, admin:org_hook, read:org")  # an org hook too
    github.stub.ping_hooks = True  # the stub pings before it answers the hook's creation: the worst case
    server = start_server(tmp_path / "home", own_base_url=True)
    try:
        with server.client() as client:
            for name in ("octo", "acme"):
                created = client.post("/api/v1/accounts", json={"name": name, "url": github.stub.web_url,
                                                                "token": TOKEN, "link": "all"})
                assert created.status_code == 201, created.text
            repos = {r["name"]: r for r in client.get("/api/v1/repositories").json()}
    finally:
        stop_server(server)
    hooks = [h["id"] for repo in github.stub.repos.values() for h in repo["hooks"]]
    org_hooks = [h["id"] for h in github.stub.accounts["acme"]["hooks"]]
    assert org_hooks, "the organisation got no hook of its own: its ping was not tried"
    assert sorted(github.stub.pings) == sorted((hook, 202) for hook in hooks + org_hooks), server.log.read_text()
    assert repos["octo/api"]["webhook"]["state"] == "installed"
