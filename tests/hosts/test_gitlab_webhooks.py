"""GitLab webhook deliveries (headers, token, payload parsing), against the payload corpus in ``/work/shared/corpus``.

Every file listed in ``gitlab-webhooks/manifest.json`` (go-scm, go-gitlab, go-playground, GitLab's docs) is
parsed and compared with the facts the manifest records for it; the payloads are read from the corpus,
never copied here (the docs/ ones are CC BY-SA).
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from devlink.errors import DeliveryError
from devlink.hosts import base
from devlink.hosts.base import (
    Ignored,
    PullRequestEvent,
    Push,
    PushedCommit,
    RemoteRepository,
    Review,
    WebhookEvent,
    WebhookPayloadError,
)
from devlink.hosts.gitlab_webhooks import (
    WebhookUnauthorized,
    parse_webhook,
    payload_target,
    read_delivery,
    verify,
)
from devlink.hosts.protocol import DeliveryHead

# tests/hosts/<this file> → parents[3] is /work, which holds main/ (the repository) and shared/.
CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "gitlab-webhooks"
ENTRIES: list[dict[str, Any]] = json.loads((CORPUS / "manifest.json").read_text(encoding="utf-8"))

ZERO = "0" * 40
KINDS: dict[str, type[WebhookEvent]] = {"push": Push, "tag_push": Push, "merge_request": PullRequestEvent}
STATES = {"opened": "open", "closed": "closed", "merged": "merged"}
# go-gitlab's group_merge_request.json was edited by hand: its object_attributes keys end in a space
# ("iid ", "state ", "source_branch ") and its project has no id, so nothing identifies the merge request.
BROKEN = {"go-gitlab/group_merge_request.json": "project.id"}


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((CORPUS / name).read_text(encoding="utf-8"))
    return data


def kind_of(item: dict[str, Any]) -> str | None:
    kind: str | None = item.get("object_kind") or item.get("event_name")
    return kind


# --------------------------------------------------------------------------- the whole corpus


def test_manifest_lists_every_payload_file() -> None:
    on_disk = {str(p.relative_to(CORPUS)) for p in CORPUS.rglob("*.json") if p.name != "manifest.json"}
    listed = [e["file"] for e in ENTRIES]
    assert len(listed) == len(set(listed))
    assert set(listed) == on_disk
    assert len(listed) == 31  # a shrunken corpus would make this suite weaker silently


@pytest.mark.parametrize("item", ENTRIES, ids=[e["file"] for e in ENTRIES])
def test_corpus_payload_parses_as_manifest_says(item: dict[str, Any]) -> None:
    payload = load(item["file"])
    event = item["x_gitlab_event"]
    if item["file"] in BROKEN:
        with pytest.raises(WebhookPayloadError, match=f"`{BROKEN[item['file']]}`"):
            parse_webhook(event, payload)
        return

    parsed = parse_webhook(event, payload)
    kind = kind_of(item)
    assert type(parsed) is KINDS.get(kind or "", Ignored)

    # Every payload names its project; the id is the one payload_target reports.
    project = payload["project"]
    assert parsed.repository is not None
    assert parsed.repository.full_name == project["path_with_namespace"]
    assert parsed.repository.owner == project["path_with_namespace"].rpartition("/")[0]
    assert parsed.account_login == parsed.repository.owner
    assert payload_target(payload) == (parsed.repository.external_id, None)
    assert parsed.repository.external_id.isdigit()
    assert parsed.repository.web_url == project["web_url"]
    assert parsed.repository.clone_url == project["git_http_url"]
    assert parsed.repository.default_branch == project["default_branch"]

    if isinstance(parsed, Push):
        assert parsed.ref == item["ref"]
        assert parsed.before == item["before"]
        assert parsed.after == item["after"]
        assert len(parsed.commits) == item["commits"]
        assert len(parsed.commits) <= item["total_commits_count"]
        assert [c.sha for c in parsed.commits] == [c["id"] for c in payload.get("commits") or []]
        assert parsed.created == (item["before"] == ZERO)
        assert parsed.deleted == (item["after"] == ZERO)
        assert parsed.forced is False
        assert parsed.ref.startswith("refs/tags/" if kind == "tag_push" else "refs/heads/")
    elif isinstance(parsed, PullRequestEvent):
        assert parsed.action == (item["action"] or "")
        pull = parsed.pull
        assert pull is not None
        assert pull.number == item["iid"]
        assert pull.source_branch == item["source_branch"]
        assert pull.target_branch == item["target_branch"]
        draft = payload["object_attributes"].get("draft") or payload["object_attributes"].get("work_in_progress")
        assert pull.state == ("draft" if draft and item["state"] == "opened" else STATES[item["state"]])
        assert pull.created_at is not None and pull.created_at.tzinfo is UTC
        assert pull.updated_at is not None and pull.updated_at >= pull.created_at
        assert pull.title == payload["object_attributes"]["title"]
    else:
        assert isinstance(parsed, Ignored)
        assert parsed.event == event


def test_corpus_covers_every_kind() -> None:
    parsed = [type(parse_webhook(e["x_gitlab_event"], load(e["file"])))
              for e in ENTRIES if e["file"] not in BROKEN]
    assert {Push, PullRequestEvent, Ignored} <= set(parsed)


# --------------------------------------------------------------------------- pushes


def test_push_fields() -> None:
    parsed = parse_webhook("Push Hook", load("go-scm/push_merge.json"))
    assert isinstance(parsed, Push)
    assert parsed.repository == RemoteRepository(
        external_id="4861503", full_name="gitlab-org/hello-world", owner="gitlab-org",
        clone_url="https://gitlab.com/gitlab-org/hello-world.git", web_url="https://gitlab.com/gitlab-org/hello-world",
        private=True, default_branch="master",
    )
    assert parsed.commits[0] == PushedCommit(sha=load("go-scm/push_merge.json")["commits"][0]["id"],
                                             message=load("go-scm/push_merge.json")["commits"][0]["message"])


def test_subgroup_owner_is_the_full_namespace_path() -> None:
    """``project.namespace`` is a display name ("group3"); the owner comes from ``path_with_namespace``."""
    parsed = parse_webhook("Push Hook", load("go-scm/push_subgroup.json"))
    assert parsed.repository is not None
    assert parsed.repository.owner == "group1/group2/group3"
    assert parsed.account_login == "group1/group2/group3"


def test_branch_create_and_delete() -> None:
    created = parse_webhook("Push Hook", load("go-scm/branch_create.json"))
    deleted = parse_webhook("Push Hook", load("go-scm/branch_delete.json"))
    assert isinstance(created, Push) and created.created and not created.deleted
    assert isinstance(deleted, Push) and deleted.deleted and not deleted.created and deleted.commits == ()


def test_tag_push_is_a_push_of_the_tag_ref() -> None:
    parsed = parse_webhook("Tag Push Hook", load("go-scm/tag_delete.json"))
    assert isinstance(parsed, Push)
    assert (parsed.ref, parsed.deleted) == ("refs/tags/v1.0.0", True)


def test_push_without_object_kind_follows_the_header() -> None:
    """Old GitLab push payloads had no ``object_kind``; the header says what they are."""
    payload = load("go-scm/push.json")
    del payload["object_kind"], payload["event_name"]
    assert isinstance(parse_webhook("Push Hook", payload), Push)


def test_project_id_falls_back_to_top_level_project_id() -> None:
    payload = load("go-playground/push-event.json")
    assert "id" not in payload["project"]
    parsed = parse_webhook("Push Hook", payload)
    assert parsed.repository is not None and parsed.repository.external_id == str(payload["project_id"])


@pytest.mark.parametrize(("level", "private"), [(0, True), (10, True), (20, False), (None, True)])
def test_visibility_level(level: int | None, private: bool) -> None:
    payload = load("go-scm/push.json")
    payload["project"]["visibility_level"] = level
    parsed = parse_webhook("Push Hook", payload)
    assert parsed.repository is not None and parsed.repository.private is private


def test_visibility_word_when_there_is_no_level() -> None:
    payload = load("go-scm/push.json")
    del payload["project"]["visibility_level"]
    payload["project"]["visibility"] = "public"
    parsed = parse_webhook("Push Hook", payload)
    assert parsed.repository is not None and parsed.repository.private is False


@pytest.mark.parametrize("url", ["javascript:alert(document.cookie)", " JaVaScRiPt:alert(1)", "java\tscript:x",
                                 "file:///etc/passwd", "/relative/path"])
def test_non_http_urls_are_dropped(url: str) -> None:
    payload = load("go-scm/push.json")
    for key in ("web_url", "homepage", "git_http_url", "http_url"):
        payload["project"][key] = url
    parsed = parse_webhook("Push Hook", payload)
    assert parsed.repository is not None
    assert parsed.repository.web_url == ""
    assert parsed.repository.clone_url == ""


def test_javascript_web_url_is_dropped_and_clone_url_kept() -> None:
    payload = load("go-scm/push.json")
    payload["project"]["web_url"] = "javascript:alert(1)"
    payload["project"]["homepage"] = "javascript:alert(1)"
    parsed = parse_webhook("Push Hook", payload)
    assert parsed.repository is not None
    assert parsed.repository.web_url == ""
    assert parsed.repository.clone_url == "https://gitlab.com/gitlab-org/hello-world.git"


def test_javascript_merge_request_url_is_dropped() -> None:
    payload = load("go-scm/pull_request_create.json")
    payload["object_attributes"]["url"] = "javascript:alert(1)"
    parsed = parse_webhook("Merge Request Hook", payload)
    assert isinstance(parsed, PullRequestEvent) and parsed.pull is not None
    assert parsed.pull.url is None


# --------------------------------------------------------------------------- merge requests


def test_merge_request_fields() -> None:
    parsed = parse_webhook("Merge Request Hook", load("go-gitlab/service_merge_request.json"))
    assert isinstance(parsed, PullRequestEvent)
    pull = parsed.pull
    assert pull is not None
    assert (pull.number, pull.external_id, pull.state) == (2, "2", "open")
    assert pull.title == "Update client.go 🎉"
    assert pull.url == "http://10.40.8.5:3200/test/woodpecker/-/merge_requests/2"
    # user.id == object_attributes.author_id: the user who updated it is its author
    assert pull.author == "test"
    assert pull.created_at == datetime(2021, 9, 27, 5, 0, 1, tzinfo=UTC)
    assert pull.updated_at == datetime(2021, 9, 27, 5, 1, 21, tzinfo=UTC)
    assert parsed.review is None


def test_author_unknown_when_the_user_is_someone_else() -> None:
    parsed = parse_webhook("Merge Request Hook", load("go-gitlab/merge_request.json"))
    assert isinstance(parsed, PullRequestEvent) and parsed.pull is not None
    assert parsed.pull.author is None  # user.id 1, author_id 51


def test_author_unknown_when_the_user_has_no_id() -> None:
    parsed = parse_webhook("Merge Request Hook", load("go-scm/pull_request_create.json"))
    assert isinstance(parsed, PullRequestEvent) and parsed.pull is not None
    assert parsed.pull.author is None


def test_requested_reviewers() -> None:
    parsed = parse_webhook("Merge Request Hook", load("go-gitlab/merge_request.json"))
    assert isinstance(parsed, PullRequestEvent) and parsed.pull is not None
    assert parsed.pull.reviewers == (Review("user1", "requested"),)


def test_no_reviewers_key_with_empty_reviewer_ids_means_none() -> None:
    parsed = parse_webhook("Merge Request Hook", load("go-scm/pull_request_review_ready.json"))
    assert isinstance(parsed, PullRequestEvent) and parsed.pull is not None
    assert parsed.pull.reviewers == ()


def test_reviewers_unknown_when_the_payload_does_not_say() -> None:
    parsed = parse_webhook("Merge Request Hook", load("go-scm/pull_request_create.json"))
    assert isinstance(parsed, PullRequestEvent) and parsed.pull is not None
    assert parsed.pull.reviewers is None


def test_draft_merge_request() -> None:
    """The file is named "review_ready", but its ``changes`` say draft went false → true."""
    payload = load("go-scm/pull_request_review_ready.json")
    assert payload["changes"]["draft"] == {"previous": False, "current": True}
    parsed = parse_webhook("Merge Request Hook", payload)
    assert isinstance(parsed, PullRequestEvent) and parsed.pull is not None
    assert parsed.pull.state == "draft"
    assert parsed.pull.author == "rathod.meetsatish"


@pytest.mark.parametrize(("draft", "wip", "state"), [
    (True, False, "draft"), (False, True, "draft"), (None, True, "draft"), (False, False, "open"), (None, None, "open"),
])
def test_draft_flags(draft: bool | None, wip: bool | None, state: str) -> None:
    payload = load("go-scm/pull_request_create.json")
    payload["object_attributes"]["draft"] = draft
    payload["object_attributes"]["work_in_progress"] = wip
    parsed = parse_webhook("Merge Request Hook", payload)
    assert isinstance(parsed, PullRequestEvent) and parsed.pull is not None
    assert parsed.pull.state == state


@pytest.mark.parametrize(("raw", "state"), [
    ("opened", "open"), ("closed", "closed"), ("merged", "merged"), ("locked", "open"), ("something new", "open"),
])
def test_merge_request_states(raw: str, state: str) -> None:
    payload = load("go-scm/pull_request_create.json")
    payload["object_attributes"]["state"] = raw
    parsed = parse_webhook("Merge Request Hook", payload)
    assert isinstance(parsed, PullRequestEvent) and parsed.pull is not None
    assert parsed.pull.state == state


def test_closed_draft_is_closed() -> None:
    payload = load("go-scm/pull_request_close.json")
    payload["object_attributes"]["draft"] = True
    parsed = parse_webhook("Merge Request Hook", payload)
    assert isinstance(parsed, PullRequestEvent) and parsed.pull is not None
    assert parsed.pull.state == "closed"


def test_state_id_when_state_is_missing() -> None:
    payload = load("go-scm/pull_request_merge.json")
    del payload["object_attributes"]["state"]
    payload["object_attributes"]["state_id"] = 3
    parsed = parse_webhook("Merge Request Hook", payload)
    assert isinstance(parsed, PullRequestEvent) and parsed.pull is not None
    assert parsed.pull.state == "merged"


def test_merge_action_takes_updated_at_as_merge_time() -> None:
    parsed = parse_webhook("Merge Request Hook", load("go-scm/pull_request_merge.json"))
    assert isinstance(parsed, PullRequestEvent) and parsed.pull is not None
    assert parsed.pull.state == "merged"
    assert parsed.pull.merged_at == datetime(2017, 12, 10, 17, 8, 7, tzinfo=UTC)


def test_merged_at_when_sent() -> None:
    payload = load("go-scm/pull_request_merge.json")
    payload["object_attributes"]["merged_at"] = "2017-12-10T17:08:00Z"
    parsed = parse_webhook("Merge Request Hook", payload)
    assert isinstance(parsed, PullRequestEvent) and parsed.pull is not None
    assert parsed.pull.merged_at == datetime(2017, 12, 10, 17, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(("raw", "expected"), [
    ("2013-12-03 17:23:34 UTC", datetime(2013, 12, 3, 17, 23, 34, tzinfo=UTC)),
    ("2013-12-03T17:23:34Z", datetime(2013, 12, 3, 17, 23, 34, tzinfo=UTC)),
    ("2017-09-20T08:31:45.944Z", datetime(2017, 9, 20, 8, 31, 45, 944000, tzinfo=UTC)),
    ("2016-12-01T15:07:53+02:00", datetime(2016, 12, 1, 13, 7, 53, tzinfo=UTC)),
    ("2013-12-03 17:23:34 +0100", datetime(2013, 12, 3, 16, 23, 34, tzinfo=UTC)),
    ("2013-12-03 17:23:34", datetime(2013, 12, 3, 17, 23, 34, tzinfo=UTC)),
    ("yesterday", None), ("", None), (12345, None), (None, None), (["2013-12-03"], None), ("2" * 500, None),
])
def test_merge_request_times(raw: object, expected: datetime | None) -> None:
    payload = load("go-scm/pull_request_create.json")
    payload["object_attributes"]["created_at"] = raw
    parsed = parse_webhook("Merge Request Hook", payload)
    assert isinstance(parsed, PullRequestEvent) and parsed.pull is not None
    assert parsed.pull.created_at == expected


@pytest.mark.parametrize(("action", "state"), [
    ("approved", "approved"), ("approval", "approved"), ("unapproved", "dismissed"), ("unapproval", "dismissed"),
])
def test_approval_actions_carry_a_review(action: str, state: str) -> None:
    payload = load("go-gitlab/merge_request.json")
    payload["object_attributes"]["action"] = action
    parsed = parse_webhook("Merge Request Hook", payload)
    assert isinstance(parsed, PullRequestEvent)
    assert parsed.action == action
    assert parsed.review == Review(payload["user"]["username"], state)  # type: ignore[arg-type]


@pytest.mark.parametrize("action", ["open", "close", "reopen", "update", "merge", ""])
def test_other_actions_carry_no_review(action: str) -> None:
    payload = load("go-gitlab/merge_request.json")
    payload["object_attributes"]["action"] = action
    parsed = parse_webhook("Merge Request Hook", payload)
    assert isinstance(parsed, PullRequestEvent) and parsed.review is None


def test_approval_without_a_user_has_no_review() -> None:
    payload = load("go-gitlab/merge_request.json")
    payload["object_attributes"]["action"] = "approved"
    del payload["user"]
    parsed = parse_webhook("Merge Request Hook", payload)
    assert isinstance(parsed, PullRequestEvent) and parsed.review is None


# --------------------------------------------------------------------------- headers and kinds


def test_test_button_delivery_is_accepted() -> None:
    """GitLab's "Test" button sends the usual header with a sample built from the project: it parses normally."""
    parsed = parse_webhook("Push Hook", load("docs/push.docs.json"))
    assert isinstance(parsed, Push)


def test_object_kind_disagreeing_with_the_header_is_refused() -> None:
    with pytest.raises(WebhookPayloadError, match=r"`object_kind` is 'merge_request'.*Push Hook"):
        parse_webhook("Push Hook", load("go-gitlab/merge_request.json"))


def test_header_name_in_other_case() -> None:
    assert isinstance(parse_webhook("push hook", load("go-scm/push.json")), Push)


@pytest.mark.parametrize("name", ["go-playground/system-push-event.json", "go-playground/system-tag-event.json"])
def test_system_hook_pushes_are_pushes(name: str) -> None:
    payload = load(name)
    assert "object_kind" not in payload
    parsed = parse_webhook("System Hook", payload)
    assert isinstance(parsed, Push)
    assert parsed.ref == payload["ref"]


def test_system_hook_merge_request_is_a_merge_request() -> None:
    parsed = parse_webhook("System Hook", load("go-playground/system-merge-request-event.json"))
    assert isinstance(parsed, PullRequestEvent) and parsed.pull is not None
    assert parsed.pull.number == 1


@pytest.mark.parametrize("payload", [
    {"event_name": "project_create", "project_id": 74, "path_with_namespace": "jsmith/storecloud"},
    {"event_name": "user_create", "username": "js"},
    {"object_kind": "note", "project": {"id": 1, "path_with_namespace": "a/b"}},
    {},
])
def test_other_system_hooks_are_ignored(payload: dict[str, Any]) -> None:
    parsed = parse_webhook("System Hook", payload)
    assert isinstance(parsed, Ignored) and parsed.event == "System Hook"


@pytest.mark.parametrize("event", ["Note Hook", "Pipeline Hook", "Job Hook", "Issue Hook", "Wiki Page Hook",
                                   "Deployment Hook", "Release Hook", "Something New Hook"])
def test_other_events_are_ignored_with_identity(event: str) -> None:
    parsed = parse_webhook(event, load("go-scm/merge_request_comment_create.json"))
    assert isinstance(parsed, Ignored)
    assert parsed.event == event
    assert parsed.repository is not None and parsed.repository.full_name == "gitlab-org/hello-world"
    assert parsed.account_login == "gitlab-org"


@pytest.mark.parametrize("payload", [None, [], "x", 3, {}, {"project": "x"}, {"project": {"id": "nope"}},
                                     {"project": {"id": 1, "path_with_namespace": 7}}])
def test_ignored_events_never_raise_for_shape(payload: object) -> None:
    parsed = parse_webhook("Pipeline Hook", payload)
    assert isinstance(parsed, Ignored) and parsed.repository is None and parsed.account_login is None


# --------------------------------------------------------------------------- malformed payloads


def _set(data: dict[str, Any], path: str, value: object) -> dict[str, Any]:
    data = copy.deepcopy(data)
    *parents, last = path.split(".")
    target = data
    for key in parents:
        target = target[key]
    if value is _DELETE:
        del target[last]
    else:
        target[last] = value
    return data


_DELETE = object()
_PUSH = "go-scm/push.json"
_MR = "go-gitlab/merge_request.json"


@pytest.mark.parametrize(("event", "name", "path", "value", "field", "problem"), [
    ("Push Hook", _PUSH, "ref", _DELETE, "ref", "is missing"),
    ("Push Hook", _PUSH, "ref", 42, "ref", "must be a string, got number"),
    ("Push Hook", _PUSH, "before", ["x"], "before", "must be a string, got array"),
    ("Push Hook", _PUSH, "after", {}, "after", "must be a string, got object"),
    ("Push Hook", _PUSH, "commits", "abc", "commits", "must be a list, got string"),
    ("Push Hook", _PUSH, "commits", [1], "commits[0]", "must be an object, got number"),
    ("Push Hook", _PUSH, "commits", [{"message": "x"}], "commits[0].id", "is missing"),
    ("Push Hook", _PUSH, "project", _DELETE, "project", "is missing"),
    ("Push Hook", _PUSH, "project", [], "project", "must be an object, got array"),
    ("Push Hook", _PUSH, "project.id", "forty-two", "project.id", "must be a number"),
    ("Push Hook", _PUSH, "project.id", True, "project.id", "must be a number"),
    ("Push Hook", _PUSH, "project.path_with_namespace", 3, "project.path_with_namespace", "must be a string"),
    ("Push Hook", _PUSH, "project.path_with_namespace", "lonely", "project.path_with_namespace", "must be <namespace>"),
    ("Push Hook", _PUSH, "project.web_url", 3, "project.web_url", "must be a string, got number"),
    ("Push Hook", _PUSH, "project.default_branch", False, "project.default_branch", "must be a string"),
    ("Push Hook", _PUSH, "object_kind", 7, "object_kind", "must be a string, got number"),
    ("Merge Request Hook", _MR, "object_attributes", _DELETE, "object_attributes", "is missing"),
    ("Merge Request Hook", _MR, "object_attributes", "x", "object_attributes", "must be an object, got string"),
    ("Merge Request Hook", _MR, "object_attributes.iid", _DELETE, "object_attributes.iid", "is missing"),
    ("Merge Request Hook", _MR, "object_attributes.iid", "one", "object_attributes.iid", "must be an integer"),
    ("Merge Request Hook", _MR, "object_attributes.iid", 1.5, "object_attributes.iid", "must be an integer"),
    ("Merge Request Hook", _MR, "object_attributes.id", _DELETE, "object_attributes.id", "is missing"),
    ("Merge Request Hook", _MR, "object_attributes.id", [], "object_attributes.id", "must be an id"),
    ("Merge Request Hook", _MR, "object_attributes.source_branch", _DELETE,
     "object_attributes.source_branch", "is missing"),
    ("Merge Request Hook", _MR, "object_attributes.target_branch", 5,
     "object_attributes.target_branch", "must be a string, got number"),
    ("Merge Request Hook", _MR, "object_attributes.title", 5, "object_attributes.title", "must be a string"),
    ("Merge Request Hook", _MR, "object_attributes.action", {}, "object_attributes.action", "must be a string"),
    ("Merge Request Hook", _MR, "object_attributes.url", 1, "object_attributes.url", "must be a string"),
    ("Merge Request Hook", _MR, "user", "root", "user", "must be an object, got string"),
    ("Merge Request Hook", _MR, "user.username", 9, "user.username", "must be a string, got number"),
    ("Merge Request Hook", _MR, "reviewers", {}, "reviewers", "must be a list, got object"),
    ("Merge Request Hook", _MR, "reviewers", ["user1"], "reviewers[0]", "must be an object, got string"),
])
def test_mistyped_fields_name_their_path(
    event: str, name: str, path: str, value: object, field: str, problem: str
) -> None:
    payload = _set(load(name), path, value)
    if field == "project.id":
        payload.pop("project_id", None)  # else the top-level id would stand in
    with pytest.raises(WebhookPayloadError) as caught:
        parse_webhook(event, payload)
    assert f"`{field}` {problem}" in caught.value.message
    assert caught.value.status == 400 and caught.value.reason == "bad_payload"


@pytest.mark.parametrize("payload", [None, [], "push", 1])
def test_payload_that_is_not_an_object(payload: object) -> None:
    with pytest.raises(WebhookPayloadError, match="must be a JSON object"):
        parse_webhook("Push Hook", payload)


def test_ids_as_strings_are_accepted() -> None:
    payload = load(_MR)
    payload["object_attributes"]["iid"] = "1"
    payload["project"]["id"] = "1"
    parsed = parse_webhook("Merge Request Hook", payload)
    assert isinstance(parsed, PullRequestEvent) and parsed.pull is not None and parsed.pull.number == 1


def test_sparse_merge_request_display_fields_are_tolerated() -> None:
    payload = load(_MR)
    for key in ("title", "description", "url", "created_at", "updated_at", "action", "state"):
        payload["object_attributes"].pop(key, None)
    parsed = parse_webhook("Merge Request Hook", payload)
    assert isinstance(parsed, PullRequestEvent) and parsed.pull is not None
    assert (parsed.pull.title, parsed.pull.description, parsed.pull.url, parsed.action) == ("", "", None, "")


# --------------------------------------------------------------------------- payload_target


@pytest.mark.parametrize(("payload", "expected"), [
    ({"project": {"id": 42}}, "42"),
    ({"project": {"id": "42"}}, "42"),
    ({"project": {}, "project_id": 7}, "7"),
    ({"project": {"path_with_namespace": "a/b"}, "object_attributes": {"target_project_id": 9}}, "9"),
    ({"project": {"id": "nope"}, "project_id": 7}, None),  # a malformed id is not papered over
    ({"project": {"id": True}}, None),
    ({"project": "x"}, None),
    ({}, None),
])
def test_payload_target(payload: dict[str, object], expected: str | None) -> None:
    assert payload_target(payload) == (expected, None)


def test_payload_target_never_raises_on_garbage() -> None:
    assert payload_target([]) == (None, None)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- read_delivery and verify


def headers(**extra: str) -> dict[str, str]:
    base = {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": "s3cret", "X-Gitlab-Instance": "https://gitlab.example",
            "X-Gitlab-Event-UUID": "13792a34-cac6-4fda-95a8-c58e00a3954e",
            "X-Gitlab-Webhook-UUID": "9f5b3e2c-0ee1-4a7c-9d66-3ad1b4a4e0a5", "User-Agent": "GitLab/17.0.0"}
    base.update(extra)
    return base


def test_read_delivery_project_hook() -> None:
    head = read_delivery(headers(), {"project": "4861503"})
    assert head == DeliveryHead(event="Push Hook", delivery_id="13792a34-cac6-4fda-95a8-c58e00a3954e",
                                signature="s3cret", level="repository", target_id="4861503", hook_id=None)


def test_read_delivery_group_hook() -> None:
    head = read_delivery(headers(), {"group": "77"})
    assert (head.level, head.target_id) == ("account", "77")


def test_idempotency_key_is_preferred() -> None:
    """``Idempotency-Key`` stays the same on retries; ``X-Gitlab-Event-UUID`` is shared by one request's hooks."""
    head = read_delivery(headers(**{"Idempotency-Key": "0c2b5fbc-aa4d-4b5e-9b6b-5b7e5b0d7f11"}), {"project": "1"})
    assert head.delivery_id == "0c2b5fbc-aa4d-4b5e-9b6b-5b7e5b0d7f11"


def test_idempotency_key_alone() -> None:
    sent = headers(**{"Idempotency-Key": "key-1"})
    del sent["X-Gitlab-Event-UUID"]
    assert read_delivery(sent, {"project": "1"}).delivery_id == "key-1"


def test_no_delivery_id() -> None:
    sent = headers()
    del sent["X-Gitlab-Event-UUID"]
    assert read_delivery(sent, {"project": "1"}).delivery_id is None


def test_header_names_in_any_case() -> None:
    sent = {"x-gitlab-event": " Merge Request Hook ", "X-GITLAB-TOKEN": "s3cret", "x-GitLab-event-uuid": "abc"}
    head = read_delivery(sent, {"project": "1"})
    assert (head.event, head.signature, head.delivery_id) == ("Merge Request Hook", "s3cret", "abc")


@pytest.mark.parametrize("event", [None, "", "   ", "x" * 101, "Push\x00Hook"])
def test_read_delivery_without_an_event(event: str | None) -> None:
    sent = headers()
    if event is None:
        del sent["X-Gitlab-Event"]
    else:
        sent["X-Gitlab-Event"] = event
    with pytest.raises(DeliveryError) as caught:
        read_delivery(sent, {"project": "1"})
    assert caught.value.reason == "bad_event" and caught.value.status == 400
    assert not isinstance(caught.value, WebhookUnauthorized)


@pytest.mark.parametrize("value", ["a b", "x" * 201, "<script>", "id/with/slash", "ü"])
def test_read_delivery_malformed_delivery_id(value: str) -> None:
    for header in ("X-Gitlab-Event-UUID", "Idempotency-Key"):
        with pytest.raises(DeliveryError) as caught:
            read_delivery(headers(**{header: value}), {"project": "1"})
        assert caught.value.reason == "bad_delivery_id" and caught.value.status == 400


@pytest.mark.parametrize("query", [
    {}, {"project": ""}, {"project": "abc"}, {"project": "-1"}, {"project": "1" * 21}, {"project": "١٢"},
    {"group": "x"}, {"project": "1", "group": "2"}, {"repo": "1"},
])
def test_read_delivery_unknown_hook(query: dict[str, str]) -> None:
    with pytest.raises(WebhookUnauthorized) as caught:
        read_delivery(headers(), query)
    assert caught.value.status == 401 and caught.value.reason == "unknown_hook"
    assert "?project=" in caught.value.message and "?group=" in caught.value.message


def test_read_delivery_id_of_twenty_digits() -> None:
    assert read_delivery(headers(), {"group": "9" * 20}).target_id == "9" * 20


@pytest.mark.parametrize("token", [None, "", "  "])
def test_read_delivery_without_a_token(token: str | None) -> None:
    sent = headers()
    if token is None:
        del sent["X-Gitlab-Token"]
    else:
        sent["X-Gitlab-Token"] = token
    with pytest.raises(WebhookUnauthorized) as caught:
        read_delivery(sent, {"project": "1"})
    assert caught.value.status == 401 and caught.value.reason == "bad_signature"
    assert "set a secret token on the webhook" in caught.value.message


def test_read_delivery_token_too_long() -> None:
    with pytest.raises(WebhookUnauthorized) as caught:
        read_delivery(headers(**{"X-Gitlab-Token": "t" * 1001}), {"project": "1"})
    assert caught.value.reason == "bad_signature"
    assert "t" * 20 not in caught.value.message  # the token never shows in the message
    assert read_delivery(headers(**{"X-Gitlab-Token": "t" * 1000}), {"project": "1"}).signature == "t" * 1000


def test_webhook_unauthorized_defaults() -> None:
    assert WebhookUnauthorized is base.WebhookUnauthorized  # the one the web layer answers 401 for
    error = WebhookUnauthorized("no")
    assert isinstance(error, DeliveryError)
    assert (error.status, error.reason) == (401, "bad_signature")


def _head(token: str) -> DeliveryHead:
    return read_delivery(headers(**{"X-Gitlab-Token": token}), {"project": "1"})


def test_verify_accepts_the_secret() -> None:
    assert verify("s3cret", b"{}", _head("s3cret"))
    assert verify("pässwörd", b"", _head("pässwörd"))


@pytest.mark.parametrize(("secret", "token"), [
    ("s3cret", "s3cre"), ("s3cret", "s3cret!"), ("s3cret", "S3CRET"), ("", "s3cret"), ("s3cret", "x"),
])
def test_verify_refuses(secret: str, token: str) -> None:
    assert not verify(secret, b"{}", _head(token))


def test_verify_refuses_an_empty_signature() -> None:
    head = DeliveryHead(event="Push Hook", delivery_id=None, signature="", level="repository", target_id="1")
    assert not verify("", b"", head)
    assert not verify("s3cret", b"", head)
