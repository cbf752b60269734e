"""Hosts and accounts over a real ``devlink serve``: the shared-host attack, the hosts API, exact lookups.

The attacker runs a GitHub of their own (a second stub, on another loopback port) that records every request
it receives; the victim's token must never be among them.
"""

from pathlib import Path
from typing import Any

import httpx

from github_stub import GitHubStub
from github_world import TOKEN, GitHubWorld
from servers import Server, start_server, stop_server

MALLORY = "ghp_" + "m4ll0ry0" * 4 + "evil"


def serve(tmp_path: Path) -> Server:
    return start_server(tmp_path / "home", {"DEVLINK_BASE_URL": "http://devlink.example.test"})


def link(client: httpx.Client, github: GitHubWorld, name: str, **extra: Any) -> dict[str, Any]:
    answer = client.post("/api/v1/accounts", json={"name": name, "url": github.stub.web_url, "token": TOKEN, **extra})
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


def test_an_account_linked_with_an_api_url_of_ones_own_never_gets_the_victims_token(
    github: GitHubWorld, tmp_path: Path
) -> None:
    github.repo("octo", "api")
    server = serve(tmp_path)
    try:
        with GitHubStub() as attacker, server.client() as client:
            attacker.add_user("mallory")
            attacker.add_token(MALLORY, "mallory")
            victim = link(client, github, "octo", link="all")
            attack = client.post("/api/v1/accounts", json={
                "name": "mallory", "url": github.stub.web_url, "api_url": attacker.api_url, "token": MALLORY})
            assert attack.status_code == 409, attack.text
            problem = attack.json()
            assert problem["type"] == "host_settings" and "api_url" in problem["title"]
            assert "never changes a host's settings" in problem["title"] and "devlink host set" in problem["hint"]
            # the victim's account keeps working against its own host
            assert client.post(f"/api/v1/accounts/{victim['id']}/discover").status_code == 200
            # the same attempt from the CLI, on the same data
            cli = server.cli("account", "add", "github", "mallory", "--url", github.stub.web_url,
                             "--api-url", attacker.api_url, "--token", "-", "--no-sync", input=MALLORY + "\n")
            assert cli.returncode == 1 and "never changes a host's settings" in cli.stderr, cli.stderr
            assert "devlink host set" in cli.stderr
            assert not [r for r in attacker.requests if TOKEN in r.headers.get("authorization", "")]
            assert attacker.requests == []  # nothing at all went there
            [host] = client.get("/api/v1/hosts").json()
            assert host["api_url"] == github.stub.api_url
            assert [a["name"] for a in client.get("/api/v1/accounts").json()] == ["octo"]
    finally:
        stop_server(server)


def test_the_hosts_api_shows_and_changes_settings_and_never_returns_a_secret(
    github: GitHubWorld, tmp_path: Path
) -> None:
    github.repo("octo", "api")
    server = serve(tmp_path)
    try:
        with server.client() as client:
            account = link(client, github, "octo")
            name = github.stub.web_url.split("//")[1]
            [listed] = client.get("/api/v1/hosts").json()
            assert listed == client.get(f"/api/v1/hosts/{name}").json() == client.get(
                f"/api/v1/hosts/{listed['id']}").json()
            assert (listed["name"], listed["api_url"], listed["oauth_client_secret_set"]) == (
                name, github.stub.api_url, False)
            changed = client.patch(f"/api/v1/hosts/{name}", json={
                "timeout": 12, "oauth_client_id": "Iv1.abc", "oauth_client_secret": "s3cr3t-v4lue",
                "app_webhook_secret": "h00k-s3cr3t"})
            assert changed.status_code == 200, changed.text
            view = changed.json()
            assert (view["timeout"], view["oauth_client_id"], view["oauth_client_secret_set"],
                    view["app_webhook_secret_set"], view["repinned"]) == (12, "Iv1.abc", True, True, [])
            for text in (changed.text, client.get("/api/v1/hosts").text, client.get("/api/v1/accounts").text):
                assert "s3cr3t-v4lue" not in text and "h00k-s3cr3t" not in text

            # a new API address, chosen by the admin: the host's accounts follow it, and the answer says so
            moved = f"http://localhost:{github.stub.port}/api/v3"
            repinned = client.patch(f"/api/v1/hosts/{name}", json={"api_url": moved}).json()
            assert (repinned["api_url"], repinned["repinned"]) == (moved, ["octo"])
            mark = len(github.stub.requests)
            assert client.post(f"/api/v1/accounts/{account['id']}/discover").status_code == 200
            assert github.stub.requests[mark].headers["host"] == f"localhost:{github.stub.port}"

            for bad in ({"api_url": "ftp://example.com"}, {"timeout": -1}, {"no_such_setting": 1},
                        {"app_id": "1"}, {"api_url": "http://user:pw@example.com/api/v3"}):
                refused = client.patch(f"/api/v1/hosts/{name}", json=bad)
                assert refused.status_code == 422, (bad, refused.text)
            assert client.get("/api/v1/hosts/nowhere.example").status_code == 404
            assert client.patch("/api/v1/hosts/nowhere.example", json={"timeout": 5}).status_code == 404
            assert client.get(f"/api/v1/hosts/{name}").json()["api_url"] == moved  # the refusals changed nothing
    finally:
        stop_server(server)


def test_account_and_repository_lookups_over_the_api_are_exact(github: GitHubWorld, tmp_path: Path) -> None:
    github.stub.add_org("acme", members=["octo"])
    github.repo("acme", "api")
    github.repo("octo", "web")
    server = serve(tmp_path)
    try:
        with server.client() as client:
            acme, octo = link(client, github, "acme", link="all"), link(client, github, "octo", link="all")
            assert (acme["id"], octo["id"]) == (1, 2)
            # LIKE patterns, Arabic-Indic digits (int() reads them: another row), superscripts, 64-bit overflow
            for ref in ("a%25", "a___", "%25", "_cme", "%D9%A1", "%D9%A2", "%C2%B9", "%C2%B3", str(2**63), "9" * 40):
                assert client.get(f"/api/v1/accounts/{ref}").status_code == 404, ref
                assert client.get(f"/api/v1/accounts/{ref}/repositories").status_code == 404, ref
                assert client.patch(f"/api/v1/accounts/{ref}", json={"auto_link": True}).status_code == 404, ref
                assert client.delete(f"/api/v1/accounts/{ref}").status_code == 404, ref
            assert client.get("/api/v1/accounts/ACME").json()["id"] == 1  # GitHub logins ignore case
            assert sorted(a["name"] for a in client.get("/api/v1/accounts").json()) == ["acme", "octo"]
            assert all(not a["auto_link"] for a in client.get("/api/v1/accounts").json())

            ids = sorted(r["id"] for r in client.get("/api/v1/repositories").json())
            assert ids == [1, 2]
            for ref in ("%D9%A1", "%C2%B9", "%C2%B3", str(2**63), "9" * 40):
                for answer in (client.get(f"/api/v1/repositories/{ref}"),
                               client.post(f"/api/v1/repositories/{ref}/sync"),
                               client.delete(f"/api/v1/repositories/{ref}")):
                    assert answer.status_code in (404, 422), (ref, answer.status_code, answer.text)
            assert sorted(r["id"] for r in client.get("/api/v1/repositories").json()) == ids
    finally:
        stop_server(server)
