"""Pull requests of a repository: fetched from its host, stored, and linked by the keys they mention.

Keys come from the title, the description and the source branch name.  A
backfill (full) walks every pull request; a soft sync walks them by last
update, newest first, and stops at the first one already stored as it is and
not newer than the ``pulls`` cursor (the newest update a complete sync saw),
so a sync cut short picks up where it stopped.

Pull requests never fail a sync whose commits came over git: a credential
that may not read them (403) skips them, an API budget at its reserve (or
spent) defers them to its reset.  Either is noted on the repository
(``entity_errors["pull_requests"]``) until pull requests sync again.
"""

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from devlink.domain.issue_keys import extract_keys
from devlink.domain.text import storable
from devlink.domain.times import parse_iso
from devlink.hosts.base import HostError, RemotePullRequest, RemoteRepository
from devlink.hosts.protocol import HostClient
from devlink.runtime import Runtime
from devlink.store.engine import insert_ignore
from devlink.store.models import Account, IssueLink, PullRequest, Repository, SyncCursor, table, utcnow
from devlink.sync.host_clients import budget_wait, client_for, remote_of
from devlink.sync.linking import known_keys, link_rows
from devlink.sync.trackers import known_project_keys

__all__ = [
    "PullSync", "check_still_there", "pull_keys", "refresh_pull", "set_entity_error", "sync_host_pulls",
    "sync_pull_requests", "write_pull_request",
]

log = logging.getLogger(__name__)

PULL_CURSOR = "pulls"
ENTITY = "pull_requests"  # the key in ``Repository.entity_errors``


@dataclass(frozen=True)
class PullSync:
    """What one sync did with pull requests."""

    written: int = 0
    note: dict[str, str] | None = None  # why they were skipped or deferred: reason, message, at[, resumes_at]
    retry_after: float | None = None  # deferred: seconds until the API budget lets them resume


def pull_keys(pull: RemotePullRequest, known: frozenset[str] | None) -> tuple[str, ...]:
    """The keys a pull request links to, each once, in the order they appear."""
    found: dict[str, None] = {}
    for text in (pull.title, pull.description, pull.source_branch):
        found.update(dict.fromkeys(extract_keys(text)))
    return known_keys(tuple(found), known)


def sync_host_pulls(
    rt: Runtime, repository_id: int, account_id: int, remote: RemoteRepository, *, full: bool, trigger: str,
    known: frozenset[str] | None,
) -> PullSync:
    """Pull requests of an account's repository, within the account's rate-limit budget.

    At the reserve (or with the budget spent) they are deferred: noted with
    the time they resume, and ``retry_after`` tells the scheduler when to come
    back.  A 403 skips them with a note.  Other host errors are raised.
    """
    with rt.sessions() as session:
        account = session.get(Account, account_id)
        if account is None:
            return PullSync()
        wait, name = budget_wait(account, trigger), account.name
    if wait:
        return _defer(rt, repository_id, wait, f"API budget of {name} is at its reserve; pull requests wait "
                                               f"{int(wait)} s for the reset (commits still sync over git)")
    with client_for(rt, account_id) as client:
        try:
            written = sync_pull_requests(rt, repository_id, remote, client, full=full, known=known)
        except HostError as exc:
            if exc.reason == "rate_limited":
                return _defer(rt, repository_id, exc.retry_after or 60.0, exc.message)
            if exc.reason in ("not_found", "gone"):
                check_still_there(rt, repository_id, account_id)
            if exc.reason != "permission":
                raise
            # not readable with this credential: skip them, keep the repository's commits syncing, and say so
            log.warning("pulls.skipped repository=%s reason=permission message=%s", repository_id, exc.message)
            note = {"reason": "permission", "message": exc.message, "at": utcnow().isoformat()}
            set_entity_error(rt, repository_id, ENTITY, note)
            return PullSync(note=note)
    set_entity_error(rt, repository_id, ENTITY, None)
    return PullSync(written)


def _defer(rt: Runtime, repository_id: int, wait: float, message: str) -> PullSync:
    now = utcnow()
    note = {"reason": "rate_limited", "message": message, "at": now.isoformat(),
            "resumes_at": (now + timedelta(seconds=wait)).isoformat()}
    log.info("pulls.deferred repository=%s wait=%d", repository_id, wait)
    set_entity_error(rt, repository_id, ENTITY, note)
    return PullSync(note=note, retry_after=wait)


def set_entity_error(rt: Runtime, repository_id: int, entity: str, note: dict[str, str] | None) -> None:
    """Note (or with None clear) why ``entity`` was skipped or deferred on a repository; other entities stay."""
    with rt.sessions.begin() as session:
        stored = session.scalar(select(Repository.entity_errors).where(Repository.id == repository_id))
        notes: dict[str, object] = json.loads(stored) if stored else {}
        if note is None and entity not in notes:
            return
        if note is None:
            del notes[entity]
        else:
            notes[entity] = note
        session.execute(update(Repository).where(Repository.id == repository_id).values(
            entity_errors=json.dumps(notes) if notes else None))


def refresh_pull(rt: Runtime, repository_id: int, number: int) -> None:
    """Re-read one pull request from the API (reviews, comment count) after its webhook."""
    with rt.sessions() as session:
        row = session.get(Repository, repository_id)
        if row is None or row.account_id is None or not row.linked:
            return
        account = session.get(Account, row.account_id)
        if account is None or budget_wait(account, "hook"):
            return  # out of budget: the payload's view stands until the next soft sync
        account_id, remote = account.id, remote_of(row)
    known = known_project_keys(rt)
    with client_for(rt, account_id) as client:
        details = client.pull_details(remote, number)
    with rt.sessions.begin() as session:
        write_pull_request(session, repository_id, details, known)


def check_still_there(rt: Runtime, repository_id: int, account_id: int) -> None:
    """Ask the host about a repository by its id: mark it gone (and raise) if it no longer exists.

    A repository that was renamed or transferred answers under its new name;
    the row takes it, so the next sync uses the new location.
    """
    with rt.sessions() as session:
        row = session.get(Repository, repository_id)
        external_id = row.external_id if row else None
    if not external_id:
        return
    try:
        with client_for(rt, account_id) as client:
            remote = client.repository(external_id)
    except HostError as exc:
        if exc.reason not in ("not_found", "gone"):
            raise
        with rt.sessions.begin() as session:
            session.execute(update(Repository).where(Repository.id == repository_id).values(state="gone"))
        raise HostError(
            "the repository no longer exists on the host, or this credential lost access to it; marked gone",
            reason="gone",
        ) from None
    with rt.sessions.begin() as session:
        session.execute(update(Repository).where(Repository.id == repository_id).values(
            url=remote.clone_url, web_url=remote.web_url, archived=remote.archived))


def sync_pull_requests(
    rt: Runtime, repository_id: int, remote: RemoteRepository, client: HostClient, *, full: bool,
    known: frozenset[str] | None,
) -> int:
    """Store the pull requests that changed; return how many were written.

    The ``pulls`` cursor is the newest ``updated_at`` of the last sync that
    ran to the end.  A soft sync stops at the first pull request that is
    stored as it is *and* not newer than the cursor: everything after it was
    stored by a complete sync.  A sync cut short (rate limit, outage) leaves
    the cursor where it was, so the next one walks on past what it already
    stored (pull requests newer than the cursor are re-read conditionally: a
    304 costs no quota) and picks up the rest.
    """
    with rt.sessions() as session:
        query = select(PullRequest.number, PullRequest.updated_at).where(PullRequest.repository_id == repository_id)
        stored: dict[int, datetime | None] = {number: updated for number, updated in session.execute(query)}
        row = session.get(SyncCursor, (repository_id, PULL_CURSOR))
        cursor, has_cursor = (parse_iso(row.value) if row else None), row is not None
    written = 0
    newest = cursor
    since = None if full else cursor
    for pull, _page_changed in client.pulls(remote, since):
        if pull.updated_at is not None and (newest is None or pull.updated_at > newest):
            newest = pull.updated_at
        if _unchanged(stored.get(pull.number), pull.updated_at) and _unchanged(cursor, pull.updated_at):
            if not full:
                break  # sorted by last update: everything after this one was stored by a complete sync
            continue
        details = client.pull_details(remote, pull.number)
        with rt.sessions.begin() as session:
            write_pull_request(session, repository_id, details, known)
        written += 1
    if newest is not None and newest != cursor:
        _save_cursor(rt, repository_id, newest, exists=has_cursor)
    log.info("pulls.done repository=%s full=%s written=%d", repository_id, full, written)
    return written


def _save_cursor(rt: Runtime, repository_id: int, newest: datetime, *, exists: bool) -> None:
    value = newest.astimezone(UTC).isoformat()
    with rt.sessions.begin() as session:
        if exists:
            session.execute(update(SyncCursor).where(
                SyncCursor.repository_id == repository_id, SyncCursor.entity_type == PULL_CURSOR,
            ).values(value=value, updated_at=utcnow()))
        else:
            session.add(SyncCursor(repository_id=repository_id, entity_type=PULL_CURSOR, value=value))


def _unchanged(stored: datetime | None, current: datetime | None) -> bool:
    return stored is not None and current is not None and stored >= current


def write_pull_request(
    session: Session, repository_id: int, pull: RemotePullRequest, known: frozenset[str] | None
) -> int:
    """Insert or update one pull request and make its links equal its keys; return its id."""
    values: dict[str, object] = {
        "external_id": pull.external_id or None,
        "title": storable(pull.title),
        "description": storable(pull.description),
        "state": pull.state,
        "source_branch": storable(pull.source_branch),
        "target_branch": storable(pull.target_branch),
        "author": storable(pull.author) if pull.author else None,
        "url": pull.url,
        "created_at": pull.created_at,
        "updated_at": pull.updated_at,
        "merged_at": pull.merged_at,
    }
    if pull.comment_count is not None:
        values["comment_count"] = pull.comment_count
    if pull.reviewers is not None:
        values["reviewers"] = json.dumps([{"login": storable(r.login), "state": r.state} for r in pull.reviewers])
    row = session.scalars(
        select(PullRequest).where(PullRequest.repository_id == repository_id, PullRequest.number == pull.number)
    ).first()
    if row is None:
        row = PullRequest(repository_id=repository_id, number=pull.number, **values)
        session.add(row)
        session.flush()
    else:
        if row.updated_at and pull.updated_at and row.updated_at > pull.updated_at:
            return row.id  # an older view (a late webhook) never overwrites a newer one
        for name, value in values.items():
            setattr(row, name, value)
    session.execute(delete(IssueLink).where(IssueLink.entity_type == "pull_request", IssueLink.entity_id == row.id))
    links = link_rows(repository_id, "pull_request", [(row.id, pull_keys(pull, known))])
    insert_ignore(session, table(IssueLink), links, ["key", "entity_type", "entity_id"])
    return row.id
