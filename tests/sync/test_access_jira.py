"""Who sees what with Jira as the tracker: the member's linked Jira identity and Jira's VIEW_DEV_TOOLS, cached.

The Jira stub (tests/jira_stub.py) answers over real HTTP on loopback, Data
Center and Cloud, and checks every request against the official API
descriptions; ``violations`` must stay empty.
"""

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from devlink.errors import Conflict, NotFound
from devlink.runtime import Runtime
from devlink.store.models import utcnow
from devlink.store.tracker import TrackerCacheEntry
from devlink.sync.access import (
    can_view_development,
    development_access,
    outside_issue,
    set_repository_projects,
    visible_repository_ids,
)
from devlink.sync.engine import sync_repository
from devlink.sync.identities import add_identity, list_identities
from devlink.sync.principals import Principal
from devlink.sync.repositories import add_repository
from devlink.sync.trackers import use_outside
from devlink.trackers.builtin import create_user
from gitrepos import GitRepo
from jira_stub import JiraStub

pytestmark = pytest.mark.timeout(120)

TOKEN = "jira-secret-token-1234"
BOT = "bot@example.com"
_ASKS = ("/user/permission/search", "/permissions/check")


@pytest.fixture(params=["datacenter", "cloud"])
def jira(request: pytest.FixtureRequest) -> Iterator[JiraStub]:
    cloud = request.param == "cloud"
    with JiraStub(cloud=cloud) as stub:
        stub.add_user("bot", email=BOT)
        stub.add_user("alice", email="alice@example.com")
        if cloud:
            stub.add_api_token(BOT, TOKEN, "bot")
        else:
            stub.add_pat(TOKEN, "bot")
        stub.add_project("APP", "App")
        stub.add_project("OPS", "Ops")
        yield stub
        assert stub.violations == []


@pytest.fixture
def people(runtime: Runtime, jira: JiraStub) -> dict[str, Principal]:
    """Jira connected; alice has linked her Jira identity, bob has not."""
    use_outside(runtime, "jira", url=jira.url, token=TOKEN, email=BOT if jira.cloud else None)
    login = jira.users["alice"]["accountId"] if jira.cloud else "alice"
    with runtime.sessions.begin() as session:
        alice, bob = create_user(session, "alice"), create_user(session, "bob")
    add_identity(runtime, "alice", "tracker", login)  # as `devlink identity add alice tracker LOGIN` does
    return {"alice": Principal(user_id=alice.id, username="alice", role="member"),
            "bob": Principal(user_id=bob.id, username="bob", role="member"),
            "root": Principal(user_id=None, username="root", role="admin")}


def _asked(stub: JiraStub) -> int:
    return sum(1 for r in stub.requests if r.path.endswith(_ASKS))


def test_a_linked_identity_is_allowed_or_denied_by_jiras_permission(
        runtime: Runtime, jira: JiraStub, people: dict[str, Principal]) -> None:
    jira.deny("alice", "OPS", "VIEW_DEV_TOOLS")
    assert can_view_development(runtime, people["alice"], "APP")
    denied = development_access(runtime, people["alice"], "OPS")
    assert not denied.allowed
    assert denied.note == "You do not have permission to view development information for this project"
    assert not can_view_development(runtime, people["alice"], "NOPE")  # a project Jira does not have
    assert can_view_development(runtime, people["root"], "OPS")


def test_without_a_linked_identity_a_member_is_told_to_link_it(
        runtime: Runtime, jira: JiraStub, people: dict[str, Principal]) -> None:
    access = development_access(runtime, people["bob"], "APP")
    assert not access.allowed
    assert access.note is not None and "link your Jira identity" in access.note
    assert _asked(jira) == 0  # nobody to ask about
    assert visible_repository_ids(runtime, people["bob"]) == set()


def test_jiras_answer_is_cached_briefly_in_the_shared_cache(
        runtime: Runtime, jira: JiraStub, people: dict[str, Principal]) -> None:
    assert can_view_development(runtime, people["alice"], "APP")
    asked = _asked(jira)
    assert asked >= 1
    jira.deny("alice", "APP", "VIEW_DEV_TOOLS")
    assert can_view_development(runtime, people["alice"], "APP")  # the cached answer, no new question
    assert _asked(jira) == asked
    with runtime.sessions.begin() as session:  # a minute later
        session.execute(update(TrackerCacheEntry).where(TrackerCacheEntry.key.like("permission:%"))
                        .values(fetched_at=utcnow() - timedelta(seconds=61)))
    assert not can_view_development(runtime, people["alice"], "APP")
    assert _asked(jira) > asked


def test_repositories_are_visible_through_jiras_permission(
        runtime: Runtime, jira: JiraStub, people: dict[str, Principal], tmp_path: Path) -> None:
    ids = {}
    for name in ("ops", "shared"):
        repo = GitRepo(tmp_path / name)
        repo.commit(f"OPS-1 in {name}")
        ids[name] = add_repository(runtime, str(tmp_path / name), name=name).id
        sync_repository(runtime, ids[name], full=False)
    assert set_repository_projects(runtime, ids["ops"], ["OPS"]) == ["OPS"]  # Jira's keys are not checked here
    jira.deny("alice", "OPS", "VIEW_DEV_TOOLS")
    assert visible_repository_ids(runtime, people["alice"]) == {ids["shared"]}  # APP: any project will do
    jira.deny("alice", "APP", "VIEW_DEV_TOOLS")
    with runtime.sessions.begin() as session:
        session.query(TrackerCacheEntry).filter(TrackerCacheEntry.key.like("permission:%")).delete(
            synchronize_session=False)
    assert visible_repository_ids(runtime, people["alice"]) == set()
    assert visible_repository_ids(runtime, people["root"]) is None


def test_a_tracker_identity_must_be_a_user_jira_knows(runtime: Runtime, jira: JiraStub,
                                                       people: dict[str, Principal]) -> None:
    login = jira.users["alice"]["accountId"] if jira.cloud else "alice"
    assert {"user": "alice", "host": "tracker", "login": login} in list_identities(runtime, "alice")
    with pytest.raises(NotFound, match="no user 'mallory'"):
        add_identity(runtime, "bob", "tracker", "mallory")
    with pytest.raises(Conflict, match="already alice's"):
        add_identity(runtime, "bob", "tracker", login)  # bob cannot borrow alice's Jira permissions
    assert list_identities(runtime, "bob") == []


def test_jiras_issue_summary_reaches_a_member_only_where_they_may_browse(
        runtime: Runtime, jira: JiraStub, people: dict[str, Principal]) -> None:
    """devlink reads Jira with its own account: a member must not read through it what Jira hides from them."""
    jira.add_issue("APP-1", "The app issue")
    jira.add_issue("OPS-1", "The secret ops issue")
    jira.deny("alice", "OPS", "VIEW_DEV_TOOLS")  # she may browse OPS: she sees the issue, not its panel
    assert outside_issue(runtime, people["alice"], "OPS-1")["summary"] == "The secret ops issue"  # type: ignore[index]
    jira.add_project("SEC", "Security")
    jira.add_issue("SEC-1", "The secret security issue")
    jira.deny("alice", "SEC", "BROWSE_PROJECTS")
    assert outside_issue(runtime, people["alice"], "APP-1")["summary"] == "The app issue"  # type: ignore[index]
    hidden = outside_issue(runtime, people["alice"], "SEC-1")
    assert hidden is not None and hidden.get("missing") and "summary" not in hidden
    assert outside_issue(runtime, people["bob"], "APP-1").get("missing")  # type: ignore[union-attr]
    assert outside_issue(runtime, people["root"], "SEC-1")["summary"] == "The secret security issue"  # type: ignore[index]
