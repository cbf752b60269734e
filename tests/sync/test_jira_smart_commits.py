"""Jira as the tracker, end to end on real git repositories, SQLite and PostgreSQL, Data Center and Cloud.

The Jira stub (tests/jira_stub.py) answers over real HTTP on loopback and checks every request devlink sends
against the official API descriptions; ``violations`` must stay empty.
"""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from devlink.runtime import Runtime
from devlink.store import queries
from devlink.store.tracker import SmartCommitRun
from devlink.sync.jobs import run_sync
from devlink.sync.repositories import add_repository
from devlink.sync.trackers import use_outside
from devlink.trackers.jira import jira_time
from gitrepos import GitRepo
from jira_stub import JiraStub

pytestmark = pytest.mark.timeout(120)

TOKEN = "jira-secret-token-1234"
BOT = "bot@example.com"


@pytest.fixture(params=["datacenter", "cloud"])
def jira(request: pytest.FixtureRequest) -> Iterator[JiraStub]:
    cloud = request.param == "cloud"
    with JiraStub(cloud=cloud) as stub:
        stub.add_user("bot", email=BOT, display_name="devlink bot")
        stub.add_user("ada", email="ada@example.com", display_name="Ada Lovelace")
        if cloud:
            stub.add_api_token(BOT, TOKEN, "bot")
        else:
            stub.add_pat(TOKEN, "bot")
        stub.add_project("KAFKA", "Kafka")
        stub.add_issue("KAFKA-1", summary="Fix the broker", assignee="ada")
        stub.add_issue("KAFKA-2", summary="Speed it up")
        yield stub
        assert stub.violations == []


def connect(rt: Runtime, stub: JiraStub) -> None:
    use_outside(rt, "jira", url=stub.url, token=TOKEN, email=BOT if stub.cloud else None)


@pytest.fixture
def linked(runtime: Runtime, jira: JiraStub, bare_remote: tuple[GitRepo, Path]) -> tuple[GitRepo, int]:
    """Jira connected; a repository whose history mentions a Jira key and a key of no Jira project, backfilled."""
    repo, server = bare_remote
    repo._clock = int(time.time()) - 3600
    repo.commit("KAFKA-1 first look, see OTHER-7 #comment must not run on backfill")
    repo.git("push", "-q", "origin", "main")
    connect(runtime, jira)
    repository_id = add_repository(runtime, str(server)).id
    run_sync(runtime, repository_id, full=False)
    return repo, repository_id


def push(repo: GitRepo, *messages: str, author: str = "Ada Lovelace <ada@example.com>") -> list[str]:
    shas = [repo.commit(message, author=author) for message in messages]
    repo.git("push", "-q", "origin", "HEAD:main")
    return shas


def ledger(rt: Runtime) -> list[tuple[str, int, str, str]]:
    with rt.sessions() as session:
        rows = session.execute(select(SmartCommitRun.issue_key, SmartCommitRun.position, SmartCommitRun.outcome,
                                      SmartCommitRun.message).order_by(SmartCommitRun.id)).all()
    return [tuple(row) for row in rows]  # type: ignore[misc]


def author_time(repo: GitRepo, sha: str) -> str:
    from datetime import datetime

    return jira_time(datetime.fromisoformat(repo.git("show", "-s", "--format=%aI", sha).strip()))


def comment_text(body: object) -> str:
    """The text of a comment body: wiki text on Data Center, the text nodes of ADF on Cloud."""
    if isinstance(body, str):
        return body
    if isinstance(body, dict):
        return (body.get("text") or "") + "".join(comment_text(c) for c in body.get("content") or [])
    return ""


def test_only_jira_keys_link_and_smart_commits_act_once(runtime: Runtime, jira: JiraStub,
                                                        linked: tuple[GitRepo, int]) -> None:
    repo, repository_id = linked
    with runtime.sessions() as session:
        assert queries.development(session, "KAFKA-1")["summary"]["commits"] == 1
        other = queries.development(session, "OTHER-7")
        assert other["summary"]["commits"] == 0 and other["project_known"] is False  # no such Jira project
        assert "not a project of the tracker in use" in other["notice"]
    assert jira.comments("KAFKA-1") == []  # the backfilled commit's command never runs

    [sha] = push(repo, "KAFKA-1 #comment Fixed the leak #time 1h 30m chased it down\nKAFKA-2 #start-progress")
    run_sync(runtime, repository_id, full=False)

    [comment] = jira.comments("KAFKA-1")
    text = comment_text(comment["body"])
    assert "Fixed the leak" in text and sha[:12] in text and "Ada Lovelace" in text
    if jira.cloud:  # Cloud v3 takes Atlassian Document Format only
        assert comment["body"]["type"] == "doc"
    [worklog] = jira.worklogs("KAFKA-1")
    assert worklog["timeSpentSeconds"] == 5400
    assert worklog["started"] == author_time(repo, sha)
    assert "chased it down" in comment_text(worklog["comment"])
    assert jira.status("KAFKA-2") == "In Progress"
    assert sorted(outcome for _, _, outcome, _ in ledger(runtime)) == ["done", "done", "done"]

    # a full resync and a second branch carrying the same commit change nothing
    run_sync(runtime, repository_id, full=True)
    repo.git("push", "-q", "origin", f"{sha}:refs/heads/second")
    run_sync(runtime, repository_id, full=False)
    assert (len(jira.comments("KAFKA-1")), len(jira.worklogs("KAFKA-1")), jira.status("KAFKA-2")) == (
        1, 1, "In Progress")
    assert len(ledger(runtime)) == 3


def test_every_refusal_is_recorded_with_its_reason(runtime: Runtime, jira: JiraStub,
                                                   linked: tuple[GitRepo, int]) -> None:
    repo, repository_id = linked
    jira.add_user("twin1", email="twin@example.com")
    jira.add_user("twin2", email="twin@example.com")
    jira.deny("ada", "KAFKA", "WORK_ON_ISSUES")
    push(repo, "KAFKA-1 #comment from a stranger", author="Eve <eve@example.com>")
    push(repo, "KAFKA-1 #comment from twins", author="Twin <twin@example.com>")
    push(repo, "KAFKA-1 #time 2h\nKAFKA-1 #fly-away\nKAFKA-99 #comment no such issue")
    run_sync(runtime, repository_id, full=False)
    messages = {message for _, _, outcome, message in ledger(runtime) if outcome == "error"}
    assert any("no user with e-mail eve@example.com" in m for m in messages), messages
    assert any("more than one user with e-mail twin@example.com" in m for m in messages), messages
    assert any("Ada Lovelace may not log work on KAFKA-1" in m for m in messages), messages
    assert any("no transition matches #fly-away; available: Start Progress" in m for m in messages), messages
    assert any("no issue KAFKA-99" in m for m in messages), messages
    assert jira.comments("KAFKA-1") == [] and jira.worklogs("KAFKA-1") == []
    with runtime.sessions() as session:  # what the smart-commit page and API read
        shown = {run["message"] for run in queries.smart_commits(session, status="error", limit=50)}
    assert shown == messages


def test_a_transition_jira_insists_on_a_field_for_is_an_error_in_jiras_words(
    runtime: Runtime, jira: JiraStub, linked: tuple[GitRepo, int]
) -> None:
    repo, repository_id = linked
    jira.issues["KAFKA-2"]["status"] = "In Progress"
    jira.require_field("Done", "resolution")
    push(repo, "KAFKA-2 #resolve")
    run_sync(runtime, repository_id, full=False)
    [(_, _, outcome, message)] = ledger(runtime)
    assert outcome == "error" and "Resolution is required" in message
    assert jira.status("KAFKA-2") == "In Progress"


def test_an_alias_maps_a_hidden_address_to_a_jira_user(runtime: Runtime, jira: JiraStub,
                                                       linked: tuple[GitRepo, int]) -> None:
    from devlink.sync.trackers import add_outside_alias

    repo, repository_id = linked
    hidden = jira.add_user("hid", email="hidden@corp.example", display_name="Hidden", email_visible=False)
    add_outside_alias(runtime, "Hidden@Corp.example", hidden["accountId"] if jira.cloud else "hid")
    push(repo, "KAFKA-1 #comment via alias", author="Hidden <hidden@corp.example>")
    run_sync(runtime, repository_id, full=False)
    [(_, _, outcome, message)] = ledger(runtime)
    assert outcome == "done", message
    assert "via alias" in comment_text(jira.comments("KAFKA-1")[0]["body"])


def test_jira_down_leaves_the_command_pending_and_the_next_pass_runs_it_once(
    runtime: Runtime, jira: JiraStub, linked: tuple[GitRepo, int]
) -> None:
    repo, repository_id = linked
    push(repo, "KAFKA-1 #comment while Jira was down")
    jira.fail_next("POST", r"/comment$", 503, headers={"Retry-After": "120"}, times=1)
    [result] = run_sync(runtime, repository_id, full=False)
    [(_, _, outcome, message)] = ledger(runtime)
    assert outcome == "pending" and "503" in message and "tries again" in message
    assert result.retry_after == 120  # the next sync comes when Jira said to come back
    assert jira.comments("KAFKA-1") == []
    run_sync(runtime, repository_id, full=False)
    assert [o for _, _, o, _ in ledger(runtime)] == ["done"]
    assert len(jira.comments("KAFKA-1")) == 1


def test_a_429_with_retry_after_is_waited_out(runtime: Runtime, jira: JiraStub,
                                              linked: tuple[GitRepo, int]) -> None:
    repo, repository_id = linked
    push(repo, "KAFKA-1 #comment after a short wait")
    jira.fail_next("POST", r"/comment$", 429, headers={"Retry-After": "1"}, times=1)
    started = time.monotonic()
    run_sync(runtime, repository_id, full=False)
    assert time.monotonic() - started >= 1.0
    assert [o for _, _, o, _ in ledger(runtime)] == ["done"]
    assert len(jira.comments("KAFKA-1")) == 1


KILLED_BETWEEN_JIRA_AND_LEDGER = r"""
import sys
from devlink.config import load_settings
from devlink.runtime import Runtime
from devlink.sync.jobs import run_sync
run_sync(Runtime.open(load_settings()), int(sys.argv[1]), full=False)
"""


@pytest.mark.parametrize("command", ["#comment survived a crash", "#time 1h", "#start-progress"])
def test_a_worker_killed_after_jira_acted_leaves_exactly_one_effect(
    runtime: Runtime, jira: JiraStub, linked: tuple[GitRepo, int], command: str
) -> None:
    repo, repository_id = linked
    push(repo, f"KAFKA-2 {command}")
    path = {"#c": r"/comment$", "#t": r"/worklog$", "#s": r"/transitions$"}[command[:2]]
    reached = jira.hold_after("POST", path)
    env = dict(os.environ, DEVLINK_HOME=str(runtime.settings.home),
               DEVLINK_DATABASE_URL=runtime.settings.database_url)
    worker = subprocess.Popen([sys.executable, "-c", KILLED_BETWEEN_JIRA_AND_LEDGER, str(repository_id)], env=env)
    try:
        assert reached.wait(60), "the worker never reached Jira"
        worker.send_signal(signal.SIGKILL)  # Jira has done it; devlink has not recorded it
        assert worker.wait(30) == -9
    finally:
        jira.release()
        if worker.poll() is None:
            worker.kill()
    assert [o for _, _, o, _ in ledger(runtime)] == ["pending"]

    run_sync(runtime, repository_id, full=False)  # the dead worker's lock is taken over at once
    run_sync(runtime, repository_id, full=False)
    [(_, _, outcome, message)] = ledger(runtime)
    assert outcome == "done", message
    effects = {"#c": lambda: len(jira.comments("KAFKA-2")), "#t": lambda: len(jira.worklogs("KAFKA-2")),
               "#s": lambda: jira.status("KAFKA-2")}[command[:2]]()
    assert effects == (1 if command[:2] != "#s" else "In Progress")


def test_an_integration_user_that_may_not_check_permissions_is_told_what_it_needs(
    runtime: Runtime, jira: JiraStub, linked: tuple[GitRepo, int]
) -> None:
    repo, repository_id = linked
    jira.deny("bot", None, "ADMINISTER")
    if not jira.cloud:
        jira.deny("bot", "KAFKA", "ADMINISTER_PROJECTS")
    push(repo, "KAFKA-1 #comment checked first")
    run_sync(runtime, repository_id, full=False)
    [(_, _, outcome, message)] = ledger(runtime)
    assert outcome == "error" and "devlink's Jira user may not check what Ada Lovelace may do" in message
    assert ("Administer Jira" if jira.cloud else "Administer Projects") in message
    assert jira.comments("KAFKA-1") == []


def test_a_pending_parent_runs_before_a_child_that_came_later(runtime: Runtime, jira: JiraStub,
                                                              linked: tuple[GitRepo, int]) -> None:
    repo, repository_id = linked
    push(repo, "KAFKA-2 #start-progress")
    jira.fail_next("POST", r"/transitions$", 503, headers={"Retry-After": "120"})
    run_sync(runtime, repository_id, full=False)
    assert [o for _, _, o, _ in ledger(runtime)] == ["pending"]
    push(repo, "KAFKA-2 #send-to-review")  # stored by a later pass, so with a higher id than its parent
    run_sync(runtime, repository_id, full=False)
    assert [o for _, _, o, _ in ledger(runtime)] == ["done", "done"], ledger(runtime)
    assert jira.status("KAFKA-2") == "In Review"


def test_a_revoked_token_keeps_commands_pending_until_it_is_given_again(
    runtime: Runtime, jira: JiraStub, linked: tuple[GitRepo, int]
) -> None:
    repo, repository_id = linked
    push(repo, "KAFKA-1 #comment after the token was revoked")
    jira._tokens.clear()  # revoked
    [result] = run_sync(runtime, repository_id, full=False)
    [(_, _, outcome, message)] = ledger(runtime)
    assert outcome == "pending" and "refused the token (401)" in message and "tracker use jira" in message
    assert result.retry_after == 3600
    if jira.cloud:
        jira.add_api_token(BOT, "new-token", "bot")
    else:
        jira.add_pat("new-token", "bot")
    use_outside(runtime, "jira", url=jira.url, token="new-token", email=BOT if jira.cloud else None)
    run_sync(runtime, repository_id, full=False)
    assert [o for _, _, o, _ in ledger(runtime)] == ["done"]
    assert len(jira.comments("KAFKA-1")) == 1


def test_a_pass_that_failed_still_runs_before_a_later_one(runtime: Runtime, jira: JiraStub,
                                                          linked: tuple[GitRepo, int],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from devlink.sync import smart_commits

    repo, repository_id = linked
    push(repo, "KAFKA-2 #start-progress")
    real = smart_commits.known_project_keys

    def died(rt: Runtime) -> None:
        raise RuntimeError("the process died here")

    monkeypatch.setattr(smart_commits, "known_project_keys", died)
    run_sync(runtime, repository_id, full=False)  # commits stored; their smart commits never ran
    monkeypatch.setattr(smart_commits, "known_project_keys", real)
    push(repo, "KAFKA-2 #send-to-review")  # the child, stored by a later pass
    run_sync(runtime, repository_id, full=False)
    assert [o for _, _, o, _ in ledger(runtime)] == ["done", "done"], ledger(runtime)
    assert jira.status("KAFKA-2") == "In Review"
