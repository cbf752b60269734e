"""Pull requests of a repository: fetched from its host, stored, and linked by the keys they mention.

Keys come from the title, the description and the source branch name.  A
backfill (full) walks every pull request; a soft sync walks them by last
update, newest first, and stops at the first one already stored as it is.
"""

import json
import logging
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from devlink.domain.issue_keys import extract_keys
from devlink.hosts.base import RemotePullRequest
from devlink.hosts.github import GitHubClient
from devlink.runtime import Runtime
from devlink.store.engine import insert_ignore
from devlink.store.models import IssueLink, PullRequest, table
from devlink.sync.linking import known_keys, link_rows

__all__ = ["pull_keys", "sync_pull_requests", "write_pull_request"]

log = logging.getLogger(__name__)


def pull_keys(pull: RemotePullRequest, known: frozenset[str] | None) -> tuple[str, ...]:
    """The keys a pull request links to, each once, in the order they appear."""
    found: dict[str, None] = {}
    for text in (pull.title, pull.description, pull.source_branch):
        found.update(dict.fromkeys(extract_keys(text)))
    return known_keys(tuple(found), known)


def sync_pull_requests(
    rt: Runtime, repository_id: int, full_name: str, client: GitHubClient, *, full: bool,
    known: frozenset[str] | None,
) -> int:
    """Store the pull requests that changed; return how many were written."""
    with rt.sessions() as session:
        query = select(PullRequest.number, PullRequest.updated_at).where(PullRequest.repository_id == repository_id)
        stored: dict[int, datetime | None] = {number: updated for number, updated in session.execute(query)}
    written = 0
    for pull, page_changed in client.pulls(full_name):
        if not full and (not page_changed or _unchanged(stored.get(pull.number), pull.updated_at)):
            break  # sorted by last update: everything after this one is as stored
        if full and pull.number in stored and _unchanged(stored[pull.number], pull.updated_at):
            continue
        details = client.pull_details(full_name, pull.number)
        with rt.sessions.begin() as session:
            write_pull_request(session, repository_id, details, known)
        written += 1
    log.info("pulls.done repository=%s full=%s written=%d", repository_id, full, written)
    return written


def _unchanged(stored: datetime | None, current: datetime | None) -> bool:
    return stored is not None and current is not None and stored >= current


def write_pull_request(
    session: Session, repository_id: int, pull: RemotePullRequest, known: frozenset[str] | None
) -> int:
    """Insert or update one pull request and make its links equal its keys; return its id."""
    values: dict[str, object] = {
        "external_id": pull.external_id or None,
        "title": pull.title,
        "description": pull.description,
        "state": pull.state,
        "source_branch": pull.source_branch,
        "target_branch": pull.target_branch,
        "author": pull.author,
        "url": pull.url,
        "created_at": pull.created_at,
        "updated_at": pull.updated_at,
        "merged_at": pull.merged_at,
    }
    if pull.comment_count is not None:
        values["comment_count"] = pull.comment_count
    if pull.reviewers is not None:
        values["reviewers"] = json.dumps([{"login": r.login, "state": r.state} for r in pull.reviewers])
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
