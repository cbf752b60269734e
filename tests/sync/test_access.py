"""Who sees what (docs/permissions.md) with the built-in tracker, on real git repositories, SQLite and PostgreSQL.

Two projects, APP and OPS.  ``app`` is scoped to APP; ``shared`` serves every
project; both have commits mentioning APP-1 and OPS-1.  alice may view APP's
development data, carol OPS's, dave neither.
"""

from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select, text

from devlink.errors import InvalidInput
from devlink.runtime import Runtime
from devlink.store import queries
from devlink.store.development import development as plain_development
from devlink.store.people import RepositoryProject
from devlink.store.tracker import SmartCommitRun, TrackerUser
from devlink.sync.access import (
    can_see_repository,
    can_view_development,
    development_access,
    repositories_for_project,
    set_repository_projects,
    viewable_projects,
    visible_repository_ids,
)
from devlink.sync.engine import sync_repository
from devlink.sync.principals import LOCAL_ADMIN, Principal
from devlink.sync.repositories import add_repository
from devlink.trackers.builtin import create_project, create_user
from gitrepos import GitRepo


@dataclass
class World:
    rt: Runtime
    app: int  # scoped to APP
    shared: int  # serves every project
    shas: dict[str, str]  # "app APP-1", "shared OPS-1", ... -> sha
    users: dict[str, Principal]


def _repository(rt: Runtime, path: Path, name: str, shas: dict[str, str]) -> int:
    repo = GitRepo(path)
    for key in ("APP-1", "OPS-1"):
        shas[f"{name} {key}"] = repo.commit(f"{key} work in {name}")
    repository_id = add_repository(rt, str(path), name=name).id
    sync_repository(rt, repository_id, full=False)
    return repository_id


@pytest.fixture
def world(runtime: Runtime, tmp_path: Path) -> World:
    with runtime.sessions.begin() as session:
        ids = {name: create_user(session, name).id for name in ("alice", "carol", "dave", "root")}
        create_project(session, "APP", "App", permissions={"view_development": ["alice"], "browse": ["everyone"]})
        create_project(session, "OPS", "Ops", permissions={"view_development": ["carol"], "browse": ["everyone"]})
    shas: dict[str, str] = {}
    app = _repository(runtime, tmp_path / "app", "app", shas)
    shared = _repository(runtime, tmp_path / "shared", "shared", shas)
    assert set_repository_projects(runtime, app, ["APP"]) == ["APP"]
    users = {name: Principal(user_id=user_id, username=name, role="member") for name, user_id in ids.items()}
    users["root"] = Principal(user_id=ids["root"], username="root", role="admin")
    return World(runtime, app, shared, shas, users)


def _shas(document: dict[str, object]) -> set[str]:
    return {c["sha"] for c in document["commits"]}  # type: ignore[attr-defined]


def test_the_development_document_shows_only_repositories_serving_the_keys_project(world: World) -> None:
    with world.rt.sessions() as session:
        ops = queries.development(session, "OPS-1")
        app = queries.development(session, "APP-1")
    assert _shas(ops) == {world.shas["shared OPS-1"]}  # the APP-scoped repository's OPS-1 commit is not OPS's
    assert ops["summary"]["repositories"] == 1  # type: ignore[index]
    assert _shas(app) == {world.shas["app APP-1"], world.shas["shared APP-1"]}


def test_the_plain_driver_path_of_the_cli_applies_the_same_scoping(world: World) -> None:
    with world.rt.engine.connect() as connection:
        def fetch(sql: str, params: dict[str, object]) -> list[tuple[object, ...]]:
            return [tuple(row) for row in connection.execute(text(sql), params)]

        assert _shas(plain_development(fetch, "OPS-1")) == {world.shas["shared OPS-1"]}


def test_repositories_for_a_project_are_the_unscoped_ones_and_those_scoped_to_it(world: World) -> None:
    with world.rt.sessions() as session:
        assert repositories_for_project(session, "OPS") == [world.shared]
        assert repositories_for_project(session, "APP") == sorted([world.app, world.shared])


def test_scoping_to_every_project_again_removes_the_rows(world: World) -> None:
    assert set_repository_projects(world.rt, world.app, None) == []
    with world.rt.sessions() as session:
        assert session.scalars(select(RepositoryProject)).all() == []
        assert _shas(queries.development(session, "OPS-1")) == {world.shas["app OPS-1"], world.shas["shared OPS-1"]}
    assert set_repository_projects(world.rt, world.app, ["OPS", "APP", "OPS"]) == ["APP", "OPS"]


def test_unknown_and_malformed_project_keys_are_refused_naming_them(world: World) -> None:
    with pytest.raises(InvalidInput) as unknown:
        set_repository_projects(world.rt, world.app, ["APP", "NOPE", "ZED"])
    assert unknown.value.message == "not a project of the tracker: NOPE, ZED"
    assert unknown.value.reason == "unknown_project"
    with pytest.raises(InvalidInput) as malformed:
        set_repository_projects(world.rt, world.app, ["app"])
    assert malformed.value.reason == "bad_project_key" and "'app'" in malformed.value.message
    with world.rt.sessions() as session:  # nothing changed
        assert session.scalars(select(RepositoryProject.project_key)).all() == ["APP"]


def test_admins_always_and_members_by_the_projects_grant(world: World) -> None:
    users = world.users
    assert [can_view_development(world.rt, users["alice"], p) for p in ("APP", "OPS")] == [True, False]
    assert [can_view_development(world.rt, users["carol"], p) for p in ("APP", "OPS")] == [False, True]
    assert [can_view_development(world.rt, users["dave"], p) for p in ("APP", "OPS")] == [False, False]
    for admin in (users["root"], LOCAL_ADMIN):
        assert [can_view_development(world.rt, admin, p) for p in ("APP", "OPS", "ZZZ")] == [True, True, True]
    denied = development_access(world.rt, users["alice"], "OPS")
    assert denied.note == "You do not have permission to view development information for this project"


def test_a_project_the_tracker_does_not_have_is_shown_to_admins_only(world: World) -> None:
    assert not can_view_development(world.rt, world.users["alice"], "ZZZ")


def test_a_grant_to_everyone_counts_for_every_member(world: World) -> None:
    with world.rt.sessions.begin() as session:
        create_project(session, "OPS", "Ops", permissions={"view_development": ["everyone"]})
    assert can_view_development(world.rt, world.users["dave"], "OPS")
    assert viewable_projects(world.rt, world.users["dave"]) == {"OPS"}


def test_members_see_the_repositories_serving_a_project_they_may_view(world: World) -> None:
    users = world.users
    assert visible_repository_ids(world.rt, users["alice"]) == {world.app, world.shared}
    assert visible_repository_ids(world.rt, users["carol"]) == {world.shared}  # app serves APP only
    assert visible_repository_ids(world.rt, users["dave"]) == set()
    assert visible_repository_ids(world.rt, users["root"]) is None
    assert not can_see_repository(world.rt, users["carol"], world.app)
    assert can_see_repository(world.rt, users["carol"], world.shared)
    assert can_see_repository(world.rt, LOCAL_ADMIN, world.app)


def test_smart_commit_runs_are_shown_for_projects_the_person_may_view(world: World) -> None:
    with world.rt.sessions.begin() as session:
        for position, key in enumerate(("APP-1", "OPS-1", "APP2-1")):
            session.add(SmartCommitRun(commit_sha=world.shas["shared APP-1"], issue_key=key, position=position,
                                       command="comment", args="", outcome="done", message="",
                                       repository_id=world.shared))
        create_project(session, "APP2", "App two", permissions={"view_development": ["carol"]})

    def keys(principal: Principal) -> list[str]:
        with world.rt.sessions() as session:
            runs = queries.smart_commits(session, projects=viewable_projects(world.rt, principal))
        return sorted(r["key"] for r in runs)

    assert keys(world.users["alice"]) == ["APP-1"]  # APP2-1 is not APP's, though it starts with APP
    assert keys(world.users["carol"]) == ["APP2-1", "OPS-1"]
    assert keys(world.users["dave"]) == []
    assert keys(world.users["root"]) == ["APP-1", "APP2-1", "OPS-1"]


def test_a_members_user_row_going_away_takes_their_grant_with_it(world: World) -> None:
    with world.rt.sessions.begin() as session:
        alice = session.scalars(select(TrackerUser).where(TrackerUser.username == "alice")).one()
        session.delete(alice)
    assert not can_view_development(world.rt, world.users["alice"], "APP")
