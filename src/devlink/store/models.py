"""The tables.  One set of models for SQLite and PostgreSQL alike.

Shaped for the whole product, not only plain git: hosts and accounts exist so
that GitHub, GitLab and friends add rows and columns, not a redesign.  Every
development entity (commit, branch, pull request) is reached from an issue key
through ``IssueLink``; the development panel reads nothing else first.
"""

from datetime import UTC, datetime
from typing import cast

from sqlalchemy import (
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "Account",
    "Base",
    "Branch",
    "Commit",
    "Host",
    "HttpCacheEntry",
    "IssueLink",
    "OAuthState",
    "PullRequest",
    "Repository",
    "SyncCursor",
    "WebhookDelivery",
    "table",
    "utcnow",
]


def utcnow() -> datetime:
    return datetime.now(UTC)


def table(model: "type[Base]") -> Table:
    """A model's Core table, typed as one (SQLAlchemy types ``__table__`` as a plain FromClause)."""
    return cast(Table, model.__table__)


class UTCDateTime(TypeDecorator[datetime]):
    """Store UTC, read back an aware UTC datetime on both engines (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Host(Base):
    """One source-hosting service instance; plain git repositories share a host of kind ``git``."""

    __tablename__ = "hosts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200), unique=True)
    web_url: Mapped[str | None] = mapped_column(String(500))
    api_url: Mapped[str | None] = mapped_column(String(500))
    ca_bundle: Mapped[str | None] = mapped_column(String(1000))  # a PEM file to trust besides the system's
    proxy: Mapped[str | None] = mapped_column(String(500))  # None: the standard *_PROXY variables apply
    timeout: Mapped[float | None] = mapped_column(Float)  # seconds per request
    oauth_client_id: Mapped[str | None] = mapped_column(String(200))
    oauth_client_secret: Mapped[str | None] = mapped_column(Text)  # Fernet token
    # JSON object of the host kind's own settings (a GitHub App's id, key and webhook secret); the values of
    # the kind's ``secret_options`` are Fernet tokens
    options: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Account(Base):
    """A user, organisation, group or workspace on a host, with its (encrypted) credential."""

    __tablename__ = "accounts"
    __table_args__ = (UniqueConstraint("host_id", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    host_id: Mapped[int] = mapped_column(ForeignKey("hosts.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32), default="user")  # the namespace: user|organization|group|workspace
    external_id: Mapped[str | None] = mapped_column(String(200))
    auth_kind: Mapped[str] = mapped_column(String(16), default="token")  # token | oauth | app
    credential: Mapped[str | None] = mapped_column(Text)  # Fernet token: the access token
    refresh_token: Mapped[str | None] = mapped_column(Text)  # Fernet token (OAuth)
    token_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # None: the token does not expire
    # who is refreshing the token right now (host/pid/start) and since when: one worker refreshes, others wait
    refresh_holder: Mapped[str | None] = mapped_column(String(200))
    refresh_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    options: Mapped[str | None] = mapped_column(Text)  # JSON: the host kind's own (a GitHub App installation id)
    auto_link: Mapped[bool] = mapped_column(Boolean, default=False)
    smart_commits: Mapped[bool] = mapped_column(Boolean, default=True)  # for repositories linked from now on
    smart_commit_trust: Mapped[str | None] = mapped_column(String(16))  # author | pusher | signed; None: author
    hook_id: Mapped[str | None] = mapped_column(String(50))  # the organisation webhook, when devlink has one
    hook_secret: Mapped[str | None] = mapped_column(Text)  # Fernet token
    discovered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_discovery_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # scheme://host[:port] of the API the credential was verified against; it is sent nowhere else
    api_origin: Mapped[str | None] = mapped_column(String(500))
    rate_limit: Mapped[int | None] = mapped_column(Integer)
    rate_remaining: Mapped[int | None] = mapped_column(Integer)
    rate_reset_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error_reason: Mapped[str | None] = mapped_column(String(32))
    last_error_message: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Repository(Base):
    """A linked repository and its sync state.

    ``url`` never holds credentials; those live Fernet-encrypted in
    ``url_secret``.  The sync columns double as the per-repository lock:
    ``sync_state = 'running'`` is taken with a conditional UPDATE, and a request
    that arrives meanwhile sets ``sync_pending`` so it runs once afterwards.
    """

    __tablename__ = "repositories"
    # AUTOINCREMENT: an id is never reused, so a new repository never meets an old one's mirror
    __table_args__ = (UniqueConstraint("host_id", "external_id"), {"sqlite_autoincrement": True})
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    host_id: Mapped[int] = mapped_column(ForeignKey("hosts.id", ondelete="CASCADE"))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    external_id: Mapped[str | None] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(200), unique=True)
    url: Mapped[str] = mapped_column(String(1000))
    url_secret: Mapped[str | None] = mapped_column(Text)
    web_url: Mapped[str | None] = mapped_column(String(500))
    host_path: Mapped[str | None] = mapped_column(String(1000))  # the full path on the host, any depth
    linked: Mapped[bool] = mapped_column(Boolean, default=True)
    smart_commits: Mapped[bool] = mapped_column(Boolean, default=True)
    smart_commit_trust: Mapped[str | None] = mapped_column(String(16))  # None: the account's, else author
    state: Mapped[str] = mapped_column(String(16), default="active")  # active | gone
    private: Mapped[bool] = mapped_column(Boolean, default=False)
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    default_branch: Mapped[str | None] = mapped_column(String(500))
    webhook_id: Mapped[str | None] = mapped_column(String(50))  # the host's id of devlink's webhook
    webhook_secret: Mapped[str | None] = mapped_column(Text)  # Fernet token
    webhook_state: Mapped[str | None] = mapped_column(String(16))  # installed | account | unavailable | failed
    webhook_error: Mapped[str | None] = mapped_column(Text)  # why it is not real-time
    hook_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    hook_token: Mapped[str | None] = mapped_column(Text)  # Fernet token
    sync_state: Mapped[str] = mapped_column(String(16), default="idle")  # idle|queued|running|failed
    sync_pending: Mapped[bool] = mapped_column(Boolean, default=False)
    sync_kind: Mapped[str | None] = mapped_column(String(8))  # soft | full, of the current/last run
    sync_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sync_finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sync_heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sync_holder: Mapped[str | None] = mapped_column(String(200))  # host/pid/start of the process holding the lock
    sync_progress: Mapped[int] = mapped_column(Integer, default=0)  # commits written by the current run
    next_sync_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    commits_indexed: Mapped[int] = mapped_column(Integer, default=0)
    last_error_reason: Mapped[str | None] = mapped_column(String(32))
    last_error_message: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # JSON: entity type -> {reason, message, at, resumes_at}: what a sync skipped or deferred (403, API budget)
    entity_errors: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def host_full_name(self) -> str:
        """The repository's full path on its host (``group/sub/app``), as the host last gave it."""
        return self.host_path or "/".join(self.name.split("/")[-2:])


class Commit(Base):
    """A commit as seen in one repository (the same sha in a fork is another row)."""

    __tablename__ = "commits"
    __table_args__ = (UniqueConstraint("repository_id", "sha"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    repository_id: Mapped[int] = mapped_column(ForeignKey("repositories.id", ondelete="CASCADE"))
    sha: Mapped[str] = mapped_column(String(64))
    author_name: Mapped[str] = mapped_column(String(500))
    author_email: Mapped[str] = mapped_column(String(500))
    authored_at: Mapped[datetime] = mapped_column(UTCDateTime)
    author_tz: Mapped[int] = mapped_column(Integer)  # offset east of UTC, minutes
    committer_name: Mapped[str] = mapped_column(String(500))
    committer_email: Mapped[str] = mapped_column(String(500))
    committed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    message: Mapped[str] = mapped_column(Text)
    parent_count: Mapped[int] = mapped_column(Integer)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    first_seen_by: Mapped[str] = mapped_column(String(8))  # backfill | soft | hook: decides smart commits


class Branch(Base):
    """A branch as it stands now; rows follow the refs (deleted branches are deleted)."""

    __tablename__ = "branches"
    __table_args__ = (UniqueConstraint("repository_id", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    repository_id: Mapped[int] = mapped_column(ForeignKey("repositories.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(500))
    head_sha: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PullRequest(Base):
    """A pull or merge request; filled by the host integrations."""

    __tablename__ = "pull_requests"
    __table_args__ = (UniqueConstraint("repository_id", "number"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    repository_id: Mapped[int] = mapped_column(ForeignKey("repositories.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    external_id: Mapped[str | None] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[str] = mapped_column(String(16))  # open | draft | merged | closed
    source_branch: Mapped[str] = mapped_column(String(500))
    target_branch: Mapped[str] = mapped_column(String(500))
    author: Mapped[str | None] = mapped_column(String(200))
    url: Mapped[str | None] = mapped_column(String(1000))
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    merged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    comment_count: Mapped[int | None] = mapped_column(Integer)
    reviewers: Mapped[str] = mapped_column(Text, default="[]")  # JSON: [{"login", "state"}], latest state each


class IssueLink(Base):
    """Issue key → development entity: the index everything is read through.

    ``entity_type`` is ``commit``, ``branch`` or ``pull_request`` and
    ``entity_id`` the id in that table.  ``project_key`` has its own index so
    that a tracker can ask for a project's links without parsing keys.
    """

    __tablename__ = "issue_links"
    __table_args__ = (
        UniqueConstraint("key", "entity_type", "entity_id"),
        Index("ix_issue_links_entity", "entity_type", "entity_id"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(100))  # indexed by the unique constraint
    project_key: Mapped[str] = mapped_column(String(100), index=True)
    repository_id: Mapped[int] = mapped_column(
        ForeignKey("repositories.id", ondelete="CASCADE"), index=True
    )
    entity_type: Mapped[str] = mapped_column(String(16))
    entity_id: Mapped[int] = mapped_column(Integer)


class SyncCursor(Base):
    """Where the last successful sync of one entity type of a repository stopped.

    For commits the value is the JSON list of branch heads already indexed:
    everything reachable from them is in the store, so a soft sync reads only
    what is reachable from the new heads and not from these.
    """

    __tablename__ = "sync_cursors"
    repository_id: Mapped[int] = mapped_column(
        ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True
    )
    entity_type: Mapped[str] = mapped_column(String(16), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class WebhookDelivery(Base):
    """One received webhook delivery; the unique (kind, delivery id) pair makes replays no-ops."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (UniqueConstraint("host_kind", "delivery_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    host_kind: Mapped[str] = mapped_column(String(32))
    delivery_id: Mapped[str] = mapped_column(String(200))
    repository_id: Mapped[int | None] = mapped_column(ForeignKey("repositories.id", ondelete="SET NULL"))
    # the account it is for (an organisation's or App's delivery may name no linked repository)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"))
    event: Mapped[str] = mapped_column(String(100))
    payload: Mapped[str] = mapped_column(Text, default="")
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # set once the work it asked for is queued; a sweep re-queues any left unset (nothing answered 2xx is lost)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)


class HttpCacheEntry(Base):
    """The last ETag (and body) of a host API URL, per account: unchanged pages then cost no quota.

    Kept in the database rather than in memory so every worker process shares it.
    """

    __tablename__ = "http_cache"
    __table_args__ = (UniqueConstraint("account_id", "url"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(String(2000))
    etag: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class OAuthState(Base):
    """A pending OAuth web flow: ``state`` and the PKCE verifier, until the callback uses them once."""

    __tablename__ = "oauth_states"
    state: Mapped[str] = mapped_column(String(100), primary_key=True)
    host_id: Mapped[int] = mapped_column(ForeignKey("hosts.id", ondelete="CASCADE"))
    account_name: Mapped[str] = mapped_column(String(200))
    verifier: Mapped[str] = mapped_column(Text)  # Fernet token
    options: Mapped[str] = mapped_column(Text, default="{}")  # JSON: auto_link, smart_commits, link
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
