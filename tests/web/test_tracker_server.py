"""The built-in tracker and smart commits over a real ``devlink serve``: REST, push hook, pages."""

import subprocess
import time
from pathlib import Path

from gitrepos import GitRepo
from servers import Server


def test_tracker_api_and_smart_commits_through_the_push_hook(server: Server, tmp_path: Path) -> None:
    with server.client() as client:
        assert client.post("/api/v1/users", json={"username": "ada", "name": "Ada", "emails": ["ada@example.com"]}
                           ).status_code == 201
        assert client.post("/api/v1/projects", json={"key": "WEB", "name": "Web"}).json() == {"key": "WEB",
                                                                                              "name": "Web"}
        created = client.post("/api/v1/issues", json={"key": "WEB-1", "summary": "Fix the header",
                                                      "assignee": "ada"})
        assert created.status_code == 201
        assert (created.json()["status"], created.json()["assignee"]) == ("To Do", "ada")
        assert client.post("/api/v1/issues", json={"key": "WEB-1", "summary": "again"}).status_code == 409
        bad = client.post("/api/v1/issues", json={"key": "web-1", "summary": "x"})
        assert (bad.status_code, bad.json()["type"]) == (422, "bad_key")
        assert client.get("/api/v1/issues/WEB-404").status_code == 404
        assert [p["key"] for p in client.get("/api/v1/projects").json()] == ["WEB"]

        # a repository, linked and backfilled, whose later push carries smart commits
        repo = GitRepo(tmp_path / "work")
        repo._clock = int(time.time()) - 600
        bare = tmp_path / "server.git"
        subprocess.run(["git", "-c", "init.defaultBranch=main", "init", "-q", "--bare", str(bare)], check=True)
        repo.git("remote", "add", "origin", str(bare))
        repo.commit("WEB-1 #comment before linking: never runs")
        repo.git("push", "-q", "origin", "main")
        assert server.cli("repo", "add", str(bare), "--name", "web").returncode == 0
        assert server.cli("repo", "hook", str(bare), "--install", "--url", server.url).returncode == 0

        repo.commit("WEB-1 #start #comment on it #time 45m\nWEB-1 #fnish")
        repo.git("push", "-q", "origin", "main")  # the post-receive hook tells devlink
        deadline = time.monotonic() + 20
        while client.get("/api/v1/issues/WEB-1").json()["status"] != "In Progress":
            assert time.monotonic() < deadline, "the smart commit never ran"
            time.sleep(0.05)
        server.wait_idle(client.get("/api/v1/repositories").json()[0]["id"])

        issue = client.get("/api/v1/issues/WEB-1").json()
        assert [c["body"] for c in issue["comments"]] == ["on it"]
        assert [(w["author"], w["seconds"]) for w in issue["worklogs"]] == [("ada", 2700)]
        errors = client.get("/api/v1/smart-commits", params={"status": "error"}).json()
        assert [(e["key"], e["command"], e["message"]) for e in errors] == [
            ("WEB-1", "fnish", "no transition matches #fnish; available: Stop Progress, Send To Review, Resolve")
        ]
        assert len(client.get("/api/v1/smart-commits", params={"status": "done"}).json()) == 3
        assert client.get("/api/v1/smart-commits", params={"status": "bogus"}).status_code == 422

        repository_id = client.get("/api/v1/repositories").json()[0]["id"]
        patched = client.patch(f"/api/v1/repositories/{repository_id}", json={"smart_commits": False})
        assert (patched.status_code, patched.json()["smart_commits"]) == (200, False)
        assert server.cli("repo", "set", "web", "--smart-commits").stdout == "web: smart commits on\n"
        assert client.get(f"/api/v1/repositories/{repository_id}").json()["smart_commits"] is True

        page = client.get("/issues/WEB-1").text
        assert 'data-status="In Progress"' in page and "Fix the header" in page and "on it" in page
        assert page.count(": done</span>") == 3 and page.count(": error</span>") == 1
        assert "#fnish WEB-1: error</span>" in page  # which command each badge is, readable without hovering
        errors_page = client.get("/smart-commits").text
        assert "no transition matches #fnish; available: Stop Progress, Send To Review, Resolve" in errors_page
