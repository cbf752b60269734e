"""Who sees what with Jira, over HTTP: the issue page and the development API on a real uvicorn on loopback.

The person asking is swapped in through ``app.dependency_overrides[get_principal]`` (the sign-in
layer is not part of this branch); Jira is the stub of tests/jira_stub.py (Data Center).
"""

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import Request

from devlink.config import load_settings
from devlink.runtime import Runtime
from devlink.store.people import UserIdentity
from devlink.sync.engine import sync_repository
from devlink.sync.principals import Principal
from devlink.sync.repositories import add_repository
from devlink.sync.trackers import use_outside
from devlink.trackers.builtin import create_user
from devlink.web.app import create_app
from devlink.web.auth import authorize
from devlink.web.deps import get_principal
from gitrepos import GitRepo
from jira_stub import JiraStub
from servers import free_port

pytestmark = pytest.mark.timeout(120)

TOKEN = "jira-secret-token-1234"
NOTE = "You do not have permission to view development information for this project"


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[str, dict[str, Principal], dict[str, object], str]]:
    with JiraStub() as jira:
        jira.add_user("bot")
        jira.add_user("alice")
        jira.add_pat(TOKEN, "bot")
        for key in ("APP", "OPS"):
            jira.add_project(key, key.title())
            jira.add_issue(f"{key}-1", summary=f"{key} issue")
        jira.deny("alice", "OPS", "VIEW_DEV_TOOLS")
        rt = Runtime.open(load_settings({"DEVLINK_HOME": str(tmp_path / "home")}))
        use_outside(rt, "jira", url=jira.url, token=TOKEN)
        with rt.sessions.begin() as session:
            alice, bob = create_user(session, "alice"), create_user(session, "bob")
            session.add(UserIdentity(user_id=alice.id, provider="tracker", login="alice"))
        people = {"alice": Principal(user_id=alice.id, username="alice", role="member"),
                  "bob": Principal(user_id=bob.id, username="bob", role="member")}
        repo = GitRepo(tmp_path / "work")
        sha = repo.commit("APP-1 OPS-1 together")
        sync_repository(rt, add_repository(rt, str(tmp_path / "work"), name="work").id, full=False)
        app = create_app(rt)
        asking: dict[str, object] = {}
        app.dependency_overrides[get_principal] = lambda: asking["who"]

        def as_principal(request: Request) -> None:  # the sign-in gate's own table is test_access_table.py
            request.state.principal = asking["who"]

        app.dependency_overrides[authorize] = as_principal
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                               lifespan="off"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
            time.sleep(0.02)
        try:
            yield f"http://127.0.0.1:{port}", people, asking, sha
        finally:
            server.should_exit = True
            thread.join(timeout=10)
            rt.close()
        assert jira.violations == []


def test_jiras_permission_decides_the_panel_and_the_api(
        site: tuple[str, dict[str, Principal], dict[str, object], str]) -> None:
    url, people, asking, sha = site
    asking["who"] = people["alice"]
    with httpx.Client(base_url=url, timeout=30) as client:
        allowed_page = client.get("/issues/APP-1").text
        denied_page = client.get("/issues/OPS-1").text
        denied = client.get("/api/v1/issues/OPS-1/development")
        allowed = client.get("/api/v1/issues/APP-1/development")
    assert sha[:12] in allowed_page and NOTE not in allowed_page
    assert NOTE in denied_page and sha[:12] not in denied_page and "OPS issue" in denied_page  # the issue stays
    assert denied.status_code == 403 and denied.json()["type"] == "forbidden"
    assert allowed.status_code == 200 and [c["sha"] for c in allowed.json()["commits"]] == [sha]


def test_a_member_without_a_linked_jira_identity_is_told_to_link_it(
        site: tuple[str, dict[str, Principal], dict[str, object], str]) -> None:
    url, people, asking, sha = site
    asking["who"] = people["bob"]
    with httpx.Client(base_url=url, timeout=30) as client:
        page = client.get("/issues/APP-1").text
        answer = client.get("/api/v1/issues/APP-1/development")
        listed = client.get("/api/v1/repositories").json()
    assert NOTE in page and "link your Jira identity" in page and sha[:12] not in page
    assert answer.status_code == 403 and "link your Jira identity" in answer.json()["title"]
    assert listed == []
