"""GitLab webhook deliveries turned into the host-neutral events of ``devlink.hosts.base``.

``read_delivery`` reads a delivery's headers and the hook URL's query before the body is parsed:
devlink installs hooks as ``{base}/hooks/gitlab?project=<id>`` (a project hook) or ``?group=<id>``
(a group hook), so the URL names the secret to check.  GitLab does not sign the body; it sends the
secret token itself in ``X-Gitlab-Token``, which ``verify`` compares in constant time.  The parsed
JSON then goes to ``parse_webhook`` with the ``X-Gitlab-Event`` header.

Parsing follows the payload's ``object_kind`` (``event_name`` in system hooks, which lack it) and
checks that it agrees with the header.  What devlink acts on:

* ``push`` and ``tag_push`` → ``Push`` (tags keep their ``refs/tags/…`` ref; creation and deletion
  show as all-zero ``before`` / ``after``, GitLab sends no flags);
* ``merge_request`` → ``PullRequestEvent``; approval actions carry a ``Review``;
* everything else (notes, pipelines, jobs, issues, wiki pages, releases, …) → ``Ignored``.

A ``System Hook`` delivery (an instance-wide hook an administrator pointed at devlink by hand) is
parsed the same way when it is a push, tag push or merge request, and ignored otherwise.

As in ``github_webhooks``: only what the sync engine cannot do without raises ``WebhookPayloadError``
(naming the JSON path); a field that is absent is tolerated where the engine can fetch it, a field
of the wrong type is an error; display data (titles, dates) never costs the delivery.
"""

from __future__ import annotations

import contextlib
import hmac
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Literal

from devlink.domain.refs import is_zero_sha
from devlink.domain.text import http_url
from devlink.errors import DeliveryError
from devlink.hosts.base import (
    Ignored,
    PullRequestEvent,
    Push,
    PushedCommit,
    Pusher,
    RemotePullRequest,
    RemoteRepository,
    Review,
    WebhookEvent,
    WebhookPayloadError,
    WebhookUnauthorized,
    pushed_shas,
    usable_email,
)
from devlink.hosts.payloads import PayloadReader, type_name
from devlink.hosts.protocol import DeliveryHead

__all__ = [
    "EVENT_HEADER", "EVENT_UUID_HEADER", "IDEMPOTENCY_HEADER", "SYSTEM_HOOK", "TOKEN_HEADER",
    "WebhookUnauthorized", "parse_webhook", "payload_target", "read_delivery", "verify",
]

EVENT_HEADER = "X-Gitlab-Event"
TOKEN_HEADER = "X-Gitlab-Token"
EVENT_UUID_HEADER = "X-Gitlab-Event-UUID"
IDEMPOTENCY_HEADER = "Idempotency-Key"
SYSTEM_HOOK = "System Hook"

_MAX_EVENT = 100
_MAX_TOKEN = 1000
_DELIVERY_ID = re.compile(r"[A-Za-z0-9._:-]{1,200}")
_MAX_ID_DIGITS = 20
_MAX_TIME = 64

# The header each payload kind arrives with; a System Hook may carry any of them.
_HEADER_KINDS = {"push hook": "push", "tag push hook": "tag_push", "merge request hook": "merge_request"}

_Json = dict[str, object]
_PullState = Literal["open", "draft", "merged", "closed"]
# ``locked`` is GitLab's state while a merge is in progress (it falls back to ``opened`` if the merge fails).
_STATES: dict[str, _PullState] = {"opened": "open", "locked": "open", "merged": "merged", "closed": "closed"}
# ``state_id`` of older or trimmed payloads: 1 opened, 2 closed, 3 merged, 4 locked.
_STATE_IDS: dict[int, _PullState] = {1: "open", 2: "closed", 3: "merged", 4: "open"}
# ``approval``/``unapproval``: one user approved or revoked; ``approved``/``unapproved``: the same act,
# when it made the merge request (no longer) fully approved.  A revoked approval is shown as dismissed.
_REVIEW_ACTIONS: dict[str, Literal["approved", "dismissed"]] = {
    "approved": "approved", "approval": "approved", "unapproved": "dismissed", "unapproval": "dismissed"}
_PUBLIC_LEVEL = 20  # visibility_level: 0 private, 10 internal, 20 public


# --------------------------------------------------------------------------- headers and token


def read_delivery(headers: Mapping[str, str], query: Mapping[str, str]) -> DeliveryHead:
    """The facts of one delivery from its headers (any letter case) and the hook URL's query.

    ``delivery_id`` is ``Idempotency-Key`` (GitLab 17.4+, the same on every retry of one delivery),
    else ``X-Gitlab-Event-UUID`` (shared by every hook one request triggers), else None.
    """
    lowered: dict[str, str] = {}
    for name, value in headers.items():
        if isinstance(name, str) and isinstance(value, str):
            lowered[name.strip().lower()] = value.strip()

    event = lowered.get(EVENT_HEADER.lower(), "")
    if not event or len(event) > _MAX_EVENT or not event.isprintable():
        raise DeliveryError(
            f"the request has no usable {EVENT_HEADER} header, so it is not a GitLab webhook delivery",
            reason="bad_event")

    delivery_id = lowered.get(IDEMPOTENCY_HEADER.lower()) or lowered.get(EVENT_UUID_HEADER.lower()) or None
    if delivery_id is not None and not _DELIVERY_ID.fullmatch(delivery_id):
        raise DeliveryError(
            f"the delivery id ({IDEMPOTENCY_HEADER} / {EVENT_UUID_HEADER}) is malformed", reason="bad_delivery_id")

    level, target_id = _target(query)

    token = lowered.get(TOKEN_HEADER.lower(), "")
    if not token:
        raise WebhookUnauthorized(
            f"missing {TOKEN_HEADER} header: set a secret token on the webhook",
            reason="bad_signature", hint="the hooks devlink installs have one; re-install the webhook from devlink")
    if len(token) > _MAX_TOKEN:
        raise WebhookUnauthorized(f"the {TOKEN_HEADER} is longer than {_MAX_TOKEN} characters", reason="bad_signature")

    return DeliveryHead(event=event, delivery_id=delivery_id, signature=token, level=level, target_id=target_id)


def _target(query: Mapping[str, str]) -> tuple[Literal["repository", "account"], str]:
    project, group = _query_value(query, "project"), _query_value(query, "group")
    if (project is None) == (group is None):
        raise WebhookUnauthorized(
            "the hook URL must carry ?project=<project id> or ?group=<group id> (hooks devlink installs do)",
            reason="unknown_hook", hint="re-install the webhook from devlink, or add the query to its URL")
    value = project if project is not None else (group or "")
    if not (value.isascii() and value.isdigit() and len(value) <= _MAX_ID_DIGITS):
        raise WebhookUnauthorized(
            "the hook URL's ?project= or ?group= must be a GitLab id (digits), as in the hooks devlink installs",
            reason="unknown_hook")
    return ("repository" if project is not None else "account"), value


def _query_value(query: Mapping[str, str], name: str) -> str | None:
    value = query.get(name)
    return value.strip() if isinstance(value, str) else None


def verify(secret: str, body: bytes, head: DeliveryHead) -> bool:
    """Whether the delivery's token is our secret; constant time.  The body is not signed by GitLab.

    An empty secret is refused: a hook without a token proves nothing.
    """
    del body
    if not secret or not isinstance(head.signature, str) or not head.signature:
        return False
    return hmac.compare_digest(head.signature.encode("utf-8"), secret.encode("utf-8"))


def payload_target(payload: dict[str, object]) -> tuple[str | None, tuple[str, str] | None]:
    """(the GitLab project id the payload concerns, None); never raises, the payload is not parsed yet."""
    if not isinstance(payload, dict):
        return None, None
    return _project_id(payload), None


# --------------------------------------------------------------------------- parsing


def parse_webhook(event: str, payload: object) -> WebhookEvent:
    """Route one delivery by its ``object_kind``, checked against the ``X-Gitlab-Event`` header.

    Events devlink does not act on become ``Ignored`` whatever their shape.  A ``Test`` delivery
    from GitLab's webhook page sends the usual header with a real-looking payload and parses the same.
    """
    name = event.strip()
    header = name.lower()
    system = header == SYSTEM_HOOK.lower()
    expected = _HEADER_KINDS.get(header)
    if expected is None and not system:
        return _ignored(name, payload)
    if not isinstance(payload, dict):
        raise WebhookPayloadError(f"GitLab {name} payload must be a JSON object, got {type_name(payload)}")
    p = _Payload(name, payload)
    kind = p.kind()
    if expected is None:  # a System Hook: any kind may come, only some are ours
        parser = _PARSERS.get(kind or "")
        return _ignored(name, payload) if parser is None else parser(p)
    if kind is not None and kind != expected:
        raise p.error("object_kind", f"is {kind!r}, but the {EVENT_HEADER} header says {name!r}")
    return _PARSERS[expected](p)


class _Payload(PayloadReader):
    """A GitLab payload plus the event name, so every error message says where the bad field was."""

    host = "GitLab"

    def number(self, value: object, path: str) -> int:
        found = _number(value)
        if found is None:
            raise self.error(path, "is missing" if value is None else f"must be an integer, got {value!r}")
        return found

    def kind(self) -> str | None:
        """``object_kind``, or ``event_name`` (system hooks for pushes send only that)."""
        for key in ("object_kind", "event_name"):
            value = self.optional_text(self.data.get(key), key)
            if value:
                return value.strip()
        return None

    def repository(self) -> RemoteRepository:
        return _repository(self, self.obj(self.data.get("project"), "project"))


def _push(p: _Payload) -> Push:
    ref = p.text(p.data.get("ref"), "ref")
    repository = p.repository()
    before = p.optional_text(p.data.get("before"), "before") or ""
    after = p.optional_text(p.data.get("after"), "after") or ""
    raw_commits = p.data.get("commits")
    if raw_commits is None:
        raw_commits = []
    if not isinstance(raw_commits, list):
        raise p.error("commits", f"must be a list, got {type_name(raw_commits)}")
    commits = []
    # GitLab lists at most 20 commits (``total_commits_count`` has the real number); git fetches the rest.
    for index, raw in enumerate(raw_commits):
        commit = p.obj(raw, f"commits[{index}]")
        sha = p.text(commit.get("id"), f"commits[{index}].id")
        commits.append(PushedCommit(sha=sha, message=_str(commit.get("message")) or ""))
    return Push(
        repository=repository,
        account_login=repository.owner,
        ref=ref,
        before=before,
        after=after,
        created=is_zero_sha(before),
        deleted=is_zero_sha(after),
        forced=False,  # GitLab does not say
        commits=tuple(commits),
        pusher=_pusher(p),
        pushed=pushed_shas([*(c.sha for c in commits), p.data.get("checkout_sha")]),
    )


def _pusher(p: _Payload) -> Pusher | None:
    """Who pushed: ``user_username``, and ``user_email`` unless GitLab left it empty or redacted it (a user with a
    private e-mail address gets ``""`` or ``[REDACTED]``).

    https://docs.gitlab.com/user/project/integrations/webhook_events/#push-events
    """
    login = _str(p.data.get("user_username"))
    login = login.strip()[:200] if login and login.strip() else None
    email = usable_email(p.data.get("user_email"))
    if login is None and email is None:
        return None
    return Pusher(login=login, email=email)


def _merge_request_event(p: _Payload) -> PullRequestEvent:
    attrs = p.obj(p.data.get("object_attributes"), "object_attributes")
    repository = p.repository()
    action = (p.optional_text(attrs.get("action"), "object_attributes.action") or "").strip()
    user = p.data.get("user")
    if user is not None and not isinstance(user, dict):
        raise p.error("user", f"must be an object, got {type_name(user)}")
    username = p.optional_text(user.get("username"), "user.username") if user else None
    review = None
    review_state = _REVIEW_ACTIONS.get(action)
    if review_state is not None and username:
        review = Review(username, review_state)
    return PullRequestEvent(
        repository=repository,
        account_login=repository.owner,
        action=action,
        pull=_merge_request(p, attrs, action, user or {}, username),
        review=review,
    )


def _merge_request(p: _Payload, attrs: _Json, action: str, user: _Json, username: str | None) -> RemotePullRequest:
    number = p.number(attrs.get("iid"), "object_attributes.iid")
    external_id = _ident(attrs.get("id"))
    if external_id is None:
        value = attrs.get("id")
        raise p.error("object_attributes.id", "is missing" if value is None else f"must be an id, got {value!r}")
    # ``user`` is whoever triggered the event; it names the author only when it is the author.
    author_id, user_id = _ident(attrs.get("author_id")), _ident(user.get("id"))
    author = username if username and author_id is not None and author_id == user_id else None
    state = _merge_request_state(attrs)
    updated_at = _time(attrs.get("updated_at"))
    merged_at = _time(attrs.get("merged_at"))
    if merged_at is None and action == "merge" and state == "merged":
        merged_at = updated_at  # GitLab's hook data has no merge time; the merge is what updated it
    return RemotePullRequest(
        number=number,
        external_id=external_id,
        title=p.optional_text(attrs.get("title"), "object_attributes.title") or "",
        description=p.optional_text(attrs.get("description"), "object_attributes.description") or "",
        state=state,
        source_branch=p.text(attrs.get("source_branch"), "object_attributes.source_branch"),
        target_branch=p.text(attrs.get("target_branch"), "object_attributes.target_branch"),
        author=author,
        url=http_url(p.optional_text(attrs.get("url"), "object_attributes.url")),
        created_at=_time(attrs.get("created_at")),
        updated_at=updated_at,
        merged_at=merged_at,
        reviewers=_reviewers(p, attrs),
    )


def _merge_request_state(attrs: _Json) -> _PullState:
    """``opened`` is ``draft`` when marked so (``work_in_progress`` is the pre-14.0 name); unknown → open."""
    raw = attrs.get("state")
    state = _STATES.get(raw.strip().lower()) if isinstance(raw, str) else None
    if state is None:
        state_id = _number(attrs.get("state_id"))
        state = _STATE_IDS.get(state_id, "open") if state_id is not None else "open"
    if state == "open" and raw != "locked" and (attrs.get("draft") is True or attrs.get("work_in_progress") is True):
        return "draft"
    return state


def _reviewers(p: _Payload, attrs: _Json) -> tuple[Review, ...] | None:
    """Requested reviewers from ``reviewers``; GitLab leaves that key out when there are none.

    Absent ``reviewers`` with an empty ``object_attributes.reviewer_ids`` means none; absent both means unknown.
    """
    value = p.data.get("reviewers")
    if value is None:
        ids = attrs.get("reviewer_ids")
        return () if isinstance(ids, list) and not ids else None
    if not isinstance(value, list):
        raise p.error("reviewers", f"must be a list, got {type_name(value)}")
    found: list[Review] = []
    for index, item in enumerate(value):
        reviewer = p.obj(item, f"reviewers[{index}]")
        login = p.optional_text(reviewer.get("username"), f"reviewers[{index}].username")
        if login and all(r.login != login for r in found):
            found.append(Review(login, "requested"))
    return tuple(found)


def _ignored(event: str, payload: object) -> Ignored:
    """Keep whatever identity the delivery carries, for the delivery log, but never fail on its shape."""
    repository: RemoteRepository | None = None
    if isinstance(payload, dict) and isinstance(payload.get("project"), dict):
        with contextlib.suppress(WebhookPayloadError):
            repository = _Payload(event, payload).repository()
    return Ignored(repository=repository, account_login=repository.owner if repository else None, event=event)


_PARSERS: dict[str, Callable[[_Payload], WebhookEvent]] = {
    "push": _push,
    "tag_push": _push,
    "merge_request": _merge_request_event,
}


# --------------------------------------------------------------------------- pieces


def _repository(p: _Payload, project: _Json) -> RemoteRepository:
    external_id = _project_id(p.data)
    if external_id is None:
        value = project.get("id")
        raise p.error("project.id", "is missing" if value is None else f"must be a number, got {value!r}")
    full_name = p.text(project.get("path_with_namespace"), "project.path_with_namespace").strip("/")
    # ``project.namespace`` is the namespace's display name ("Mike", "the test"), not its path.
    owner, _, name = full_name.rpartition("/")
    if not owner or not name:
        raise p.error("project.path_with_namespace", f"must be <namespace>/<project>, got {full_name!r}")
    web_url = _url(p, project, "web_url") or _url(p, project, "homepage") or ""
    clone_url = _url(p, project, "git_http_url") or _url(p, project, "http_url")
    if not clone_url:
        clone_url = f"{web_url}.git" if web_url else ""
    return RemoteRepository(
        external_id=external_id,
        full_name=full_name,
        owner=owner,
        clone_url=clone_url,
        web_url=web_url,
        private=_private(project),
        default_branch=p.optional_text(project.get("default_branch"), "project.default_branch") or None,
    )


def _project_id(data: _Json) -> str | None:
    """``project.id``; documentation-derived payloads lack it and carry ``project_id`` (pushes, notes) or
    ``object_attributes.target_project_id`` (merge requests, whose ``project`` is the target) instead."""
    project = data.get("project")
    attrs = data.get("object_attributes")
    candidates = (
        project.get("id") if isinstance(project, dict) else None,
        data.get("project_id"),
        attrs.get("target_project_id") if isinstance(attrs, dict) else None,
    )
    for value in candidates:
        if value is not None:
            found = _number(value)
            return str(found) if found is not None else None
    return None


def _url(p: _Payload, project: _Json, key: str) -> str | None:
    """An http(s) URL, else None: a ``javascript:`` or ``file:`` URL is dropped, never stored."""
    return http_url(p.optional_text(project.get(key), f"project.{key}"))


def _private(project: _Json) -> bool:
    """Internal projects count as private (not everyone may see them); unknown visibility is private too."""
    level = _number(project.get("visibility_level"))
    if level is not None:
        return level < _PUBLIC_LEVEL
    visibility = project.get("visibility")
    if isinstance(visibility, str):
        return visibility.strip().lower() != "public"
    return True


# --------------------------------------------------------------------------- values


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _number(value: object) -> int | None:
    """A non-negative integer; JSON from some proxies turns numbers into strings, booleans are never numbers."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, str):
        text = value.strip()
        if text.isascii() and text.isdigit() and len(text) <= _MAX_ID_DIGITS:
            return int(text)
    return None


def _ident(value: object) -> str | None:
    found = _number(value)
    return None if found is None else str(found)


_SPACED_OFFSET = re.compile(r"^(.*\d)\s+([+-]\d{2}:?\d{2})$")


def _time(value: object) -> datetime | None:
    """An aware UTC time from ``2013-12-03T17:23:34Z`` or ``2013-12-03 17:23:34 UTC`` (both GitLab's);
    anything else is unknown, not an error: dates are display data."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text or len(text) > _MAX_TIME:
        return None
    # "… UTC" becomes "…+00:00"; "… +0100" loses its space
    text = _SPACED_OFFSET.sub(r"\1\2", re.sub(r"\s+UTC$", "+00:00", text, flags=re.IGNORECASE))
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
