"""The protocol the sync engine talks to: the few things smart commits and key linking need.

A tracker is built per unit of work (for the built-in one: around a database
session; for an outside one: around an HTTP client) and raises
``TrackerError`` with a message a user can act on; the engine records that
message on the smart-commit ledger.  An outside tracker raises
``TrackerUnavailable`` when it could not answer (down, rate limited): the
command is not that command's error, it stays pending and runs again later.

Each effect carries its ``Origin``: which commit and author it came from, and
a marker an outside tracker stores with the effect so that a retry after a
crash finds it there instead of doing it twice.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from devlink.errors import TrackerError

__all__ = [
    "DevEntity",
    "DevRepository",
    "DevelopmentSink",
    "IssueDetails",
    "Origin",
    "OutsideTracker",
    "Tracker",
    "TrackerSettings",
    "TrackerUnavailable",
]


class TrackerUnavailable(TrackerError):
    """The tracker did not answer (network, 5xx, 429): try again after ``retry_after`` seconds."""

    status = 502
    default_reason = "unavailable"

    def __init__(self, message: str, *, reason: str = "unavailable", hint: str | None = None,
                 retry_after: float = 60.0) -> None:
        super().__init__(message, reason=reason, hint=hint)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Origin:
    """Where a smart command came from; ``retry`` is set when an earlier attempt may have reached the tracker."""

    sha: str
    position: int
    author: str  # the commit's author e-mail
    commit_url: str | None = None
    retry: bool = False

    @property
    def marker(self) -> str:
        """Unique per (commit, command position); with the issue key, the ledger's identity."""
        return f"devlink:{self.sha}:{self.position}"


@dataclass(frozen=True)
class IssueDetails:
    """What the issue page shows of an outside tracker's issue."""

    key: str
    summary: str
    status: str
    assignee: str | None
    url: str


@dataclass(frozen=True)
class TrackerSettings:
    """How to reach an outside tracker; ``token`` never appears in a repr."""

    url: str
    token: str
    email: str | None = None
    ca_bundle: str | None = None
    proxy: str | None = None
    timeout: float = 30.0

    def __repr__(self) -> str:
        return f"TrackerSettings(url={self.url!r}, email={self.email!r}, token=<hidden>)"


class Tracker(Protocol):
    def project_keys(self) -> frozenset[str] | None:
        """Keys of the projects that exist, or None when the tracker cannot tell (then every key links)."""

    def users_for_email(self, email: str) -> list[str]:
        """Users an author e-mail maps to (aliases first, then addresses; case-insensitive)."""

    def can(self, username: str, issue_key: str, permission: str) -> bool:
        """Whether ``username`` holds ``permission`` (comment, log_work, transition, ...) on the issue."""

    def comment(self, issue_key: str, username: str, body: str, origin: Origin) -> None:
        """Add a comment as (or, for an outside tracker, on behalf of) ``username``."""

    def log_work(self, issue_key: str, username: str, seconds: int, started: datetime, comment: str,
                 origin: Origin) -> None:
        """Log ``seconds`` of work as ``username``, started at ``started``."""

    def transitions(self, issue_key: str) -> list[tuple[str, str]]:
        """(transition name, target status) available from the issue's current status, in workflow order."""

    def transition(self, issue_key: str, username: str, name: str, origin: Origin) -> str:
        """Move the issue along transition ``name``; return the new status."""

    def transitioned(self, issue_key: str, origin: Origin) -> str | None:
        """The status an earlier attempt of ``origin`` moved the issue to, if it did (outside trackers)."""

    def display_name(self, username: str) -> str:
        """How a user is named in a ledger message."""


class OutsideTracker(Tracker, Protocol):
    """A tracker outside devlink's database (Jira): effects are claimed, done there, then recorded."""

    #: what to give ``tracker alias`` as the user, said when a name is unknown
    user_hint: str

    def issue(self, issue_key: str) -> IssueDetails | None:
        """The issue's summary, status and assignee, or None when it does not exist."""

    def user(self, ident: str) -> str | None:
        """The display name of the user ``ident`` names in the tracker, or None when there is none."""

    def can_in_project(self, username: str, project_key: str, permission: str) -> bool:
        """Whether ``username`` holds ``permission`` in the project as a whole (``view_development``)."""

    def close(self) -> None:
        """Release the connection."""


# ---------------------------------------------------------------- development data pushed to the tracker


@dataclass(frozen=True)
class DevRepository:
    """A repository as the tracker is told about it; ``id`` is devlink's, stable for the row's life."""

    id: str
    name: str
    url: str


@dataclass(frozen=True)
class DevEntity:
    """A commit (``id`` = sha), branch (name) or pull request (number) with the issue keys it is linked to.

    ``doc`` holds plain values (see ``sync.development_push``); ``updated`` orders a backfill newest first.
    """

    type: Literal["commit", "branch", "pull_request"]
    id: str
    keys: tuple[str, ...]
    doc: dict[str, Any] = field(hash=False, compare=False)
    updated: datetime | None = None


class DevelopmentSink(Protocol):
    """Where development data goes in an outside tracker: Jira Cloud's devinfo API, Data Center's remote links.

    Every call is idempotent: the same entity sent twice, or an older
    ``sequence`` after a newer one, changes nothing.  Raises ``TrackerError``
    (``TrackerUnavailable`` to try again later).
    """

    #: the most entities one ``send`` takes; the caller chunks
    chunk: int

    def send(self, repository: DevRepository, entities: Sequence[DevEntity], sequence: int) -> set[str]:
        """Create or update ``entities``; return the issue keys the tracker said it does not have."""

    def delete(self, repository: DevRepository, entities: Sequence[DevEntity], sequence: int) -> None:
        """Remove entities that are gone (a deleted branch, a removed pull request, an unlinked commit)."""

    def forget(self, repository: DevRepository, entities: Sequence[DevEntity], sequence: int) -> None:
        """Remove everything of a repository that is no longer linked (``entities``: what was sent of it)."""

    def summarise(self, counts: dict[str, dict[str, int]], page_url: str | None) -> None:
        """Per issue key, its totals across repositories (``commits``, ``branches``, ``pull_requests``)."""

    def close(self) -> None: ...
