"""Who sees what over HTTP: the app served by a real uvicorn on loopback, the person asking set per request.

The sign-in layer is not part of this branch, so the person is swapped in
through ``app.dependency_overrides[get_principal]``.  Two projects, APP and
OPS; ``app`` is scoped to APP, ``shared`` serves every project; alice may view
APP's development data, carol OPS's.
"""

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request

from devlink.config import load_settings
from devlink.runtime import Runtime
from devlink.store.tracker import SmartCommitRun
from devlink.sync.engine import sync_repository
from devlink.sync.principals import Principal
from devlink.sync.repositories import add_repository
from devlink.trackers.builtin import create_project, create_user
from devlink.web.app import create_app
from devlink.web.auth import authorize
from devlink.web.deps import get_principal
from gitrepos import GitRepo
from servers import free_port

pytestmark = pytest.mark.timeout(120)

NOTE = "You do not have permission to view development information for this project"


@dataclass
class Site:
    url: str
    app: FastAPI
    rt: Runtime
    repos: dict[str, int]
    shas: dict[str, str]
    users: dict[str, Principal]

    def client(self, who: str) -> httpx.Client:
        """A client whose requests are asked by ``who`` (the override is the app's, so one person at a time)."""
        principal = self.users[who]
        self.app.dependency_overrides[get_principal] = lambda: principal

        def as_principal(request: Request) -> None:  # the sign-in gate's own table is test_access_table.py
            request.state.principal = principal

        self.app.dependency_overrides[authorize] = as_principal
        return httpx.Client(base_url=self.url, timeout=30, follow_redirects=False)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    home = tmp_path_factory.mktemp("access")
    rt = Runtime.open(load_settings({"DEVLINK_HOME": str(home / "home")}))
    with rt.sessions.begin() as session:
        ids = {name: create_user(session, name).id for name in ("alice", "carol", "root")}
        create_project(session, "APP", "App", permissions={"view_development": ["alice"]})
        create_project(session, "OPS", "Ops", permissions={"view_development": ["carol"]})
    repos: dict[str, int] = {}
    shas: dict[str, str] = {}
    for name in ("app", "shared"):
        repo = GitRepo(home / name)
        for key in ("APP-1", "OPS-1"):
            shas[f"{name} {key}"] = repo.commit(f"{key} work in {name}")
        repos[name] = add_repository(rt, str(home / name), name=name).id
        sync_repository(rt, repos[name], full=False)
    with rt.sessions.begin() as session:
        for position, key in enumerate(("APP-1", "OPS-1")):
            session.add(SmartCommitRun(commit_sha=shas[f"shared {key}"], issue_key=key, position=position,
                                       command="comment", args="", outcome="error", message=f"run of {key}",
                                       repository_id=repos["shared"]))
    users = {name: Principal(user_id=user_id, username=name, role="member") for name, user_id in ids.items()}
    users["root"] = Principal(user_id=ids["root"], username="root", role="admin")
    app = create_app(rt)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.02)
    running = Site(f"http://127.0.0.1:{port}", app, rt, repos, shas, users)
    with running.client("root") as client:  # the APP scope, set the way an admin sets it
        answer = client.patch(f"/api/v1/repositories/{repos['app']}", json={"projects": ["APP"]})
        assert answer.status_code == 200 and answer.json()["projects"] == ["APP"]
    yield running
    server.should_exit = True
    thread.join(timeout=10)
    rt.close()


def _shas(document: dict[str, object]) -> set[str]:
    return {c["sha"] for c in document["commits"]}  # type: ignore[attr-defined]


def test_a_member_gets_the_development_of_a_project_they_may_view_and_403_elsewhere(site: Site) -> None:
    with site.client("alice") as client:
        allowed = client.get("/api/v1/issues/APP-1/development")
        denied = client.get("/api/v1/issues/OPS-1/development")
    assert allowed.status_code == 200
    assert _shas(allowed.json()) == {site.shas["app APP-1"], site.shas["shared APP-1"]}
    assert denied.status_code == 403
    assert denied.headers["content-type"].startswith("application/problem+json")
    assert denied.json()["type"] == "forbidden" and NOTE in denied.json()["title"]
    assert site.shas["shared OPS-1"] not in denied.text


def test_an_admin_gets_every_project_and_scoping_still_applies(site: Site) -> None:
    with site.client("root") as client:
        ops = client.get("/api/v1/issues/OPS-1/development").json()
    assert _shas(ops) == {site.shas["shared OPS-1"]}  # app's OPS-1 commit: app serves APP only


def test_the_issue_page_shows_the_note_in_place_of_the_panel(site: Site) -> None:
    with site.client("alice") as client:
        denied = client.get("/issues/OPS-1")
        allowed = client.get("/issues/APP-1")
    assert denied.status_code == 200
    assert NOTE in denied.text and "OPS-1" in denied.text
    assert site.shas["shared OPS-1"][:12] not in denied.text and 'class="summary"' not in denied.text
    assert site.shas["app APP-1"][:12] in allowed.text and NOTE not in allowed.text


def test_repository_lists_show_a_member_only_what_they_may_see(site: Site) -> None:
    with site.client("carol") as client:
        listed = [r["name"] for r in client.get("/api/v1/repositories").json()]
        hidden = client.get(f"/api/v1/repositories/{site.repos['app']}")
        shown = client.get(f"/api/v1/repositories/{site.repos['shared']}")
        page = client.get("/repositories").text
    assert listed == ["shared"]
    assert hidden.status_code == 404 and hidden.json()["type"] == "not_found"
    assert shown.status_code == 200 and shown.json()["projects"] == []
    assert f'id="repo-{site.repos["shared"]}"' in page and f'id="repo-{site.repos["app"]}"' not in page
    with site.client("alice") as client:
        assert sorted(r["name"] for r in client.get("/api/v1/repositories").json()) == ["app", "shared"]
    with site.client("root") as client:
        assert sorted(r["name"] for r in client.get("/api/v1/repositories").json()) == ["app", "shared"]


def test_a_member_may_soft_sync_only_a_repository_they_can_see(site: Site) -> None:
    with site.client("carol") as client:
        hidden = client.post(f"/api/v1/repositories/{site.repos['app']}/sync")
        hidden_form = client.post(f"/repositories/{site.repos['app']}/sync", data={})
        shown = client.post(f"/api/v1/repositories/{site.repos['shared']}/sync")
    assert hidden.status_code == 404 and hidden_form.status_code == 404
    assert shown.status_code == 202 and shown.json()["kind"] == "soft"


def test_smart_commit_runs_are_filtered_by_project(site: Site) -> None:
    with site.client("alice") as client:
        runs = client.get("/api/v1/smart-commits").json()
        page = client.get("/smart-commits?status=all").text
    assert [r["key"] for r in runs] == ["APP-1"]
    assert "run of APP-1" in page and "run of OPS-1" not in page
    with site.client("root") as client:
        assert sorted(r["key"] for r in client.get("/api/v1/smart-commits").json()) == ["APP-1", "OPS-1"]


def test_the_patch_takes_any_subset_and_null_or_empty_means_every_project(site: Site) -> None:
    shared = f"/api/v1/repositories/{site.repos['shared']}"
    with site.client("root") as client:
        assert client.patch(shared, json={"projects": ["OPS"]}).json()["projects"] == ["OPS"]
        kept = client.patch(shared, json={"smart_commits": False}).json()
        assert (kept["projects"], kept["smart_commits"]) == (["OPS"], False)
        unknown = client.patch(shared, json={"projects": ["OPS", "NOPE"]})
        assert client.patch(shared, json={"projects": None}).json()["projects"] == []
        assert client.patch(shared, json={"projects": ["OPS"]}).status_code == 200
        assert client.patch(shared, json={"projects": [], "smart_commits": True}).json()["projects"] == []
    assert unknown.status_code == 422 and unknown.json()["title"] == "not a project of the tracker: NOPE"


def test_the_repositories_page_form_sets_the_projects(site: Site) -> None:
    with site.client("root") as client:
        form = client.post(f"/repositories/{site.repos['shared']}/projects", data={"projects": "ops, app"})
        assert form.status_code == 303 and form.headers["location"] == "/repositories"
        assert client.get(f"/api/v1/repositories/{site.repos['shared']}").json()["projects"] == ["APP", "OPS"]
        assert 'value="APP, OPS"' in client.get("/repositories").text
        refused = client.post(f"/repositories/{site.repos['shared']}/projects", data={"projects": "NOPE"},
                              headers={"Accept": "text/html"})
        assert refused.status_code == 422 and "not a project of the tracker: NOPE" in refused.text
        cleared = client.post(f"/repositories/{site.repos['shared']}/projects", data={"projects": ""})
        assert cleared.status_code == 303
        assert client.get(f"/api/v1/repositories/{site.repos['shared']}").json()["projects"] == []


def test_a_member_may_not_choose_the_projects_and_sees_them_as_text(site: Site) -> None:
    with site.client("carol") as client:
        page = client.get("/repositories").text
        hidden = client.post(f"/repositories/{site.repos['app']}/projects", data={"projects": ""})
        refused = client.post(f"/repositories/{site.repos['shared']}/projects", data={"projects": "OPS"})
    assert 'action="/repositories/' + str(site.repos["shared"]) + '/projects"' not in page
    assert hidden.status_code == 404
    assert refused.status_code == 403 and refused.json()["type"] == "forbidden"
    with site.client("root") as client:
        assert client.get(f"/api/v1/repositories/{site.repos['app']}").json()["projects"] == ["APP"]
        assert client.get(f"/api/v1/repositories/{site.repos['shared']}").json()["projects"] == []
