"""The development document read straight through the driver equals the one read through a session."""

from datetime import UTC, datetime
from pathlib import Path

from devlink.hosts.base import RemotePullRequest, Review
from devlink.runtime import Runtime
from devlink.store import queries
from devlink.store.development import development, open_plain
from devlink.store.revisions import head_revision
from devlink.store.tracker import SmartCommitRun
from devlink.sync.engine import sync_repository
from devlink.sync.pulls import write_pull_request
from devlink.sync.repositories import add_repository
from gitrepos import GitRepo


def _fill(runtime: Runtime, repo: GitRepo, server: Path) -> str:
    first = repo.commit("PLAIN-1 first\n\nwith a body")
    repo.commit("PLAIN-1 second, PLAIN-2 too", author="Grace Hopper <grace@example.com>")
    repo.branch("feature/PLAIN-1-more")
    repo.git("push", "-q", "origin", "main", "feature/PLAIN-1-more")
    repository = add_repository(runtime, str(server), web_url="https://git.example.com/team/app")
    sync_repository(runtime, repository.id, full=False)
    when = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    with runtime.sessions.begin() as session:
        write_pull_request(session, repository.id, RemotePullRequest(
            number=7, external_id="70", title="PLAIN-1: the feature", description="", state="open",
            source_branch="feature/PLAIN-1-more", target_branch="main", author="ada", url="https://x.example/7",
            created_at=when, updated_at=when, comment_count=3, reviewers=(Review("grace", "approved"),),
        ), None)
        session.add(SmartCommitRun(commit_sha=first, issue_key="PLAIN-1", position=0, repository_id=repository.id,
                                   command="comment", args="hello", outcome="done", message="commented as ada",
                                   author_email="ada@example.com"))
    return first


def test_the_plain_path_reads_the_same_document(runtime: Runtime, bare_remote: tuple[GitRepo, Path]) -> None:
    repo, server = bare_remote
    _fill(runtime, repo, server)
    for key in ("PLAIN-1", "PLAIN-2", "PLAIN-3"):
        with runtime.sessions() as session:
            expected = queries.development(session, key)
        with open_plain(runtime.settings.database_url, head_revision()) as fetch:
            assert fetch is not None
            assert development(fetch, key) == expected
    assert expected["summary"]["commits"] == 0  # PLAIN-3: nothing
    with open_plain(runtime.settings.database_url, head_revision()) as fetch:
        assert fetch is not None
        document = development(fetch, "PLAIN-1")
    assert document["summary"] == {"commits": 2, "branches": 1, "pull_requests": 1,
                                   "pull_request_states": {"open": 1}, "repositories": 1,
                                   "latest_commit_at": document["commits"][0]["committed_at"]}
    assert document["pull_requests"][0]["reviewers"] == [{"login": "grace", "state": "approved"}]
    assert [run["command"] for run in document["commits"][1]["smart_commits"]] == ["comment"]


def test_the_plain_path_steps_aside_for_a_database_it_cannot_trust(runtime: Runtime, tmp_path: Path) -> None:
    with open_plain(runtime.settings.database_url, "not-the-head") as fetch:
        assert fetch is None  # behind (or ahead): the usual path migrates or refuses
    with open_plain(f"sqlite:///{tmp_path / 'missing.db'}", head_revision()) as fetch:
        assert fetch is None
    assert not (tmp_path / "missing.db").exists()  # never created here
