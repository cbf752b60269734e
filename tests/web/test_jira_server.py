"""Jira over a real ``devlink serve`` (embedded queue): REST to connect, a push hook, Jira acting, the issue page."""

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gitrepos import GitRepo
from jira_stub import JiraStub
from servers import Server

pytestmark = pytest.mark.timeout(120)

TOKEN = "dc-pat-never-shown-anywhere"


@pytest.fixture(scope="module")
def jira() -> Iterator[JiraStub]:
    with JiraStub(cloud=False) as stub:
        stub.add_user("bot", email="bot@example.com", display_name="devlink bot")
        stub.add_user("ada", email="ada@example.com", display_name="Ada Lovelace")
        stub.add_pat(TOKEN, "bot")
        stub.add_project("WEB", "Web")
        stub.add_issue("WEB-1", summary="Fix the <header>", assignee="ada")
        stub.add_issue("WEB-2", summary="Second")
        yield stub
        assert stub.violations == []


def test_connect_push_and_see_jira_on_the_issue_page(server: Server, jira: JiraStub,
                                                     bare_remote: tuple[GitRepo, Path]) -> None:
    with server.client() as client:
        assert client.get("/api/v1/tracker").json() == {"kind": "builtin"}
        bad = client.put("/api/v1/tracker", json={"kind": "jira", "url": jira.url, "token": "wrong"})
        assert (bad.status_code, bad.json()["type"]) == (422, "auth")
        put = client.put("/api/v1/tracker", json={"kind": "jira", "url": jira.url, "token": TOKEN})
        assert put.status_code == 200, put.text
        assert put.json()["deployment"] == "datacenter" and any("sync --full" in n for n in put.json()["notes"])
        shown = client.get("/api/v1/tracker").json()
        assert (shown["kind"], shown["url"], shown["development_data"]) == ("jira", jira.url, "remote links")
        assert TOKEN not in put.text + str(shown)

        repo, bare = bare_remote
        repo._clock = int(time.time()) - 600
        repo.commit("WEB-1 start, and NOPE-1 which is no Jira project")
        repo.git("push", "-q", "origin", "main")
        assert server.cli("repo", "add", str(bare), "--name", "web").returncode == 0
        assert server.cli("repo", "hook", str(bare), "--install", "--url", server.url).returncode == 0
        repository_id = client.get("/api/v1/repositories").json()[0]["id"]

        repo.commit("WEB-1 #comment on it #time 45m", author="Ada Lovelace <ada@example.com>")
        repo.git("push", "-q", "origin", "main")  # the post-receive hook tells devlink; the worker acts on Jira
        deadline = time.monotonic() + 30
        # repo add sent the first commit's link already; wait for the push that follows the hook's sync
        while not (jira.comments("WEB-1") and "2 commits" in str(jira.remote_links("WEB-1"))):
            assert time.monotonic() < deadline, "Jira never heard of it"
            time.sleep(0.05)
        server.wait_idle(repository_id)
        assert [w["timeSpentSeconds"] for w in jira.worklogs("WEB-1")] == [2700]
        assert len(client.get("/api/v1/smart-commits", params={"status": "done"}).json()) == 2
        assert [link["object"]["title"] for link in jira.remote_links("WEB-1")] == [
            "devlink: 2 commits, 0 branches, 0 pull requests"]
        assert jira.remote_links("WEB-1")[0]["object"]["url"] == f"{server.url}/issues/WEB-1"
        deadline = time.monotonic() + 10
        while (client.get(f"/api/v1/repositories/{repository_id}").json()["tracker_push"] or {}).get(
                "state") != "sent":
            assert time.monotonic() < deadline, "the push state never said sent"
            time.sleep(0.05)

        issue = client.get("/api/v1/issues/WEB-1").json()
        assert (issue["summary"], issue["status"], issue["assignee"], issue["url"]) == (
            "Fix the <header>", "To Do", "Ada Lovelace", f"{jira.url}/browse/WEB-1")
        assert client.get("/api/v1/issues/WEB-404").status_code == 404
        page = client.get("/issues/WEB-1").text
        assert "Fix the &lt;header&gt;" in page and f'href="{jira.url}/browse/WEB-1"' in page
        assert "open in Jira" in page and 'data-count="commits">2<' in page
        assert client.get("/api/v1/issues/NOPE-1/development").json()["project_known"] is False

        # Jira down while a command runs: pending on the page and in the API, with the reason
        jira.fail_next("POST", r"/comment$", 503, headers={"Retry-After": "600"}, times=1)
        repo.commit("WEB-1 #comment while Jira is down", author="Ada Lovelace <ada@example.com>")
        repo.git("push", "-q", "origin", "main")
        deadline = time.monotonic() + 30
        while "answered 503" not in str(client.get("/api/v1/smart-commits", params={"status": "pending"}).json()):
            assert time.monotonic() < deadline, "the command never became pending with Jira's answer"
            time.sleep(0.05)
        [pending] = client.get("/api/v1/smart-commits", params={"status": "pending"}).json()
        assert pending["key"] == "WEB-1" and "tries again" in pending["message"]
        page = client.get("/smart-commits", params={"status": "pending"}).text
        assert "answered 503; devlink tries again" in page and 'class="badge smart-pending"' in page

        jira.fail_next("GET", r"/issue/WEB-2$", 503, headers={"Retry-After": "60"}, times=5)
        down = client.get("/issues/WEB-2")
        assert down.status_code == 200 and "cannot be reached right now" in down.text
        assert 'class="summary"' in down.text  # the development panel still shows
        assert client.get("/api/v1/issues/WEB-2").status_code == 502
        assert TOKEN not in server.log.read_text()
