"""GitHub webhook signatures and payload parsing, against the real payload corpus in ``/work/shared/corpus``.

Every file listed in ``github-webhooks/manifest.json`` (api.github.com, ``ghes-35/``, ``go-scm/``) is parsed
and compared with the fields the manifest records for it; expectations come from the manifest, not from
lists kept here.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from devlink.hosts.base import (
    Ignored,
    Ping,
    PullRequestEvent,
    Push,
    PushedCommit,
    RefChange,
    RepositoryEvent,
    Review,
    WebhookEvent,
    WebhookPayloadError,
)
from devlink.hosts.github_webhooks import DeliveryHeaders, parse_webhook, read_headers, sign, verify_signature

# tests/hosts/<this file> → parents[3] is /work, which holds main/ (the repository) and shared/.
CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "github-webhooks"
MANIFEST: dict[str, Any] = json.loads((CORPUS / "manifest.json").read_text(encoding="utf-8"))
ENTRIES: list[dict[str, Any]] = MANIFEST["files"]

KINDS: dict[str, type[WebhookEvent]] = {
    "push": Push,
    "create": RefChange,
    "delete": RefChange,
    "pull_request": PullRequestEvent,
    "pull_request_review": PullRequestEvent,
    "ping": Ping,
    "repository": RepositoryEvent,
}


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((CORPUS / name).read_text(encoding="utf-8"))
    return data


def entry(name: str) -> dict[str, Any]:
    return next(e for e in ENTRIES if e["file"] == name)


# --------------------------------------------------------------------------- the whole corpus


def test_manifest_lists_every_payload_file() -> None:
    on_disk = {str(p.relative_to(CORPUS)) for p in CORPUS.rglob("*.json") if p.name != "manifest.json"}
    listed = [e["file"] for e in ENTRIES]
    assert len(listed) == len(set(listed))
    assert set(listed) == on_disk
    # The corpus README promises 62 + 14 + 17 payloads; a shrunken corpus would make this suite weaker silently.
    assert len(listed) == 93
    assert {e["event"] for e in ENTRIES} <= set(KINDS)


@pytest.mark.parametrize("item", ENTRIES, ids=[e["file"] for e in ENTRIES])
def test_corpus_payload_parses_as_manifest_says(item: dict[str, Any]) -> None:
    payload = load(item["file"])
    event = item["event"]
    parsed = parse_webhook(event, payload)

    assert type(parsed) is KINDS[event]

    full_name = item["repository"]
    if full_name is None:
        assert parsed.repository is None
        assert item["has_organization"]
        assert parsed.account_login == payload["organization"]["login"]
    else:
        assert parsed.repository is not None
        assert parsed.repository.full_name == full_name
        assert parsed.repository.external_id == str(payload["repository"]["id"])
        full_url = payload["repository"]["html_url"]
        # owner.login, not full_name's prefix: two docs examples (repository.privatized.2, publicized.3) say
        # full_name "Codertocat/Hello-World" with owner.login "Octocoders".
        assert parsed.repository.owner == payload["repository"]["owner"]["login"]
        assert parsed.account_login == parsed.repository.owner
        assert parsed.repository.web_url == payload["repository"]["html_url"]
        assert parsed.repository.clone_url == payload["repository"].get("clone_url", f"{full_url}.git")
        assert parsed.repository.default_branch == payload["repository"]["default_branch"]
        assert parsed.repository.private is payload["repository"]["private"]

    if isinstance(parsed, Push):
        assert parsed.ref == item["ref"]
        assert (parsed.created, parsed.deleted, parsed.forced) == (item["created"], item["deleted"], item["forced"])
        assert len(parsed.commits) == item["commits"]
        assert parsed.before == item.get("before", payload["before"])
        assert parsed.after == item.get("after", payload["after"])
        assert all(len(c.sha) == 40 for c in parsed.commits)
    elif isinstance(parsed, RefChange):
        assert parsed.ref == item["ref"]
        assert parsed.ref_type == item["ref_type"]
        assert parsed.deleted is (event == "delete")
    elif isinstance(parsed, PullRequestEvent):
        assert parsed.action == item["action"]
        pull = parsed.pull
        assert pull is not None
        assert pull.number == item.get("number", payload["pull_request"]["number"])
        if "state" in item:
            expected_state = (
                "merged"
                if item["merged"]
                else "closed"
                if item["state"] == "closed"
                else "draft"
                if item.get("draft")
                else "open"
            )
            assert pull.state == expected_state
        if "head" in item:
            assert (pull.source_branch, pull.target_branch) == (item["head"], item["base"])
        if item.get("body_is_null"):
            assert pull.description == ""
        assert pull.external_id == str(payload["pull_request"]["id"])
        assert pull.author == payload["pull_request"]["user"]["login"]
        assert pull.url == payload["pull_request"]["html_url"]
        for stamp in (pull.created_at, pull.updated_at):
            assert stamp is not None
            assert stamp.utcoffset() == timedelta(0)
        assert (parsed.review is not None) is (event == "pull_request_review")
    elif isinstance(parsed, Ping):
        assert parsed.hook_id == str(payload["hook_id"])
    elif isinstance(parsed, RepositoryEvent):
        assert parsed.action == item["action"]
        assert (parsed.old_full_name is not None) is (item["action"] in ("renamed", "transferred"))


# --------------------------------------------------------------------------- pull requests


def test_pull_request_fields_from_closed_example() -> None:
    parsed = parse_webhook("pull_request", load("pull_request.closed.1.json"))
    assert isinstance(parsed, PullRequestEvent)
    pull = parsed.pull
    assert pull is not None
    assert pull.state == "closed"
    assert pull.title == "Update the README with new information."
    assert pull.created_at == datetime(2019, 5, 15, 15, 20, 33, tzinfo=UTC)
    assert pull.merged_at is None
    assert pull.comment_count == 1  # comments 0 + review_comments 1
    assert pull.reviewers == (Review("octocat", "requested"),)


def test_merged_pull_request_derived_from_closed_example() -> None:
    # No GitHub example in the corpus is a merged PR (every "closed" has merged: false), so this payload is
    # our own: pull_request.closed.1.json with merged, merged_at, merge_commit_sha and merged_by set.
    payload = load("pull_request.closed.1.json")
    pr = payload["pull_request"]
    pr["merged"] = True
    pr["merged_at"] = "2019-05-15T15:21:18Z"
    pr["merge_commit_sha"] = "c4295bd74fb0f4fbb0d7a0fd2dac9a8bd3b2c0a1"
    pr["merged_by"] = copy.deepcopy(pr["user"])

    parsed = parse_webhook("pull_request", payload)
    assert isinstance(parsed, PullRequestEvent)
    assert parsed.action == "closed"
    assert parsed.pull is not None
    assert parsed.pull.state == "merged"
    assert parsed.pull.merged_at == datetime(2019, 5, 15, 15, 21, 18, tzinfo=UTC)


def test_merged_at_alone_means_merged() -> None:
    payload = load("pull_request.closed.1.json")
    del payload["pull_request"]["merged"]
    payload["pull_request"]["merged_at"] = "2019-05-15T15:21:18Z"
    parsed = parse_webhook("pull_request", payload)
    assert isinstance(parsed, PullRequestEvent) and parsed.pull is not None
    assert parsed.pull.state == "merged"


def test_draft_pull_request() -> None:
    parsed = parse_webhook("pull_request", load("pull_request.converted_to_draft.1.json"))
    assert isinstance(parsed, PullRequestEvent) and parsed.pull is not None
    assert parsed.pull.state == "draft"


def test_closed_draft_is_closed() -> None:
    payload = load("pull_request.closed.1.json")
    payload["pull_request"]["draft"] = True
    parsed = parse_webhook("pull_request", payload)
    assert isinstance(parsed, PullRequestEvent) and parsed.pull is not None
    assert parsed.pull.state == "closed"


def test_pull_request_tolerates_sparse_fields() -> None:
    payload = load("pull_request.opened.1.json")
    pr = payload["pull_request"]
    del pr["title"], pr["comments"], pr["requested_reviewers"], pr["draft"], pr["user"]
    pr["body"] = None
    parsed = parse_webhook("pull_request", payload)
    assert isinstance(parsed, PullRequestEvent) and parsed.pull is not None
    pull = parsed.pull
    assert (pull.title, pull.description, pull.author) == ("", "", None)
    assert pull.comment_count is None
    assert pull.reviewers is None
    assert pull.state == "open"


T = datetime(2019, 5, 15, 15, 20, 33, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2019-05-15T15:20:33Z", T),
        ("2019-05-15T17:20:33+02:00", T),
        ("2019-05-15T15:20:33", T),  # no offset: GitHub means UTC
        (1557933633, T),  # epoch seconds, as old payloads give
        (1557933633.0, T),
        ("1557933633", T),
        ("not a date", None),
        ("", None),
        (None, None),
        (True, None),
        ([], None),
        (10**20, None),
    ],
)
def test_pull_request_times(raw: object, expected: datetime | None) -> None:
    payload = load("pull_request.opened.1.json")
    payload["pull_request"]["created_at"] = raw
    parsed = parse_webhook("pull_request", payload)
    assert isinstance(parsed, PullRequestEvent) and parsed.pull is not None
    assert parsed.pull.created_at == expected
    if expected is not None:
        assert parsed.pull.created_at is not None and parsed.pull.created_at.tzinfo is UTC


def test_requested_teams_are_not_reviewers() -> None:
    payload = load("pull_request.review_requested.1.json")
    team = {"id": 1, "name": "Justice League", "slug": "justice-league"}
    payload["pull_request"]["requested_reviewers"].append(team)  # old payloads mixed teams in here
    payload["pull_request"]["requested_teams"] = [team]
    parsed = parse_webhook("pull_request", payload)
    assert isinstance(parsed, PullRequestEvent) and parsed.pull is not None
    assert parsed.pull.reviewers == (Review("octocat", "requested"),)


# --------------------------------------------------------------------------- reviews


def test_review_submitted() -> None:
    parsed = parse_webhook("pull_request_review", load("go-scm/pr_review_submitted.json"))
    assert isinstance(parsed, PullRequestEvent)
    assert parsed.action == "submitted"
    assert parsed.review == Review("shivamnegi94", "commented")
    assert parsed.pull is not None
    assert (parsed.pull.number, parsed.pull.state) == (205, "open")
    assert (parsed.pull.source_branch, parsed.pull.target_branch) == ("shivamnegi94-patch-66", "main")
    assert parsed.pull.comment_count is None  # the review payload's pull_request has no counts
    # This captured delivery's repository has no clone_url; it is derived from html_url.
    assert parsed.repository is not None
    assert parsed.repository.clone_url == "https://github.com/shivamnegi94/testrepo.git"


@pytest.mark.parametrize(
    ("raw", "state"),
    [
        ("APPROVED", "approved"),
        ("approved", "approved"),
        ("CHANGES_REQUESTED", "changes_requested"),
        ("changes_requested", "changes_requested"),
        ("COMMENTED", "commented"),
        ("DISMISSED", "dismissed"),
        ("dismissed", "dismissed"),
    ],
)
def test_review_states(raw: str, state: str) -> None:
    payload = load("go-scm/pr_review_submitted.json")
    payload["review"]["state"] = raw
    parsed = parse_webhook("pull_request_review", payload)
    assert isinstance(parsed, PullRequestEvent)
    assert parsed.review == Review("shivamnegi94", state)  # type: ignore[arg-type]


def test_review_state_we_do_not_model_gives_no_review() -> None:
    payload = load("go-scm/pr_review_submitted.json")
    payload["review"]["state"] = "pending"
    parsed = parse_webhook("pull_request_review", payload)
    assert isinstance(parsed, PullRequestEvent)
    assert parsed.review is None
    assert parsed.pull is not None


def test_review_on_merged_pull_request_uses_merged_at() -> None:
    payload = load("go-scm/pr_review_submitted.json")
    assert "merged" not in payload["pull_request"]
    payload["pull_request"]["state"] = "closed"
    payload["pull_request"]["merged_at"] = "2025-07-28T07:00:00Z"
    parsed = parse_webhook("pull_request_review", payload)
    assert isinstance(parsed, PullRequestEvent) and parsed.pull is not None
    assert parsed.pull.state == "merged"


# --------------------------------------------------------------------------- push, refs, ping, repository


def test_push_with_commit() -> None:
    parsed = parse_webhook("push", load("go-scm/push.json"))
    assert isinstance(parsed, Push)
    assert parsed.commits == (PushedCommit("199eddf46df50de8d02e99bf1c5fdb4101338224", "Update README"),)
    assert parsed.repository is not None and parsed.repository.owner == "Codertocat"


@pytest.mark.parametrize("commits", [None, [], "absent"])
def test_push_without_commits(commits: object) -> None:
    payload = load("push.none.5.json")
    if commits == "absent":
        del payload["commits"]
    else:
        payload["commits"] = commits
    parsed = parse_webhook("push", payload)
    assert isinstance(parsed, Push)
    assert parsed.commits == ()


def test_push_flags_fall_back_to_zero_shas() -> None:
    payload = load("go-scm/push_branch_delete.json")
    del payload["created"], payload["deleted"], payload["forced"]
    parsed = parse_webhook("push", payload)
    assert isinstance(parsed, Push)
    assert (parsed.created, parsed.deleted, parsed.forced) == (False, True, False)


def test_push_owner_with_only_name() -> None:
    payload = load("push.none.5.json")
    del payload["repository"]["owner"]["login"]
    del payload["repository"]["default_branch"]
    parsed = parse_webhook("push", payload)
    assert parsed.repository is not None
    assert parsed.repository.owner == "Codertocat"
    assert parsed.account_login == "Codertocat"
    assert parsed.repository.default_branch == "master"  # from master_branch


def test_branch_create_and_delete() -> None:
    created = parse_webhook("create", load("go-scm/branch_create.json"))
    deleted = parse_webhook("delete", load("go-scm/branch_delete.json"))
    assert isinstance(created, RefChange) and isinstance(deleted, RefChange)
    assert (created.ref_type, created.ref, created.deleted) == ("branch", "feature-branch", False)
    assert (deleted.ref_type, deleted.ref, deleted.deleted) == ("branch", "feature-branch", True)


def test_ping_repository_and_organization_hooks() -> None:
    repo_ping = parse_webhook("ping", load("ping.none.1.json"))
    assert isinstance(repo_ping, Ping)
    assert repo_ping.hook_id == "109948940"
    assert repo_ping.account_login == "Octocoders"

    org_ping = parse_webhook("ping", load("ping.none.4.json"))
    assert isinstance(org_ping, Ping)
    assert org_ping.repository is None
    assert org_ping.account_login == "Octocoders"
    # This docs example's hook_id (109948940) differs from hook.id (266738161); the header-level id wins.
    assert org_ping.hook_id == "109948940"


def test_ping_falls_back_to_hook_id() -> None:
    payload = load("ping.none.4.json")
    del payload["hook_id"]
    parsed = parse_webhook("ping", payload)
    assert isinstance(parsed, Ping)
    assert parsed.hook_id == "266738161"


def test_repository_renamed() -> None:
    payload = load("repository.renamed.1.json")
    # The docs example renames Hello-World to … Hello-World; a different old name shows the owner is kept.
    parsed = parse_webhook("repository", payload)
    assert isinstance(parsed, RepositoryEvent)
    assert parsed.old_full_name == "Octocoders/Hello-World"

    payload["changes"]["repository"]["name"]["from"] = "Old-World"
    parsed = parse_webhook("repository", payload)
    assert isinstance(parsed, RepositoryEvent)
    assert parsed.action == "renamed"
    assert parsed.old_full_name == "Octocoders/Old-World"
    assert parsed.repository is not None and parsed.repository.full_name == "Octocoders/Hello-World"


def test_repository_transferred() -> None:
    payload = load("repository.transferred.1.json")
    parsed = parse_webhook("repository", payload)
    assert isinstance(parsed, RepositoryEvent)
    assert parsed.old_full_name == "octocat/Hello-World"

    payload["changes"]["owner"]["from"] = {"organization": {"login": "OldOrg", "id": 7}}
    parsed = parse_webhook("repository", payload)
    assert isinstance(parsed, RepositoryEvent)
    assert parsed.old_full_name == "OldOrg/Hello-World"


def test_repository_edited_has_no_old_name() -> None:
    parsed = parse_webhook("repository", load("repository.edited.1.json"))
    assert isinstance(parsed, RepositoryEvent)
    assert (parsed.action, parsed.old_full_name) == ("edited", None)


# --------------------------------------------------------------------------- ignored events


def test_unknown_event_is_ignored_with_identity() -> None:
    payload = load("pull_request.opened.1.json")
    parsed = parse_webhook("issues", payload)
    assert isinstance(parsed, Ignored)
    assert parsed.event == "issues"
    assert parsed.repository is not None and parsed.repository.full_name == "Codertocat/Hello-World"
    assert parsed.account_login == "Codertocat"


def test_installation_event_takes_account_from_installation() -> None:
    payload = {"action": "created", "installation": {"id": 1, "account": {"login": "Octocoders"}}}
    parsed = parse_webhook("installation", payload)
    assert parsed == Ignored(repository=None, account_login="Octocoders", event="installation")


@pytest.mark.parametrize("payload", [[], "x", None, {"repository": {"full_name": "a/b"}}, {"repository": []}])
def test_ignored_events_never_raise_for_shape(payload: object) -> None:
    parsed = parse_webhook("star", payload)
    assert parsed == Ignored(repository=None, account_login=None, event="star")


# --------------------------------------------------------------------------- malformed payloads


def _without(name: str, *path: str | int) -> dict[str, Any]:
    payload = load(name)
    target: Any = payload
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return payload


@pytest.mark.parametrize(
    ("event", "payload", "field"),
    [
        ("push", [], "JSON object"),
        ("pull_request", "text", "JSON object"),
        ("push", _without("push.none.5.json", "ref"), "`ref`"),
        ("push", _without("push.none.5.json", "repository"), "`repository`"),
        ("push", _without("go-scm/push.json", "commits", 0, "id"), "`commits[0].id`"),
        ("create", _without("create.none.1.json", "ref_type"), "`ref_type`"),
        ("delete", _without("delete.none.1.json", "ref"), "`ref`"),
        ("pull_request", _without("pull_request.opened.1.json", "pull_request", "number"), "`pull_request.number`"),
        ("pull_request", _without("pull_request.opened.1.json", "pull_request"), "`pull_request`"),
        ("pull_request", _without("pull_request.opened.1.json", "pull_request", "head"), "`pull_request.head`"),
        ("pull_request", _without("pull_request.opened.1.json", "repository", "id"), "`repository.id`"),
        ("pull_request_review", _without("go-scm/pr_review_submitted.json", "review"), "`review`"),
        ("repository", _without("repository.renamed.1.json", "repository", "id"), "`repository.id`"),
        ("repository", _without("repository.renamed.1.json", "repository"), "`repository`"),
        ("ping", _without("ping.none.1.json", "repository", "id"), "`repository.id`"),
    ],
)
def test_malformed_payloads_raise(event: str, payload: object, field: str) -> None:
    with pytest.raises(WebhookPayloadError) as caught:
        parse_webhook(event, payload)
    assert field in caught.value.message
    assert event in caught.value.message
    assert caught.value.status == 400


def test_pull_request_number_of_wrong_type() -> None:
    payload = load("pull_request.opened.1.json")
    payload["pull_request"]["number"] = True
    with pytest.raises(WebhookPayloadError, match=r"`pull_request\.number` must be an integer"):
        parse_webhook("pull_request", payload)


# --------------------------------------------------------------------------- signatures

SECRET = b"It's a Secret to Everybody"
BODY = (CORPUS / "push.none.5.json").read_bytes()


def test_sign_matches_githubs_documented_example() -> None:
    # From GitHub Docs, "Validating webhook deliveries": secret and payload below give this exact header.
    assert sign(SECRET, b"Hello, World!") == ("sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17")


def test_signature_accepted() -> None:
    header = sign(SECRET, BODY)
    assert verify_signature(SECRET, BODY, header)
    assert verify_signature(SECRET, BODY, header.upper().replace("SHA256=", "sha256="))


@pytest.mark.parametrize(
    ("secret", "body", "header"),
    [
        (SECRET, BODY + b" ", sign(SECRET, BODY)),  # tampered body
        (b"another secret", BODY, sign(SECRET, BODY)),  # wrong secret
        (SECRET, BODY, None),  # missing header
        (SECRET, BODY, ""),
        (SECRET, BODY, "sha256="),
        (SECRET, BODY, "sha256=zz"),
        (SECRET, BODY, "sha256=" + "z" * 64),
        (SECRET, BODY, sign(SECRET, BODY)[:-1]),  # truncated
        (SECRET, BODY, sign(SECRET, BODY).removeprefix("sha256=")),  # no scheme
        (SECRET, BODY, "sha1=" + sign(SECRET, BODY).removeprefix("sha256=")),  # wrong scheme
        (SECRET, BODY, "sha1=2fd4e1c67a2d28fced849ee1bb76e7391b93eb12"),
        (SECRET, BODY, "sha256=é" + "0" * 63),  # non-ASCII must not reach compare_digest
        (b"", BODY, sign(b"", BODY)),  # an empty secret proves nothing
    ],
)
def test_signature_refused(secret: bytes, body: bytes, header: str | None) -> None:
    assert verify_signature(secret, body, header) is False


# --------------------------------------------------------------------------- delivery headers

# As GitHub sends them (docs.github.com/webhooks/webhook-events-and-payloads#delivery-headers).
GITHUB_HEADERS = {
    "Accept": "*/*", "Content-Type": "application/json", "User-Agent": "GitHub-Hookshot/044aadd",
    "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958", "X-GitHub-Event": "push",
    "X-GitHub-Hook-ID": "292430182", "X-GitHub-Hook-Installation-Target-ID": "79929171",
    "X-GitHub-Hook-Installation-Target-Type": "repository", "X-Hub-Signature-256": sign(SECRET, BODY),
}


def test_read_headers_names_the_hook_and_what_it_was_created_on() -> None:
    sent = read_headers(GITHUB_HEADERS)
    assert sent == DeliveryHeaders(event="push", delivery_id="72d3162e-cc78-11e3-81ab-4c9367dc0958",
                                   signature=sign(SECRET, BODY), hook_id="292430182", scope="repository",
                                   target_id="79929171")
    # HTTP header names are case-insensitive; ASGI servers hand them over in lower case
    assert read_headers({k.lower(): f" {v} " for k, v in GITHUB_HEADERS.items()}) == sent


@pytest.mark.parametrize(("sent", "scope"), [
    ("repository", "repository"), ("organization", "organization"), ("Organization", "organization"),
    ("integration", "app"),  # what GitHub sends for a GitHub App's own webhook
    ("app", "app"),  # the name GitHub's docs list for it
    ("business", None), ("", None), ("user", None),
])
def test_read_headers_target_types(sent: str, scope: str | None) -> None:
    assert read_headers(GITHUB_HEADERS | {"X-GitHub-Hook-Installation-Target-Type": sent}).scope == scope


@pytest.mark.parametrize("value", ["", "abc", "12a", "-1", "1.5", "٣", "1" * 21])
def test_read_headers_refuses_ids_that_are_not_github_ids(value: str) -> None:
    sent = read_headers(GITHUB_HEADERS | {"X-GitHub-Hook-ID": value, "X-GitHub-Hook-Installation-Target-ID": value})
    assert (sent.hook_id, sent.target_id) == (None, None)


def test_read_headers_without_the_hook_headers() -> None:
    sent = read_headers({"X-GitHub-Event": "ping"})
    assert sent == DeliveryHeaders("ping", None, None, None, None, None)
