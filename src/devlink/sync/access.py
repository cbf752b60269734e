"""Who sees what: repository scoping and the "view development tools" permission (docs/permissions.md).

Two rules, applied separately:

* **Scoping** says which repositories belong to a project.  A repository with
  no ``RepositoryProject`` rows serves every project (the default); with rows,
  only those.  It applies to everybody, admins included: the development
  document of ``OPS-1`` never shows a commit of a repository scoped to ``APP``
  (the SQL of ``store.development`` applies it).
* **Permission** says who may see development data of a project at all.
  Admins (and ``LOCAL_ADMIN``, the CLI) always may.  A member may when:

  - the built-in tracker is in use and the project grants ``view_development``
    to them or to everyone.  A key of a project the tracker does not have has
    no grant to check: only admins see it;
  - an outside tracker (Jira) is in use, the member has linked their identity
    there (a ``UserIdentity`` with provider ``tracker``), and Jira says that
    identity holds the project's development permission (``VIEW_DEV_TOOLS``).
    Jira's answer is kept ``PERMISSION_TTL`` seconds in the shared tracker
    cache; no linked identity, or Jira unreachable, means no.

Every read that lets development data leave devlink (the development API, the
issue page, smart-commit runs, repository lists) asks these functions with the
``Principal`` of the request::

    if not can_view_development(rt, principal, "APP"):
        raise Forbidden(...)
    ids = visible_repository_ids(rt, principal)   # None: every repository
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, exists, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from devlink.domain.issue_keys import project_key as project_of
from devlink.domain.issue_keys import project_key_error
from devlink.errors import Forbidden, InvalidInput, NotFound, TrackerError
from devlink.runtime import Runtime
from devlink.store.models import Repository
from devlink.store.people import RepositoryProject, UserIdentity
from devlink.store.tracker import Permission, Project, TrackerConnection
from devlink.sync.development_push import rescope
from devlink.sync.principals import Principal
from devlink.sync.repositories import find_repository
from devlink.sync.trackers import cached_answer, issue_details, known_project_keys, open_outside, remember_answer
from devlink.trackers import label_of

__all__ = [
    "DEVELOPMENT_PERMISSION",
    "NO_PERMISSION_NOTE",
    "PERMISSION_TTL",
    "Access",
    "browsable_projects",
    "can_see_repository",
    "can_view_development",
    "development_access",
    "may_sync",
    "outside_issue",
    "project_views",
    "repositories_for_project",
    "repository_projects",
    "set_repository_projects",
    "viewable_projects",
    "visible_repository",
    "visible_repository_ids",
]

log = logging.getLogger(__name__)

DEVELOPMENT_PERMISSION = "view_development"
#: seconds an outside tracker's answer to "may this person view development data here" is kept
PERMISSION_TTL = 60
#: what the issue page shows in place of the development panel (Jira's words)
NO_PERMISSION_NOTE = "You do not have permission to view development information for this project"
#: what a member without a linked identity in the outside tracker is told (``{label}``: the tracker's name)
LINK_IDENTITY_NOTE = ("link your {label} identity to see development information: an admin adds it as your "
                      "tracker identity")
_ROW = 1  # the one tracker_connections row (sync.trackers)


@dataclass(frozen=True)
class Access:
    """Whether the person may view development data of a project, and a note for the page when not."""

    allowed: bool
    note: str | None = None


_ALLOWED = Access(True)


def _outside(session: Session) -> bool:
    return session.get(TrackerConnection, _ROW) is not None


def _link_identity_note(session: Session) -> str:
    connection = session.get(TrackerConnection, _ROW)
    return LINK_IDENTITY_NOTE.format(label=label_of(connection.kind) if connection else "tracker")


def _tracker_login(session: Session, principal: Principal) -> str | None:
    if principal.user_id is None:
        return None
    return session.scalars(select(UserIdentity.login).where(UserIdentity.user_id == principal.user_id,
                                                            UserIdentity.provider == "tracker")).first()


def _builtin_projects(session: Session, principal: Principal, permission: str = DEVELOPMENT_PERMISSION) -> set[str]:
    """Keys of the built-in tracker's projects granting ``permission`` to the person or to everyone."""
    holders: list[ColumnElement[bool]] = [Permission.user_id.is_(None)]
    if principal.user_id is not None:
        holders.append(Permission.user_id == principal.user_id)
    return set(session.scalars(select(Project.key).join(Permission, Permission.project_id == Project.id)
                               .where(Permission.permission == permission, or_(*holders))))


def browsable_projects(session: Session, principal: Principal) -> set[str] | None:
    """The built-in tracker's projects whose issues the person may open (``browse``); None: every one."""
    return None if principal.admin else _builtin_projects(session, principal, "browse")


def project_views(session: Session, principal: Principal) -> list[dict[str, str]]:
    """The built-in tracker's projects, by key; a member gets those they may browse."""
    browsable = browsable_projects(session, principal)
    return [{"key": p.key, "name": p.name} for p in session.scalars(select(Project).order_by(Project.key))
            if browsable is None or p.key in browsable]


def _outside_access(rt: Runtime, login: str, project: str, permission: str = DEVELOPMENT_PERMISSION) -> Access:
    """Jira's answer for one identity, project and permission, through the shared cache (``PERMISSION_TTL``)."""
    cache_key = f"permission:{permission}:{project}:{login}"
    cached = cached_answer(rt, cache_key, PERMISSION_TTL)
    if cached is not None:
        return Access(bool(cached["allowed"]), cached.get("note"))
    try:
        with open_outside(rt, patient=False) as tracker:
            if tracker is None:  # switched back to the built-in tracker meanwhile
                return Access(False, NO_PERMISSION_NOTE)
            allowed = tracker.can_in_project(login, project, permission)
        note = None if allowed else NO_PERMISSION_NOTE
    except TrackerError as exc:  # remembered as briefly as an answer: a page must not wait on a dead site
        log.warning("access.tracker_failed reason=%s", exc.reason)
        allowed, note = False, f"{NO_PERMISSION_NOTE} (the tracker could not be asked: {exc.message})"
    remember_answer(rt, cache_key, {"allowed": allowed, "note": note})
    return Access(allowed, note)


def development_access(rt: Runtime, principal: Principal, project_key: str) -> Access:
    """Whether ``principal`` may view development data of ``project_key``, with a note for the page when not."""
    if principal.admin:
        return _ALLOWED
    with rt.sessions() as session:
        if not _outside(session):
            allowed = project_key in _builtin_projects(session, principal)
            return _ALLOWED if allowed else Access(False, NO_PERMISSION_NOTE)
        login = _tracker_login(session, principal)
        note = _link_identity_note(session)
    if login is None:
        return Access(False, f"{NO_PERMISSION_NOTE}: {note}")
    return _outside_access(rt, login, project_key)


def can_view_development(rt: Runtime, principal: Principal, project_key: str) -> bool:
    """``development_access(...).allowed``: admins always; members by the tracker's permission (module doc)."""
    return development_access(rt, principal, project_key).allowed


def viewable_projects(rt: Runtime, principal: Principal, candidates: Iterable[str] | None = None) -> set[str] | None:
    """The project keys whose development data ``principal`` may view; None: every project (an admin).

    ``candidates`` narrows what an outside tracker is asked about (each project
    is one cached question); without it, every project the tracker has.
    """
    if principal.admin:
        return None
    with rt.sessions() as session:
        if not _outside(session):
            found = _builtin_projects(session, principal)
            return found if candidates is None else found & set(candidates)
        login = _tracker_login(session, principal)
    if login is None:
        return set()
    wanted = sorted(set(candidates) if candidates is not None else known_project_keys(rt) or ())
    return {project for project in wanted if _outside_access(rt, login, project).allowed}


def _any_outside_project(rt: Runtime, principal: Principal) -> bool:
    """Whether the outside tracker lets ``principal`` view development data of some project (stops at the first)."""
    with rt.sessions() as session:
        login = _tracker_login(session, principal)
    if login is None:
        return False
    return any(_outside_access(rt, login, project).allowed for project in sorted(known_project_keys(rt) or ()))


def repositories_for_project(session: Session, project_key: str) -> list[int]:
    """Ids of the repositories serving ``project_key``: the unscoped ones plus those scoped to it."""
    scoped = exists().where(RepositoryProject.repository_id == Repository.id)
    mine = exists().where(RepositoryProject.repository_id == Repository.id,
                          RepositoryProject.project_key == project_key)
    return list(session.scalars(select(Repository.id).where(or_(~scoped, mine)).order_by(Repository.id)))


def repository_projects(session: Session, repository_id: int) -> list[str]:
    """The projects a repository is scoped to, sorted; empty: it serves every project."""
    return list(session.scalars(select(RepositoryProject.project_key)
                                .where(RepositoryProject.repository_id == repository_id)
                                .order_by(RepositoryProject.project_key)))


def visible_repository_ids(rt: Runtime, principal: Principal) -> set[int] | None:
    """Ids of the repositories ``principal`` may see; None: all of them (an admin).

    A member sees a repository that serves at least one project they may view
    development data of; an unscoped one when they may in any project.
    """
    if principal.admin:
        return None
    with rt.sessions() as session:
        scopes: dict[int, set[str]] = {}
        for repository_id, key in session.execute(select(RepositoryProject.repository_id,
                                                         RepositoryProject.project_key)):
            scopes.setdefault(repository_id, set()).add(key)
        every = set(session.scalars(select(Repository.id)))
        outside = _outside(session)
    wanted = {key for keys in scopes.values() for key in keys}
    allowed = viewable_projects(rt, principal, candidates=None if not outside else wanted)
    assert allowed is not None
    unscoped_visible = bool(allowed)
    if outside and not allowed and every - set(scopes):  # any project at all, asked only when it matters
        unscoped_visible = _any_outside_project(rt, principal)
    return {rid for rid in every if (scopes[rid] & allowed if rid in scopes else unscoped_visible)}


def can_see_repository(rt: Runtime, principal: Principal, repository_id: int) -> bool:
    visible = visible_repository_ids(rt, principal)
    return visible is None or repository_id in visible


def visible_repository(rt: Runtime, session: Session, principal: Principal, ref: str | int) -> Repository:
    """``find_repository``, except that a repository the person may not see is not found either (ids do not leak)."""
    repository = find_repository(session, ref)
    if not can_see_repository(rt, principal, repository.id):
        raise NotFound(f"no repository {str(ref)!r}", hint="see them with: devlink repo list")
    return repository


def set_repository_projects(rt: Runtime, repository_id: int | str, keys: list[str] | None) -> list[str]:
    """Scope a repository to ``keys`` (None or empty: every project); return the projects it now serves.

    Each key must be a project key (``domain.issue_keys``); with the built-in
    tracker it must also be one of its projects, and the error names those
    that are not.
    """
    wanted = sorted({key.strip() for key in keys or [] if key.strip()})
    errors = [error for error in map(project_key_error, wanted) if error]
    if errors:
        raise InvalidInput("; ".join(errors), reason="bad_project_key",
                           hint="project keys are upper-case letters or digits, starting with a letter: APP, OPS2")
    with rt.sessions.begin() as session:
        repository = find_repository(session, repository_id)
        if wanted and not _outside(session):
            known = set(session.scalars(select(Project.key).where(Project.key.in_(wanted))))
            unknown = [key for key in wanted if key not in known]
            if unknown:
                raise InvalidInput(f"not a project of the tracker: {', '.join(unknown)}", reason="unknown_project",
                                   hint="create it first: devlink tracker project KEY NAME")
        before = sorted(session.scalars(select(RepositoryProject.project_key)
                                        .where(RepositoryProject.repository_id == repository.id)))
        session.execute(delete(RepositoryProject).where(RepositoryProject.repository_id == repository.id))
        session.add_all(RepositoryProject(repository_id=repository.id, project_key=key) for key in wanted)
        repository_id = repository.id
    if before != wanted:
        rescope(rt, repository_id)  # what the outside tracker was sent follows the new scope
        log.info("repository.scoped id=%s projects=%s", repository_id, ",".join(wanted) or "*")
    return wanted


def may_sync(principal: Principal, *, full: bool) -> None:
    """A member asks for soft syncs of repositories they see; a full sync (a re-walk of everything) is an admin's."""
    if full and not principal.admin:
        raise Forbidden("only an admin may ask for a full sync; a soft sync picks up everything new",
                        reason="admin_only")


def outside_issue(rt: Runtime, principal: Principal, key: str) -> dict[str, Any] | None:
    """The outside tracker's summary of ``key`` (``sync.trackers.issue_details``) for this person.

    devlink reads Jira with its own account, which may see more than the person: a member gets it only
    where their own Jira identity may browse the project (Jira's Browse Projects; without the
    development permission they still see the issue, not the panel, as in Jira), else
    ``{"key", "tracker", "missing": True}``, the answer for an issue Jira does not have.
    """
    details = issue_details(rt, key)
    if details is None or principal.admin:
        return details
    with rt.sessions() as session:
        login = _tracker_login(session, principal)
    if login is None or not _outside_access(rt, login, project_of(key), "browse").allowed:
        return {"key": key, "tracker": details.get("tracker"), "missing": True}
    return details
