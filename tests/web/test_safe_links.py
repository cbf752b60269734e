"""Only http(s) URLs a host reported become links: ``javascript:`` and friends are shown as text.

Rows are written the way a sync writes them (``write_pull_request``, the repository row a discovery
updates) into the database of a real ``devlink serve``, whose pages are then read over HTTP.
"""

import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import update

from devlink.config import load_settings
from devlink.hosts.base import RemotePullRequest
from devlink.runtime import Runtime
from devlink.store.models import Repository
from devlink.sync.pulls import write_pull_request
from devlink.web.pages import safe_href
from github_world import TOKEN, GitHubWorld
from gitrepos import GitRepo
from servers import Server, start_server, stop_server

EVIL = ["javascript:alert(1)", " JaVaScRiPt:alert(2)", "\x01javascript:alert(3)", "java\tscript:alert(4)",
        "data:text/html,<script>alert(5)</script>", "vbscript:msgbox(6)", "//evil.example/x", "/relative"]


@pytest.mark.parametrize("url", EVIL)
def test_safe_href_refuses_what_is_not_http(url: str) -> None:
    assert safe_href(url) == ""


@pytest.mark.parametrize(("url", "href"), [("https://git.example.com/a", "https://git.example.com/a"),
                                           ("HTTP://git.example.com/a", "HTTP://git.example.com/a"),
                                           ("\x00 https://git.example.com/a\n", "https://git.example.com/a"),
                                           ("https://git.exa\tmple.com/a", "https://git.example.com/a")])
def test_safe_href_keeps_http_urls(url: str, href: str) -> None:
    assert safe_href(url) == href


def _hrefs(html: str) -> list[str]:
    return re.findall(r'href="([^"]*)"', html)


def _assert_no_script_links(html: str) -> None:
    for href in _hrefs(html):
        assert href.startswith(("/", "http://", "https://", "data:,")), href
    assert not re.search(r"href=\s*['\"]?\s*(javascript|data:text|vbscript)", html, re.IGNORECASE)


def _bare(tmp_path: Path, name: str) -> Path:
    repo = GitRepo(tmp_path / f"{name}-work")
    bare = tmp_path / f"{name}.git"
    subprocess.run(["git", "-c", "init.defaultBranch=main", "init", "-q", "--bare", str(bare)], check=True)
    repo.git("remote", "add", "origin", str(bare))
    repo.commit(f"XSS-1 a change in {name}")
    repo.git("push", "-q", "origin", "main", "main:feature/XSS-1-branch")
    return bare


def _pull(number: int, url: str) -> RemotePullRequest:
    now = datetime.now(UTC)
    return RemotePullRequest(number=number, external_id=str(number), title=f"XSS-1 pull {number}", description="",
                             state="open", source_branch=f"feature/XSS-1-{number}", target_branch="main",
                             author="mallory", url=url, created_at=now, updated_at=now)


def test_a_host_answering_javascript_urls_gets_no_links(server: Server, tmp_path: Path) -> None:
    with server.client() as client:
        ids = {}
        for name in ("evil", "good"):
            created = client.post("/api/v1/repositories", json={
                "url": str(_bare(tmp_path, name)), "name": name, "web_url": f"https://git.example.com/team/{name}"})
            assert created.status_code == 201, created.text
            ids[name] = created.json()["id"]
            server.wait_idle(ids[name])
    rt = Runtime.open(load_settings(server.env))
    try:
        with rt.sessions.begin() as session:
            # what a discovery writes when the host's html_url is javascript:
            session.execute(update(Repository).where(Repository.id == ids["evil"]).values(web_url=EVIL[0]))
            for number, url in enumerate(EVIL[:6], start=1):
                write_pull_request(session, ids["evil"], _pull(number, url), None)
            write_pull_request(session, ids["good"], _pull(7, "https://git.example.com/team/good/pull/7"), None)
    finally:
        rt.close()

    with server.client() as client:
        issue = client.get("/issues/XSS-1")
        repositories = client.get("/repositories")
    assert issue.status_code == repositories.status_code == 200
    _assert_no_script_links(issue.text)
    _assert_no_script_links(repositories.text)
    # the text is still shown, only not as a link
    for number in range(1, 7):
        assert f"#{number} XSS-1 pull {number}" in issue.text
    assert ">evil<" in repositories.text
    # https URLs still link: the good repository, its commit, its branch and its pull request
    hrefs = _hrefs(issue.text)
    assert "https://git.example.com/team/good/pull/7" in hrefs
    assert "https://git.example.com/team/good/tree/feature/XSS-1-branch" in hrefs
    assert any(h.startswith("https://git.example.com/team/good/commit/") for h in hrefs)
    assert not any("team/evil" in h or h.startswith("javascript") for h in hrefs)
    assert "https://git.example.com/team/good" in _hrefs(repositories.text)


def test_the_account_page_links_no_javascript_web_url(github: GitHubWorld, tmp_path: Path) -> None:
    github.repo("octo", "api")
    github.repo("octo", "web")
    server = start_server(tmp_path / "home")
    try:
        with server.client() as client:
            linked = client.post("/api/v1/accounts", json={"name": "octo", "url": github.stub.web_url,
                                                            "token": TOKEN})
            assert linked.status_code == 201, linked.text
            account_id = linked.json()["id"]
        rt = Runtime.open(load_settings(server.env))
        try:
            with rt.sessions.begin() as session:
                session.execute(update(Repository).where(Repository.name == "octo/api")
                                .values(web_url="javascript:alert(document.cookie)"))
        finally:
            rt.close()
        with server.client() as client:
            page = client.get(f"/accounts/{account_id}")
        assert page.status_code == 200
        _assert_no_script_links(page.text)
        assert "octo/api" in page.text
        assert f"{github.stub.web_url}/octo/web" in _hrefs(page.text)
    finally:
        stop_server(server)
