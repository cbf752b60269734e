"""The pages at phone width (375 x 740) in real Chromium, with data in them, and forms that keep what was typed."""

import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from devlink.config import load_settings
from devlink.hosts.base import RemotePullRequest, Review
from devlink.runtime import Runtime
from devlink.store.tracker import SmartCommitRun
from devlink.sync.pulls import write_pull_request
from github_world import TOKEN, GitHubWorld
from gitrepos import GitRepo
from servers import Server, signed_in, start_server, stop_server

LONG = "a-repository-with-a-rather-long-name-that-does-not-fit"


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server with a linked repository, an account with repositories, a pull request and a smart-commit run."""
    root = tmp_path_factory.mktemp("phone")
    world = GitHubWorld(root / "github")
    world.repo("octo", LONG)
    world.repo("octo", "web")
    server = start_server(root / "home")
    try:
        work = GitRepo(root / "work")
        bare = root / f"{LONG}.git"
        subprocess.run(["git", "-c", "init.defaultBranch=main", "init", "-q", "--bare", str(bare)], check=True)
        work.git("remote", "add", "origin", str(bare))
        for i in range(3):
            work.commit(f"PHONE-1 change number {i} with a summary long enough to wrap on a phone screen, see PHONE-2")
        work.git("push", "-q", "origin", "main", "main:feature/PHONE-1-a-branch-name-that-goes-on-and-on-and-on")
        with server.client() as client:
            created = client.post("/api/v1/repositories", json={
                "url": str(bare), "name": f"local/{LONG}", "web_url": f"https://git.example.com/team/{LONG}"})
            assert created.status_code == 201, created.text
            repository_id = created.json()["id"]
            server.wait_idle(repository_id)
            linked = client.post("/api/v1/accounts", json={"name": "octo", "url": world.stub.web_url, "token": TOKEN,
                                                            "link": [f"octo/{LONG}"]})
            assert linked.status_code == 201, linked.text
        rt = Runtime.open(load_settings(server.env))
        try:
            now = datetime.now(UTC)
            with rt.sessions.begin() as session:
                write_pull_request(session, repository_id, RemotePullRequest(
                    number=42, external_id="42", title="PHONE-1 a pull request with a title that is long as well",
                    description="", state="open", source_branch="feature/PHONE-1-a-branch-name-that-goes-on-and-on",
                    target_branch="main", author="somebody-with-a-long-login", url="https://git.example.com/pull/42",
                    created_at=now, updated_at=now, comment_count=3,
                    reviewers=(Review("reviewer-one", "approved"), Review("reviewer-two", "changes_requested"))),
                    None)
                session.add(SmartCommitRun(
                    commit_sha="f" * 40, issue_key="PHONE-1", position=0, repository_id=repository_id,
                    command="resolve-with-a-long-name", args="with arguments that are long too " * 3,
                    outcome="error", message="no transition matches #resolve-with-a-long-name; available: " * 3,
                    author_email="someone.with.a.long.address@example.com", created_at=now))
        finally:
            rt.close()
        yield server
    finally:
        stop_server(server)
        world.close()


@pytest.mark.parametrize("path", ["/repositories", "/accounts", "/accounts/1", "/issues/PHONE-1", "/smart-commits",
                                  "/smart-commits?status=all"])
def test_pages_fit_a_phone_screen(filled: Server, browser: object, path: str, tmp_path: Path) -> None:
    page = signed_in(browser, filled, viewport={"width": 375, "height": 740})
    page.goto(f"{filled.url}{path}")
    assert page.locator("main").inner_text().strip()
    assert page.locator("table").count() or path == "/accounts", "the page shows its data"
    widths = page.evaluate("() => [document.scrollingElement.scrollWidth, window.innerWidth]")
    page.screenshot(path=str(tmp_path / "phone.png"), full_page=True)
    assert widths[0] <= widths[1], (path, widths)
    # every table is reachable: it scrolls inside its own wrapper
    for i in range(page.locator("table").count()):
        assert page.locator("table").nth(i).evaluate("t => t.parentElement.classList.contains('scroll')")
    page.close()


def test_refused_forms_keep_what_was_typed_but_never_the_token(filled: Server, tmp_path: Path) -> None:
    with filled.client() as client:
        missing = str(tmp_path / "no such repository")
        page = client.post("/repositories", data={"url": missing, "name": "kept-name"})
        assert page.status_code == 422
        assert f'value="{missing}"' in page.text and 'value="kept-name"' in page.text
        assert "is not a git repository" in page.text

        page = client.post("/accounts", data={"url": "http://127.0.0.1:1", "name": "kept-account",
                                              "token": "ghp_typed_token_never_echoed"})
        assert page.status_code == 502, page.text
        assert 'value="http://127.0.0.1:1"' in page.text and 'value="kept-account"' in page.text
        assert "ghp_typed_token_never_echoed" not in page.text
