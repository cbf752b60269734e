"""Tables of who may do what: sign-in sessions, API tokens, the sign-in throttle, a person's identities on hosts
and trackers, their signing keys, and which projects a repository serves.

A person is a ``TrackerUser`` (``store/tracker.py``).  Sessions and tokens are
stored as SHA-256 hashes of random values: the database never holds what a
client sends.  ``RepositoryProject`` rows scope a repository to chosen
projects; a repository without any serves every project (the default).
``CommitPush`` remembers who a host said pushed a commit first, for the
``pusher`` smart-commit trust policy.
"""

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from devlink.store.models import Base, UTCDateTime, utcnow

__all__ = ["ApiToken", "CommitPush", "RepositoryProject", "SignInThrottle", "SigningKey", "UserIdentity",
           "WebSession"]


class WebSession(Base):
    """A signed-in browser: the cookie carries the token, this row its hash."""

    __tablename__ = "web_sessions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("tracker_users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ApiToken(Base):
    """``Authorization: Bearer …``: shown once when made, kept as a hash; ``hint`` is its first characters."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("tracker_users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hint: Mapped[str] = mapped_column(String(16))
    read_only: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SignInThrottle(Base):
    """Failed sign-ins per ``user:NAME`` and per ``address:IP``, shared by every process."""

    __tablename__ = "sign_in_throttles"
    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    blocked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


class UserIdentity(Base):
    """A person's login on a host (``provider`` = the host's name) or on the outside tracker (``tracker``)."""

    __tablename__ = "user_identities"
    __table_args__ = (UniqueConstraint("provider", "login"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("tracker_users.id", ondelete="CASCADE"), index=True)
    provider: Mapped[str] = mapped_column(String(200))
    login: Mapped[str] = mapped_column(String(200))


class SigningKey(Base):
    """A public key whose signatures on commits count as the person's (``kind``: ``ssh``)."""

    __tablename__ = "signing_keys"
    __table_args__ = (UniqueConstraint("fingerprint"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("tracker_users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(8), default="ssh")
    public_key: Mapped[str] = mapped_column(Text)
    fingerprint: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RepositoryProject(Base):
    """The repository serves this project; a repository with no rows serves every project."""

    __tablename__ = "repository_projects"
    repository_id: Mapped[int] = mapped_column(ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True)
    project_key: Mapped[str] = mapped_column(String(100), primary_key=True)


class CommitPush(Base):
    """Who the host's webhook said pushed ``sha`` into the repository first (login and, when given, e-mail)."""

    __tablename__ = "commit_pushes"
    repository_id: Mapped[int] = mapped_column(ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True)
    sha: Mapped[str] = mapped_column(String(64), primary_key=True)
    pusher_login: Mapped[str | None] = mapped_column(String(200))
    pusher_email: Mapped[str | None] = mapped_column(String(320))
    pushed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
