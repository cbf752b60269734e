"""Smart commits end to end on real git repositories, SQLite and PostgreSQL: what runs, once, and what fails."""

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import event, func, select

from devlink.runtime import Runtime
from devlink.store import queries
from devlink.store.tracker import SmartCommitRun
from devlink.sync.jobs import run_sync
from devlink.sync.repositories import add_repository
from devlink.sync.smart_commits import MAX_COMMANDS_PER_COMMIT
from devlink.trackers.builtin import MAX_ISSUE_PAGE_SIZE, import_data, issue_view
from gitrepos import GitRepo

TRACKER = {
    "users": [
        {"username": "ada", "name": "Ada Lovelace", "emails": ["Ada@Example.com"]},
        {"username": "bob", "name": "Bob", "emails": ["bob@example.com"]},
        {"username": "twin1", "emails": ["shared@example.com"]},
        {"username": "twin2", "emails": ["shared@example.com"]},
    ],
    "projects": [
        {"key": "DEMO", "name": "Demo", "permissions": {
            "browse": ["everyone"], "comment": ["ada", "bob"], "log_work": ["ada"], "transition": ["ada"]}},
    ],
    "issues": [
        {"key": "DEMO-1", "summary": "first"},
        {"key": "DEMO-2", "summary": "second"},
        {"key": "DEMO-3", "summary": "third"},
    ],
}


@pytest.fixture
def tracked(runtime: Runtime) -> Runtime:
    with runtime.sessions.begin() as session:
        import_data(session, TRACKER)
    return runtime


@pytest.fixture
def linked(tracked: Runtime, bare_remote: tuple[GitRepo, Path]) -> tuple[GitRepo, Path, int]:
    """A repository linked and backfilled; its history already carries a smart commit (which must not run)."""
    repo, server = bare_remote
    repo._clock = int(time.time()) - 3600  # recent commits
    repo.commit("DEMO-1 #comment written before the repository was linked")
    repo.git("push", "-q", "origin", "main")
    repository_id = add_repository(tracked, str(server)).id
    [first] = run_sync(tracked, repository_id, full=False)
    assert (first.commits_new, first.smart_commits.done, first.smart_commits.error) == (1, 0, 0)
    return repo, server, repository_id


def issue(rt: Runtime, key: str) -> dict[str, object]:
    """The issue with up to 1,000 of each list (the view pages them)."""
    with rt.sessions() as session:
        return issue_view(session, key, limit=MAX_ISSUE_PAGE_SIZE)


def ledger(rt: Runtime) -> list[tuple[str, int, str, str]]:
    with rt.sessions() as session:
        rows = session.execute(
            select(SmartCommitRun.issue_key, SmartCommitRun.position, SmartCommitRun.outcome, SmartCommitRun.message)
            .order_by(SmartCommitRun.id)
        ).all()
    return [tuple(row) for row in rows]  # type: ignore[misc]


def push(repo: GitRepo, *messages: str, author: str | None = None) -> list[str]:
    shas = [repo.commit(message, author=author) for message in messages]
    repo.git("push", "-q", "origin", "HEAD:main")
    return shas


def test_the_first_sync_runs_nothing(linked: tuple[GitRepo, Path, int], tracked: Runtime) -> None:
    assert issue(tracked, "DEMO-1")["comments"] == []
    assert ledger(tracked) == []


def test_commands_pushed_after_linking_act_on_the_issue(
    linked: tuple[GitRepo, Path, int], tracked: Runtime
) -> None:
    repo, _, repository_id = linked
    push(repo, "DEMO-1 #start #comment working on it #time 1h 30m investigating the parser")

    [result] = run_sync(tracked, repository_id, full=False)

    assert (result.smart_commits.done, result.smart_commits.error) == (3, 0)
    demo1 = issue(tracked, "DEMO-1")
    assert demo1["status"] == "In Progress"
    assert [(c["author"], c["body"]) for c in demo1["comments"]] == [("ada", "working on it")]  # type: ignore[index]
    assert [(w["author"], w["seconds"], w["comment"]) for w in demo1["worklogs"]] == [  # type: ignore[index]
        ("ada", 5400, "investigating the parser")
    ]
    assert [(h["transition"], h["from"], h["to"]) for h in demo1["history"]] == [  # type: ignore[index]
        ("Start Progress", "To Do", "In Progress")
    ]
    assert [(key, pos, outcome) for key, pos, outcome, _ in ledger(tracked)] == [
        ("DEMO-1", 0, "done"), ("DEMO-1", 1, "done"), ("DEMO-1", 2, "done"),
    ]


def test_one_sync_runs_oldest_first(linked: tuple[GitRepo, Path, int], tracked: Runtime) -> None:
    repo, _, repository_id = linked
    push(repo, "DEMO-2 #start", "DEMO-2 #resolve all done", "DEMO-2 #reopen not quite")
    run_sync(tracked, repository_id, full=False)
    demo2 = issue(tracked, "DEMO-2")
    assert demo2["status"] == "To Do"
    assert [h["transition"] for h in demo2["history"]] == ["Start Progress", "Resolve", "Reopen"]  # type: ignore
    assert [c["body"] for c in demo2["comments"]] == ["all done", "not quite"]  # type: ignore[index]


def test_nothing_runs_twice_across_branches_repositories_and_resyncs(
    linked: tuple[GitRepo, Path, int], tracked: Runtime, tmp_path: Path
) -> None:
    repo, _, repository_id = linked
    # a second repository (a fork) linked before the commit exists, so the commit is new there too
    fork = tmp_path / "fork.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(repo.path), str(fork)], check=True)
    fork_id = add_repository(tracked, str(fork), name="fork").id
    run_sync(tracked, fork_id, full=False)

    [sha] = push(repo, "DEMO-3 #comment exactly once please")
    repo.git("push", "-q", "origin", "HEAD:refs/heads/DEMO-3-copy")  # the same commit on a second branch
    repo.git("push", "-q", str(fork), "HEAD:main")
    run_sync(tracked, repository_id, full=False)
    run_sync(tracked, fork_id, full=False)
    run_sync(tracked, repository_id, full=True)
    run_sync(tracked, fork_id, full=True)
    run_sync(tracked, repository_id, full=False)

    assert [c["body"] for c in issue(tracked, "DEMO-3")["comments"]] == ["exactly once please"]  # type: ignore
    assert ledger(tracked) == [("DEMO-3", 0, "done", "commented as ada")]
    with tracked.sessions() as session:
        document = queries.development(session, "DEMO-3")
    badges = {(c["repository"]["name"], c["sha"]): c["smart_commits"] for c in document["commits"]}
    assert [r["outcome"] for r in badges[("server", sha)]] == ["done"]
    assert [r["outcome"] for r in badges[("fork", sha)]] == ["done"]  # the badge follows the commit everywhere


def test_old_commits_are_skipped_and_say_why(linked: tuple[GitRepo, Path, int], tracked: Runtime) -> None:
    repo, _, repository_id = linked
    repo._clock = int(time.time()) - 30 * 86400
    push(repo, "DEMO-1 #comment from a month ago")
    run_sync(tracked, repository_id, full=False)
    assert issue(tracked, "DEMO-1")["comments"] == []
    assert ledger(tracked) == [("DEMO-1", 0, "skipped", "commit is older than 14 days")]


@pytest.mark.parametrize(
    ("message", "author", "expected"),
    [
        ("DEMO-1 #comment hi", "Carol <carol@example.com>",
         "no user with e-mail carol@example.com (map it to one: devlink tracker alias carol@example.com USERNAME)"),
        ("DEMO-1 #comment hi", "Twin <shared@example.com>",
         "more than one user with e-mail shared@example.com: twin1, twin2"),
        ("DEMO-1 #time 1h", "Bob <bob@example.com>", "bob may not log work on DEMO-1"),
        ("DEMO-1 #fnish", None,
         "no transition matches #fnish; available: Start Progress"),
        ("DEMO-1 #time soon", None, "no duration in #time soon: write it like 1w 2d 4h 30m"),
        ("DEMO-9 #comment hi", None, "no issue DEMO-9"),
    ],
    ids=["unknown-user", "ambiguous-user", "no-permission", "bad-transition", "bad-duration", "no-issue"],
)
def test_refused_commands_are_recorded_as_errors(
    linked: tuple[GitRepo, Path, int], tracked: Runtime, message: str, author: str | None, expected: str
) -> None:
    repo, _, repository_id = linked
    push(repo, message, author=author)
    [result] = run_sync(tracked, repository_id, full=False)
    assert (result.smart_commits.done, result.smart_commits.error) == (0, 1)
    with tracked.sessions() as session:
        errors = queries.smart_commits(session, status="error")
    assert [(e["key"], e["message"]) for e in errors] == [(message.split()[0], expected)]
    assert issue(tracked, "DEMO-1")["comments"] == [] and issue(tracked, "DEMO-1")["status"] == "To Do"


def test_one_failing_command_does_not_stop_the_others(linked: tuple[GitRepo, Path, int], tracked: Runtime) -> None:
    repo, _, repository_id = linked
    push(repo, "DEMO-1 #fnish #comment still here\nDEMO-2 #time 2h")
    [result] = run_sync(tracked, repository_id, full=False)
    assert (result.smart_commits.done, result.smart_commits.error) == (2, 1)
    assert [c["body"] for c in issue(tracked, "DEMO-1")["comments"]] == ["still here"]  # type: ignore[index]
    assert [w["seconds"] for w in issue(tracked, "DEMO-2")["worklogs"]] == [7200]  # type: ignore[index]


def test_keys_of_unknown_projects_are_not_linked(linked: tuple[GitRepo, Path, int], tracked: Runtime) -> None:
    repo, _, repository_id = linked
    push(repo, "DEMO-2 and UTF-8 and NOPE-1 mentioned")
    run_sync(tracked, repository_id, full=False)
    with tracked.sessions() as session:
        assert queries.development(session, "DEMO-2")["summary"]["commits"] == 1
        assert queries.development(session, "NOPE-1")["summary"]["commits"] == 0


def test_smart_commits_can_be_turned_off_per_repository(
    linked: tuple[GitRepo, Path, int], tracked: Runtime
) -> None:


    from devlink.sync.repositories import set_smart_commits

    repo, _, repository_id = linked
    assert set_smart_commits(tracked, repository_id, False).smart_commits is False
    push(repo, "DEMO-1 #comment ignored")
    run_sync(tracked, repository_id, full=False)
    assert (issue(tracked, "DEMO-1")["comments"], ledger(tracked)) == ([], [])
    set_smart_commits(tracked, repository_id, True)  # commits first seen while off stay off
    push(repo, "DEMO-1 #comment counted")
    run_sync(tracked, repository_id, full=False)
    assert [c["body"] for c in issue(tracked, "DEMO-1")["comments"]] == ["counted"]  # type: ignore[index]


KILLED_WORKER = r"""
import os, signal, sys
import devlink.sync.smart_commits as smart
from devlink.config import load_settings
from devlink.runtime import Runtime
from devlink.sync.jobs import run_sync

real_apply, calls = smart._apply, []
def apply(*args, **kwargs):
    calls.append(1)
    if len(calls) == 2:  # the first command has committed; die in the middle of the second
        os.kill(os.getpid(), signal.SIGKILL)
    return real_apply(*args, **kwargs)
smart._apply = apply
rt = Runtime.open(load_settings())
run_sync(rt, int(sys.argv[1]), full=False)
"""


def test_a_worker_killed_mid_run_executes_nothing_twice(
    linked: tuple[GitRepo, Path, int], tracked: Runtime
) -> None:
    repo, _, repository_id = linked
    push(repo, "DEMO-1 #comment one #comment two\nDEMO-2 #comment three")
    env = dict(os.environ, DEVLINK_HOME=str(tracked.settings.home), DEVLINK_DATABASE_URL=tracked.settings.database_url)
    killed = subprocess.run([sys.executable, "-c", KILLED_WORKER, str(repository_id)], env=env)
    assert killed.returncode == -9
    assert [c["body"] for c in issue(tracked, "DEMO-1")["comments"]] == ["one"]  # type: ignore[index]

    from sqlalchemy import update

    from devlink.store.models import Repository, utcnow
    from devlink.sync.jobs import STALE_AFTER

    with tracked.sessions.begin() as session:  # the dead worker's lock goes stale
        session.execute(update(Repository).values(sync_heartbeat_at=utcnow() - STALE_AFTER * 2))
    run_sync(tracked, repository_id, full=False)
    run_sync(tracked, repository_id, full=False)

    assert [c["body"] for c in issue(tracked, "DEMO-1")["comments"]] == ["one", "two"]  # type: ignore[index]
    assert [c["body"] for c in issue(tracked, "DEMO-2")["comments"]] == ["three"]  # type: ignore[index]
    with tracked.sessions() as session:
        assert session.scalar(select(func.count()).select_from(SmartCommitRun)) == 3


def test_commits_of_the_same_second_run_parents_first(linked: tuple[GitRepo, Path, int], tracked: Runtime) -> None:
    repo, _, repository_id = linked
    for message in ("DEMO-2 #start", "DEMO-2 #resolve fixed", "DEMO-2 #reopen"):
        repo.git("commit", "-q", "--allow-empty", "-m", message)  # the same timestamp for all three
    repo.git("push", "-q", "origin", "HEAD:main")
    run_sync(tracked, repository_id, full=False)
    assert [h["transition"] for h in issue(tracked, "DEMO-2")["history"]] == [  # type: ignore[index]
        "Start Progress", "Resolve", "Reopen"
    ]


def test_values_the_database_cannot_hold_do_not_block_later_commands(
    linked: tuple[GitRepo, Path, int], tracked: Runtime
) -> None:
    repo, _, repository_id = linked
    long_key = "DEMO-" + "9" * 200
    push(repo, "DEMO-1 #time 999999h", f"{long_key} #comment far too long", "DEMO-1 #time 0m",
         "DEMO-1 #comment after them")
    run_sync(tracked, repository_id, full=False)
    assert [(key, outcome, message) for key, _, outcome, message in ledger(tracked)] == [
        ("DEMO-1", "error", "#time 999999h: more than a year of work in one entry"),
        ("DEMO-1", "error", "#time needs a duration of at least one second"),
        ("DEMO-1", "done", "commented as ada"),
    ]
    run_sync(tracked, repository_id, full=False)  # nothing is left to retry
    assert len(ledger(tracked)) == 3


def test_text_after_a_transition_needs_the_comment_permission(
    linked: tuple[GitRepo, Path, int], tracked: Runtime
) -> None:
    from devlink.trackers.builtin import create_project

    repo, _, repository_id = linked
    with tracked.sessions.begin() as session:
        create_project(session, "DEMO", "Demo", permissions={"transition": ["ada"]})
    push(repo, "DEMO-1 #start sneaking a comment in")
    run_sync(tracked, repository_id, full=False)
    assert ledger(tracked)[0][2:] == ("error", "ada may not comment on DEMO-1 (the text after #start)")
    assert (issue(tracked, "DEMO-1")["status"], issue(tracked, "DEMO-1")["comments"]) == ("To Do", [])


def test_an_alias_cannot_take_another_users_address(tracked: Runtime) -> None:
    from devlink.errors import Conflict
    from devlink.trackers.builtin import BuiltinTracker, add_alias

    with tracked.sessions.begin() as session, pytest.raises(Conflict) as refused:
        add_alias(session, "ADA@example.com", "bob")
    assert refused.value.message == "ada@example.com is an address of ada; an alias cannot give it to bob"
    with tracked.sessions.begin() as session:
        add_alias(session, "ada@laptop.local", "ada")
        assert BuiltinTracker(session).users_for_email("Ada@Laptop.local") == ["ada"]


# --- the per-commit cap ---------------------------------------------------------------------------


@contextmanager
def counted_statements(rt: Runtime) -> Iterator[list[str]]:
    """The SQL statements ``rt`` runs inside the block: a cost that does not depend on the machine's load."""
    seen: list[str] = []

    def count(conn: object, cursor: object, statement: str, *args: object) -> None:
        seen.append(statement)

    event.listen(rt.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(rt.engine, "before_cursor_execute", count)


def test_a_commit_runs_at_most_the_cap_and_records_the_rest_once(
    linked: tuple[GitRepo, Path, int], tracked: Runtime, tmp_path: Path
) -> None:
    repo, _, repository_id = linked
    fork = tmp_path / "fork.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(repo.path), str(fork)], check=True)
    fork_id = add_repository(tracked, str(fork), name="fork").id
    run_sync(tracked, fork_id, full=False)
    message = "DEMO-1" + " #time 1m ok" * 5000  # 60 KB, 5,000 commands
    push(repo, message)
    repo.git("push", "-q", str(fork), "HEAD:main")

    started = time.perf_counter()
    with counted_statements(tracked) as statements:
        [result] = run_sync(tracked, repository_id, full=False)
    elapsed = time.perf_counter() - started

    assert (result.smart_commits.done, result.smart_commits.error, result.smart_commits.skipped) == (100, 0, 1)
    assert len(issue(tracked, "DEMO-1")["worklogs"]) == MAX_COMMANDS_PER_COMMIT == 100  # type: ignore[arg-type]
    rows = ledger(tracked)
    assert [(key, pos, outcome) for key, pos, outcome, _ in rows] == [
        *[("DEMO-1", pos, "done") for pos in range(100)], ("DEMO-1", 100, "skipped")
    ]
    assert rows[-1][3] == "at most 100 smart-commit commands run per commit; 4900 more skipped"
    # the skipped 4,900 cost one statement, not one each: the whole sync stays within a small multiple of the cap
    assert len(statements) < 12 * MAX_COMMANDS_PER_COMMIT, len(statements)
    print(f"5,000-command commit: {elapsed:.2f} s, {len(statements)} statements")

    # exactly once: the fork, a second branch and resyncs bring the commit back; nothing runs or is recorded again
    repo.git("push", "-q", "origin", "HEAD:refs/heads/copy")
    [again] = run_sync(tracked, fork_id, full=False)
    run_sync(tracked, repository_id, full=False)
    run_sync(tracked, repository_id, full=True)
    assert (again.smart_commits.done, again.smart_commits.error, again.smart_commits.skipped) == (0, 0, 0)
    assert ledger(tracked) == rows
    assert len(issue(tracked, "DEMO-1")["worklogs"]) == 100  # type: ignore[arg-type]


def test_the_cap_counts_each_key_and_command_pair(linked: tuple[GitRepo, Path, int], tracked: Runtime) -> None:
    repo, _, repository_id = linked
    push(repo, "DEMO-1 DEMO-2" + "".join(f" #comment c{n}" for n in range(60)))  # 2 keys x 60 commands
    [result] = run_sync(tracked, repository_id, full=False)
    assert (result.smart_commits.done, result.smart_commits.skipped) == (100, 1)
    assert len(issue(tracked, "DEMO-1")["comments"]) == 60  # type: ignore[arg-type]
    assert [c["body"] for c in issue(tracked, "DEMO-2")["comments"]] == [  # type: ignore[index]
        f"c{n}" for n in range(40)
    ]
    assert ledger(tracked)[-1] == (
        "DEMO-2", 40, "skipped", "at most 100 smart-commit commands run per commit; 20 more skipped"
    )


def test_a_million_pairs_are_counted_not_listed(linked: tuple[GitRepo, Path, int], tracked: Runtime) -> None:
    repo, _, repository_id = linked
    keys = " ".join(f"DEMO-{n}" for n in range(1, 1001))
    push(repo, keys + " #comment x" * 1000)  # 1,000 keys x 1,000 commands in 20 KB
    with counted_statements(tracked) as statements:
        [result] = run_sync(tracked, repository_id, full=False)
    assert (result.smart_commits.done, result.smart_commits.skipped) == (100, 1)
    assert ledger(tracked)[-1] == (
        "DEMO-1", 100, "skipped", "at most 100 smart-commit commands run per commit; 999900 more skipped"
    )
    assert len(statements) < 12 * MAX_COMMANDS_PER_COMMIT


def test_commands_of_an_old_commit_are_capped_too(linked: tuple[GitRepo, Path, int], tracked: Runtime) -> None:
    repo, _, repository_id = linked
    repo._clock = int(time.time()) - 30 * 86400
    push(repo, "DEMO-1" + " #comment late" * 300)
    run_sync(tracked, repository_id, full=False)
    rows = ledger(tracked)
    assert len(rows) == 101 and {outcome for _, _, outcome, _ in rows} == {"skipped"}
    assert rows[-1][3] == "at most 100 smart-commit commands run per commit; 200 more skipped"


def test_the_longest_key_of_the_longest_project_key_links_and_runs(
    linked: tuple[GitRepo, Path, int], tracked: Runtime
) -> None:
    from devlink.trackers.builtin import create_issue, create_project

    key = "ABCDEFGHIJ-" + "9" * 89  # a 10-character project key and the longest number that still fits: 100
    with tracked.sessions.begin() as session:
        create_project(session, "ABCDEFGHIJ", "Longest")
        create_issue(session, key, "far down the list")
    repo, _, repository_id = linked
    push(repo, f"{key} #comment made it")
    run_sync(tracked, repository_id, full=False)
    assert [c["body"] for c in issue(tracked, key)["comments"]] == ["made it"]  # type: ignore[index]
    with tracked.sessions() as session:
        assert queries.development(session, key)["summary"]["commits"] == 1
