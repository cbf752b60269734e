"""The sync engine on real git repositories, on SQLite and PostgreSQL.

Each test builds a history with the git CLI, pushes it to a bare "server"
repository, links that, and checks exactly which commits and branches every
key gets after initial, soft and full syncs.
"""

import logging
import subprocess
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from devlink.errors import GitError
from devlink.hosts.git import Mirror
from devlink.runtime import Runtime
from devlink.store import queries
from devlink.store.models import Branch, Commit, IssueLink, Repository
from devlink.sync.engine import sync_repository
from devlink.sync.jobs import run_sync
from devlink.sync.repositories import add_repository
from gitrepos import GitHttpServer, GitRepo


def _links(rt: Runtime, entity_type: str, label: Any) -> dict[str, set[str]]:
    """Key → labels (commit shas, branch names) of the entities linked to it, read from the store."""
    model = label.class_
    with rt.sessions() as session:
        rows = session.execute(
            select(IssueLink.key, label)
            .join(model, model.id == IssueLink.entity_id)
            .where(IssueLink.entity_type == entity_type)
        ).all()
    links: dict[str, set[str]] = {}
    for key, value in rows:
        links.setdefault(key, set()).add(value)
    return links


def commit_links(rt: Runtime) -> dict[str, set[str]]:
    return _links(rt, "commit", Commit.sha)


def branch_links(rt: Runtime) -> dict[str, set[str]]:
    return _links(rt, "branch", Branch.name)


def branches(rt: Runtime) -> dict[str, str]:
    with rt.sessions() as session:
        return {name: sha for name, sha in session.execute(select(Branch.name, Branch.head_sha)).all()}


def commit_count(rt: Runtime) -> int:
    with rt.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(Commit)) or 0)


def build_history(repo: GitRepo) -> dict[str, str]:
    """main: c1 c2 ─ m1 (merge of feature); feature/ABC-3-thing: c3 c4; other: c5 (c2 is on all three)."""
    shas = {"c1": repo.commit("ABC-1 initial"), "c2": repo.commit("ABC-2 second\n\nbody mentions nothing")}
    repo.branch("feature/ABC-3-thing")
    repo.branch("other")
    repo.checkout("feature/ABC-3-thing")
    shas["c3"] = repo.commit("ABC-3 start work")
    shas["c4"] = repo.commit("Work on it\n\nSee ABC-3 and DEF-1 in the body.")
    repo.checkout("other")
    shas["c5"] = repo.commit("DEF-2 other work")
    repo.checkout("main")
    shas["m1"] = repo.merge("feature/ABC-3-thing", "Merge branch for ABC-3")
    repo.git("push", "-q", "origin", "--all")
    return shas


def test_initial_backfill_links_exactly(runtime: Runtime, bare_remote: tuple[GitRepo, Path]) -> None:
    repo, server = bare_remote
    s = build_history(repo)
    repository = add_repository(runtime, str(server))

    [result] = run_sync(runtime, repository.id, full=False)

    assert (result.commits_seen, result.commits_new, result.branches_created) == (6, 6, 3)
    assert commit_links(runtime) == {
        "ABC-1": {s["c1"]},
        "ABC-2": {s["c2"]},
        "ABC-3": {s["c3"], s["c4"], s["m1"]},
        "DEF-1": {s["c4"]},
        "DEF-2": {s["c5"]},
    }
    assert branches(runtime) == {"main": s["m1"], "feature/ABC-3-thing": s["c4"], "other": s["c5"]}
    assert branch_links(runtime) == {"ABC-3": {"feature/ABC-3-thing"}}
    with runtime.sessions() as session:
        stored = session.get(Repository, repository.id)
        assert stored is not None
        assert (stored.sync_state, stored.commits_indexed, stored.last_error_reason) == ("idle", 6, None)
        seen_by = set(session.scalars(select(Commit.first_seen_by)))
        assert seen_by == {"backfill"}


def test_development_document(runtime: Runtime, bare_remote: tuple[GitRepo, Path]) -> None:
    repo, server = bare_remote
    s = build_history(repo)
    repository = add_repository(runtime, str(server), name="core", web_url="https://git.example.test/core")
    run_sync(runtime, repository.id, full=False)

    with runtime.sessions() as session:
        document = queries.development(session, "ABC-3")

    assert document["key"] == "ABC-3"
    assert document["summary"] == {
        "commits": 3, "branches": 1, "pull_requests": 0, "pull_request_states": {}, "repositories": 1,
        "latest_commit_at": document["commits"][0]["committed_at"],
    }
    assert [c["sha"] for c in document["commits"]] == [s["m1"], s["c4"], s["c3"]]  # newest first
    c4 = document["commits"][1]
    assert c4 == {
        "sha": s["c4"],
        "short_sha": s["c4"][:12],
        "repository": {"id": repository.id, "name": "core", "url": str(server),
                       "web_url": "https://git.example.test/core"},
        "author": {"name": "Ada Lovelace", "email": "ada@example.com"},
        "committer": {"name": "Ada Lovelace", "email": "ada@example.com"},
        "date": c4["committed_at"],  # authored and committed at the same instant, in UTC
        "committed_at": c4["committed_at"],
        "summary": "Work on it",
        "message": "Work on it\n\nSee ABC-3 and DEF-1 in the body.",
        "merge": False,
        "url": f"https://git.example.test/core/commit/{s['c4']}",
        "smart_commits": [],
    }
    assert [b["name"] for b in document["branches"]] == ["feature/ABC-3-thing"]
    assert document["branches"][0]["url"] == "https://git.example.test/core/tree/feature/ABC-3-thing"
    assert document["pull_requests"] == []


def test_soft_sync_follows_new_moved_deleted_and_force_pushed_branches(
    runtime: Runtime, bare_remote: tuple[GitRepo, Path]
) -> None:
    repo, server = bare_remote
    s = build_history(repo)
    repository = add_repository(runtime, str(server))
    run_sync(runtime, repository.id, full=False)

    # new commit on main; a temporary commit on feature that a force-push will drop
    s["c6"] = repo.commit("ABC-1 follow-up")
    repo.checkout("feature/ABC-3-thing")
    s["c7"] = repo.commit("ABC-4 temporary")
    repo.git("push", "-q", "origin", "--all")
    [first] = run_sync(runtime, repository.id, full=False)
    assert (first.commits_seen, first.commits_new, first.branches_moved) == (2, 2, 2)

    repo.git("reset", "-q", "--hard", s["c4"])
    s["c8"] = repo.commit("ABC-3 rewritten")
    repo.git("push", "-q", "--force", "origin", "feature/ABC-3-thing")
    repo.git("push", "-q", "origin", "--delete", "other")
    repo.git("push", "-q", "origin", f"{s['c2']}:refs/heads/ABC-5-from-old-commit")
    [second] = run_sync(runtime, repository.id, full=False)

    assert (second.commits_seen, second.commits_new) == (1, 1)
    assert (second.branches_created, second.branches_moved, second.branches_deleted) == (1, 1, 1)
    assert branches(runtime) == {
        "main": s["c6"], "feature/ABC-3-thing": s["c8"], "ABC-5-from-old-commit": s["c2"],
    }
    assert branch_links(runtime) == {"ABC-3": {"feature/ABC-3-thing"}, "ABC-5": {"ABC-5-from-old-commit"}}
    # commits stay indexed after their branch is deleted or rewritten
    assert commit_links(runtime) == {
        "ABC-1": {s["c1"], s["c6"]},
        "ABC-2": {s["c2"]},
        "ABC-3": {s["c3"], s["c4"], s["m1"], s["c8"]},
        "ABC-4": {s["c7"]},
        "DEF-1": {s["c4"]},
        "DEF-2": {s["c5"]},
    }
    with runtime.sessions() as session:
        seen_by = dict(session.execute(select(Commit.sha, Commit.first_seen_by)).all())
    assert seen_by[s["c6"]] == seen_by[s["c8"]] == "soft"
    assert seen_by[s["c1"]] == "backfill"


def test_soft_and_full_syncs_are_idempotent(
    runtime: Runtime, bare_remote: tuple[GitRepo, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, server = bare_remote
    build_history(repo)
    repository = add_repository(runtime, str(server))
    run_sync(runtime, repository.id, full=False)
    before = (commit_links(runtime), branch_links(runtime), branches(runtime), commit_count(runtime))

    walks: list[tuple[list[str], list[str]]] = []
    original = Mirror.commits

    def spy(self: Mirror, include: list[str], exclude: list[str], **options: bool):  # type: ignore[no-untyped-def]
        walks.append((list(include), list(exclude)))
        return original(self, include, exclude, **options)

    monkeypatch.setattr(Mirror, "commits", spy)
    [soft] = run_sync(runtime, repository.id, full=False)
    assert walks == []  # an unchanged repository is not walked at all
    assert (soft.commits_seen, soft.commits_new, soft.branches_created, soft.branches_moved) == (0, 0, 0, 0)

    [full] = run_sync(runtime, repository.id, full=True)
    [full_again] = run_sync(runtime, repository.id, full=True)
    assert len(walks) == 2 and walks[0][1] == []  # a full sync excludes nothing
    assert (full.commits_seen, full.commits_new) == (full_again.commits_seen, full_again.commits_new) == (6, 0)
    assert (commit_links(runtime), branch_links(runtime), branches(runtime), commit_count(runtime)) == before


def test_odd_bytes_in_a_message_are_stored_and_do_not_stop_the_sync(
    runtime: Runtime, bare_remote: tuple[GitRepo, Path]
) -> None:
    repo, server = bare_remote
    parent = repo.commit("ABC-1 first")
    tree = repo.git("rev-parse", "HEAD^{tree}")
    raw = (
        f"tree {tree}\nparent {parent}\n"
        "author Bad \xff Name <bad@example.com> 1700000500 +0200\n"
        "committer Bad <bad@example.com> 1700000500 +0200\n\n"
    ).encode("latin-1") + b"ODD-7 nul\x00inside and \xc3\x28 invalid utf-8\n"
    odd = repo.git("hash-object", "-t", "commit", "-w", "--literally", "--stdin", input=raw)
    repo.git("update-ref", "refs/heads/main", odd)
    after = repo.commit("ABC-2 after the odd one")
    repo.git("push", "-q", "origin", "main")
    repository = add_repository(runtime, str(server))

    [result] = run_sync(runtime, repository.id, full=False)

    assert (result.commits_seen, result.commits_new) == (3, 3)
    assert commit_links(runtime) == {"ABC-1": {parent}, "ODD-7": {odd}, "ABC-2": {after}}
    with runtime.sessions() as session:
        message, author = session.execute(
            select(Commit.message, Commit.author_name).where(Commit.sha == odd)
        ).one()
    assert message == "ODD-7 nul\ufffdinside and \ufffd( invalid utf-8"
    assert author == "Bad \ufffd Name"


def test_remote_over_http_with_credentials_never_shows_them(
    runtime: Runtime, bare_remote: tuple[GitRepo, Path], git_http: GitHttpServer, caplog: pytest.LogCaptureFixture
) -> None:
    repo, _ = bare_remote
    repo.commit("ABC-1 over http")
    served = git_http.root / "team.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(repo.path), str(served)], check=True)
    subprocess.run(["git", "-C", str(served), "config", "uploadpack.allowFilter", "true"], check=True)
    caplog.set_level(logging.DEBUG)

    repository = add_repository(runtime, git_http.url("team.git", "robot:s3cr3t-t0ken"))
    [result] = run_sync(runtime, repository.id, full=False)

    assert result.commits_new == 1
    assert commit_links(runtime) == {"ABC-1": {repo.sha("HEAD")}}
    mirror = Path(runtime.settings.mirrors_dir) / f"{repository.id}.git"
    config = (mirror / "config").read_text()
    assert "partialclonefilter = blob:none" in config  # a remote is mirrored as a partial clone
    assert f"url = {git_http.url('team.git')}" in config
    with runtime.sessions() as session:
        stored = session.get(Repository, repository.id)
        assert stored is not None
        view = queries.repository_view(stored)
        assert stored.url == git_http.url("team.git")
        assert stored.url_secret is not None and "s3cr3t" not in stored.url_secret  # encrypted at rest
    assert "s3cr3t" not in str(view) and "s3cr3t" not in caplog.text

    # later syncs fetch with the credentials too
    s2 = repo.commit("ABC-2 fetched with the stored credentials")
    subprocess.run(["git", "-C", str(repo.path), "push", "-q", str(served), "main"], check=True)
    [again] = run_sync(runtime, repository.id, full=False)
    assert (again.commits_seen, again.commits_new) == (1, 1)
    assert commit_links(runtime)["ABC-2"] == {s2}
    assert "s3cr3t" not in (mirror / "config").read_text()

    # the server now refuses these credentials: the failure is recorded, still without the secret
    git_http.expected = "Basic bm9ib2R5Om5vcGU="
    repo.commit("ABC-3 not fetched")
    subprocess.run(["git", "-C", str(repo.path), "push", "-q", str(served), "main"], check=True)
    run_sync(runtime, repository.id, full=False)
    with runtime.sessions() as session:
        stored = session.get(Repository, repository.id)
        assert stored is not None
        assert (stored.sync_state, stored.last_error_reason) == ("failed", "auth")
        assert "s3cr3t" not in (stored.last_error_message or "")
        assert str(git_http.port) in (stored.last_error_message or "")


def test_unreachable_remote_and_non_repository_are_clear_errors(runtime: Runtime, tmp_path: Path) -> None:
    plain = tmp_path / "plain-dir"
    plain.mkdir()
    with pytest.raises(GitError) as not_repo:
        add_repository(runtime, str(plain))
    assert (not_repo.value.reason, not_repo.value.message) == ("not_a_repository", f"{plain} is not a git repository")

    with pytest.raises(GitError) as unreachable:
        add_repository(runtime, "https://someone:hunter2@127.0.0.1:9/x.git")
    assert unreachable.value.reason == "unreachable"
    assert "hunter2" not in unreachable.value.message
    assert unreachable.value.message.startswith("https://127.0.0.1:9/x.git is unreachable")

    with pytest.raises(Exception) as bad_url:
        add_repository(runtime, "ftp://127.0.0.1/x.git")
    assert "unsupported URL scheme 'ftp'" in str(bad_url.value)


def test_sync_of_a_repository_whose_source_vanished_records_the_error(
    runtime: Runtime, bare_remote: tuple[GitRepo, Path], tmp_path: Path
) -> None:
    repo, server = bare_remote
    build_history(repo)
    repository = add_repository(runtime, str(server))
    run_sync(runtime, repository.id, full=False)
    server.rename(tmp_path / "moved-away.git")

    assert run_sync(runtime, repository.id, full=False) == []

    with runtime.sessions() as session:
        stored = session.get(Repository, repository.id)
        assert stored is not None
        assert stored.sync_state == "failed"
        assert stored.last_error_reason == "not_a_repository"
        assert stored.last_error_message == f"{server} is not a git repository"
        assert stored.commits_indexed == 6  # what was indexed stays


def test_sync_engine_skips_an_unlinked_repository(runtime: Runtime, bare_remote: tuple[GitRepo, Path]) -> None:
    repo, server = bare_remote
    build_history(repo)
    repository = add_repository(runtime, str(server))
    with runtime.sessions.begin() as session:
        stored = session.get(Repository, repository.id)
        assert stored is not None
        stored.linked = False
    assert sync_repository(runtime, repository.id, full=False).skipped == "unlinked"
    assert commit_count(runtime) == 0


def test_ids_are_never_reused_so_no_stale_mirror_is_inherited(
    runtime: Runtime, bare_remote: tuple[GitRepo, Path], tmp_path: Path
) -> None:
    from devlink.sync.repositories import remove_repository

    repo, server = bare_remote
    build_history(repo)
    first = add_repository(runtime, str(server), name="first")
    run_sync(runtime, first.id, full=False)
    remove_repository(runtime, "first")
    other = GitRepo(tmp_path / "other")
    only = other.commit("ZZZ-1 the only commit")
    second = add_repository(runtime, str(other.path), name="second")
    assert second.id != first.id
    [result] = run_sync(runtime, second.id, full=False)
    assert (result.commits_new, commit_links(runtime)) == (1, {"ZZZ-1": {only}})


def test_a_key_too_long_to_store_does_not_stop_the_sync(runtime: Runtime, bare_remote: tuple[GitRepo, Path]) -> None:
    repo, server = bare_remote
    huge = "ABC-" + "7" * 200
    sha = repo.commit(f"ABC-1 and {huge}")
    repo.branch(f"feature/{huge}")
    repo.git("push", "-q", "origin", "--all")
    repository = add_repository(runtime, str(server))
    [result] = run_sync(runtime, repository.id, full=False)
    assert (result.commits_new, commit_links(runtime), branch_links(runtime)) == (1, {"ABC-1": {sha}}, {})


def test_an_ssh_row_linked_by_an_older_devlink_keeps_its_user_name(runtime: Runtime) -> None:
    """Older releases kept ``ssh://git@host/x``'s user apart, encrypted: git must still be given it."""
    from devlink.store.models import Host
    from devlink.sync.engine import mirror_for

    with runtime.sessions.begin() as session:
        host = Host(kind="git", name="git")
        session.add(host)
        session.flush()
        old = Repository(host_id=host.id, name="old-ssh", url="ssh://git.example.com/team/app.git",
                         url_secret=runtime.vault.encrypt("git"))
        new = Repository(host_id=host.id, name="new-ssh", url="ssh://deploy@git.example.com/team/other.git")
        session.add_all([old, new])
    assert mirror_for(runtime, old).location == "ssh://git@git.example.com/team/app.git"
    assert mirror_for(runtime, new).location == "ssh://deploy@git.example.com/team/other.git"
