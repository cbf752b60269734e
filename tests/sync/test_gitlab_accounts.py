"""GitLab accounts through the service layer, on SQLite and PostgreSQL: linking errors, discovery (archived,
renames, transfers, gone), group hooks on a tier that has them, merge requests disabled, soft syncs by
``updated_after``."""

import json

import pytest
from sqlalchemy import select

from devlink.errors import Conflict
from devlink.hosts import for_kind
from devlink.hosts.base import HostError
from devlink.runtime import Runtime
from devlink.store.models import Account, Repository
from devlink.sync.accounts import AccountOptions, discover, link_account
from devlink.sync.jobs import run_sync
from devlink.sync.webhooks import incoming, receive
from gitlab_world import TOKEN, GitLabWorld

GITLAB = for_kind("gitlab")


def options(gitlab: GitLabWorld, name: str = "acme", **extra: object) -> AccountOptions:
    return AccountOptions(name=name, kind="gitlab", web_url=gitlab.stub.web_url, token=TOKEN, **extra)  # type: ignore[arg-type]


def rows(rt: Runtime) -> dict[str, Repository]:
    with rt.sessions() as session:
        return {r.name: r for r in session.scalars(select(Repository))}


class Recorder:
    def __init__(self) -> None:
        self.syncs: list[int] = []

    def request_sync(self, repository_id: int, *, full: bool, trigger: str) -> str:
        self.syncs.append(repository_id)
        return "queued"

    def refresh_pull(self, repository_id: int, number: int) -> None:
        pass

    def discover(self, account_id: int) -> None:
        pass


def test_linking_names_what_is_wrong_and_keeps_nothing(runtime: Runtime, gitlab: GitLabWorld) -> None:
    gitlab.group("acme")
    gitlab.stub.add_token("glpat-readonly-000000", "ada", scopes=("read_api",))
    cases = [
        (AccountOptions(name="acme", kind="gitlab", web_url=gitlab.stub.web_url, token="glpat-readonly-000000"),
         "permission", "api"),
        (AccountOptions(name="acme", kind="gitlab", web_url=gitlab.stub.web_url, token="glpat-wrong-0000000000"),
         "auth", ""),
        (options(gitlab, "nowhere"), "not_found", "nowhere"),
    ]
    for given, reason, named in cases:
        with pytest.raises(HostError) as refused:
            link_account(runtime, given)
        assert refused.value.reason == reason and named in refused.value.message, refused.value.message
    gitlab.stub.version = "15.4.2-ee"
    with pytest.raises(HostError) as old:
        link_account(runtime, options(gitlab))
    assert "15.4" in old.value.message and "15.5" in old.value.message
    with runtime.sessions() as session:
        assert list(session.scalars(select(Account))) == []
    gitlab.stub.version = "17.5.0-ee"
    link_account(runtime, options(gitlab))
    with pytest.raises(Conflict) as twice:
        link_account(runtime, options(gitlab, "ACME"))
    assert twice.value.reason == "account_linked"


def test_discovery_follows_renames_and_transfers_by_id_and_marks_gone(runtime: Runtime, gitlab: GitLabWorld) -> None:
    gitlab.group("acme/platform/core")
    gitlab.group("acme/other")
    gitlab.project("acme/platform/core", "app")
    gitlab.project("acme", "old", archived=True)
    gitlab.project("acme", "doomed")
    account_id, found = link_account(runtime, options(gitlab, link="all"))
    assert sorted(found.new) == ["acme/doomed", "acme/old", "acme/platform/core/app"]
    stored = rows(runtime)
    assert stored["acme/old"].archived and not stored["acme/old"].linked  # shown, not linked by "all"
    assert stored["acme/platform/core/app"].linked and stored["acme/platform/core/app"].host_path == \
        "acme/platform/core/app"
    app_id = stored["acme/platform/core/app"].id

    gitlab.stub.rename_project("acme/platform/core/app", "service")
    gitlab.stub.transfer_project("acme/platform/core/service", "acme/other")
    gitlab.stub.delete_project("acme/doomed")
    again = discover(runtime, account_id)
    assert again.renamed == [("acme/platform/core/app", "acme/other/service")]
    assert again.gone == ["acme/doomed"]
    moved = rows(runtime)["acme/other/service"]
    assert (moved.id, moved.host_path, moved.linked) == (app_id, "acme/other/service", True)


def test_a_premium_group_gets_one_group_hook_and_its_deliveries_verify(runtime: Runtime, gitlab: GitLabWorld) -> None:
    gitlab.stub.tier = "premium"
    gitlab.group("acme/platform")
    gitlab.stub.add_member("acme", "ada", 50)  # an owner may manage group hooks
    gitlab.project("acme/platform", "api")
    _, found = link_account(runtime, options(gitlab, link="all"))
    assert found.hooks == {"acme/platform/api": "account"}
    [hook] = gitlab.stub.group_hooks("acme")
    assert gitlab.stub.hooks("acme/platform/api") == []
    group_id = gitlab.stub.groups["acme"]["id"]
    assert hook["url"].endswith(f"/hooks/gitlab?group={group_id}")
    project = gitlab.stub.project("acme/platform/api")
    body = json.dumps({"object_kind": "push", "ref": "refs/heads/main", "before": "0" * 40, "after": "1" * 40,
                       "project": {"id": project["id"], "path_with_namespace": "acme/platform/api",
                                   "web_url": f"{gitlab.stub.web_url}/acme/platform/api"},
                       "commits": []}).encode()
    headers = gitlab.stub.delivery_headers("Push Hook", hook["token"])
    recorder = Recorder()
    answer = receive(runtime, recorder, incoming(runtime, GITLAB, headers, {"group": str(group_id)}), body)
    assert answer["status"] == "queued" and recorder.syncs == [rows(runtime)["acme/platform/api"].id]
    with pytest.raises(Exception) as wrong:
        receive(runtime, recorder, incoming(runtime, GITLAB, {**headers, "X-Gitlab-Token": "guess"},
                                            {"group": str(group_id)}), body)
    assert getattr(wrong.value, "status", None) == 401


def test_merge_requests_disabled_skip_with_a_note_and_soft_syncs_ask_updated_after(
    runtime: Runtime, gitlab: GitLabWorld
) -> None:
    gitlab.group("acme")
    gitlab.project("acme", "api")
    gitlab.project("acme", "quiet", merge_requests_enabled=False)
    gitlab.stub.add_merge_request("acme/api", title="API-1 first", source_branch="x", author="ada")
    _, found = link_account(runtime, options(gitlab, link="all"))
    stored = rows(runtime)
    for repository_id in found.linked:
        [result] = run_sync(runtime, repository_id, full=True)
        assert result.commits_seen == 1
    quiet = rows(runtime)["acme/quiet"]
    notes = json.loads(quiet.entity_errors or "{}")
    assert notes["pull_requests"]["reason"] == "permission", notes
    assert quiet.sync_state == "idle" and quiet.last_error_reason is None
    before = len(gitlab.stub.requests)
    run_sync(runtime, stored["acme/api"].id, full=False)
    asked = [r for r in gitlab.stub.requests[before:] if r.path.endswith("/merge_requests")]
    assert asked and all("updated_after" in r.query for r in asked), [r.query for r in asked]


def test_a_subgroup_account_is_found_by_its_path_and_overlapping_groups_are_refused(
    runtime: Runtime, gitlab: GitLabWorld
) -> None:
    from devlink.sync.accounts import find_account, remove_account

    gitlab.group("acme/platform/core")
    gitlab.project("acme/platform/core", "app")
    account_id, _ = link_account(runtime, options(gitlab, "acme/platform", link="all"))
    with runtime.sessions() as session:
        assert find_account(session, "acme/platform").id == account_id
        assert find_account(session, "ACME/Platform/").id == account_id
    for overlapping in ("acme", "acme/platform/core"):
        with pytest.raises(Conflict) as refused:
            link_account(runtime, options(gitlab, overlapping, link="all"))
        assert "overlaps account acme/platform" in refused.value.message
    assert rows(runtime)["acme/platform/core/app"].account_id == account_id  # nobody took it
    assert remove_account(runtime, "acme/platform") == "acme/platform"


def test_a_path_longer_than_the_columns_costs_only_that_repository(runtime: Runtime, gitlab: GitLabWorld) -> None:
    """The attack review's F4: a project 250 characters deep overflowed repositories.name on PostgreSQL and the
    whole discovery failed; one past 1,000 characters cannot be kept at all."""
    deep = "acme/" + "/".join(f"{'d' * 55}{n}" for n in range(4))  # about 230 characters of groups
    deeper = "acme/" + "/".join(f"{'e' * 60}{n}" for n in range(17))  # past 1,000
    for path in (deep, deeper):
        gitlab.group(path)
    gitlab.project(deep, "app")
    gitlab.project(deeper, "lost")
    gitlab.project("acme", "plain")
    account_id, found = link_account(runtime, options(gitlab, link="all"))
    stored = {row.host_path: row for row in rows(runtime).values()}
    assert set(stored) == {f"{deep}/app", "acme/plain"}
    long_one = stored[f"{deep}/app"]
    assert len(long_one.name) <= 200 and long_one.name.startswith("acme/ddd") and long_one.linked
    assert any("skipped" in warning and warning.startswith("acme/eee") for warning in found.warnings)
    again = discover(runtime, account_id)  # the next discovery finds the same rows, nothing renamed or gone
    assert (again.renamed, again.gone) == ([], [])
    assert rows(runtime)[long_one.name].id == long_one.id
