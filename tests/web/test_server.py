"""End to end against a real ``devlink serve`` on 127.0.0.1: REST API, push hook, pages, CLI."""

import json
import subprocess
import time
import uuid
from pathlib import Path

from gitrepos import GitRepo
from servers import Server


def make_server_repo(tmp_path: Path, messages: list[str]) -> tuple[GitRepo, Path, list[str]]:
    repo = GitRepo(tmp_path / "work")
    bare = tmp_path / "server.git"
    subprocess.run(["git", "-c", "init.defaultBranch=main", "init", "-q", "--bare", str(bare)], check=True)
    repo.git("remote", "add", "origin", str(bare))
    shas = [repo.commit(message) for message in messages]
    repo.git("push", "-q", "origin", "main")
    return repo, bare, shas


def test_add_sync_and_read_over_the_api_and_the_page(server: Server, tmp_path: Path) -> None:
    repo, bare, shas = make_server_repo(tmp_path, ["E2E-1 first", "E2E-2 second", "E2E-1 third, see E2E-2"])
    repo.git("push", "-q", "origin", "main:feature/E2E-1-branch")
    with server.client() as client:
        created = client.post("/api/v1/repositories", json={"url": str(bare), "name": "e2e-core"})
        assert created.status_code == 201, created.text
        repository = created.json()
        assert created.headers["location"] == f"/api/v1/repositories/{repository['id']}"
        assert repository["sync"]["state"] in ("queued", "running", "idle")

        view = server.wait_idle(repository["id"])
        assert (view["sync"]["state"], view["sync"]["commits_indexed"], view["sync"]["error"]) == ("idle", 3, None)

        document = client.get("/api/v1/issues/E2E-1/development").json()
        assert [c["sha"] for c in document["commits"]] == [shas[2], shas[0]]
        assert document["summary"]["commits"] == 2
        assert document["summary"]["branches"] == 1
        assert document["summary"]["repositories"] == 1
        assert [b["name"] for b in document["branches"]] == ["feature/E2E-1-branch"]
        assert document["commits"][0]["repository"]["name"] == "e2e-core"

        page = client.get("/issues/E2E-1")
        assert page.status_code == 200
        assert 'data-repository="e2e-core"' in page.text
        for sha in (shas[0], shas[2]):
            assert f'data-sha="{sha}"' in page.text
        assert f'data-sha="{shas[1]}"' not in page.text
        listing = client.get("/repositories")
        assert "e2e-core" in listing.text and "idle" in listing.text


def test_cli_reads_the_same_document_as_the_api(server: Server, tmp_path: Path) -> None:
    _, bare, _ = make_server_repo(tmp_path, ["CLI-1 from the cli test"])
    added = server.cli("repo", "add", str(bare), "--name", "cli-repo")
    assert added.returncode == 0, added.stderr
    assert "linked cli-repo" in added.stdout and "1 new" in added.stdout

    printed = server.cli("issue", "CLI-1", "--json")
    with server.client() as client:
        assert json.loads(printed.stdout) == client.get("/api/v1/issues/CLI-1/development").json()
    human = server.cli("issue", "CLI-1")
    assert "CLI-1: 1 commit, 0 branches, 0 pull requests in 1 repository" in human.stdout
    assert "from the cli test" in human.stdout

    listed = json.loads(server.cli("repo", "list", "--json").stdout)
    assert "cli-repo" in [r["name"] for r in listed]


def test_push_hook_triggers_a_sync(server: Server, tmp_path: Path) -> None:
    repo, bare, _ = make_server_repo(tmp_path, ["HOOK-1 before the hook"])
    assert server.cli("repo", "add", str(bare), "--name", "hooked").returncode == 0
    port = server.url.rsplit(":", 1)[1]
    installed = server.cli("repo", "hook", str(bare), "--install", "--url", server.url)
    assert installed.returncode == 0, installed.stderr
    script = (bare / "hooks" / "post-receive").read_text()
    assert f"http://127.0.0.1:{port}/hooks/git" in script

    pushed_at = time.monotonic()
    new_sha = repo.commit("HOOK-2 arrives through the post-receive hook")
    repo.git("push", "-q", "origin", "main")  # runs the real hook, which posts to devlink
    with server.client() as client:
        while True:
            commits = client.get("/api/v1/issues/HOOK-2/development").json()["commits"]
            if commits:
                break
            assert time.monotonic() - pushed_at < 20, "the pushed commit never appeared"
            time.sleep(0.05)
    assert [c["sha"] for c in commits] == [new_sha]


def test_hook_rejects_bad_requests_and_ignores_replays(server: Server, tmp_path: Path) -> None:
    _, bare, _ = make_server_repo(tmp_path, ["REPLAY-1 one"])
    assert server.cli("repo", "add", str(bare), "--name", "replayed").returncode == 0
    assert server.cli("repo", "hook", str(bare), "--token-file", str(tmp_path / "token")).returncode == 0
    token = (tmp_path / "token").read_text().partition(":")[2].strip()
    with server.client() as client:
        missing = client.post("/hooks/git")
        assert (missing.status_code, missing.json()["type"]) == (401, "bad_token")
        wrong = client.post("/hooks/git", headers={"X-Devlink-Token": "not-the-token"})
        assert (wrong.status_code, wrong.json()["title"]) == (401, "unknown token")
        malformed = client.post("/hooks/git", headers={"X-Devlink-Token": token}, content=b"this is not a ref line")
        assert malformed.status_code == 400
        assert "is not '<old-sha> <new-sha> <ref>'" in malformed.json()["title"]

        delivery = str(uuid.uuid4())
        line = f"{'0' * 40} {'a' * 40} refs/heads/main\n"
        headers = {"Authorization": f"Bearer {token}", "X-Devlink-Delivery": delivery}
        first = client.post("/hooks/git", headers=headers, content=line)
        assert first.status_code == 202
        assert first.json()["status"] in ("queued", "coalesced")
        replay = client.post("/hooks/git", headers=headers, content=line)
        assert (replay.status_code, replay.json()["status"]) == (202, "duplicate")


def _hook_token(server: Server, bare: Path) -> str:
    token_file = bare.parent / "devlink-token"
    assert server.cli("repo", "hook", str(bare), "--token-file", str(token_file)).returncode == 0
    return token_file.read_text().partition(":")[2].strip()


def test_hook_delivery_ids_are_scoped_to_their_repository(server: Server, tmp_path: Path) -> None:
    """Each git server picks its own ids: another repository's ``push-42`` is not a replay of this one's."""
    tokens = []
    for name in ("scoped-a", "scoped-b"):
        _, bare, _ = make_server_repo(tmp_path / name, [f"SCOPE-1 {name}"])
        assert server.cli("repo", "add", str(bare), "--name", name).returncode == 0
        tokens.append(_hook_token(server, bare))
    line = f"{'0' * 40} {'b' * 40} refs/heads/main\n"
    with server.client() as client:
        def post(token: str, delivery: str) -> dict[str, str]:
            answer = client.post("/hooks/git", headers={"X-Devlink-Token": token, "X-Devlink-Delivery": delivery},
                                 content=line)
            assert answer.status_code == 202, answer.text
            result: dict[str, str] = answer.json()
            return result

        first, second = post(tokens[0], "push-42"), post(tokens[1], "push-42")
        assert (first["repository"], second["repository"]) == ("scoped-a", "scoped-b")
        assert first["status"] in ("queued", "coalesced") and second["status"] in ("queued", "coalesced")
        assert first["delivery"] == second["delivery"] == "push-42"  # answered as the client sent it
        assert post(tokens[0], "push-42") == {"status": "duplicate", "delivery": "push-42", "repository": "scoped-a"}
        assert post(tokens[1], "push-42")["status"] == "duplicate"
        # the longest id accepted still fits the column with the repository id in front
        assert post(tokens[0], "x" * 128)["status"] in ("queued", "coalesced")
        assert post(tokens[0], "x" * 128)["status"] == "duplicate"
        too_long = client.post("/hooks/git", headers={"X-Devlink-Token": tokens[0], "X-Devlink-Delivery": "x" * 129},
                               content=line)
        assert (too_long.status_code, too_long.json()["type"]) == (400, "bad_delivery_id")
        assert "1-128" in too_long.json()["title"]


def test_api_errors_are_problem_documents(server: Server, tmp_path: Path) -> None:
    _, bare, _ = make_server_repo(tmp_path, ["ERR-1 x"])
    with server.client() as client:
        bad_key = client.get("/api/v1/issues/not-a-key/development")
        assert bad_key.status_code == 422
        assert bad_key.headers["content-type"] == "application/problem+json"
        assert bad_key.json() == {"type": "bad_key", "title": "'not-a-key' is not an issue key (like ABC-123)",
                                  "status": 422}
        assert client.get("/api/v1/repositories/99999").json()["type"] == "not_found"
        not_repo = client.post("/api/v1/repositories", json={"url": str(tmp_path)})
        assert (not_repo.status_code, not_repo.json()["type"]) == (422, "not_a_repository")
        secret = client.post("/api/v1/repositories", json={"url": "https://u:topsecret@127.0.0.1:9/r.git"})
        assert secret.status_code == 422 and "topsecret" not in secret.text
        first = client.post("/api/v1/repositories", json={"url": str(bare), "name": "dup"})
        assert first.status_code == 201
        again = client.post("/api/v1/repositories", json={"url": str(bare), "name": "dup"})
        assert (again.status_code, again.json()["type"]) == (409, "conflict")


def test_resync_and_remove_over_the_api(server: Server, tmp_path: Path) -> None:
    repo, bare, _ = make_server_repo(tmp_path, ["GONE-1 soon removed"])
    with server.client() as client:
        repository = client.post("/api/v1/repositories", json={"url": str(bare), "name": "removable"}).json()
        server.wait_idle(repository["id"])
        repo.commit("GONE-2 second")
        repo.git("push", "-q", "origin", "main")
        accepted = client.post(f"/api/v1/repositories/{repository['id']}/sync", params={"full": "true"})
        assert accepted.status_code == 202
        assert accepted.json()["kind"] == "full"
        assert server.wait_idle(repository["id"])["sync"]["commits_indexed"] == 2

        assert client.delete(f"/api/v1/repositories/{repository['id']}").status_code == 204
        assert client.get(f"/api/v1/repositories/{repository['id']}").status_code == 404
        assert client.get("/api/v1/issues/GONE-1/development").json()["commits"] == []
        assert not (server.home / "mirrors" / f"{repository['id']}.git").exists()


def test_framework_errors_are_problem_documents_too(server: Server) -> None:
    with server.client() as client:
        missing = client.post("/api/v1/repositories", json={"name": "no-url"})
        assert missing.status_code == 422
        assert missing.headers["content-type"] == "application/problem+json"
        assert missing.json()["title"] == "body.url: Field required"
        unknown = client.get("/api/v1/nothing-here")
        assert (unknown.status_code, unknown.json()["type"]) == (404, "not_found")
        wrong_type = client.get("/api/v1/repositories/abc")
        assert (wrong_type.status_code, wrong_type.json()["type"]) == (422, "invalid")


def test_a_browser_gets_error_pages_and_the_api_problem_documents(server: Server) -> None:
    """A mistyped page URL or a form that cannot work showed a browser raw JSON."""
    html = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
    with server.client() as client:
        typo = client.get("/isues/DEMO-1", headers=html)
        assert (typo.status_code, typo.headers["content-type"].split(";")[0]) == (404, "text/html")
        assert "There is no page at this address." in typo.text and 'href="/repositories"' in typo.text
        assert "frame-ancestors 'none'" in typo.headers["content-security-policy"]
        gone = client.post("/repositories/999999/sync", headers={**html, "Origin": server.url})
        assert (gone.status_code, gone.headers["content-type"].split(";")[0]) == (404, "text/html")
        assert "no repository" in gone.text
        script = client.get("/isues/<script>alert(1)</script>", headers=html)
        assert "<script>alert" not in script.text
        for machine in ("/api/v1/nothing-here", "/hooks/nothing-here"):  # the API stays machine-readable
            answer = client.get(machine, headers=html)
            assert answer.headers["content-type"] == "application/problem+json", machine
        plain = client.get("/isues/DEMO-1")  # no HTML asked for: a problem document, as before
        assert plain.headers["content-type"] == "application/problem+json"
        lower = client.get("/issues/demo-1?comments_page=2", headers=html, follow_redirects=False)
        assert (lower.status_code, lower.headers["location"]) == (307, "/issues/DEMO-1?comments_page=2")
        assert typo.headers["vary"] == "Accept"
        bare_api = client.get("/api", headers=html)
        assert bare_api.headers["content-type"] == "application/problem+json"


def test_hook_checks_the_token_before_the_body_and_bounds_its_size(server: Server, tmp_path: Path) -> None:
    _, bare, _ = make_server_repo(tmp_path, ["SIZE-1 x"])
    assert server.cli("repo", "add", str(bare), "--name", "sized").returncode == 0
    assert server.cli("repo", "hook", str(bare), "--token-file", str(tmp_path / "token")).returncode == 0
    token = (tmp_path / "token").read_text().partition(":")[2].strip()
    with server.client() as client:
        stranger = client.post("/hooks/git", headers={"X-Devlink-Token": "nope"}, content=b"garbage")
        assert stranger.status_code == 401
        huge = client.post("/hooks/git", headers={"X-Devlink-Token": token}, content=b"x" * (300 * 1024))
        assert (huge.status_code, huge.json()["type"]) == (413, "too_large")


def test_cross_site_form_posts_are_refused(server: Server, tmp_path: Path) -> None:
    _, bare, _ = make_server_repo(tmp_path, ["CSRF-1 x"])
    with server.client() as client:
        repository = client.post("/api/v1/repositories", json={"url": str(bare), "name": "guarded"}).json()
        forged = client.post(f"/repositories/{repository['id']}/remove", headers={"Origin": "http://evil.example"})
        assert forged.status_code == 403
        assert client.get(f"/api/v1/repositories/{repository['id']}").status_code == 200
        own = client.post(f"/repositories/{repository['id']}/remove", headers={"Origin": server.url})
        assert own.status_code == 303
        assert client.get(f"/api/v1/repositories/{repository['id']}").status_code == 404
