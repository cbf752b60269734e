"""One sync of one repository: fetch the mirror, index new commits, make branch rows follow the refs.

The commit cursor is the set of branch heads indexed by the last successful
sync.  A soft sync indexes what is reachable from the current heads and not
from those; a full sync passes no exclusions and re-walks everything.  Writes
are idempotent upserts in batches of ``batch_size`` commits (a few multi-row
statements per batch, never one per commit), so a crashed sync simply runs
again from the cursor, and a sync of an unchanged repository writes nothing at
all.

The caller holds the repository's lock (see ``sync.jobs``).
"""

import gc
import itertools
import json
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from devlink.domain.issue_keys import extract_keys
from devlink.domain.remotes import is_http, parse_remote, redact, split_userinfo
from devlink.errors import GitError
from devlink.hosts.base import origin_of, same_origin
from devlink.hosts.git import GitCommit, Mirror, RemoteAccess
from devlink.runtime import Runtime
from devlink.store.engine import (
    background_checkpoints,
    insert_ignore,
    insert_tuples_ignore,
    insert_tuples_returning,
    prefers_insert_returning,
)
from devlink.store.models import Branch, Commit, IssueLink, Repository, SyncCursor, table, utcnow
from devlink.sync.host_clients import client_for, remote_of
from devlink.sync.linking import LINK_COLUMNS, count_unknown, known_keys, link_rows, link_tuples
from devlink.sync.pulls import PullSync, check_still_there, sync_host_pulls
from devlink.sync.smart_commits import SmartCommitTally, run_smart_commits
from devlink.sync.trackers import known_project_keys

__all__ = ["Progress", "SyncResult", "mirror_for", "sync_repository"]

log = logging.getLogger(__name__)

#: Called with (commits written so far, total or None) while a backfill runs.
Progress = Callable[[int, int | None], None]

COMMIT_CURSOR = "commits"
COMMIT_COLUMNS = [
    "repository_id", "sha", "author_name", "author_email", "authored_at", "author_tz",
    "committer_name", "committer_email", "committed_at", "message", "parent_count",
    "first_seen_at", "first_seen_by",
]


@dataclass(frozen=True)
class SyncResult:
    repository_id: int
    kind: str  # soft | full
    commits_seen: int = 0  # read from git in this run
    commits_new: int = 0  # not in the store before
    branches_created: int = 0
    branches_moved: int = 0
    branches_deleted: int = 0
    skipped: str | None = None  # why nothing was done, e.g. "unlinked"
    pull_requests: int = 0  # written (new or changed) from the host's API
    smart_commits: SmartCommitTally = field(default_factory=SmartCommitTally)
    #: what this run skipped or deferred, by entity type ({reason, message, at[, resumes_at]}); the sync succeeded
    entity_errors: dict[str, dict[str, str]] = field(default_factory=dict)
    retry_after: float | None = None  # seconds until deferred work may resume: the next sync comes then
    #: key mentions (commits and new branches read in this run) not linked because their project is not in the
    #: tracker, by project key, most mentioned first; empty when the tracker has no projects (every key links)
    unlinked: dict[str, int] = field(default_factory=dict)


def mirror_for(rt: Runtime, repository: Repository) -> Mirror:
    return Mirror(Path(rt.settings.mirrors_dir) / f"{repository.id}.git", _location(rt, repository))


def _location(rt: Runtime, repository: Repository) -> str:
    """The location git is given: the stored URL, with the ssh user name of a row linked by an older devlink.

    Those rows kept an ssh URL's user (``ssh://git@host/x``) apart, encrypted, like a
    secret; an ssh user name is no secret and ssh needs it in the URL.
    """
    url = repository.url
    if not (repository.url_secret and url.lower().startswith("ssh://") and "@" not in url[6:].split("/", 1)[0]):
        return url
    user, password = split_userinfo(rt.vault.decrypt(repository.url_secret))
    if password or not user:
        return url
    return f"{url[:6]}{quote(user, safe='')}@{url[6:]}"


def _remote_access(rt: Runtime, repository: Repository) -> RemoteAccess | None:
    """What git needs besides the URL: credentials (for git's credential helper only, never stored or logged)
    and, for a host account's repository, the host's CA bundle and proxy."""
    if repository.account_id is not None:  # a host account's repository: its token, as the host expects for git
        with client_for(rt, repository.account_id) as client:
            _check_git_origin(repository, client.settings.web_url)
            user, password = client.git_credentials()
            return RemoteAccess(user, password, ca_bundle=client.settings.ca_bundle, proxy=client.settings.proxy)
    if not repository.url_secret or repository.url.lower().startswith("ssh://"):  # ssh: a key, never a password
        return None
    return RemoteAccess(*split_userinfo(rt.vault.decrypt(repository.url_secret)))


def _check_git_origin(repository: Repository, web_url: str) -> None:
    """An account's token goes to git only on its host's web origin, wherever a host answer says to clone from.

    The clone URL comes from the host's answers (and signed webhooks); a host
    that named another server would otherwise be handed the token.
    """
    if not is_http(repository.url) or same_origin(repository.url, web_url):
        return
    raise GitError(
        f"{redact(repository.url)[:200]} is not on {origin_of(web_url)}, where the account's token belongs; "
        "devlink does not send the token there", reason="auth",
        hint="the host gave this clone URL; if git really is served there, link the repository by its URL instead",
    )


def _is_local(location: str) -> bool:
    """A path (and a ``file://`` URL linked before those were refused) gets a plain local clone, never partial."""
    if location.lower().startswith("file://"):
        return True
    try:
        return not parse_remote(location).is_url
    except ValueError as exc:  # a host that hands out a location git must not be given (ext::…, an option)
        raise GitError(f"{redact(location)[:200]} cannot be synced: {exc}", reason="bad_url") from None


def sync_repository(
    rt: Runtime, repository_id: int, *, full: bool, trigger: str = "soft", progress: Progress | None = None
) -> SyncResult:
    """Bring the store in line with the repository; see the module docstring for the contract."""
    kind = "full" if full else "soft"
    with rt.sessions() as session:
        repository = session.get(Repository, repository_id)
        if repository is None or not repository.linked:
            log.info("sync.skipped repository=%s reason=unlinked", repository_id)
            return SyncResult(repository_id, kind, skipped="unlinked")
        cursor = session.get(SyncCursor, (repository_id, COMMIT_CURSOR))
        old_tips: list[str] = json.loads(cursor.value) if cursor else []
        mirror = mirror_for(rt, repository)
        account_id, remote = repository.account_id, remote_of(repository)
        access = _remote_access(rt, repository)
        is_local = _is_local(repository.url)
    # only keys of existing projects link, once the tracker has projects (docs/issue-keys.md)
    known = known_project_keys(rt)
    try:
        if mirror.exists():
            mirror.fetch(access)
        else:
            mirror.clone(access, partial=not is_local)
    except GitError:
        if account_id is not None:
            check_still_there(rt, repository_id, account_id)  # a deleted repository is "gone", not a git error
        raise
    heads = mirror.branches()
    tips = sorted(set(heads.values()))
    exclude = [] if full else old_tips
    # commits first indexed by a backfill never trigger smart commits (issue 3)
    seen_by = "backfill" if full or cursor is None else ("hook" if trigger == "hook" else "soft")

    seen = new = 0
    unlinked: Counter[str] = Counter()
    if full or set(tips) != set(old_tips):
        total = mirror.count(tips, exclude) if progress else None
        if progress:
            progress(0, total)
        with _old_objects_set_aside(), background_checkpoints(rt.engine) as checkpoint:
            # a soft sync stores children before parents, so smart commits can run parents first (by id, descending)
            commits = mirror.commits(tips, exclude, topo_order=bool(exclude))
            for batch in _batched(commits, rt.settings.batch_size):
                with rt.sessions.begin() as session:
                    inserted = write_commits(session, repository_id, batch, seen_by, known, unlinked)
                    session.execute(
                        update(Repository)
                        .where(Repository.id == repository_id)
                        .values(
                            commits_indexed=Repository.commits_indexed + inserted,
                            sync_progress=Repository.sync_progress + len(batch),
                            sync_heartbeat_at=utcnow(),
                        )
                    )
                checkpoint()
                seen += len(batch)
                new += inserted
                if progress:
                    progress(seen, total)

    with rt.sessions.begin() as session:
        created, moved, deleted = write_branches(session, repository_id, heads, known, unlinked, relink=full)
        _save_cursor(session, repository_id, tips, cursor is not None)
    outcome = PullSync()
    if account_id is not None:  # pull requests come from the host's API; commits never do
        outcome = sync_host_pulls(rt, repository_id, account_id, remote, full=full, trigger=trigger, known=known)
    pulls = outcome.written
    log.info(
        "sync.done repository=%s kind=%s commits_seen=%d commits_new=%d branches=+%d ~%d -%d pulls=%d "
        "unlinked_mentions=%d",
        repository_id, kind, seen, new, created, moved, deleted, pulls, unlinked.total(),
    )
    smart = SmartCommitTally()
    try:
        smart = run_smart_commits(rt, repository_id)
    except Exception:  # smart commits never fail a sync; the next pass retries from their cursor
        log.exception("smart_commits.failed repository=%s", repository_id)
    return SyncResult(repository_id, kind, seen, new, created, moved, deleted, smart_commits=smart,
                      pull_requests=pulls, entity_errors={"pull_requests": outcome.note} if outcome.note else {},
                      retry_after=_sooner(outcome.retry_after, smart.retry_after),
                      unlinked=dict(unlinked.most_common()))


def _sooner(*waits: float | None) -> float | None:
    """The shortest of the deferred parts' waits: the next sync resumes the first that may go on."""
    given = [wait for wait in waits if wait is not None]
    return min(given) if given else None


@contextmanager
def _old_objects_set_aside() -> Iterator[None]:
    """Spare the objects alive before a backfill from the cyclic GC's full collections while it runs.

    A backfill allocates tuples by the hundred thousand, so CPython soon runs a
    full collection, which walks every object in the process (SQLAlchemy's and
    the app's): a tenth of a backfill's time, for nothing.  ``gc.freeze()`` sets
    the objects alive now aside until ``gc.unfreeze()``; everything created
    meanwhile is still collected as usual.  A process that freezes objects
    itself (a pre-forking server) is left alone, as is a second sync while one
    runs.
    """
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _batched(items: Iterable[GitCommit], size: int) -> Iterator[list[GitCommit]]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def write_commits(
    session: Session, repository_id: int, commits: list[GitCommit], seen_by: str,
    known: frozenset[str] | None = None, unlinked: Counter[str] | None = None,
) -> int:
    """Upsert ``commits`` and their issue links; return how many commits were new.

    New commits' ids come back from the insert itself (``RETURNING``); only a
    keyed commit that was already stored (a full sync) costs a lookup.  Keys
    left unlinked because their project is not in ``known`` are counted into
    ``unlinked`` by project, so the caller can say which project to create.
    """
    now = utcnow()
    rows = [
        (
            repository_id, sha, author_name[:500], author_email[:500], authored_at, author_tz,
            committer_name[:500], committer_email[:500], committed_at, message, len(parents), now, seen_by,
        )
        for (
            sha, parents, author_name, author_email, authored_at, author_tz,
            committer_name, committer_email, committed_at, message,
        ) in commits
    ]
    commits_table = table(Commit)
    if prefers_insert_returning(session):
        returned = insert_tuples_returning(
            session, commits_table, COMMIT_COLUMNS, rows, ["repository_id", "sha"], ["sha", "id"]
        )
        inserted = len(returned)
        ids: dict[str, int] = dict(returned)
    else:
        inserted = insert_tuples_ignore(session, commits_table, COMMIT_COLUMNS, rows, ["repository_id", "sha"])
        ids = {}
    keyed: list[tuple[str, tuple[str, ...]]] = []
    for commit in commits:
        if found := extract_keys(commit.message):
            keys = known_keys(found, known)
            count_unknown(found, keys, known, unlinked)
            if keys:
                keyed.append((commit.sha, keys))
    missing = [sha for sha, _ in keyed if sha not in ids]
    if missing:
        ids.update(
            session.execute(
                select(Commit.sha, Commit.id).where(Commit.repository_id == repository_id, Commit.sha.in_(missing))
            ).all()
        )
    links = link_tuples(repository_id, "commit", ((ids[sha], keys) for sha, keys in keyed))
    insert_tuples_ignore(session, table(IssueLink), LINK_COLUMNS, links, ["key", "entity_type", "entity_id"])
    return inserted


def write_branches(
    session: Session, repository_id: int, heads: dict[str, str], known: frozenset[str] | None = None,
    unlinked: Counter[str] | None = None, *, relink: bool = False,
) -> tuple[int, int, int]:
    """Make the branch rows (and their links) equal ``heads``; return (created, moved, deleted).

    A name never changes, so a soft sync links created branches only; ``relink``
    (a full sync) links every current branch again, so keys of a project created
    since a branch row was made link too.  The keys of the branches linked here
    and left unlinked for want of a project are counted into ``unlinked``.
    """
    stored = {
        name: (branch_id, sha)
        for branch_id, name, sha in session.execute(
            select(Branch.id, Branch.name, Branch.head_sha).where(Branch.repository_id == repository_id)
        )
    }
    created = heads.keys() - stored.keys()
    deleted = stored.keys() - heads.keys()
    moved = {name for name in heads.keys() & stored.keys() if heads[name] != stored[name][1]}
    now = utcnow()
    to_link: list[tuple[int, str]] = []
    if created:
        insert_ignore(
            session,
            table(Branch),
            [{"repository_id": repository_id, "name": n, "head_sha": heads[n], "updated_at": now} for n in created],
            ["repository_id", "name"],
        )
        to_link.extend((branch_id, name) for branch_id, name in session.execute(
            select(Branch.id, Branch.name).where(Branch.repository_id == repository_id, Branch.name.in_(created))
        ))
    if relink:
        to_link.extend((stored[name][0], name) for name in heads.keys() & stored.keys())
    if to_link:
        links = link_rows(repository_id, "branch", ((i, _branch_keys(name, known, unlinked)) for i, name in to_link))
        insert_ignore(session, table(IssueLink), links, ["key", "entity_type", "entity_id"])
    if moved:  # ORM bulk UPDATE by primary key: one executemany
        session.execute(update(Branch), [{"id": stored[n][0], "head_sha": heads[n], "updated_at": now} for n in moved])
    if deleted:
        gone = [stored[n][0] for n in deleted]
        session.execute(delete(IssueLink).where(IssueLink.entity_type == "branch", IssueLink.entity_id.in_(gone)))
        session.execute(delete(Branch).where(Branch.id.in_(gone)))
    return len(created), len(moved), len(deleted)


def _branch_keys(name: str, known: frozenset[str] | None, unlinked: Counter[str] | None) -> tuple[str, ...]:
    found = extract_keys(name)
    keys = known_keys(found, known)
    count_unknown(found, keys, known, unlinked)
    return keys


def _save_cursor(session: Session, repository_id: int, tips: list[str], exists: bool) -> None:
    value: dict[str, Any] = {"value": json.dumps(tips), "updated_at": utcnow()}
    if exists:
        session.execute(
            update(SyncCursor)
            .where(SyncCursor.repository_id == repository_id, SyncCursor.entity_type == COMMIT_CURSOR)
            .values(**value)
        )
    else:
        session.add(SyncCursor(repository_id=repository_id, entity_type=COMMIT_CURSOR, **value))
