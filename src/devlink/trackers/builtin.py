"""The built-in tracker: devlink's embedded default, stored in devlink's own database.

``BuiltinTracker`` implements ``trackers.base.Tracker`` around one session, so
a smart command's effect and its ledger row commit (or roll back) together.
The functions below it create projects, users and issues one at a time, load
them in bulk from a TOML or JSON file (idempotently: re-importing changes
nothing), and render an issue for the API and the page.

The import format is documented with an example in docs/tracker.md.
"""

import json
import tomllib
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import delete, func, or_, select, union
from sqlalchemy.orm import Session

from devlink.domain.issue_keys import (
    MAX_KEY_LENGTH,
    MAX_PROJECT_KEY_LENGTH,
    is_key,
    project_key,
    project_key_error,
)
from devlink.errors import Conflict, InvalidInput, NotFound, TrackerError
from devlink.store.models import utcnow
from devlink.store.tracker import (
    PERMISSIONS,
    Permission,
    Project,
    StatusChange,
    TrackerComment,
    TrackerIssue,
    TrackerUser,
    UserAlias,
    UserEmail,
    Workflow,
    WorkflowStatus,
    WorkflowTransition,
    Worklog,
)
from devlink.trackers.base import Origin

__all__ = [
    "DEFAULT_WORKFLOW",
    "ISSUE_LISTS",
    "ISSUE_PAGE_SIZE",
    "MAX_ISSUE_PAGE_SIZE",
    "BuiltinTracker",
    "add_alias",
    "create_issue",
    "create_project",
    "create_user",
    "delete_project",
    "import_data",
    "issue_view",
    "load_file",
]

#: The workflow every project gets unless it names its own.
DEFAULT_WORKFLOW: dict[str, Any] = {
    "name": "Default",
    "statuses": ["To Do", "In Progress", "In Review", "Done"],
    "transitions": [
        {"name": "Start Progress", "from": ["To Do"], "to": "In Progress"},
        {"name": "Stop Progress", "from": ["In Progress"], "to": "To Do"},
        {"name": "Send To Review", "from": ["In Progress"], "to": "In Review"},
        {"name": "Resolve", "from": ["In Progress", "In Review"], "to": "Done"},
        {"name": "Reopen", "from": ["Done"], "to": "To Do"},
    ],
}


class BuiltinTracker:
    """``Tracker`` over devlink's database; every method works inside the caller's session.

    An issue and a user id, once read, are kept for the tracker's life (one
    unit of work, one transaction): a smart command asks for them three times.
    """

    def __init__(self, session: Session) -> None:
        self.session = session
        self._issues: dict[str, TrackerIssue] = {}
        self._user_ids: dict[str, int] = {}

    def project_keys(self) -> frozenset[str] | None:
        keys = frozenset(self.session.scalars(select(Project.key)))
        return keys or None  # no projects yet: the tracker knows nothing, every key links

    def users_for_email(self, email: str) -> list[str]:
        """Every user the address belongs to, as an address of theirs or an alias; the caller wants one."""
        address = email.strip().lower()
        aliased = (select(TrackerUser.username, TrackerUser.id).join(UserAlias, UserAlias.user_id == TrackerUser.id)
                   .where(UserAlias.email == address))
        owners = (select(TrackerUser.username, TrackerUser.id).join(UserEmail, UserEmail.user_id == TrackerUser.id)
                  .where(UserEmail.email == address))
        found: dict[str, int] = {name: user_id for name, user_id in self.session.execute(union(aliased, owners))}
        self._user_ids.update(found)  # the caller acts as one of them next
        return sorted(found)

    def can(self, username: str, issue_key: str, permission: str) -> bool:
        issue = self._issue(issue_key)
        try:
            user_id: int | None = self._user_id(username)
        except TrackerError:  # no such user: only a grant to everyone applies
            user_id = None
        return self.session.scalar(
            select(func.count()).select_from(Permission).where(
                Permission.project_id == issue.project_id,
                Permission.permission == permission,
                or_(Permission.user_id.is_(None), Permission.user_id == user_id),
            )
        ) != 0

    def comment(self, issue_key: str, username: str, body: str, origin: Origin | None = None) -> None:
        issue = self._issue(issue_key)
        self.session.add(TrackerComment(issue_id=issue.id, author_id=self._user_id(username), body=body))
        issue.updated_at = utcnow()

    def log_work(self, issue_key: str, username: str, seconds: int, started: datetime, comment: str,
                 origin: Origin | None = None) -> None:
        issue = self._issue(issue_key)
        self.session.add(Worklog(issue_id=issue.id, author_id=self._user_id(username), seconds=seconds,
                                 started=started, comment=comment))
        issue.updated_at = utcnow()

    def transitions(self, issue_key: str) -> list[tuple[str, str]]:
        issue = self._issue(issue_key)
        rows = self.session.execute(
            select(WorkflowTransition.name, WorkflowTransition.to_status)
            .join(Project, Project.workflow_id == WorkflowTransition.workflow_id)
            .where(Project.id == issue.project_id, WorkflowTransition.from_status == issue.status)
            .order_by(WorkflowTransition.id)
        ).all()
        return [(name, to) for name, to in rows]

    def transition(self, issue_key: str, username: str, name: str, origin: Origin | None = None) -> str:
        issue = self._issue(issue_key)
        target = dict(self.transitions(issue_key)).get(name)
        if target is None:
            raise TrackerError(f"transition {name!r} is not available from {issue.status!r}")
        self.session.add(StatusChange(issue_id=issue.id, author_id=self._user_id(username), transition=name,
                                      from_status=issue.status, to_status=target))
        issue.status = target
        issue.updated_at = utcnow()
        return target

    def transitioned(self, issue_key: str, origin: Origin) -> str | None:
        return None  # an effect here commits with its ledger row: there is never an earlier attempt to find

    def display_name(self, username: str) -> str:
        return username

    def _issue(self, key: str) -> TrackerIssue:
        issue = self._issues.get(key)
        if issue is None:
            issue = self.session.scalars(select(TrackerIssue).where(TrackerIssue.key == key)).first()
            if issue is None:
                raise TrackerError(f"no issue {key}")
            self._issues[key] = issue
        return issue

    def _user_id(self, username: str) -> int:
        user_id = self._user_ids.get(username)
        if user_id is None:
            user_id = self.session.scalar(select(TrackerUser.id).where(TrackerUser.username == username))
            if user_id is None:
                raise TrackerError(f"no user {username!r}")
            self._user_ids[username] = user_id
        return user_id


# ---------------------------------------------------------------- creating things


def _workflow(session: Session, spec: Mapping[str, Any]) -> Workflow:
    """Create or update a workflow from ``{"name", "statuses", "transitions"}``; idempotent."""
    name = _text(spec, "name", "workflow")
    statuses = spec.get("statuses")
    if not isinstance(statuses, list) or not statuses or not all(isinstance(s, str) and s for s in statuses):
        raise InvalidInput(f"workflow {name!r}: 'statuses' must be a non-empty list of names")
    workflow = session.scalars(select(Workflow).where(Workflow.name == name)).first()
    if workflow is None:
        workflow = Workflow(name=name)
        session.add(workflow)
        session.flush()
    session.execute(delete(WorkflowStatus).where(WorkflowStatus.workflow_id == workflow.id))
    session.execute(delete(WorkflowTransition).where(WorkflowTransition.workflow_id == workflow.id))
    session.add_all(WorkflowStatus(workflow_id=workflow.id, name=s, position=i) for i, s in enumerate(statuses))
    for transition in spec.get("transitions", []):
        t_name = _text(transition, "name", f"a transition of workflow {name!r}")
        target = _text(transition, "to", f"transition {t_name!r}")
        sources = transition.get("from", [])
        sources = [sources] if isinstance(sources, str) else sources
        for status in [*sources, target]:
            if status not in statuses:
                raise InvalidInput(f"workflow {name!r}: transition {t_name!r} names unknown status {status!r}")
        session.add_all(WorkflowTransition(workflow_id=workflow.id, name=t_name, from_status=s, to_status=target)
                        for s in sources)
    session.flush()
    return workflow


def _default_workflow(session: Session) -> Workflow:
    workflow = session.scalars(select(Workflow).where(Workflow.name == DEFAULT_WORKFLOW["name"])).first()
    return workflow or _workflow(session, DEFAULT_WORKFLOW)


def create_project(session: Session, key: str, name: str, *, workflow: str | None = None,
                   permissions: Mapping[str, Iterable[str]] | None = None) -> Project:
    """Create (or, on re-import, update) a project; ``permissions`` maps a permission to usernames or "everyone".

    Without ``permissions`` a new project grants every permission to everyone,
    the friendly default of a single-team install.
    """
    error = project_key_error(key)
    if error:
        raise InvalidInput(error, reason="bad_project_key",
                           hint=f"project keys are 2 to {MAX_PROJECT_KEY_LENGTH} upper-case letters or digits, "
                           "starting with a letter: DEMO, APP2")
    flow = _default_workflow(session) if workflow is None else session.scalars(
        select(Workflow).where(Workflow.name == workflow)).first()
    if flow is None:
        raise InvalidInput(f"project {key}: no workflow named {workflow!r}")
    project = session.scalars(select(Project).where(Project.key == key)).first()
    if project is None:
        project = Project(key=key, name=name, workflow_id=flow.id)
        session.add(project)
        session.flush()
        permissions = permissions if permissions is not None else {p: ["everyone"] for p in PERMISSIONS}
    else:
        project.name, project.workflow_id = name, flow.id
    if permissions is not None:
        _set_permissions(session, project, permissions)
    return project


def delete_project(session: Session, key: str) -> None:
    """Delete a project with its issues, their comments, worklogs and history, and its permissions."""
    project = session.scalars(select(Project).where(Project.key == key)).first()
    if project is None:
        raise NotFound(f"no project {key!r}")
    session.execute(delete(TrackerIssue).where(TrackerIssue.project_id == project.id))
    session.execute(delete(Permission).where(Permission.project_id == project.id))
    session.delete(project)
    session.flush()


def grant(session: Session, key: str, permission: str, holders: Iterable[str]) -> list[str]:
    """Give one permission of a project to exactly ``holders`` (user names, or "everyone"); none: admins only.

    The project's other permissions are left as they are.  Returns the holders, sorted.
    """
    project = session.scalars(select(Project).where(Project.key == key)).first()
    if project is None:
        raise NotFound(f"no project {key!r}", hint="create it with: devlink tracker project KEY NAME")
    if permission not in PERMISSIONS:
        raise InvalidInput(f"unknown permission {permission!r} (one of {', '.join(PERMISSIONS)})")
    wanted = sorted(set(holders))
    user_ids = [None if holder == "everyone" else _user(session, holder).id for holder in wanted]
    session.execute(delete(Permission).where(Permission.project_id == project.id,
                                             Permission.permission == permission))
    for user_id in user_ids:
        session.add(Permission(project_id=project.id, permission=permission, user_id=user_id))
    session.flush()
    return wanted


def _set_permissions(session: Session, project: Project, permissions: Mapping[str, Iterable[str]]) -> None:
    session.execute(delete(Permission).where(Permission.project_id == project.id))
    for permission, holders in permissions.items():
        if permission not in PERMISSIONS:
            raise InvalidInput(f"project {project.key}: unknown permission {permission!r} "
                               f"(one of {', '.join(PERMISSIONS)})")
        for holder in [holders] if isinstance(holders, str) else holders:
            user_id = None if holder == "everyone" else _user(session, holder).id
            session.add(Permission(project_id=project.id, permission=permission, user_id=user_id))
    session.flush()


def _user(session: Session, username: str) -> TrackerUser:
    user = session.scalars(select(TrackerUser).where(TrackerUser.username == username)).first()
    if user is None:
        raise NotFound(f"no user {username!r}", hint="create it with: devlink tracker user USERNAME")
    return user


def create_user(session: Session, username: str, display_name: str | None = None,
                emails: Iterable[str] = ()) -> TrackerUser:
    """Create a user, or update its name and add addresses on re-import."""
    if not username or any(c.isspace() for c in username):
        raise InvalidInput(f"invalid username {username!r}")
    user = session.scalars(select(TrackerUser).where(TrackerUser.username == username)).first()
    if user is None:
        user = TrackerUser(username=username, display_name=display_name or username)
        session.add(user)
        session.flush()
    elif display_name:
        user.display_name = display_name
    known = set(session.scalars(select(UserEmail.email).where(UserEmail.user_id == user.id)))
    for email in emails:
        address = email.strip().lower()
        if "@" not in address:
            raise InvalidInput(f"user {username}: {email!r} is not an e-mail address")
        if address not in known:
            session.add(UserEmail(user_id=user.id, email=address))
            known.add(address)
    session.flush()
    return user


def add_alias(session: Session, email: str, username: str) -> None:
    """Map ``email`` to ``username`` for smart commits, whatever addresses users have."""
    address = email.strip().lower()
    if "@" not in address:
        raise InvalidInput(f"{email!r} is not an e-mail address")
    user = _user(session, username)
    owners = set(session.scalars(select(TrackerUser.username).join(UserEmail, UserEmail.user_id == TrackerUser.id)
                                 .where(UserEmail.email == address)))
    if owners - {username}:  # an alias must not let one user's commits run as another
        raise Conflict(f"{address} is an address of {', '.join(sorted(owners))}; an alias cannot give it to "
                       f"{username}")
    alias = session.scalars(select(UserAlias).where(UserAlias.email == address)).first()
    if alias is None:
        session.add(UserAlias(email=address, user_id=user.id))
    else:
        alias.user_id = user.id
    session.flush()


def create_issue(session: Session, key: str, summary: str, *, description: str = "", status: str | None = None,
                 assignee: str | None = None, reporter: str | None = None, must_be_new: bool = False) -> TrackerIssue:
    """Create an issue in its project (the key's prefix), or update it on re-import."""
    if not is_key(key):
        raise InvalidInput(f"{key[:120]!r} is not an issue key (like ABC-123)", reason="bad_key")
    if len(key) > MAX_KEY_LENGTH:  # never linked or acted on (sync/linking.known_keys): refuse it here
        raise InvalidInput(f"issue key {key[:20]}… is {len(key)} characters long; at most {MAX_KEY_LENGTH} are "
                           "linked", reason="bad_key")
    project = session.scalars(select(Project).where(Project.key == project_key(key))).first()
    if project is None:
        raise NotFound(f"no project {project_key(key)}", hint="create it with: devlink tracker project KEY NAME")
    statuses = list(session.scalars(select(WorkflowStatus.name).where(
        WorkflowStatus.workflow_id == project.workflow_id).order_by(WorkflowStatus.position)))
    if status is not None and status not in statuses:
        raise InvalidInput(f"issue {key}: unknown status {status!r} (one of {', '.join(statuses)})")
    issue = session.scalars(select(TrackerIssue).where(TrackerIssue.key == key)).first()
    if issue is not None and must_be_new:
        raise Conflict(f"issue {key} already exists")
    assignee_id = _user(session, assignee).id if assignee else None
    reporter_id = _user(session, reporter).id if reporter else None
    if issue is None:
        issue = TrackerIssue(project_id=project.id, key=key, summary=summary, description=description,
                             status=status or statuses[0], assignee_id=assignee_id, reporter_id=reporter_id)
        session.add(issue)
    else:
        issue.summary, issue.description = summary, description
        issue.assignee_id, issue.reporter_id = assignee_id, reporter_id
        if status is not None:
            issue.status = status
    session.flush()
    return issue


# ---------------------------------------------------------------- import


def load_file(path: Path) -> dict[str, Any]:
    """Read an import file: ``.toml`` or ``.json``."""
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
        else:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidInput(f"{path} does not exist") from None
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path} cannot be read: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidInput(f"{path}: the top level must be a table/object")
    return data


def import_data(session: Session, data: Mapping[str, Any]) -> dict[str, int]:
    """Load workflows, users, projects, aliases and issues, in that order; return counts per kind."""
    unknown = set(data) - {"workflows", "users", "projects", "aliases", "issues"}
    if unknown:
        raise InvalidInput(f"unknown section(s): {', '.join(sorted(unknown))}")
    for spec in _list(data, "workflows"):
        _workflow(session, spec)
    for spec in _list(data, "users"):
        create_user(session, _text(spec, "username", "a user"), spec.get("name"), spec.get("emails", []))
    for spec in _list(data, "projects"):
        create_project(session, _text(spec, "key", "a project"), _text(spec, "name", "a project"),
                       workflow=spec.get("workflow"), permissions=spec.get("permissions"))
    for spec in _list(data, "aliases"):
        add_alias(session, _text(spec, "email", "an alias"), _text(spec, "username", "an alias"))
    for spec in _list(data, "issues"):
        create_issue(session, _text(spec, "key", "an issue"), _text(spec, "summary", "an issue"),
                     description=spec.get("description", ""), status=spec.get("status"),
                     assignee=spec.get("assignee"), reporter=spec.get("reporter"))
    return {kind: len(_list(data, kind)) for kind in ("workflows", "users", "projects", "aliases", "issues")}


def _list(data: Mapping[str, Any], kind: str) -> list[Mapping[str, Any]]:
    items = data.get(kind, [])
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise InvalidInput(f"'{kind}' must be a list of tables/objects")
    return items


def _text(spec: Mapping[str, Any], field: str, what: str) -> str:
    value = spec.get(field)
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{what}: '{field}' is required and must be text")
    return value.strip()


# ---------------------------------------------------------------- reading


#: How many of each list (comments, worklogs, history) an issue view holds unless asked otherwise: the latest.
ISSUE_PAGE_SIZE = 50
#: The most entries of each list one issue view returns (``limit``).
MAX_ISSUE_PAGE_SIZE = 1000
#: The lists of an issue view that are paged, each with its ``totals`` entry.
ISSUE_LISTS = ("comments", "worklogs", "history")


def issue_view(session: Session, key: str, *, limit: int = ISSUE_PAGE_SIZE, offset: int = 0,
               offsets: Mapping[str, int] | None = None) -> dict[str, Any]:
    """The issue with its status, transitions and the latest entries of its comments, worklogs and history.

    Each list holds at most ``limit`` entries, the newest after skipping the ``offset`` newest
    (``offsets`` sets it per list, by name), shown oldest first; ``totals`` counts each list whole.
    Paged because smart commits write entries in bulk: an issue with 5,000 worklogs rendered them all.
    """
    if not 1 <= limit <= MAX_ISSUE_PAGE_SIZE:
        raise InvalidInput(f"limit must be between 1 and {MAX_ISSUE_PAGE_SIZE}, not {limit}")
    skip = {name: (offsets or {}).get(name, offset) for name in ISSUE_LISTS}
    if any(value < 0 for value in skip.values()):
        raise InvalidInput("offset must be 0 or more")
    issue = session.scalars(select(TrackerIssue).where(TrackerIssue.key == key)).first()
    if issue is None:
        raise NotFound(f"no issue {key}")
    comments = _latest(session, TrackerComment, issue.id, (TrackerComment.created_at, TrackerComment.id), limit,
                       skip["comments"])
    worklogs = _latest(session, Worklog, issue.id, (Worklog.id,), limit, skip["worklogs"])
    history = _latest(session, StatusChange, issue.id, (StatusChange.id,), limit, skip["history"])
    people = {issue.assignee_id, issue.reporter_id, *(c.author_id for c in comments),
              *(w.author_id for w in worklogs), *(h.author_id for h in history)}
    names = dict(session.execute(select(TrackerUser.id, TrackerUser.username)
                                 .where(TrackerUser.id.in_([p for p in people if p is not None]))).all())
    project = session.get(Project, issue.project_id)
    assert project is not None
    return {
        "key": issue.key,
        "project": {"key": project.key, "name": project.name},
        "summary": issue.summary,
        "description": issue.description,
        "status": issue.status,
        "assignee": names.get(issue.assignee_id) if issue.assignee_id else None,
        "reporter": names.get(issue.reporter_id) if issue.reporter_id else None,
        "created_at": issue.created_at.isoformat(),
        "updated_at": issue.updated_at.isoformat(),
        "transitions": [{"name": n, "to": t} for n, t in BuiltinTracker(session).transitions(key)],
        "comments": [{"author": names.get(c.author_id) if c.author_id else None, "body": c.body,
                      "created_at": c.created_at.isoformat()} for c in comments],
        "worklogs": [{"author": names.get(w.author_id) if w.author_id else None, "seconds": w.seconds,
                      "started": w.started.isoformat(), "comment": w.comment} for w in worklogs],
        "history": [{"transition": h.transition, "from": h.from_status, "to": h.to_status,
                     "author": names.get(h.author_id) if h.author_id else None,
                     "at": h.created_at.isoformat()} for h in history],
        "totals": {
            "comments": _count(session, TrackerComment, issue.id),
            "worklogs": _count(session, Worklog, issue.id),
            "history": _count(session, StatusChange, issue.id),
        },
    }


_Entry = TypeVar("_Entry", TrackerComment, Worklog, StatusChange)


def _latest(session: Session, model: type[_Entry], issue_id: int, order: tuple[Any, ...], limit: int,
            offset: int) -> list[_Entry]:
    """The ``limit`` newest entries of an issue after the ``offset`` newest, oldest first."""
    newest_first = session.scalars(select(model).where(model.issue_id == issue_id)
                                   .order_by(*(column.desc() for column in order)).limit(limit).offset(offset))
    return list(newest_first)[::-1]


def _count(session: Session, model: type[_Entry], issue_id: int) -> int:
    return session.scalar(select(func.count()).select_from(model).where(model.issue_id == issue_id)) or 0
