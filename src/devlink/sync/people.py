"""People who sign in: passwords, roles, sessions, API tokens and the sign-in throttle.

The functions behind ``devlink user``, ``devlink token``, the sign-in page and
``/api/v1/users`` and ``/api/v1/tokens``; the web layer and the CLI call these
and nothing lower.  A person is the built-in tracker's user (``TrackerUser``):
the same name, addresses and aliases, so ``devlink tracker user`` and
``devlink user`` manage one record.

Secrets are never stored: passwords as argon2 hashes, session and API tokens as
SHA-256 hashes (they are 256 random bits, so a fast hash is enough).  The
throttle lives in the database, so every process behind a load balancer
counts the same failures.
"""

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from devlink.errors import Conflict, DevlinkError, Forbidden, InvalidInput, NotFound, Unauthorized
from devlink.runtime import Runtime
from devlink.store.engine import insert_ignore
from devlink.store.models import table, utcnow
from devlink.store.people import ApiToken, SignInThrottle, WebSession
from devlink.store.tracker import TrackerUser, UserEmail
from devlink.sync.principals import ROLES, Principal, Role
from devlink.trackers.builtin import create_user

if TYPE_CHECKING:
    from argon2 import PasswordHasher

__all__ = [
    "MIN_PASSWORD",
    "TOKEN_PREFIX",
    "NewToken",
    "TooManyAttempts",
    "add_person",
    "change_password",
    "check_password",
    "create_token",
    "end_session",
    "ensure_first_admin",
    "find_person",
    "generate_password",
    "hash_password",
    "only_admin",
    "own_or_admin",
    "people_views",
    "person_view",
    "remove_person",
    "revoke_token",
    "session_principal",
    "set_password",
    "set_role",
    "sign_in",
    "start_session",
    "token_principal",
    "token_views",
]

log = logging.getLogger(__name__)

MIN_PASSWORD = 10  # characters; a generated one has 22
MAX_PASSWORD = 1024  # argon2 hashes anything, but a megabyte "password" is a denial of service
TOKEN_PREFIX = "dlk_"
SESSION_LIFETIME = timedelta(days=7)
MAX_TOKEN_DAYS = 3650
_SEEN_EVERY = timedelta(minutes=1)  # last use is written at most this often: a busy token is not a write per call

#: failures allowed before each further attempt waits; the wait doubles up to _MAX_WAIT
_FREE_FAILURES = 5
_MAX_WAIT = timedelta(minutes=15)
_FORGET_AFTER = timedelta(hours=1)  # failures this old no longer count


class TooManyAttempts(DevlinkError):
    """Raised while a user name or an address must wait after repeated failed sign-ins."""

    status = 429
    default_reason = "too_many_attempts"

    def __init__(self, wait: int) -> None:
        super().__init__(f"too many failed sign-ins; try again in {wait} s",
                         hint="ask an admin to reset the password: devlink user passwd NAME")
        self.retry_after = wait


@dataclass(frozen=True)
class NewToken:
    """A token just made: ``secret`` is shown to its owner once and never stored."""

    secret: str
    view: dict[str, Any]


@cache
def _hasher() -> "PasswordHasher":
    from argon2 import PasswordHasher  # a CLI command that does not sign anyone in never loads it

    return PasswordHasher()


def hash_password(password: str) -> str:
    _check_new_password(password)
    return _hasher().hash(password)


def check_password(stored: str | None, password: str) -> bool:
    """Whether ``password`` matches; with no stored hash a dummy one is checked, so timing says nothing."""
    from argon2.exceptions import InvalidHashError, VerificationError

    if len(password) > MAX_PASSWORD:
        return False
    try:
        return _hasher().verify(stored or _dummy_hash(), password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


@cache
def _dummy_hash() -> str:
    return _hasher().hash(secrets.token_urlsafe(16))


def _check_new_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"a password needs at least {MIN_PASSWORD} characters", reason="weak_password")
    if len(password) > MAX_PASSWORD:
        raise InvalidInput(f"a password has at most {MAX_PASSWORD} characters", reason="weak_password")


def generate_password() -> str:
    return secrets.token_urlsafe(16)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _person(session: Session, username: str) -> TrackerUser:
    user = session.scalars(select(TrackerUser).where(TrackerUser.username == username)).first()
    if user is None:
        raise NotFound(f"no user {username!r}", hint="list them with: devlink user list")
    return user


def _role(role: str) -> Role:
    for known in ROLES:
        if role == known:
            return known
    raise InvalidInput(f"unknown role {role!r}; roles are {', '.join(ROLES)}", reason="bad_role")


# ---------------------------------------------------------------- people


def person_view(session: Session, user: TrackerUser) -> dict[str, Any]:
    emails = list(session.scalars(select(UserEmail.email).where(UserEmail.user_id == user.id)
                                  .order_by(UserEmail.email)))
    return {"username": user.username, "name": user.display_name, "role": user.role, "emails": emails,
            "can_sign_in": user.password_hash is not None}


def people_views(session: Session, principal: Principal) -> list[dict[str, Any]]:
    """Everyone for an admin; a member sees only themselves (their addresses are nobody else's business)."""
    query = select(TrackerUser).order_by(TrackerUser.username)
    if not principal.admin:
        query = query.where(TrackerUser.id == principal.user_id)
    return [person_view(session, user) for user in session.scalars(query)]


def find_person(session: Session, principal: Principal, username: str) -> dict[str, Any]:
    """One person's view: a member may see only themselves (the same 404 for anyone else, so names do not leak)."""
    own_or_admin(principal, username)
    return person_view(session, _person(session, username))


def own_or_admin(principal: Principal, username: str) -> None:
    """A member may act only on their own record: anyone else's name is 404 whether it exists or not."""
    if not principal.admin and username != principal.username:
        raise NotFound(f"no user {username!r}")


def add_person(rt: Runtime, username: str, *, name: str | None = None, emails: list[str] | tuple[str, ...] = (),
               role: str = "member", password: str | None = None) -> dict[str, Any]:
    """A new person who may sign in once they have a password; an existing name is a conflict."""
    checked = _role(role)
    hashed = hash_password(password) if password is not None else None
    with rt.sessions.begin() as session:
        same = session.scalars(select(TrackerUser.username).where(
            func.lower(TrackerUser.username) == username.lower())).first()
        if same is not None:  # Admin beside admin would sign in as neither by mistake, and share a throttle
            raise Conflict(f"user {same!r} exists" + ("" if same == username else " (names ignore case)"),
                           hint=f"change its password with: devlink user passwd {same}")
        user = create_user(session, username, name, emails)
        user.role, user.password_hash = checked, hashed
        session.flush()
        log.info("people.added user=%s role=%s", username, checked)
        return person_view(session, user)


def set_password(rt: Runtime, username: str, password: str, *, keep_session: int | None = None) -> None:
    """Set a password: the person's sessions end (their API tokens keep working; revoke those apart).

    ``keep_session``: the session that changed its own password stays signed in.
    """
    hashed = hash_password(password)
    with rt.sessions.begin() as session:
        user = _person(session, username)
        user.password_hash = hashed
        ended = delete(WebSession).where(WebSession.user_id == user.id)
        if keep_session is not None:
            ended = ended.where(WebSession.id != keep_session)
        session.execute(ended)
        session.execute(delete(SignInThrottle).where(SignInThrottle.key == _user_key(username)))
    log.info("people.password_set user=%s", username)


def change_password(rt: Runtime, principal: Principal, username: str, password: str, *, current: str = "") -> None:
    """A person changes their own password (the current one must be right), or an admin anyone's."""
    if principal.username == username and principal.user_id is not None:
        with rt.sessions() as session:
            stored = _person(session, username).password_hash
        if not check_password(stored, current):
            raise Unauthorized("the current password is wrong", reason="bad_credentials")
    elif not principal.admin:
        raise Forbidden("only an admin may set another person's password", reason="admin_only")
    set_password(rt, username, password, keep_session=principal.session_id)


def set_role(rt: Runtime, username: str, role: str) -> dict[str, Any]:
    checked = _role(role)
    with rt.sessions.begin() as session:
        user = _person(session, username)
        if user.role == "admin" and checked != "admin":
            _keep_an_admin(session, user)
        user.role = checked
        log.info("people.role_set user=%s role=%s", username, checked)
        return person_view(session, user)


def remove_person(rt: Runtime, username: str) -> None:
    """Remove a person with their sessions and tokens; tracker history they made keeps their name."""
    with rt.sessions.begin() as session:
        user = _person(session, username)
        if user.role == "admin":
            _keep_an_admin(session, user)
        session.execute(delete(WebSession).where(WebSession.user_id == user.id))
        session.execute(delete(ApiToken).where(ApiToken.user_id == user.id))
        user.password_hash, user.role = None, "member"
    log.info("people.removed user=%s", username)


def _keep_an_admin(session: Session, leaving: TrackerUser) -> None:
    others = session.scalar(select(func.count()).select_from(TrackerUser).where(
        TrackerUser.role == "admin", TrackerUser.password_hash.is_not(None), TrackerUser.id != leaving.id))
    if not others:
        raise Conflict(f"{leaving.username} is the last admin who can sign in",
                       hint="make another admin first: devlink user add NAME --admin")


def ensure_first_admin(rt: Runtime) -> tuple[str, str] | None:
    """On a database where no admin can sign in, make one with a random password: (user name, password).

    The name is ``admin``, or ``admin-XXXX`` when a member who can sign in has that name.  Returns None
    when an admin exists.  Only the hash is stored; the caller prints the password once.  Two processes
    starting at once make one admin: the loser of the insert sees the winner's row.
    """
    with rt.sessions() as session:
        if _admins(session):
            return None
        taken = session.scalars(select(TrackerUser.password_hash).where(TrackerUser.username == "admin")).first()
    username = "admin" if taken is None else f"admin-{secrets.token_hex(2)}"
    password = generate_password()
    try:
        with rt.sessions.begin() as session:
            if _admins(session):
                return None
            user = session.scalars(select(TrackerUser).where(TrackerUser.username == username)).first()
            if user is None:
                user = create_user(session, username, "Administrator")
            user.role, user.password_hash = "admin", hash_password(password)
    except IntegrityError:
        return None
    log.info("people.first_admin user=%s", username)
    return username, password


def _admins(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(TrackerUser).where(
        TrackerUser.role == "admin", TrackerUser.password_hash.is_not(None))) or 0


# ---------------------------------------------------------------- sign-in and sessions


def _user_key(username: str) -> str:
    return f"user:{username.strip().lower()[:200]}"


def _address_key(address: str) -> str:
    return f"address:{address[:200]}"


def sign_in(rt: Runtime, username: str, password: str, address: str) -> tuple[Principal, str]:
    """Check a password, slowed down per user name and per address; a new session's token on success.

    Each attempt is counted before its password is checked, in one atomic update per key, so a burst of
    parallel guesses is counted as it arrives rather than after the slow hash.  A success forgets the
    name's count and takes this attempt back off the address's (many people may share one address).
    """
    keys = [_user_key(username), _address_key(address)]
    wait = _count_attempt(rt, keys)
    if wait:
        log.info("people.sign_in_throttled user=%r address=%s", username[:100], address)
        raise TooManyAttempts(wait)
    with rt.sessions() as session:
        user = session.scalars(select(TrackerUser).where(TrackerUser.username == username[:100])).first()
        stored = user.password_hash if user is not None else None
    matches = check_password(stored, password)  # always hashed: an unknown name takes as long as a wrong password
    if user is None or not matches:
        _block(rt, keys)
        log.info("people.sign_in_failed user=%r address=%s", username[:100], address)
        raise Unauthorized("wrong user name or password", reason="bad_credentials")
    log.info("people.signed_in user=%s address=%s", user.username, address)
    with rt.sessions.begin() as session:
        session.execute(delete(SignInThrottle).where(SignInThrottle.key == keys[0]))
        session.execute(update(SignInThrottle).where(SignInThrottle.key == keys[1], SignInThrottle.failures > 0)
                        .values(failures=SignInThrottle.failures - 1))
    return start_session(rt, user.id)


def _count_attempt(rt: Runtime, keys: list[str]) -> int:
    """Count one attempt on each key; the seconds to wait when one of them is blocked (0: go ahead).

    Past the free attempts a key is blocked until its wait is over; while the attempts before are still
    being checked (no wait is set yet), a further one is refused too: that is a burst.
    """
    now = utcnow()
    waits = []
    with rt.sessions.begin() as session:
        insert_ignore(session, table(SignInThrottle),
                      [{"key": key, "failures": 0, "last_failure_at": now} for key in keys], ["key"])
        session.execute(update(SignInThrottle).where(
            SignInThrottle.key.in_(keys), SignInThrottle.last_failure_at < now - _FORGET_AFTER,
            or_(SignInThrottle.blocked_until.is_(None), SignInThrottle.blocked_until < now))
            .values(failures=0, blocked_until=None))
        counted = session.execute(update(SignInThrottle).where(SignInThrottle.key.in_(keys))
                                  .values(failures=SignInThrottle.failures + 1, last_failure_at=now)
                                  .returning(SignInThrottle.failures, SignInThrottle.blocked_until)).all()
        for failures, blocked_until in counted:
            if failures <= _FREE_FAILURES:
                continue
            if blocked_until is None:
                waits.append(1)
            elif blocked_until > now:
                waits.append(max(1, int((blocked_until - now).total_seconds()) + 1))
    return max(waits, default=0)


def _block(rt: Runtime, keys: list[str]) -> None:
    """After a failure past the free attempts, the key waits: 2, 4, 8 … seconds, at most 15 minutes."""
    now = utcnow()
    with rt.sessions.begin() as session:
        for row in session.scalars(select(SignInThrottle).where(SignInThrottle.key.in_(keys))):
            if row.failures >= _FREE_FAILURES:
                wait = timedelta(seconds=2 ** min(row.failures - _FREE_FAILURES + 1, 20))
                row.blocked_until = now + min(wait, _MAX_WAIT)


def start_session(rt: Runtime, user_id: int) -> tuple[Principal, str]:
    token = secrets.token_urlsafe(32)
    now = utcnow()
    with rt.sessions.begin() as session:
        user = session.get(TrackerUser, user_id)
        if user is None:
            raise NotFound("no such user")
        row = WebSession(token_hash=_digest(token), user_id=user_id, created_at=now,
                         expires_at=now + SESSION_LIFETIME, last_seen_at=now)
        session.add(row)
        session.execute(delete(WebSession).where(WebSession.expires_at < now))  # tidy as we go
        session.flush()
        return Principal(user.id, user.username, _role(user.role), session_id=row.id), token


def session_principal(rt: Runtime, token: str) -> Principal | None:
    """The person a session token belongs to, or None when it is unknown or has expired."""
    now = utcnow()
    with rt.sessions() as session:
        found = session.execute(
            select(WebSession.id, WebSession.expires_at, WebSession.last_seen_at, TrackerUser)
            .join(TrackerUser, TrackerUser.id == WebSession.user_id)
            .where(WebSession.token_hash == _digest(token))).first()
        if found is None or found.expires_at <= now or found.TrackerUser.password_hash is None:
            return None
        user = found.TrackerUser
        principal = Principal(user.id, user.username, _role(user.role), session_id=found.id)
    if now - found.last_seen_at > _SEEN_EVERY:
        with rt.sessions.begin() as session:
            session.execute(update(WebSession).where(WebSession.id == found.id).values(last_seen_at=now))
    return principal


def end_session(rt: Runtime, session_id: int) -> None:
    with rt.sessions.begin() as session:
        session.execute(delete(WebSession).where(WebSession.id == session_id))


# ---------------------------------------------------------------- API tokens


def create_token(rt: Runtime, username: str, name: str, *, read_only: bool = False,
                 expires_days: int | None = None) -> NewToken:
    """A new API token for ``username``; its secret is returned once, only its hash is kept."""
    name = name.strip()
    if not name or len(name) > 100:
        raise InvalidInput("a token needs a name of 1 to 100 characters", reason="bad_name")
    if expires_days is not None and not 1 <= expires_days <= MAX_TOKEN_DAYS:
        raise InvalidInput(f"expiry is 1 to {MAX_TOKEN_DAYS} days", reason="bad_expiry")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    with rt.sessions.begin() as session:
        user = _person(session, username)
        if user.password_hash is None:  # removed, or never given sign-in: their tokens would outlive the decision
            raise InvalidInput(f"{username} cannot sign in, so cannot have API tokens", reason="cannot_sign_in",
                               hint=f"give them a password first: devlink user passwd {username}")
        taken = session.scalars(select(ApiToken.id).where(
            ApiToken.user_id == user.id, ApiToken.name == name, ApiToken.revoked_at.is_(None))).first()
        if taken is not None:
            raise Conflict(f"{username} has a token named {name!r}", hint="revoke it first, or pick another name")
        row = ApiToken(user_id=user.id, name=name, token_hash=_digest(secret), hint=secret[:8],
                       read_only=read_only, created_at=now,
                       expires_at=now + timedelta(days=expires_days) if expires_days else None)
        session.add(row)
        session.flush()
        log.info("people.token_created id=%d user=%s name=%r read_only=%s", row.id, user.username, name, read_only)
        return NewToken(secret, _token_view(row, user.username))


def _token_view(row: ApiToken, username: str) -> dict[str, Any]:
    def iso(when: datetime | None) -> str | None:
        return when.isoformat() if when else None

    return {"id": row.id, "name": row.name, "user": username, "hint": row.hint + "…", "read_only": row.read_only,
            "created_at": iso(row.created_at), "expires_at": iso(row.expires_at),
            "expired": row.expires_at is not None and row.expires_at <= utcnow(),
            "last_used_at": iso(row.last_used_at), "revoked_at": iso(row.revoked_at)}


def only_admin(rt: Runtime) -> str:
    """The one admin who can sign in (the CLI's default owner of a new token); InvalidInput when not one."""
    with rt.sessions() as session:
        admins = list(session.scalars(select(TrackerUser.username).where(
            TrackerUser.role == "admin", TrackerUser.password_hash.is_not(None)).order_by(TrackerUser.username)))
    if len(admins) != 1:
        raise InvalidInput("whose token? give --user NAME" + (f" (admins: {', '.join(admins)})" if admins else ""),
                           reason="invalid", hint="see everyone with: devlink user list")
    return admins[0]


def token_views(session: Session, principal: Principal, username: str | None = None) -> list[dict[str, Any]]:
    """Tokens of ``username`` (default: the principal); a member may list only their own."""
    query = (select(ApiToken, TrackerUser.username).join(TrackerUser, TrackerUser.id == ApiToken.user_id)
             .order_by(TrackerUser.username, ApiToken.id))
    if username is not None:
        if not principal.admin and username != principal.username:  # before the lookup: no oracle for names
            raise Forbidden("only an admin may list another person's tokens", reason="admin_only")
        query = query.where(ApiToken.user_id == _person(session, username).id)
    elif not principal.admin or principal.user_id is not None:
        query = query.where(ApiToken.user_id == principal.user_id)
    return [_token_view(row, name) for row, name in session.execute(query)]


def revoke_token(rt: Runtime, principal: Principal, token_id: int) -> dict[str, Any]:
    """Revoke a token of one's own (an admin: anyone's); revoking twice is harmless."""
    with rt.sessions.begin() as session:
        found = session.execute(select(ApiToken, TrackerUser.username)
                                .join(TrackerUser, TrackerUser.id == ApiToken.user_id)
                                .where(ApiToken.id == token_id)).first()
        if found is None or (not principal.admin and found.ApiToken.user_id != principal.user_id):
            raise NotFound(f"no token {token_id}")
        row = found.ApiToken
        if row.revoked_at is None:
            row.revoked_at = utcnow()
            log.info("people.token_revoked id=%d user=%s", row.id, found.username)
        return _token_view(row, found.username)


def token_principal(rt: Runtime, secret: str) -> Principal:
    """The person an API token acts for; Unauthorized (with the reason) when it cannot be used."""
    now = utcnow()
    with rt.sessions() as session:
        found = session.execute(select(ApiToken, TrackerUser)
                                .join(TrackerUser, TrackerUser.id == ApiToken.user_id)
                                .where(ApiToken.token_hash == _digest(secret))).first()
        if found is None:
            raise Unauthorized("unknown API token", reason="bad_token",
                               hint="make one with: devlink token create NAME")
        row, user = found.ApiToken, found.TrackerUser
        if user.password_hash is None:
            raise Unauthorized(f"API token {row.name!r}: its owner can no longer sign in", reason="token_revoked")
        if row.revoked_at is not None:
            raise Unauthorized(f"API token {row.name!r} was revoked", reason="token_revoked")
        if row.expires_at is not None and row.expires_at <= now:
            raise Unauthorized(f"API token {row.name!r} expired at {row.expires_at.isoformat()}",
                               reason="token_expired")
        principal = Principal(user.id, user.username, _role(user.role), read_only=row.read_only, token_id=row.id)
        stale = row.last_used_at is None or now - row.last_used_at > _SEEN_EVERY
    if stale:
        with rt.sessions.begin() as session:
            session.execute(update(ApiToken).where(ApiToken.id == principal.token_id).values(last_used_at=now))
    return principal
