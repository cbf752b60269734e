"""``smart_commit_trust`` through ``PATCH /api/v1/repositories/{id}`` and ``PATCH /api/v1/accounts/{account}``, on a
real ``devlink serve`` (the account is linked against the stub GitHub on loopback)."""

import subprocess
from pathlib import Path

import pytest

from github_world import TOKEN, GitHubWorld
from servers import start_server, stop_server

pytestmark = pytest.mark.timeout(180)


def test_patch_sets_shows_and_clears_the_policy(tmp_path: Path, github: GitHubWorld) -> None:
    github.repo("octo", "api")
    plain = tmp_path / "plain.git"
    subprocess.run(["git", "init", "-q", "--bare", str(plain)], check=True, timeout=30)
    server = start_server(tmp_path / "home")
    try:
        with server.client() as client:
            created = client.post("/api/v1/accounts", json={
                "name": "octo", "url": github.stub.web_url, "token": TOKEN, "link": ["api"]})
            assert created.status_code == 201, created.text
            account = created.json()
            assert (account["smart_commit_trust"], account["smart_commit_trust_effective"]) == (None, "author")
            [repo] = [r for r in client.get(f"/api/v1/accounts/{account['id']}/repositories").json() if r["linked"]]

            patched = client.patch(f"/api/v1/accounts/{account['id']}", json={"smart_commit_trust": "signed"})
            assert patched.status_code == 200, patched.text
            assert (patched.json()["smart_commit_trust"], patched.json()["smart_commit_trust_effective"]) == (
                "signed", "signed")
            view = client.get(f"/api/v1/repositories/{repo['id']}").json()
            assert (view["smart_commit_trust"], view["smart_commit_trust_effective"]) == (None, "signed")

            # either field alone; a field left out stays
            only_trust = client.patch(f"/api/v1/repositories/{repo['id']}", json={"smart_commit_trust": "pusher"})
            assert only_trust.status_code == 200, only_trust.text
            assert (only_trust.json()["smart_commit_trust_effective"], only_trust.json()["smart_commits"]) == (
                "pusher", True)
            only_switch = client.patch(f"/api/v1/repositories/{repo['id']}", json={"smart_commits": False}).json()
            assert (only_switch["smart_commit_trust"], only_switch["smart_commits"]) == ("pusher", False)
            cleared = client.patch(f"/api/v1/repositories/{repo['id']}", json={"smart_commit_trust": None}).json()
            assert (cleared["smart_commit_trust"], cleared["smart_commit_trust_effective"]) == (None, "signed")

            bad = client.patch(f"/api/v1/repositories/{repo['id']}", json={"smart_commit_trust": "anyone"})
            assert bad.status_code == 422
            assert all(f"'{value}'" in bad.text for value in ("author", "pusher", "signed"))
            assert client.get(f"/api/v1/repositories/{repo['id']}").json()["smart_commit_trust"] is None

            added = client.post("/api/v1/repositories", json={"url": str(plain), "name": "plain"}).json()
            assert (added["smart_commit_trust"], added["smart_commit_trust_effective"]) == (None, "author")
    finally:
        stop_server(server)
