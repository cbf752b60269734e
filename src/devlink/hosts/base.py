"""What every host module hands the sync engine: plain values, never store rows.

A host module (``github.py``, later ``gitlab.py`` …) turns a host's API answers
and webhook payloads into these types, and raises ``HostError`` with one of the
reason codes below.  The engine decides what to write; hosts never touch the store.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar, Literal
from urllib.parse import urlsplit

from devlink.errors import DeliveryError, DevlinkError

__all__ = [
    "MAX_PUSHED_SHAS",
    "REASONS",
    "HostError",
    "Ignored",
    "Ping",
    "PullRequestEvent",
    "Push",
    "PushedCommit",
    "Pusher",
    "RefChange",
    "RemoteAccount",
    "RemotePullRequest",
    "RemoteRepository",
    "RepositoryEvent",
    "Review",
    "WebhookEvent",
    "WebhookPayloadError",
    "WebhookUnauthorized",
    "origin_of",
    "pushed_shas",
    "same_origin",
    "usable_email",
]

# Why a host call failed; shown per repository and per account, and used to decide retries.
REASONS = ("auth", "permission", "not_found", "gone", "rate_limited", "network", "tls", "server", "invalid")


class HostError(DevlinkError):
    """A host refused or could not answer.  ``retry_after`` (seconds) is set for rate limits and outages."""

    default_reason = "server"

    def __init__(
        self, message: str, *, reason: str = "server", hint: str | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, reason=reason, hint=hint)
        self.retry_after = retry_after
        # what a person linking an account can fix is 422; the host failing is 502; a spent budget is 429
        self.status = {"rate_limited": 429, "network": 502, "server": 502}.get(reason, 422)

    @property
    def retryable(self) -> bool:
        """Outages and rate limits pass; a bad credential or a missing repository does not."""
        return self.reason in ("rate_limited", "network", "server")


_DEFAULT_PORTS = {"http": 80, "https": 443}


def same_origin(url: str, other: str) -> bool:
    """Whether two URLs name one origin, for deciding where a credential may go.

    ASCII case and an explicit default port make no difference; anything else
    does, and fails closed: user info, non-ASCII host names (Python's IDNA 2003
    maps "ß" to "ss", git's libidn2 does not), a URL Python cannot split.
    """
    try:
        key = _origin_key(url)
        return key is not None and key == _origin_key(other)
    except ValueError:
        return False


def _origin_key(url: str) -> tuple[str, str, int | None] | None:
    parts = urlsplit(url)
    if "@" in parts.netloc or not parts.hostname or not parts.netloc.isascii():
        return None
    scheme = parts.scheme.lower()
    return scheme, parts.hostname, parts.port or _DEFAULT_PORTS.get(scheme)


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of a URL, in lower case: where a credential may be sent (as migration 0004 wrote it)."""
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


class WebhookUnauthorized(DeliveryError):
    """A delivery devlink cannot trust: no hook it installed, or not made with that hook's secret (401)."""

    status = 401
    default_reason = "bad_signature"


class WebhookPayloadError(DevlinkError):
    """A webhook body that is JSON but not a payload we can act on (400, with the reason)."""

    status = 400
    default_reason = "bad_payload"


@dataclass(frozen=True)
class RemoteAccount:
    """A user, organisation, group or workspace as the host knows it (``login``: its full path on the host)."""

    login: str
    kind: Literal["user", "organization", "group", "workspace"]
    external_id: str
    web_url: str | None = None


@dataclass(frozen=True)
class RemoteRepository:
    """One repository as listed by the host; ``external_id`` survives renames and transfers."""

    external_id: str
    full_name: str  # the full path on the host, any depth: owner/name, group/sub/name
    owner: str
    clone_url: str  # https, without credentials
    web_url: str
    private: bool = False
    archived: bool = False
    default_branch: str | None = None


@dataclass(frozen=True)
class Review:
    """A reviewer and the state that counts: their latest approval, change request or comment."""

    login: str
    state: Literal["approved", "changes_requested", "commented", "requested", "dismissed"]


@dataclass(frozen=True)
class RemotePullRequest:
    """A pull request with everything the development panel shows."""

    number: int
    external_id: str
    title: str
    description: str
    state: Literal["open", "draft", "merged", "closed"]
    source_branch: str
    target_branch: str
    author: str | None
    url: str | None
    created_at: datetime | None
    updated_at: datetime | None
    merged_at: datetime | None = None
    comment_count: int | None = None  # None: this answer did not say (list pages do not)
    reviewers: tuple[Review, ...] | None = None  # None: not known from this answer


@dataclass(frozen=True)
class PushedCommit:
    sha: str
    message: str


@dataclass(frozen=True)
class Pusher:
    """Who the host says made a push: their login on the host, and their e-mail when the host gives a usable one."""

    login: str | None
    email: str | None = None


#: The most pushed commit ids one push event carries past ``hosts/``: hosts list at most 20, but a payload is a
#: stranger's until proven otherwise, and a signed one can still be hostile.
MAX_PUSHED_SHAS = 2000
_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


def pushed_shas(candidates: Iterable[object]) -> tuple[str, ...]:
    """The commit ids among ``candidates`` (SHA-1 or SHA-256, hex), lower-cased, in order, once each, capped.

    Anything else (not a string, not hex, the zero id of a deleted ref) is left out, not an error: the
    ids only say who pushed what, and git remains the source of the commits themselves.
    """
    found: dict[str, None] = {}
    for value in candidates:
        if len(found) >= MAX_PUSHED_SHAS:
            break
        if isinstance(value, str) and _SHA.fullmatch(value.lower()) and value.strip("0"):
            found[value.lower()] = None
    return tuple(found)


def usable_email(value: object) -> str | None:
    """An e-mail address a host sent, or None when it sent none, an empty one or a placeholder (``[REDACTED]``)."""
    if not isinstance(value, str):
        return None
    address = value.strip()
    if not address or len(address) > 320 or "@" not in address or any(c.isspace() for c in address) \
            or address.startswith("[") or address.lower() == "redacted":
        return None
    return address


@dataclass(frozen=True)
class WebhookEvent:
    """Base of every parsed delivery: which repository (or account) it concerns."""

    kind: ClassVar[str] = "event"
    repository: RemoteRepository | None
    account_login: str | None  # owner of the repository, or the organisation of an org-level event


@dataclass(frozen=True)
class Ping(WebhookEvent):
    kind: ClassVar[str] = "ping"
    hook_id: str | None = None


@dataclass(frozen=True)
class Push(WebhookEvent):
    kind: ClassVar[str] = "push"
    ref: str = ""
    before: str = ""
    after: str = ""
    created: bool = False
    deleted: bool = False
    forced: bool = False
    commits: tuple[PushedCommit, ...] = field(default=())
    pusher: Pusher | None = None  # None: the payload does not say who pushed
    #: the ids of the commits this push brought (its commit list and head), valid hex only, at most
    #: ``MAX_PUSHED_SHAS``: what the engine records as pushed by ``pusher``
    pushed: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class RefChange(WebhookEvent):
    """``create`` / ``delete`` of a branch or tag."""

    kind: ClassVar[str] = "ref"
    ref_type: str = "branch"  # branch | tag
    ref: str = ""  # short name, as GitHub sends it
    deleted: bool = False


@dataclass(frozen=True)
class PullRequestEvent(WebhookEvent):
    """``pull_request`` and ``pull_request_review``: the pull request as the payload shows it."""

    kind: ClassVar[str] = "pull_request"
    action: str = ""
    pull: RemotePullRequest | None = None
    review: Review | None = None  # set for pull_request_review


@dataclass(frozen=True)
class RepositoryEvent(WebhookEvent):
    """``repository``: created, deleted, renamed, transferred, archived, … (``old_full_name`` on rename)."""

    kind: ClassVar[str] = "repository"
    action: str = ""
    old_full_name: str | None = None


@dataclass(frozen=True)
class Ignored(WebhookEvent):
    """An event devlink does not act on; recorded and answered, nothing else."""

    kind: ClassVar[str] = "ignored"
    event: str = ""
