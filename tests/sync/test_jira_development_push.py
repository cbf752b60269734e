"""Development data in Jira: remote links on Data Center, the devinfo API on Cloud, on SQLite and PostgreSQL.

Every request devlink sends validates against the corpus's API descriptions (the stubs' ``violations``).
"""

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from devlink.hosts.base import RemotePullRequest, Review
from devlink.runtime import Runtime
from devlink.sync.development_push import push_due, push_repository, push_state
from devlink.sync.jobs import run_sync
from devlink.sync.pulls import write_pull_request
from devlink.sync.repositories import add_repository, remove_repository
from devlink.sync.trackers import known_project_keys, use_outside
from devlink.trackers.jira_development import DevInfoSink
from gitrepos import GitRepo
from jira_stub import DevInfoStub, JiraStub

pytestmark = pytest.mark.timeout(120)

TOKEN, BOT = "jira-secret-token-1234", "bot@example.com"
CLIENT_ID, CLIENT_SECRET = "devinfo-client", "devinfo-client-secret-5678"


def jira_site(cloud: bool) -> JiraStub:
    stub = JiraStub(cloud=cloud)
    stub.add_user("bot", email=BOT)
    if cloud:
        stub.add_api_token(BOT, TOKEN, "bot")
    else:
        stub.add_pat(TOKEN, "bot")
    stub.add_project("KAFKA", "Kafka")
    for n in (1, 2, 3):
        stub.add_issue(f"KAFKA-{n}", summary=f"issue {n}")
    return stub


def history(runtime: Runtime, bare_remote: tuple[GitRepo, Path]) -> tuple[GitRepo, int]:
    repo, server = bare_remote
    repo._clock = int(time.time()) - 3600
    repo.commit("KAFKA-1 first")
    repo.commit("KAFKA-1 KAFKA-2 second, and OTHER-3 of no project")
    repo.git("push", "-q", "origin", "main")
    repo.git("push", "-q", "origin", "main:KAFKA-3-feature")
    repository_id = add_repository(runtime, str(server), web_url="https://git.example.com/team/app").id
    run_sync(runtime, repository_id, full=False)
    with runtime.sessions.begin() as session:
        write_pull_request(session, repository_id, RemotePullRequest(
            number=7, external_id="7", title="KAFKA-2 make it fast", description="", state="open",
            source_branch="KAFKA-3-feature", target_branch="main", author="ada",
            url="https://git.example.com/team/app/pull/7", created_at=datetime.now(UTC),
            updated_at=datetime.now(UTC), comment_count=2, reviewers=(Review("bob", "approved"),)),
            known_project_keys(runtime))
    return repo, repository_id


@pytest.fixture
def dc(runtime: Runtime) -> Iterator[JiraStub]:
    with jira_site(cloud=False) as stub:
        use_outside(runtime, "jira", url=stub.url, token=TOKEN)
        yield stub
        assert stub.violations == []


def links(stub: JiraStub, key: str) -> dict[str, str]:
    return {link["globalId"]: link["object"]["title"] for link in stub.remote_links(key)}


def test_data_center_gets_remote_links_that_follow_the_data(runtime: Runtime, dc: JiraStub,
                                                            bare_remote: tuple[GitRepo, Path]) -> None:
    repo, repository_id = history(runtime, bare_remote)
    result = push_repository(runtime, repository_id)
    assert result.state == "sent", result.message
    page = "devlink:issue:KAFKA-2"
    assert links(dc, "KAFKA-2") == {
        page: "devlink: 1 commits, 0 branches, 1 pull requests",
        f"devlink:{repository_id}:pull_request:7": "Pull request #7 [OPEN]: KAFKA-2 make it fast",
    }
    assert links(dc, "KAFKA-3")[f"devlink:{repository_id}:branch:KAFKA-3-feature"].startswith("Branch KAFKA-3")
    assert "devlink: 2 commits" in links(dc, "KAFKA-1")["devlink:issue:KAFKA-1"]
    assert push_state(runtime, repository_id)["state"] == "sent"  # type: ignore[index]

    asked = len(dc.requests)
    assert push_repository(runtime, repository_id).sent == 0  # nothing changed: nothing is sent
    assert len(dc.requests) == asked

    repo.git("push", "-q", "origin", "--delete", "KAFKA-3-feature")  # the branch goes, its link goes
    run_sync(runtime, repository_id, full=False)
    push_repository(runtime, repository_id)
    assert f"devlink:{repository_id}:branch:KAFKA-3-feature" not in links(dc, "KAFKA-3")

    remove_repository(runtime, repository_id)  # a repository removed: everything of it goes
    [gone] = push_due(runtime)
    assert gone.state == "forgotten"
    assert all(not any(g.startswith(f"devlink:{repository_id}:") for g in links(dc, f"KAFKA-{n}"))
               for n in (1, 2, 3))
    assert "devlink:issue:KAFKA-1" not in links(dc, "KAFKA-1")  # no development data left: no page link


@pytest.fixture
def cloud(runtime: Runtime) -> Iterator[tuple[JiraStub, DevInfoStub]]:
    with jira_site(cloud=True) as stub, DevInfoStub() as gateway:
        gateway.add_client(CLIENT_ID, CLIENT_SECRET, cloud_id=stub.cloud_id)
        use_outside(runtime, "jira", url=stub.url, token=TOKEN, email=BOT, devinfo_client_id=CLIENT_ID,
                    devinfo_client_secret=CLIENT_SECRET, gateway_url=gateway.url)
        yield stub, gateway
        assert stub.violations == [] and gateway.violations == []


def test_cloud_gets_devinfo_newest_first_and_a_replay_changes_nothing(
    runtime: Runtime, cloud: tuple[JiraStub, DevInfoStub], bare_remote: tuple[GitRepo, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, gateway = cloud
    repo, repository_id = history(runtime, bare_remote)
    monkeypatch.setattr(DevInfoSink, "chunk", 1)  # one entity per request, to see the order
    assert push_repository(runtime, repository_id).state == "sent"
    stored = gateway.repositories[str(repository_id)]
    assert {c["id"]: sorted(c["issueKeys"]) for c in stored["commits"]} == {
        repo.git("rev-parse", "main~1").strip(): ["KAFKA-1"],
        repo.git("rev-parse", "main").strip(): ["KAFKA-1", "KAFKA-2"],
    }
    [pull] = stored["pullRequests"]
    assert (pull["status"], pull["reviewers"][0]["approvalStatus"], pull["commentCount"]) == ("OPEN", "APPROVED", 2)
    [branch] = stored["branches"]
    assert branch["name"] == "KAFKA-3-feature"
    bulk = [r.body for r in gateway.requests if r.method == "POST" and r.path.endswith("/bulk")]
    assert all(b["preventTransitions"] is True for b in bulk)  # devlink runs smart commits itself, once
    commits_in_order = [c["id"] for b in bulk for c in b["repositories"][0].get("commits", [])]
    assert commits_in_order == [repo.git("rev-parse", "main").strip(), repo.git("rev-parse", "main~1").strip()]
    assert all(not b["repositories"][0].get("commits") for b in bulk[:2])  # branch and pull request first

    sent = len(gateway.requests)
    assert push_repository(runtime, repository_id).sent == 0
    assert len(gateway.requests) == sent

    newer = repo.commit("KAFKA-2 one more")  # only what is new goes: commits follow a cursor
    repo.git("push", "-q", "origin", "main")
    run_sync(runtime, repository_id, full=False)
    assert push_repository(runtime, repository_id).sent == 1
    [bulk_body] = [r.body for r in gateway.requests[sent:] if r.path.endswith("/bulk")]
    assert [c["id"] for c in bulk_body["repositories"][0]["commits"]] == [newer]

    repo.git("push", "-q", "origin", "--delete", "KAFKA-3-feature")
    run_sync(runtime, repository_id, full=False)
    push_repository(runtime, repository_id)
    assert gateway.repositories[str(repository_id)]["branches"] == []
    remove_repository(runtime, repository_id)
    push_due(runtime)
    assert str(repository_id) not in gateway.repositories


def test_a_failed_push_is_visible_and_retried(runtime: Runtime, cloud: tuple[JiraStub, DevInfoStub],
                                              bare_remote: tuple[GitRepo, Path]) -> None:
    _, gateway = cloud
    _, repository_id = history(runtime, bare_remote)
    gateway.fail_next("POST", r"/bulk$", 503, headers={"Retry-After": "90"})
    result = push_repository(runtime, repository_id)
    state = push_state(runtime, repository_id)
    assert result.state == "pending" and state and state["state"] == "pending" and "503" in state["message"]
    assert push_due(runtime) == []  # not before Jira said to come back
    from sqlalchemy import update

    from devlink.store.models import utcnow
    from devlink.store.tracker import DevPushState
    with runtime.sessions.begin() as session:
        session.execute(update(DevPushState).values(next_attempt_at=utcnow()))
    [retried] = push_due(runtime)
    assert retried.state == "sent" and str(repository_id) in gateway.repositories
    assert CLIENT_SECRET not in str(push_state(runtime, repository_id))


def test_wrong_devinfo_credentials_are_refused_when_connecting(runtime: Runtime) -> None:
    from devlink.errors import TrackerError

    with jira_site(cloud=True) as stub, DevInfoStub() as gateway:
        gateway.add_client(CLIENT_ID, CLIENT_SECRET, cloud_id=stub.cloud_id)
        with pytest.raises(TrackerError) as refused:
            use_outside(runtime, "jira", url=stub.url, token=TOKEN, email=BOT, devinfo_client_id=CLIENT_ID,
                        devinfo_client_secret="wrong", gateway_url=gateway.url)
        assert refused.value.reason == "auth" and "devinfo" in refused.value.message
        assert "wrong" not in refused.value.message


def test_a_branch_name_devinfo_would_refuse_and_urls_that_are_not_http(
    runtime: Runtime, cloud: tuple[JiraStub, DevInfoStub], bare_remote: tuple[GitRepo, Path]
) -> None:
    _, gateway = cloud
    repo, server = bare_remote
    repo._clock = int(time.time()) - 3600
    repo.commit("KAFKA-1 first")
    repo.git("push", "-q", "origin", "main", "main:feature/KAFKA-2-x")
    repository_id = add_repository(runtime, str(server)).id
    from sqlalchemy import update

    from devlink.store.models import Repository
    with runtime.sessions.begin() as session:  # as a hostile host's html_url would have it
        session.execute(update(Repository).values(web_url="javascript:alert(1)"))
    run_sync(runtime, repository_id, full=False)
    assert push_repository(runtime, repository_id).state == "sent"
    stored = gateway.repositories[str(repository_id)]
    [branch] = stored["branches"]
    assert branch["name"] == "feature/KAFKA-2-x" and "/" not in branch["id"]
    sent = str([r.body for r in gateway.requests])
    assert "javascript:" not in sent and str(server) not in sent  # no script URL, no path on this server
    assert stored["url"].startswith(runtime.settings.public_url)
    repo.git("push", "-q", "origin", "--delete", "feature/KAFKA-2-x")
    run_sync(runtime, repository_id, full=False)
    assert push_repository(runtime, repository_id).deleted == 1
    assert gateway.repositories[str(repository_id)]["branches"] == []


def test_a_new_site_gets_everything_and_a_full_sync_sends_it_again(
    runtime: Runtime, dc: JiraStub, bare_remote: tuple[GitRepo, Path]
) -> None:
    _, repository_id = history(runtime, bare_remote)
    push_repository(runtime, repository_id)
    assert links(dc, "KAFKA-1")
    with jira_site(cloud=False) as second:
        use_outside(runtime, "jira", url=second.url, token=TOKEN)
        assert push_state(runtime, repository_id)["state"] == "pending"  # type: ignore[index]
        [pushed] = push_due(runtime)
        assert pushed.sent > 0 and links(second, "KAFKA-1")
        second.issues["KAFKA-1"]["remote_links"].clear()  # the site lost it (restored from a backup)
        assert push_repository(runtime, repository_id).sent == 0
        run_sync(runtime, repository_id, full=True)
        push_repository(runtime, repository_id)
        assert links(second, "KAFKA-1")
        assert second.violations == []


def test_an_old_commit_that_gains_a_key_later_is_sent(runtime: Runtime, dc: JiraStub,
                                                      bare_remote: tuple[GitRepo, Path]) -> None:
    from sqlalchemy import delete

    from devlink.store.tracker import TrackerCacheEntry

    repo, server = bare_remote
    repo.commit("KAFKA-1 first")
    repo.git("push", "-q", "origin", "main")
    repository_id = add_repository(runtime, str(server)).id
    run_sync(runtime, repository_id, full=False)
    repo.git("checkout", "-q", "-b", "side")
    repo.commit("NEWP-1 work for a project Jira does not have yet")
    repo.git("push", "-q", "origin", "side")
    run_sync(runtime, repository_id, full=False)  # stored, not linked
    assert push_repository(runtime, repository_id).state == "sent"
    repo.git("push", "-q", "origin", ":side")
    run_sync(runtime, repository_id, full=False)
    dc.add_project("NEWP", "New")
    dc.add_issue("NEWP-1")
    with runtime.sessions.begin() as session:
        session.execute(delete(TrackerCacheEntry))  # as when the cache expires
    repo.git("push", "-q", "origin", "side")  # the old commit comes back and now links
    run_sync(runtime, repository_id, full=False)
    push_repository(runtime, repository_id)
    assert "devlink: 1 commits" in links(dc, "NEWP-1")["devlink:issue:NEWP-1"]


def test_a_push_under_way_does_not_undo_a_full_resend(runtime: Runtime, dc: JiraStub,
                                                      bare_remote: tuple[GitRepo, Path],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from contextlib import contextmanager

    from devlink.sync import development_push
    from devlink.sync.development_push import request_push

    _, repository_id = history(runtime, bare_remote)
    original = development_push.open_sink

    @contextmanager
    def sink_that_meets_a_resend(rt):  # type: ignore[no-untyped-def]
        with original(rt) as sink:
            send = sink.send

            def send_then_resend(*args, **kwargs):  # type: ignore[no-untyped-def]
                unknown = send(*args, **kwargs)
                request_push(rt, repository_id, resend=True)  # a full sync finished meanwhile
                return unknown
            sink.send = send_then_resend
            yield sink

    monkeypatch.setattr(development_push, "open_sink", sink_that_meets_a_resend)
    superseded = push_repository(runtime, repository_id)
    assert superseded.state == "pending" and "full resend" in superseded.message
    monkeypatch.setattr(development_push, "open_sink", original)
    again = push_repository(runtime, repository_id)
    assert again.state == "sent" and again.sent == 4  # everything, as the resend asked: 2 commits, branch, pull


def test_data_center_is_sent_only_the_keys_of_projects_the_repository_serves(
        runtime: Runtime, dc: JiraStub, bare_remote: tuple[GitRepo, Path]) -> None:
    from devlink.sync.access import set_repository_projects

    dc.add_project("OPS", "Ops")
    dc.add_issue("OPS-1", summary="ops issue")
    repo, server = bare_remote
    repo._clock = int(time.time()) - 3600
    repo.commit("KAFKA-1 OPS-1 both")
    repo.git("push", "-q", "origin", "main", "main:OPS-1-fix")
    repository_id = add_repository(runtime, str(server), web_url="https://git.example.com/team/app").id
    run_sync(runtime, repository_id, full=False)
    set_repository_projects(runtime, repository_id, ["KAFKA"])
    assert push_repository(runtime, repository_id).state == "sent"
    assert links(dc, "OPS-1") == {}  # the repository serves KAFKA only
    assert links(dc, "KAFKA-1") == {"devlink:issue:KAFKA-1": "devlink: 1 commits, 0 branches, 0 pull requests"}

    set_repository_projects(runtime, repository_id, None)  # every project again: due, and OPS-1 gets it all
    [pushed] = push_due(runtime)
    assert pushed.state == "sent", pushed.message
    assert links(dc, "OPS-1") == {"devlink:issue:OPS-1": "devlink: 1 commits, 1 branches, 0 pull requests",
                                  f"devlink:{repository_id}:branch:OPS-1-fix": "Branch OPS-1-fix in server"}

    set_repository_projects(runtime, repository_id, ["KAFKA"])  # narrowed again: the branch's link goes
    push_due(runtime)
    assert links(dc, "OPS-1") == {}  # nor any count: what remains is KAFKA's
