"""Keys of projects the tracker does not have: counted by the sync that dropped them, linked by a full sync later.

Only keys of tracker projects link once the tracker has any (docs/issue-keys.md).  A sync says how many
mentions it left unlinked, by project, so ``repo add`` can tell the user which project to create; a full
sync after creating it links the history, branches included.
"""

from pathlib import Path

from devlink.runtime import Runtime
from devlink.store import queries
from devlink.sync.jobs import run_sync
from devlink.sync.repositories import add_repository
from devlink.trackers.builtin import create_project
from gitrepos import GitRepo


def _history(repo: GitRepo) -> dict[str, str]:
    """main mentions APP (a project) and OTHER twice in one commit; a branch carries OTHER-4; a key too long."""
    shas = {
        "app": repo.commit("APP-1 known project"),
        "other": repo.commit("OTHER-2 and OTHER-3 and APP-1, also X" + "9" * 120 + "-1 and AB-" + "1" * 120),
        "plain": repo.commit("no key at all"),
    }
    repo.branch("feature/OTHER-4-topic")
    repo.git("push", "-q", "origin", "--all")
    return shas


def _project(rt: Runtime, key: str) -> None:
    with rt.sessions.begin() as session:
        create_project(session, key, key.capitalize())


def _linked_shas(rt: Runtime, key: str) -> set[str]:
    with rt.sessions() as session:
        return {c["sha"] for c in queries.development(session, key)["commits"]}


def _linked_branches(rt: Runtime, key: str) -> set[str]:
    with rt.sessions() as session:
        return {b["name"] for b in queries.development(session, key)["branches"]}


def test_a_sync_counts_the_mentions_it_left_unlinked_by_project(
    runtime: Runtime, bare_remote: tuple[GitRepo, Path]
) -> None:
    repo, server = bare_remote
    shas = _history(repo)
    _project(runtime, "APP")
    repository = add_repository(runtime, str(server))

    [result] = run_sync(runtime, repository.id, full=False)

    # OTHER-2 and OTHER-3 in one commit, OTHER-4 in a branch name; the over-long keys are not a project's fault
    assert result.unlinked == {"OTHER": 3}
    assert _linked_shas(runtime, "APP-1") == {shas["app"], shas["other"]}
    assert _linked_shas(runtime, "OTHER-2") == set()

    [again] = run_sync(runtime, repository.id, full=False)  # nothing new read: nothing counted
    assert again.unlinked == {}


def test_a_full_sync_after_creating_the_project_links_commits_and_branches(
    runtime: Runtime, bare_remote: tuple[GitRepo, Path]
) -> None:
    repo, server = bare_remote
    shas = _history(repo)
    _project(runtime, "APP")
    repository = add_repository(runtime, str(server))
    run_sync(runtime, repository.id, full=False)

    _project(runtime, "OTHER")
    [soft] = run_sync(runtime, repository.id, full=False)
    assert (soft.unlinked, _linked_shas(runtime, "OTHER-2")) == ({}, set())  # a soft sync re-reads nothing

    [full] = run_sync(runtime, repository.id, full=True)
    assert full.unlinked == {}
    assert _linked_shas(runtime, "OTHER-2") == _linked_shas(runtime, "OTHER-3") == {shas["other"]}
    assert _linked_branches(runtime, "OTHER-4") == {"feature/OTHER-4-topic"}


def test_nothing_is_counted_while_the_tracker_has_no_projects(
    runtime: Runtime, bare_remote: tuple[GitRepo, Path]
) -> None:
    repo, server = bare_remote
    shas = _history(repo)
    repository = add_repository(runtime, str(server))

    [result] = run_sync(runtime, repository.id, full=False)

    assert result.unlinked == {}  # every key links
    assert _linked_shas(runtime, "OTHER-2") == {shas["other"]}
    assert _linked_branches(runtime, "OTHER-4") == {"feature/OTHER-4-topic"}


def test_the_development_document_says_whether_the_project_links(runtime: Runtime) -> None:
    with runtime.sessions() as session:
        empty = queries.development(session, "KAFKA-1")
    assert (empty["project_known"], empty["notice"]) == (True, None)  # no projects: every key links

    _project(runtime, "DEMO")
    with runtime.sessions() as session:
        unknown = queries.development(session, "KAFKA-1")
        known = queries.development(session, "DEMO-1")
    assert unknown["project_known"] is False
    assert unknown["notice"] == (
        "KAFKA is not a project of the tracker, so KAFKA keys are not linked; "
        "create it: devlink tracker project KAFKA NAME, then re-link history: devlink sync --full --wait"
    )
    assert (known["project_known"], known["notice"]) == (True, None)
