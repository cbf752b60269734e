"""Tables of the built-in tracker, the connection to an outside tracker, and the smart-commit ledger.

The built-in tracker is devlink's embedded default: projects with a workflow,
issues, users (one or more e-mail addresses each, plus aliases), comments,
worklogs, status history and per-project permissions.  ``SmartCommitRun`` is
the ledger that makes each (commit sha, issue key, command position) run at
most once, whatever brings the commit back.  ``TrackerConnection`` says which
outside tracker (Jira) is in use instead of the built-in one, with its
credential encrypted; ``TrackerCacheEntry`` keeps what it answered (project
keys, issue summaries) for a short while, shared by every process.
"""

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from devlink.store.models import Base, UTCDateTime, utcnow

__all__ = [
    "PERMISSIONS",
    "DevPushItem",
    "DevPushState",
    "Permission",
    "Project",
    "SmartCommitRun",
    "StatusChange",
    "TrackerAlias",
    "TrackerCacheEntry",
    "TrackerComment",
    "TrackerConnection",
    "TrackerIssue",
    "TrackerUser",
    "UserAlias",
    "UserEmail",
    "Workflow",
    "WorkflowStatus",
    "WorkflowTransition",
    "Worklog",
]

#: What a permission row may grant; a row with no user grants it to everyone.
PERMISSIONS = ("browse", "view_development", "comment", "log_work", "transition")


class Workflow(Base):
    """Statuses and named transitions; ``Default`` is created on first use."""

    __tablename__ = "workflows"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)


class WorkflowStatus(Base):
    __tablename__ = "workflow_statuses"
    __table_args__ = (UniqueConstraint("workflow_id", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workflow_id: Mapped[int] = mapped_column(ForeignKey("workflows.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    position: Mapped[int] = mapped_column(Integer, default=0)


class WorkflowTransition(Base):
    """One edge: ``name`` leads from ``from_status`` to ``to_status`` (a name may have several edges)."""

    __tablename__ = "workflow_transitions"
    __table_args__ = (UniqueConstraint("workflow_id", "name", "from_status"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workflow_id: Mapped[int] = mapped_column(ForeignKey("workflows.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    from_status: Mapped[str] = mapped_column(String(100))
    to_status: Mapped[str] = mapped_column(String(100))


class Project(Base):
    __tablename__ = "projects"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    workflow_id: Mapped[int] = mapped_column(ForeignKey("workflows.id"))


class TrackerUser(Base):
    """A person: the built-in tracker's user and the one who signs in to devlink are the same row.

    ``password_hash`` is an argon2 hash, or None (a user made by the tracker or an import signs in only
    once an admin sets a password); ``role`` is ``admin`` or ``member``.
    """

    __tablename__ = "tracker_users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str | None] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(16), default="member", server_default="member")


class UserEmail(Base):
    """An address of a user, stored lower-case; two users may share one (mapping then fails, by design)."""

    __tablename__ = "user_emails"
    __table_args__ = (UniqueConstraint("user_id", "email"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("tracker_users.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(320), index=True)


class UserAlias(Base):
    """An explicit e-mail → user mapping (``devlink tracker alias``); it wins over addresses."""

    __tablename__ = "user_aliases"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("tracker_users.id", ondelete="CASCADE"))


class Permission(Base):
    """Grants ``permission`` on a project to a user, or to everyone when ``user_id`` is NULL."""

    __tablename__ = "permissions"
    __table_args__ = (UniqueConstraint("project_id", "permission", "user_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    permission: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("tracker_users.id", ondelete="CASCADE"))


class TrackerIssue(Base):
    __tablename__ = "tracker_issues"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(120), unique=True)
    summary: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(100))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("tracker_users.id", ondelete="SET NULL"))
    reporter_id: Mapped[int | None] = mapped_column(ForeignKey("tracker_users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TrackerComment(Base):
    __tablename__ = "tracker_comments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    issue_id: Mapped[int] = mapped_column(ForeignKey("tracker_issues.id", ondelete="CASCADE"), index=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("tracker_users.id", ondelete="SET NULL"))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Worklog(Base):
    __tablename__ = "worklogs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    issue_id: Mapped[int] = mapped_column(ForeignKey("tracker_issues.id", ondelete="CASCADE"), index=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("tracker_users.id", ondelete="SET NULL"))
    seconds: Mapped[int] = mapped_column(Integer)
    started: Mapped[datetime] = mapped_column(UTCDateTime)
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class StatusChange(Base):
    __tablename__ = "status_changes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    issue_id: Mapped[int] = mapped_column(ForeignKey("tracker_issues.id", ondelete="CASCADE"), index=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("tracker_users.id", ondelete="SET NULL"))
    transition: Mapped[str] = mapped_column(String(100))
    from_status: Mapped[str] = mapped_column(String(100))
    to_status: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SmartCommitRun(Base):
    """The ledger: one row per (commit sha, issue key, command position), inserted before it runs.

    The unique constraint is the exactly-once guarantee: whoever inserts the
    row runs the command, in the same transaction as the command's effect on
    the built-in tracker, so a crash rolls both back together.
    """

    __tablename__ = "smart_commit_runs"
    __table_args__ = (UniqueConstraint("commit_sha", "issue_key", "position"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    commit_sha: Mapped[str] = mapped_column(String(64))
    issue_key: Mapped[str] = mapped_column(String(120), index=True)
    position: Mapped[int] = mapped_column(Integer)
    repository_id: Mapped[int | None] = mapped_column(ForeignKey("repositories.id", ondelete="SET NULL"))
    command: Mapped[str] = mapped_column(String(100))  # as written, without '#'
    args: Mapped[str] = mapped_column(Text, default="")
    # done | error | skipped; pending while an outside tracker's command is claimed but not yet recorded
    outcome: Mapped[str] = mapped_column(String(8), index=True)
    message: Mapped[str] = mapped_column(Text, default="")
    author_email: Mapped[str] = mapped_column(String(320), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class TrackerConnection(Base):
    """The outside tracker in use; no row means the built-in one.  At most one row, id 1.

    ``credential`` and ``devinfo_client_secret`` are Fernet tokens; the
    credential is sent only to ``url``'s origin, the devinfo token only to
    ``gateway_url``'s.
    """

    __tablename__ = "tracker_connections"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))  # jira
    url: Mapped[str] = mapped_column(String(500))  # the site's base URL, without /rest
    deployment: Mapped[str] = mapped_column(String(16))  # cloud | datacenter
    email: Mapped[str | None] = mapped_column(String(320))  # Cloud: the API token's account
    credential: Mapped[str] = mapped_column(Text)
    ca_bundle: Mapped[str | None] = mapped_column(String(1000))
    proxy: Mapped[str | None] = mapped_column(String(500))
    timeout: Mapped[float | None] = mapped_column(Float)
    server_title: Mapped[str | None] = mapped_column(String(200))
    version: Mapped[str | None] = mapped_column(String(50))
    user: Mapped[str | None] = mapped_column(String(200))  # whom the credential acts as (name or account id)
    devinfo_client_id: Mapped[str | None] = mapped_column(String(200))
    devinfo_client_secret: Mapped[str | None] = mapped_column(Text)
    gateway_url: Mapped[str | None] = mapped_column(String(500))
    cloud_id: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TrackerCacheEntry(Base):
    """One answer of the outside tracker (``projects``, ``issue:KEY``) as JSON, with when it was read."""

    __tablename__ = "tracker_cache"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TrackerAlias(Base):
    """An e-mail → outside-tracker user (Jira user name or account id), for addresses the tracker hides."""

    __tablename__ = "tracker_aliases"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    user: Mapped[str] = mapped_column(String(200))
    display_name: Mapped[str | None] = mapped_column(String(200))


class DevPushItem(Base):
    """A development entity as last sent to the outside tracker: what changed since, or went, is sent next.

    No foreign key to ``repositories``: the rows outlive a removed repository
    until the tracker has been told to forget it.
    """

    __tablename__ = "dev_push_items"
    __table_args__ = (UniqueConstraint("repository_id", "entity_type", "entity_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    repository_id: Mapped[int] = mapped_column(Integer)
    entity_type: Mapped[str] = mapped_column(String(16))  # commit | branch | pull_request
    entity_id: Mapped[str] = mapped_column(String(500))
    keys: Mapped[str] = mapped_column(Text)  # JSON list of the issue keys it was sent with
    digest: Mapped[str] = mapped_column(String(64))
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DevPushState(Base):
    """Per repository: whether its development data is in the outside tracker (pending, sent, failed)."""

    __tablename__ = "dev_push_states"
    repository_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    repository_name: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(8))  # pending | sending | sent | failed
    message: Mapped[str] = mapped_column(Text, default="")
    sent: Mapped[int] = mapped_column(Integer, default=0)  # entities sent by the last push
    unknown_keys: Mapped[str] = mapped_column(Text, default="[]")  # JSON: keys the tracker has no issue for
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resends: Mapped[int] = mapped_column(Integer, default=0)  # full resends asked: a push under way checks it
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
