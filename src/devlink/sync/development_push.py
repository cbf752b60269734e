"""Send each repository's development data to the outside tracker, as queued work that never blocks a sync.

``push_repository`` compares what the repository has linked now (branches
and pull requests with their issue keys) with what was last sent
(``DevPushItem``: a digest per entity), sends what is new or changed in
chunks the tracker's sink takes (branches and pull requests first, then
commits newest first), deletes what is gone, and tells the tracker each
touched key's totals.  Commits never change once stored, so they are
followed by a cursor instead (``SyncCursor`` ``tracker_push``: the highest
id of a commit's issue link sent; a link, because an old commit may gain a
key later), and a push of a repository with a million commits reads only
the newly linked ones.  Each chunk of branches and pull requests is recorded as
soon as it is accepted, and the cursor moves once every commit is, so a push
that dies resumes where it stopped (at worst sending some commits again,
which the tracker takes as the same).  A removed or unlinked repository
is forgotten in the tracker.  Its state (``DevPushState``: pending, sent,
failed with the reason) is shown per repository.

``updateSequenceId`` is the push's start time in milliseconds: a later push
always carries a larger one, so a replay or an out-of-order request of an
older push never overwrites newer data.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar
from urllib.parse import quote

from sqlalchemy import delete, exists, func, or_, select, update
from sqlalchemy.orm import Session

from devlink.domain.text import http_url
from devlink.errors import TrackerError
from devlink.runtime import Runtime
from devlink.store.development import commit_url
from devlink.store.engine import insert_ignore
from devlink.store.models import Branch, Commit, IssueLink, PullRequest, Repository, SyncCursor, table, utcnow
from devlink.store.people import RepositoryProject
from devlink.store.tracker import DevPushItem, DevPushState
from devlink.sync.trackers import open_sink, outside_kind
from devlink.trackers.base import DevelopmentSink, DevEntity, DevRepository, TrackerUnavailable

__all__ = ["PushResult", "push_due", "push_repository", "push_state", "request_push", "rescope"]

log = logging.getLogger(__name__)

#: the ``SyncCursor`` of the highest commit-link id whose commit the tracker has
PUSH_CURSOR = "tracker_push"


@dataclass
class PushResult:
    repository_id: int
    state: str  # sent | pending | failed | forgotten | off (no outside tracker takes development data)
    sent: int = 0
    deleted: int = 0
    message: str = ""
    unknown_keys: set[str] = field(default_factory=set)
    retry_after: float | None = None


def request_push(rt: Runtime, repository_id: int, *, resend: bool = False) -> None:
    """Mark a repository's development data as due; the queue's push task (or the minute tick) sends it.

    Nothing to do with the built-in tracker.  ``resend`` (a full sync): forget what was sent, so all of it
    goes again, for a tracker that lost it or a site restored from a backup.
    """
    if outside_kind(rt) is None:
        return
    with rt.sessions.begin() as session:
        if resend:
            session.execute(delete(DevPushItem).where(DevPushItem.repository_id == repository_id))
            session.execute(delete(SyncCursor).where(SyncCursor.repository_id == repository_id,
                                                     SyncCursor.entity_type == PUSH_CURSOR))
            session.execute(update(DevPushState).where(DevPushState.repository_id == repository_id)
                            .values(resends=DevPushState.resends + 1))  # a push under way must not undo it
        state = session.get(DevPushState, repository_id)
        name = session.scalar(select(Repository.name).where(Repository.id == repository_id)) or ""
        if state is None:
            session.add(DevPushState(repository_id=repository_id, repository_name=name[:200], state="pending",
                                     message="", sent=0, unknown_keys="[]", resends=1 if resend else 0,
                                     updated_at=utcnow()))
        elif state.state != "pending":
            state.state, state.next_attempt_at, state.updated_at = "pending", None, utcnow()


def rescope(rt: Runtime, repository_id: int) -> None:
    """The repository now serves other projects (``sync.access.set_repository_projects``): push it again.

    Branches and pull requests are compared by digest, so those whose keys
    changed are sent again and those left with no key are deleted; every
    commit still in scope is sent again (the tracker takes it as the same,
    with its new keys).  A commit left with no key in scope is not deleted
    from the tracker (docs/permissions.md).
    """
    if outside_kind(rt) is None:
        return
    with rt.sessions.begin() as session:
        session.execute(delete(SyncCursor).where(SyncCursor.repository_id == repository_id,
                                                 SyncCursor.entity_type == PUSH_CURSOR))
    request_push(rt, repository_id)


def _served(repository_id: Any, project: Any) -> Any:
    """SQL: the repository serves the project (it has no ``repository_projects`` rows, or one for it)."""
    return or_(~exists().where(RepositoryProject.repository_id == repository_id),
               exists().where(RepositoryProject.repository_id == repository_id,
                              RepositoryProject.project_key == project))


def push_due(rt: Runtime) -> list[PushResult]:
    """Push every repository whose data is due (the minute tick): pending ones whose retry time has come."""
    with rt.sessions() as session:
        due = set(session.scalars(select(DevPushState.repository_id).where(
            DevPushState.state == "pending",
            (DevPushState.next_attempt_at.is_(None)) | (DevPushState.next_attempt_at <= utcnow()))))
        linked = select(Repository.id).where(Repository.linked.is_(True))
        # removed or unlinked by whatever path: what was sent of them is forgotten in the tracker
        due |= set(session.scalars(select(DevPushItem.repository_id).distinct().where(
            DevPushItem.repository_id.not_in(linked))))
    return [push_repository(rt, repository_id) for repository_id in sorted(due)]


def push_state(rt: Runtime, repository_id: int) -> dict[str, Any] | None:
    """What the repository page and API show: state, message, entities sent, keys the tracker lacks."""
    with rt.sessions() as session:
        state = session.get(DevPushState, repository_id)
        if state is None:
            return None
        return {"state": state.state, "message": state.message, "sent": state.sent,
                "unknown_keys": json.loads(state.unknown_keys or "[]"), "updated_at": state.updated_at.isoformat()}


def push_repository(rt: Runtime, repository_id: int) -> PushResult:
    """Bring the tracker in line with the repository's development data; never raises for the tracker."""
    with open_sink(rt) as sink:
        if sink is None:
            return PushResult(repository_id, "off")
        try:
            result = _push(rt, sink, repository_id)
        except TrackerUnavailable as exc:
            result = PushResult(repository_id, "pending", message=exc.message, retry_after=exc.retry_after)
        except TrackerError as exc:
            if exc.reason == "auth":  # devlink's credential: retried once it is fixed, nothing dropped
                result = PushResult(repository_id, "pending", message=f"{exc.message}; {exc.hint or ''}".rstrip("; "),
                                    retry_after=3600)
            else:
                result = PushResult(repository_id, "failed", message=exc.message)
        except Exception as exc:  # an answer of a shape no one expected: recorded, and retried with the next sync
            log.exception("development_push.unexpected repository=%s", repository_id)
            result = PushResult(repository_id, "failed",
                                message=f"the tracker's answer could not be used ({type(exc).__name__})")
    _save_state(rt, result)
    log.info("development_push.done repository=%s state=%s sent=%d deleted=%d", repository_id, result.state,
             result.sent, result.deleted)
    return result


def _push(rt: Runtime, sink: DevelopmentSink, repository_id: int) -> PushResult:
    sequence = int(time.time() * 1000)
    with rt.sessions() as session:
        repository = session.get(Repository, repository_id)
        stored = {(i.entity_type, i.entity_id): (i.digest, tuple(json.loads(i.keys)))
                  for i in session.scalars(select(DevPushItem).where(DevPushItem.repository_id == repository_id))}
        if repository is None or not repository.linked:
            name = session.scalar(select(DevPushState.repository_name).where(
                DevPushState.repository_id == repository_id)) or str(repository_id)
            target = DevRepository(str(repository_id), name, "")
            forgotten = [DevEntity(kind, ident, keys, {}) for (kind, ident), (_, keys) in stored.items()  # type: ignore[arg-type]
                         if kind in ("branch", "pull_request")]
            sink.forget(target, forgotten, sequence)
            touched = {key for _, keys in stored.values() for key in keys}  # of commits too: their ``issue`` rows
            _clear(rt, repository_id)
            sink.summarise(_totals(session, touched), _page_url(rt))
            return PushResult(repository_id, "forgotten", deleted=len(forgotten))
        target = DevRepository(str(repository.id), repository.name,
                               http_url(repository.web_url) or f"{rt.settings.public_url}/repositories")
        resends = _resends(session, repository_id)
        cursor = session.get(SyncCursor, (repository_id, PUSH_CURSOR))
        sent_up_to = int(cursor.value) if cursor else 0
        # the cursor follows commit *links*, not commits: an old commit may gain a key later (a project created
        # since, a branch pushed again), and its link is then newer than the cursor even though the commit is not
        newest = session.scalar(select(func.max(IssueLink.id)).where(
            IssueLink.repository_id == repository_id, IssueLink.entity_type == "commit")) or 0
        desired = _desired(session, repository, _page_url(rt), links_after=sent_up_to)
    changed = [e for e in desired.values()
               if e.type == "commit" or stored.get((e.type, e.id), ("", ()))[0] != _digest(e)]
    changed.sort(key=_newest_first)
    gone = [DevEntity(kind, ident, keys, {}) for (kind, ident), (_, keys) in stored.items()  # type: ignore[arg-type]
            if (kind, ident) not in desired and kind in ("branch", "pull_request")]
    result = PushResult(repository_id, "sent")
    for start in range(0, len(changed), sink.chunk):
        chunk = changed[start:start + sink.chunk]
        result.unknown_keys |= sink.send(target, chunk, sequence)
        if not _remember(rt, repository_id, chunk, resends):
            return _superseded(repository_id)
        result.sent += len(chunk)
    if gone:
        sink.delete(target, gone, sequence)
        _forget_items(rt, repository_id, gone)
        result.deleted = len(gone)
    if newest != sent_up_to and not _save_cursor(rt, repository_id, newest, resends, exists=cursor is not None):
        return _superseded(repository_id)
    touched = {key for entity in [*changed, *gone] for key in entity.keys}
    if touched:
        with rt.sessions() as session:
            sink.summarise(_totals(session, touched), _page_url(rt))
    return result


def _newest_first(entity: DevEntity) -> tuple[int, float]:
    rank = 0 if entity.type != "commit" else 1  # branches and pull requests are few and show state: first
    return rank, -(entity.updated.timestamp() if entity.updated else 0.0)


def _digest(entity: DevEntity) -> str:
    text = json.dumps([entity.keys, entity.doc], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _keys_by_entity(session: Session, repository_id: int, entity_type: str, *,
                    links_after: int = 0) -> dict[int, tuple[str, ...]]:
    """Each entity's keys of projects the repository serves; with ``links_after``, only entities with a link
    newer than it (with all their keys)."""
    found: dict[int, list[str]] = {}
    query = select(IssueLink.entity_id, IssueLink.key).where(IssueLink.repository_id == repository_id,
                                                             IssueLink.entity_type == entity_type,
                                                             _served(IssueLink.repository_id, IssueLink.project_key))
    if links_after:
        query = query.where(IssueLink.entity_id.in_(
            select(IssueLink.entity_id).where(IssueLink.repository_id == repository_id,
                                              IssueLink.entity_type == entity_type, IssueLink.id > links_after)))
    for entity_id, key in session.execute(query.order_by(IssueLink.entity_id, IssueLink.key)):
        found.setdefault(entity_id, []).append(key)
    return {entity_id: tuple(keys) for entity_id, keys in found.items()}


def _desired(session: Session, repository: Repository, page: str, *,
             links_after: int = 0) -> dict[tuple[str, str], DevEntity]:
    """Every linked entity of the repository, as the sink takes it.

    Only http(s) URLs go to the tracker; where the host gave none (or a ``javascript:`` one, or the repository
    is a path on this server), devlink's own page of the entity's first key stands in.
    """
    web = http_url(repository.web_url)
    entities: dict[tuple[str, str], DevEntity] = {}
    commit_keys = _keys_by_entity(session, repository.id, "commit", links_after=links_after)

    def commit_doc(commit: Commit, key: str) -> dict[str, Any]:
        return {"message": commit.message, "author_name": commit.author_name, "author_email": commit.author_email,
                "authored_at": commit.authored_at, "url": commit_url(web, commit.sha) or page.format(key=key),
                "merge": commit.parent_count > 1}

    for ids in _chunks(list(commit_keys), 500):
        for commit in session.scalars(select(Commit).where(Commit.id.in_(ids))):
            keys = commit_keys[commit.id]
            entities[("commit", commit.sha)] = DevEntity("commit", commit.sha, keys, commit_doc(commit, keys[0]),
                                                         commit.authored_at)
    branch_keys = _keys_by_entity(session, repository.id, "branch")
    branches = [b for ids in _chunks(list(branch_keys), 500)
                for b in session.scalars(select(Branch).where(Branch.id.in_(ids)))]
    heads: dict[str, Commit] = {}  # each branch's last commit, whether or not this push sends it
    for shas in _chunks(sorted({b.head_sha for b in branches}), 500):
        heads.update((c.sha, c) for c in session.scalars(
            select(Commit).where(Commit.repository_id == repository.id, Commit.sha.in_(shas))))
    for branch in branches:
        keys = branch_keys[branch.id]
        found = heads.get(branch.head_sha)
        head = {"sha": branch.head_sha, **(commit_doc(found, keys[0]) if found else {})}
        url = f"{web}/tree/{quote(branch.name, safe='/')}" if web else page.format(key=branch_keys[branch.id][0])
        name = _stored_id(branch.name)
        entities[("branch", name)] = DevEntity("branch", name, branch_keys[branch.id],
                                               {"url": url, "head": head}, branch.updated_at)
    pull_keys = _keys_by_entity(session, repository.id, "pull_request")
    for ids in _chunks(list(pull_keys), 500):
        for pull in session.scalars(select(PullRequest).where(PullRequest.id.in_(ids))):
            doc = {"title": pull.title, "state": pull.state, "author": pull.author,
                   "url": http_url(pull.url) or page.format(key=pull_keys[pull.id][0]),
                   "source_branch": pull.source_branch, "target_branch": pull.target_branch,
                   "comment_count": pull.comment_count, "updated_at": pull.updated_at,
                   "reviewers": json.loads(pull.reviewers or "[]")}
            entities[("pull_request", str(pull.number))] = DevEntity(
                "pull_request", str(pull.number), pull_keys[pull.id], doc, pull.updated_at)
    return entities


def _stored_id(name: str) -> str:
    """A branch name as ``DevPushItem.entity_id`` holds it whole: past 400 characters, a prefix and its hash."""
    return name if len(name) <= 400 else f"{name[:300]}~{hashlib.sha256(name.encode()).hexdigest()}"


_T = TypeVar("_T")


def _chunks(items: list[_T], size: int) -> Iterable[list[_T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _totals(session: Session, keys: set[str]) -> dict[str, dict[str, int]]:
    """Per key, how many commits, branches and pull requests link to it across linked repositories serving it."""
    totals = {key: {"commits": 0, "branches": 0, "pull_requests": 0} for key in keys}
    names = {"commit": "commits", "branch": "branches", "pull_request": "pull_requests"}
    for batch in _chunks(sorted(keys), 500):
        rows = session.execute(
            select(IssueLink.key, IssueLink.entity_type, func.count())
            .join(Repository, Repository.id == IssueLink.repository_id)
            .where(IssueLink.key.in_(batch), Repository.linked.is_(True),
                   _served(IssueLink.repository_id, IssueLink.project_key))
            .group_by(IssueLink.key, IssueLink.entity_type))
        for key, entity_type, count in rows:
            if entity_type in names:
                totals[key][names[entity_type]] = count
    return totals


def _page_url(rt: Runtime) -> str:
    return rt.settings.public_url + "/issues/{key}"


def _resends(session: Session, repository_id: int) -> int:
    return session.scalar(select(DevPushState.resends).where(DevPushState.repository_id == repository_id)) or 0


def _superseded(repository_id: int) -> PushResult:
    """A full resend was asked while this push ran: what it recorded stays undone, the next push sends all."""
    return PushResult(repository_id, "pending", message="a full resend was asked meanwhile", retry_after=1)


def _save_cursor(rt: Runtime, repository_id: int, newest: int, resends: int, *, exists: bool) -> bool:
    with rt.sessions.begin() as session:
        if _resends(session, repository_id) != resends:
            return False
        if exists:
            session.execute(update(SyncCursor).where(SyncCursor.repository_id == repository_id,
                                                     SyncCursor.entity_type == PUSH_CURSOR)
                            .values(value=str(newest), updated_at=utcnow()))
        elif session.get(Repository, repository_id) is not None:
            session.add(SyncCursor(repository_id=repository_id, entity_type=PUSH_CURSOR, value=str(newest)))
    return True


def _remember(rt: Runtime, repository_id: int, entities: list[DevEntity], resends: int) -> bool:
    """Record what the tracker now has: branches and pull requests by digest; of commits (followed by the
    cursor) only their keys, one ``issue`` row each, so that forgetting the repository can recount them."""
    keys = sorted({key for e in entities if e.type == "commit" for key in e.keys})
    entities = [e for e in entities if e.type != "commit"]
    with rt.sessions.begin() as session:
        if _resends(session, repository_id) != resends:
            return False
        if keys:
            insert_ignore(session, table(DevPushItem), [
                {"repository_id": repository_id, "entity_type": "issue", "entity_id": key, "keys": json.dumps([key]),
                 "digest": "", "sent_at": utcnow()} for key in keys], ["repository_id", "entity_type", "entity_id"])
        _delete_items(session, repository_id, entities)
        session.add_all(DevPushItem(repository_id=repository_id, entity_type=e.type, entity_id=e.id,
                                    keys=json.dumps(list(e.keys)), digest=_digest(e), sent_at=utcnow())
                        for e in entities)
    return True


def _forget_items(rt: Runtime, repository_id: int, entities: list[DevEntity]) -> None:
    with rt.sessions.begin() as session:
        _delete_items(session, repository_id, entities)


def _delete_items(session: Session, repository_id: int, entities: list[DevEntity]) -> None:
    for kind in ("commit", "branch", "pull_request"):
        ids = [e.id for e in entities if e.type == kind]
        for start in range(0, len(ids), 500):
            session.execute(delete(DevPushItem).where(
                DevPushItem.repository_id == repository_id, DevPushItem.entity_type == kind,
                DevPushItem.entity_id.in_(ids[start:start + 500])))


def _clear(rt: Runtime, repository_id: int) -> None:
    with rt.sessions.begin() as session:
        session.execute(delete(DevPushItem).where(DevPushItem.repository_id == repository_id))
        session.execute(delete(DevPushState).where(DevPushState.repository_id == repository_id))


def _save_state(rt: Runtime, result: PushResult) -> None:
    if result.state in ("off", "forgotten"):
        return
    with rt.sessions.begin() as session:
        state = session.get(DevPushState, result.repository_id)
        name = session.scalar(select(Repository.name).where(Repository.id == result.repository_id)) or ""
        if state is None:
            state = DevPushState(repository_id=result.repository_id, repository_name=name[:200], sent=0,
                                 unknown_keys="[]")
            session.add(state)
        state.state, state.message = result.state, result.message[:2000]
        state.sent = result.sent if result.state == "sent" else state.sent or 0
        if result.unknown_keys:
            state.unknown_keys = json.dumps(sorted(result.unknown_keys)[:100])
        state.next_attempt_at = (utcnow() + timedelta(seconds=result.retry_after or 60)
                                 if result.state == "pending" else None)
        state.updated_at = utcnow()
        if name:
            state.repository_name = name[:200]
