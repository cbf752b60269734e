"""GitHub webhook deliveries turned into the host-neutral events of ``devlink.hosts.base``.

A delivery's headers (``read_headers``) name the hook that sent it, so the receiver can find
the secret and check the body with ``verify_signature`` before parsing it; the parsed JSON is
then handed to ``parse_webhook`` with the ``X-GitHub-Event`` header.  Parsing is deliberately lenient:
GitHub's payloads differ between api.github.com, GitHub Enterprise Server releases and the
years a hook was created (``owner.name`` instead of ``owner.login``, epoch seconds instead
of ISO 8601, missing ``merged`` in review payloads, …).  Only what the sync engine cannot do
without raises ``WebhookPayloadError``; events devlink does not act on never raise.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from devlink.domain.refs import is_zero_sha
from devlink.errors import DeliveryError
from devlink.hosts.base import (
    Ignored,
    Ping,
    PullRequestEvent,
    Push,
    PushedCommit,
    Pusher,
    RefChange,
    RemotePullRequest,
    RemoteRepository,
    RepositoryEvent,
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
    "DELIVERY_HEADER", "EVENT_HEADER", "HOOK_ID_HEADER", "SIGNATURE_HEADER", "TARGET_ID_HEADER", "TARGET_TYPE_HEADER",
    "DeliveryHeaders", "HookScope", "parse_webhook", "read_delivery", "read_headers", "sign", "verify_signature",
]

EVENT_HEADER = "X-GitHub-Event"
DELIVERY_HEADER = "X-GitHub-Delivery"
SIGNATURE_HEADER = "X-Hub-Signature-256"
HOOK_ID_HEADER = "X-GitHub-Hook-ID"
TARGET_TYPE_HEADER = "X-GitHub-Hook-Installation-Target-Type"
TARGET_ID_HEADER = "X-GitHub-Hook-Installation-Target-ID"

#: Where a hook was created: on a repository, on an organisation, or a GitHub App's own webhook.
HookScope = Literal["repository", "organization", "app"]
# GitHub sends ``integration`` for an App's webhook (the old name of Apps); its docs also list ``app``.
_TARGET_TYPES: dict[str, HookScope] = {
    "repository": "repository", "organization": "organization", "integration": "app", "app": "app"}

_SCHEME = "sha256"
_HEX = frozenset("0123456789abcdef")

_Json = dict[str, object]
_ReviewState = Literal["approved", "changes_requested", "commented", "dismissed"]
_REVIEW_STATES: dict[str, _ReviewState] = {
    "approved": "approved",
    "changes_requested": "changes_requested",
    "commented": "commented",
    "dismissed": "dismissed",
}


# --------------------------------------------------------------------------- headers and signatures


@dataclass(frozen=True)
class DeliveryHeaders:
    """What a delivery's headers say, as sent (stripped; None when absent or malformed).

    ``hook_id`` and ``target_id`` are GitHub's numeric ids: the hook, and the repository,
    organisation or App it was created on (``scope``).
    """

    event: str | None
    delivery_id: str | None
    signature: str | None
    hook_id: str | None
    scope: HookScope | None
    target_id: str | None


def read_headers(headers: Mapping[str, str]) -> DeliveryHeaders:
    """The GitHub headers of one request (any letter case), for finding the secret before the body is read."""
    lowered = {name.lower(): value.strip() for name, value in headers.items()}

    def get(name: str) -> str | None:
        return lowered.get(name.lower()) or None

    def number(name: str) -> str | None:
        value = get(name)
        return value if value is not None and value.isascii() and value.isdigit() and len(value) <= 20 else None

    target_type = (get(TARGET_TYPE_HEADER) or "").lower()
    return DeliveryHeaders(
        event=get(EVENT_HEADER), delivery_id=get(DELIVERY_HEADER), signature=get(SIGNATURE_HEADER),
        hook_id=number(HOOK_ID_HEADER), scope=_TARGET_TYPES.get(target_type), target_id=number(TARGET_ID_HEADER),
    )


_DELIVERY_ID = re.compile(r"^[A-Za-z0-9._:-]{1,200}$")  # GitHub's are GUIDs, globally unique: stored as sent
_HOOK_HEADERS = f"{HOOK_ID_HEADER}, {TARGET_TYPE_HEADER} and {TARGET_ID_HEADER}"
_LEVELS: dict[HookScope, Literal["repository", "account", "app"]] = {
    "repository": "repository", "organization": "account", "app": "app"}


def read_delivery(headers: Mapping[str, str]) -> DeliveryHead:
    """A delivery's headers checked, before its body is read.

    400 for a missing event or delivery id; 401 (``unknown_hook``) without the hook headers;
    401 (``bad_signature``) without a signature.
    """
    sent = read_headers(headers)
    if not sent.event:
        raise DeliveryError(f"missing {EVENT_HEADER} header", reason="bad_event")
    if not sent.delivery_id or not _DELIVERY_ID.match(sent.delivery_id):
        raise DeliveryError(f"missing or malformed {DELIVERY_HEADER} header", reason="bad_delivery_id")
    if not (sent.hook_id and sent.scope and sent.target_id):
        raise WebhookUnauthorized(f"missing or malformed webhook headers: GitHub sends {_HOOK_HEADERS} with every "
                                  "delivery", reason="unknown_hook")
    if not sent.signature:
        raise WebhookUnauthorized(f"missing {SIGNATURE_HEADER} header: set a secret on the webhook")
    return DeliveryHead(event=sent.event, delivery_id=sent.delivery_id, signature=sent.signature,
                        level=_LEVELS[sent.scope], target_id=sent.target_id, hook_id=sent.hook_id)


def sign(secret: bytes, body: bytes) -> str:
    """The ``X-Hub-Signature-256`` value GitHub would send, so tests and benchmarks can forge real deliveries."""
    return f"{_SCHEME}={hmac.new(secret, body, hashlib.sha256).hexdigest()}"


def verify_signature(secret: bytes, body: bytes, header: str | None) -> bool:
    """Whether the delivery was signed with our secret; never raises, because the header is attacker-controlled.

    An empty secret is refused: anyone can compute an HMAC with an empty key, so it proves nothing.
    Only ``sha256=`` is accepted; the legacy SHA-1 ``X-Hub-Signature`` is not a substitute.
    """
    if not secret or not isinstance(header, str):
        return False
    scheme, sep, digest = header.strip().partition("=")
    digest = digest.strip().lower()
    if not sep or scheme.strip().lower() != _SCHEME or len(digest) != 64 or not _HEX.issuperset(digest):
        return False
    expected = hmac.new(secret, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, digest)


# --------------------------------------------------------------------------- parsing


def parse_webhook(event: str, payload: object) -> WebhookEvent:
    """Route one delivery by its ``X-GitHub-Event`` header; unknown events become ``Ignored`` rather than errors.

    GitHub adds event types over time and an installation may subscribe to all of them, so an
    event we do not know is normal traffic, not a bad request.
    """
    name = event.strip()
    parser = _PARSERS.get(name)
    if parser is None:
        return _ignored(name, payload)
    if not isinstance(payload, dict):
        raise WebhookPayloadError(f"GitHub {name} payload must be a JSON object, got {type_name(payload)}")
    return parser(_Payload(name, payload))


class _Payload(PayloadReader):
    """A GitHub payload plus the event name, so every error message says where the bad field was."""

    host = "GitHub"

    def ident(self, value: object, path: str) -> str:
        found = _ident(value)
        if found is None:
            problem = "is missing" if value is None else f"must be a number or string, got {value!r}"
            raise self.error(path, problem)
        return found

    def repository(self) -> RemoteRepository:
        return _repository(self, self.obj(self.data.get("repository"), "repository"))

    def optional_repository(self) -> RemoteRepository | None:
        return None if self.data.get("repository") is None else self.repository()

    def account_login(self, repository: RemoteRepository | None) -> str | None:
        return _account_login(self.data, repository)


def _ping(p: _Payload) -> Ping:
    repository = p.optional_repository()
    hook_id = _ident(p.data.get("hook_id"))
    if hook_id is None:
        hook = p.data.get("hook")
        hook_id = _ident(hook.get("id")) if isinstance(hook, dict) else None
    return Ping(repository=repository, account_login=p.account_login(repository), hook_id=hook_id)


def _push(p: _Payload) -> Push:
    ref = p.text(p.data.get("ref"), "ref")
    repository = p.repository()
    before = _str(p.data.get("before")) or ""
    after = _str(p.data.get("after")) or ""
    # Old deliveries may lack the flags; the zero ids say the same thing.
    created = _flag(p.data.get("created"), default=is_zero_sha(before))
    deleted = _flag(p.data.get("deleted"), default=is_zero_sha(after))
    raw_commits = p.data.get("commits")
    if raw_commits is None:
        raw_commits = []
    if not isinstance(raw_commits, list):
        raise p.error("commits", f"must be a list, got {type_name(raw_commits)}")
    commits = []
    for index, raw in enumerate(raw_commits):
        commit = p.obj(raw, f"commits[{index}]")
        sha = p.text(commit.get("id"), f"commits[{index}].id")
        commits.append(PushedCommit(sha=sha, message=_str(commit.get("message")) or ""))
    head = p.data.get("head_commit")
    head_id = head.get("id") if isinstance(head, dict) else None
    return Push(
        repository=repository,
        account_login=p.account_login(repository),
        ref=ref,
        before=before,
        after=after,
        created=created,
        deleted=deleted,
        forced=_flag(p.data.get("forced"), default=False),
        commits=tuple(commits),
        pusher=_pusher(p.data),
        pushed=pushed_shas([*(c.sha for c in commits), head_id]),
    )


def _pusher(data: _Json) -> Pusher | None:
    """Who pushed: ``sender.login`` (the account that authenticated), else ``pusher.name`` (the same login on
    github.com; a deploy key's push has no person); the e-mail from ``pusher.email`` when it is one.

    https://docs.github.com/webhooks/webhook-events-and-payloads#push
    """
    pusher = data.get("pusher")
    sender = data.get("sender")
    login = _str(sender.get("login")) if isinstance(sender, dict) else None
    email = None
    if isinstance(pusher, dict):
        login = login or _str(pusher.get("name"))
        email = usable_email(pusher.get("email"))
    login = login.strip()[:200] if login and login.strip() else None
    if login is None and email is None:
        return None
    return Pusher(login=login, email=email)


def _ref_change(p: _Payload) -> RefChange:
    ref_type = p.text(p.data.get("ref_type"), "ref_type")
    ref = p.text(p.data.get("ref"), "ref")
    repository = p.repository()
    return RefChange(
        repository=repository,
        account_login=p.account_login(repository),
        ref_type=ref_type,
        ref=ref,
        deleted=p.event == "delete",
    )


def _pull_request_event(p: _Payload) -> PullRequestEvent:
    pull = _pull_request(p, p.obj(p.data.get("pull_request"), "pull_request"))
    repository = p.repository()
    review = None
    if p.event == "pull_request_review":
        review = _review(p, p.obj(p.data.get("review"), "review"))
    return PullRequestEvent(
        repository=repository,
        account_login=p.account_login(repository),
        action=_str(p.data.get("action")) or "",
        pull=pull,
        review=review,
    )


def _repository_event(p: _Payload) -> RepositoryEvent:
    repository = p.repository()
    action = _str(p.data.get("action")) or ""
    return RepositoryEvent(
        repository=repository,
        account_login=p.account_login(repository),
        action=action,
        old_full_name=_old_full_name(p.data, action, repository),
    )


def _ignored(event: str, payload: object) -> Ignored:
    """Keep whatever identity the delivery carries, for the delivery log, but never fail on its shape."""
    repository: RemoteRepository | None = None
    account: str | None = None
    if isinstance(payload, dict):
        # ``installation`` and org-level events have no repository, and odd shapes are fine here.
        with contextlib.suppress(WebhookPayloadError):
            repository = _Payload(event, payload).optional_repository()
        account = _account_login(payload, repository)
    return Ignored(repository=repository, account_login=account, event=event)


_PARSERS = {
    "ping": _ping,
    "push": _push,
    "create": _ref_change,
    "delete": _ref_change,
    "pull_request": _pull_request_event,
    "pull_request_review": _pull_request_event,
    "repository": _repository_event,
}


# --------------------------------------------------------------------------- pieces


def _repository(p: _Payload, repo: _Json) -> RemoteRepository:
    external_id = p.ident(repo.get("id"), "repository.id")
    owner_obj = repo.get("owner")
    # Push payloads carry ``owner.name`` (and today ``owner.login`` too); older GHES ones only ``name``.
    owner = _login(owner_obj) or (_str(owner_obj.get("name")) if isinstance(owner_obj, dict) else None)
    name = _str(repo.get("name"))
    full_name = _str(repo.get("full_name"))
    if not full_name:
        if not owner or not name:
            raise p.error("repository.full_name")
        full_name = f"{owner}/{name}"
    if not owner:
        owner = full_name.partition("/")[0]
    web_url = _str(repo.get("html_url")) or ""
    # Trimmed payloads (seen in captured review deliveries) omit clone_url; GitHub's is always html_url + ".git".
    clone_url = _str(repo.get("clone_url")) or (f"{web_url}.git" if web_url else "")
    private = repo.get("private")
    if not isinstance(private, bool):
        private = _str(repo.get("visibility")) in ("private", "internal")
    return RemoteRepository(
        external_id=external_id,
        full_name=full_name,
        owner=owner,
        clone_url=clone_url,
        web_url=web_url,
        private=private,
        archived=repo.get("archived") is True,
        default_branch=_str(repo.get("default_branch")) or _str(repo.get("master_branch")) or None,
    )


def _account_login(data: _Json, repository: RemoteRepository | None) -> str | None:
    """The account a delivery belongs to: the repository's owner, else the organisation or installation account."""
    if repository is not None:
        return repository.owner
    installation = data.get("installation")
    return _login(data.get("organization")) or (
        _login(installation.get("account")) if isinstance(installation, dict) else None
    )


def _pull_request(p: _Payload, pr: _Json) -> RemotePullRequest:
    number = _number(pr.get("number"))
    if number is None:
        problem = "is missing" if pr.get("number") is None else f"must be an integer, got {pr.get('number')!r}"
        raise p.error("pull_request.number", problem)
    external_id = p.ident(pr.get("id"), "pull_request.id")
    head = p.obj(pr.get("head"), "pull_request.head")
    base = p.obj(pr.get("base"), "pull_request.base")
    comments, review_comments = _number(pr.get("comments")), _number(pr.get("review_comments"))
    return RemotePullRequest(
        number=number,
        external_id=external_id,
        title=_str(pr.get("title")) or "",
        description=_str(pr.get("body")) or "",
        state=_pull_state(pr),
        source_branch=p.text(head.get("ref"), "pull_request.head.ref"),
        target_branch=p.text(base.get("ref"), "pull_request.base.ref"),
        author=_login(pr.get("user")),
        url=_str(pr.get("html_url")) or None,
        created_at=_time(pr.get("created_at")),
        updated_at=_time(pr.get("updated_at")),
        merged_at=_time(pr.get("merged_at")),
        comment_count=None if comments is None or review_comments is None else comments + review_comments,
        reviewers=_requested_reviewers(pr),
    )


def _pull_state(pr: _Json) -> Literal["open", "draft", "merged", "closed"]:
    """Merged wins over closed (GitHub reports a merged PR as ``state: closed``); review payloads lack ``merged``."""
    if pr.get("merged") is True or pr.get("merged_at"):
        return "merged"
    if pr.get("state") == "closed":
        return "closed"
    if pr.get("draft") is True:
        return "draft"
    return "open"


def _requested_reviewers(pr: _Json) -> tuple[Review, ...] | None:
    """Pending review requests; teams are skipped because a panel shows people, and teams have no login."""
    value = pr.get("requested_reviewers")
    if not isinstance(value, list):
        return None
    return tuple(Review(login, "requested") for login in (_login(item) for item in value) if login)


def _review(p: _Payload, review: _Json) -> Review | None:
    """The submitted review; a state we do not model (e.g. ``pending``) gives None rather than a wrong label."""
    login = p.text(_login(review.get("user")), "review.user.login")
    state = _REVIEW_STATES.get((_str(review.get("state")) or "").lower())
    return Review(login, state) if state else None


def _old_full_name(data: _Json, action: str, repository: RemoteRepository) -> str | None:
    """The name the repository had before, so links stored under it can be moved rather than lost."""
    changes = data.get("changes")
    if not isinstance(changes, dict):
        return None
    current_name = repository.full_name.partition("/")[2]
    if action == "renamed":
        old_name = _str(_dig(changes, "repository", "name", "from"))
        return f"{repository.owner}/{old_name}" if old_name else None
    if action == "transferred":
        previous = _dig(changes, "owner", "from")
        if not isinstance(previous, dict):
            return None
        old_owner = _login(previous.get("user")) or _login(previous.get("organization"))
        return f"{old_owner}/{current_name}" if old_owner and current_name else None
    return None


# --------------------------------------------------------------------------- values


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _login(value: object) -> str | None:
    return (_str(value.get("login")) or None) if isinstance(value, dict) else None


def _number(value: object) -> int | None:
    """An integer field; JSON from some proxies turns numbers into strings, booleans are never numbers."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _ident(value: object) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _flag(value: object, *, default: bool) -> bool:
    return value if isinstance(value, bool) else default


def _dig(data: _Json, *keys: str) -> object:
    value: object = data
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _time(value: object) -> datetime | None:
    """An aware UTC time from ISO 8601 (``…Z`` or an offset) or epoch seconds; anything else is unknown, not an error.

    Dates are display data here, so one odd timestamp must not cost the whole delivery.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if text.isdigit():
            value = int(text)
        else:
            try:
                parsed = datetime.fromisoformat(text)
            except ValueError:
                return None
            return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    if isinstance(value, int | float):
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    return None
