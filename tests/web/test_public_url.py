"""The address hosts call devlink at: ``DEVLINK_BASE_URL``, else where ``devlink serve`` listens.

A real ``devlink serve --port P`` on a free port, an account linked through its API, and the hook URL the stub
GitHub recorded; then a CLI command in another process on the same data directory.
"""

import json
import os
from pathlib import Path

from devlink.config import SERVER_FILE, load_settings, record_server
from github_world import TOKEN, GitHubWorld
from servers import start_server, stop_server

LOOPBACK = "which only this machine can reach; set DEVLINK_BASE_URL"


def test_serve_port_is_where_hooks_point_for_the_api_and_for_the_cli_and_a_loopback_url_is_flagged(
    github: GitHubWorld, tmp_path: Path
) -> None:
    github.repo("octo", "api")
    github.repo("octo", "web")
    env = {k: v for k, v in os.environ.items() if k.startswith("DEVLINK_")}
    assert "DEVLINK_BASE_URL" not in env, "the test needs devlink's own default"
    server = start_server(tmp_path / "home")  # devlink serve --port P (a free port, not 8000)
    hook = f"{server.url}/hooks/github"
    try:
        with server.client() as client:
            created = client.post("/api/v1/accounts", json={
                "name": "octo", "url": github.stub.web_url, "token": TOKEN, "link": ["api"]})
            assert created.status_code == 201, created.text
            [installed] = github.stub.hooks("octo", "api")
            assert installed["config"]["url"] == hook
            warning = f"the host will call {hook}, {LOOPBACK}"
            [said] = created.json()["discovery"]["warnings"]
            assert said.startswith(warning)
            account_id = created.json()["id"]
            views = {v["name"]: v for v in client.get(f"/api/v1/accounts/{account_id}/repositories").json()}
            assert views["octo/api"]["webhook"]["state"] == "installed"
            assert views["octo/api"]["webhook"]["error"] == said
            assert warning in client.get(f"/accounts/{account_id}").text  # the account page says it too

        # another shell, same DEVLINK_HOME: the CLI links hooks to the address serve listens on
        linked = server.cli("account", "repos", "octo", "--link", "web", "--no-sync")
        assert linked.returncode == 0, linked.stderr
        assert [h["config"]["url"] for h in github.stub.hooks("octo", "web")] == [hook]
        refreshed = server.cli("account", "repos", "octo", "--refresh")
        assert f"warning: {warning}" in refreshed.stdout
    finally:
        stop_server(server)
    assert not (server.home / SERVER_FILE).exists()  # a stopped server leaves no address behind


def test_base_url_wins_and_a_dead_servers_note_is_ignored(tmp_path: Path) -> None:
    home = tmp_path / "home"
    record_server(home, "http://127.0.0.1:8765")  # this process stands for a running serve
    assert load_settings({"DEVLINK_HOME": str(home)}).public_url == "http://127.0.0.1:8765"
    base = load_settings({"DEVLINK_HOME": str(home), "DEVLINK_BASE_URL": "https://devlink.example.com/"})
    assert base.public_url == "https://devlink.example.com"
    note = json.loads((home / SERVER_FILE).read_text())
    (home / SERVER_FILE).write_text(json.dumps({**note, "pid": 2**22 + 12345}))  # above Linux's pid_max: gone
    assert load_settings({"DEVLINK_HOME": str(home)}).public_url == "http://127.0.0.1:8000"
    (home / SERVER_FILE).write_text("not json")
    assert load_settings({"DEVLINK_HOME": str(home), "DEVLINK_PORT": "9000"}).public_url == "http://127.0.0.1:9000"
