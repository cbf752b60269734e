"""The settings and facts the smart-commit trust policies (``sync/trust.py``) rest on.

A repository's or an account's policy; a person's logins on hosts
(``UserIdentity``: who a pusher is, for ``pusher``); their SSH public keys
(``SigningKey``: whose signature a commit carries, for ``signed``), checked
with ``ssh-keygen -l`` and known by their SHA-256 fingerprint.

Usage::

    set_repository_trust(rt, "octo/api", "pusher")
    add_identity(rt, "alice", "github.com", "alice-gh")
    add_signing_key(rt, "alice", Path("~/.ssh/id_ed25519.pub").expanduser().read_text())
"""

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from devlink.domain.smart_commits import TRUST_POLICIES, effective_trust
from devlink.errors import Conflict, GitError, InvalidInput, NotFound
from devlink.hosts.git import ssh_key_fingerprint
from devlink.runtime import Runtime
from devlink.store.engine import insert_ignore
from devlink.store.models import Account, Host, table, utcnow
from devlink.store.people import SigningKey, UserIdentity
from devlink.store.queries import account_view
from devlink.store.tracker import TrackerUser
from devlink.sync.accounts import find_account
from devlink.sync.repositories import find_repository
from devlink.sync.trust import is_public_key_blob

__all__ = [
    "DEFAULT",
    "add_identity",
    "add_signing_key",
    "check_trust",
    "list_identities",
    "list_signing_keys",
    "remove_identity",
    "remove_signing_key",
    "set_account_trust",
    "set_repository_trust",
]

#: What ``--trust`` takes besides the policies: back to inheriting (the account's, then ``author``).
DEFAULT = "default"
_MAX_KEY_TEXT = 16 * 1024


# ---------------------------------------------------------------------------------------- the policy settings


def check_trust(value: str | None) -> str | None:
    """A policy as stored: one of ``TRUST_POLICIES``, or None for ``default`` / None (inherit)."""
    if value is None:
        return None
    policy = value.strip().lower()
    if policy == DEFAULT:
        return None
    if policy not in TRUST_POLICIES:
        raise InvalidInput(f"unknown smart-commit trust policy {value!r}: use author, pusher or signed "
                           f"(or {DEFAULT} to inherit)", reason="invalid")
    return policy


def set_repository_trust(rt: Runtime, ref: str | int, value: str | None) -> dict[str, str | None]:
    """Set (or, with None / ``default``, clear) a repository's policy; returns the stored and the effective one."""
    policy = check_trust(value)
    with rt.sessions.begin() as session:
        repository = find_repository(session, ref)
        repository.smart_commit_trust = policy
        account = session.get(Account, repository.account_id) if repository.account_id is not None else None
        return {"name": repository.name, "smart_commit_trust": policy,
                "effective": effective_trust(policy, account.smart_commit_trust if account else None)}


def set_account_trust(rt: Runtime, ref: str, value: str | None) -> dict[str, Any]:
    """Set (or clear) an account's policy, the default of its repositories that set none; returns its view."""
    policy = check_trust(value)
    with rt.sessions.begin() as session:
        account = find_account(session, ref)
        account.smart_commit_trust = policy
        host = session.get(Host, account.host_id)
        assert host is not None
        return account_view(account, host)


# ---------------------------------------------------------------------------------------- people's facts


def _user(session: Session, username: str) -> TrackerUser:
    user = session.scalars(select(TrackerUser).where(TrackerUser.username == username.strip())).first()
    if user is None:
        raise NotFound(f"no user {username!r}", hint="create one: devlink tracker user USERNAME --email ADDRESS")
    return user


def _host(session: Session, name: str) -> Host:
    host = session.scalars(select(Host).where(Host.name == name.strip())).first()
    if host is None or host.kind == "git":
        known = sorted(n for n, kind in session.execute(select(Host.name, Host.kind)) if kind != "git")
        why = "plain git repositories report no pusher" if host is not None else f"no host {name!r}"
        raise NotFound(f"{why}; identities are for hosts: {', '.join(known) or 'none yet'}",
                       hint="see them with: devlink host list")
    return host


def _login(login: str) -> str:
    """Host logins compare without case (GitHub's and GitLab's do), so they are stored lower-case."""
    value = login.strip().lower()
    if not value or len(value) > 200 or any(c.isspace() for c in value):
        raise InvalidInput(f"{login!r} is not a login: 1 to 200 characters, no spaces")
    return value


#: the ``host`` that names the outside tracker (Jira): a person's identity there decides what they may see
TRACKER = "tracker"


def _tracker_login(rt: Runtime, login: str) -> str:
    """A user of the outside tracker in use, as it knows them (Jira: a user name or account id), checked there."""
    from devlink.sync.trackers import open_outside

    value = login.strip()
    if not value or len(value) > 200 or any(c.isspace() for c in value):
        raise InvalidInput(f"{login!r} is not a tracker user: 1 to 200 characters, no spaces")
    with open_outside(rt, patient=False) as tracker:
        if tracker is None:
            raise NotFound("the built-in tracker is in use: its users are devlink's own, there is nothing to link",
                           hint="an identity in the tracker is for an outside tracker: devlink tracker use KIND …")
        if tracker.user(value) is None:
            raise NotFound(f"the tracker has no user {value!r}", hint=tracker.user_hint)
    return value


def add_identity(rt: Runtime, username: str, host: str, login: str) -> dict[str, str]:
    """Say that ``login`` on ``host`` (a host's name, e.g. ``github.com``, or ``tracker`` for the outside
    tracker) is ``username``; Conflict if it is someone's already."""
    tracker_login = _tracker_login(rt, login) if host.strip() == TRACKER else None  # asked before any write
    with rt.sessions.begin() as session:
        user = _user(session, username)
        provider = TRACKER if tracker_login is not None else _host(session, host).name
        value = tracker_login if tracker_login is not None else _login(login)
        inserted = insert_ignore(session, table(UserIdentity),
                                 [{"user_id": user.id, "provider": provider, "login": value}], ["provider", "login"])
        if not inserted:
            owner = session.scalar(select(TrackerUser.username).join(UserIdentity, UserIdentity.user_id ==
                                                                     TrackerUser.id)
                                   .where(UserIdentity.provider == provider, UserIdentity.login == value))
            raise Conflict(f"{provider} login {value!r} is already {owner}'s",
                           hint=f"remove it first: devlink identity remove {owner} {provider} {value}")
        return {"user": user.username, "host": provider, "login": value}


def remove_identity(rt: Runtime, username: str, host: str, login: str) -> None:
    with rt.sessions.begin() as session:
        user = _user(session, username)
        removed = session.execute(delete(UserIdentity).where(
            UserIdentity.user_id == user.id, UserIdentity.provider == host.strip(),
            UserIdentity.login == (login.strip() if host.strip() == TRACKER else login.strip().lower()))
        ).rowcount  # type: ignore[attr-defined]
        if not removed:
            raise NotFound(f"{user.username} has no {host} login {login!r}",
                           hint=f"see them with: devlink identity list {user.username}")


def list_identities(rt: Runtime, username: str | None = None) -> list[dict[str, str]]:
    with rt.sessions() as session:
        query = (select(TrackerUser.username, UserIdentity.provider, UserIdentity.login)
                 .join(TrackerUser, TrackerUser.id == UserIdentity.user_id)
                 .order_by(TrackerUser.username, UserIdentity.provider, UserIdentity.login))
        if username is not None:
            query = query.where(UserIdentity.user_id == _user(session, username).id)
        return [{"user": user, "host": provider, "login": login} for user, provider, login in session.execute(query)]


def _public_key_line(text: str) -> tuple[str, str, str]:
    """(type, base64, comment) of one OpenSSH public key line; InvalidInput for anything else."""
    if len(text) > _MAX_KEY_TEXT:
        raise InvalidInput("that is not an SSH public key: more than 16 KiB")
    if "PRIVATE KEY" in text:
        raise InvalidInput("that is a private key: give the public one (the .pub file), and keep this one secret")
    if "BEGIN PGP" in text:
        raise InvalidInput("that is a GPG key: GPG signing keys are not supported yet; give an SSH public key")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if len(lines) != 1:
        raise InvalidInput(f"give exactly one SSH public key line, not {len(lines)}")
    parts = lines[0].split(maxsplit=2)
    if len(parts) < 2 or not is_public_key_blob(parts[0], parts[1]):
        raise InvalidInput("that is not an OpenSSH public key line (TYPE BASE64 [COMMENT], e.g. ssh-ed25519 AAAA…);"
                           " GPG keys are not supported yet")
    return parts[0], parts[1], parts[2] if len(parts) == 3 else ""


def add_signing_key(rt: Runtime, username: str, public_key: str) -> dict[str, str]:
    """Register an SSH public key whose commit signatures count as ``username``'s; Conflict if it is registered."""
    key_type, blob, comment = _public_key_line(public_key)
    try:
        fingerprint = ssh_key_fingerprint(f"{key_type} {blob}")
    except GitError as exc:
        if "not installed" in exc.message:
            raise
        raise InvalidInput(f"that is not a valid SSH public key ({exc.message})") from None
    with rt.sessions.begin() as session:
        user = _user(session, username)
        inserted = insert_ignore(session, table(SigningKey), [{
            "user_id": user.id, "kind": "ssh", "public_key": f"{key_type} {blob} {comment}".strip(),
            "fingerprint": fingerprint, "created_at": utcnow()}], ["fingerprint"])
        if not inserted:
            owner = session.scalar(select(TrackerUser.username).join(SigningKey, SigningKey.user_id == TrackerUser.id)
                                   .where(SigningKey.fingerprint == fingerprint))
            raise Conflict(f"the key {fingerprint} is already registered, to {owner}")
    return {"user": user.username, "kind": "ssh", "type": key_type, "fingerprint": fingerprint, "comment": comment}


def remove_signing_key(rt: Runtime, username: str, fingerprint: str) -> None:
    with rt.sessions.begin() as session:
        user = _user(session, username)
        removed = session.execute(delete(SigningKey).where(
            SigningKey.user_id == user.id, SigningKey.fingerprint == fingerprint.strip())).rowcount  # type: ignore[attr-defined]
        if not removed:
            raise NotFound(f"{user.username} has no signing key {fingerprint!r}",
                           hint=f"see them with: devlink signing-key list {user.username}")


def list_signing_keys(rt: Runtime, username: str | None = None) -> list[dict[str, str]]:
    with rt.sessions() as session:
        query = (select(TrackerUser.username, SigningKey.kind, SigningKey.public_key, SigningKey.fingerprint,
                        SigningKey.created_at)
                 .join(TrackerUser, TrackerUser.id == SigningKey.user_id)
                 .order_by(TrackerUser.username, SigningKey.id))
        if username is not None:
            query = query.where(SigningKey.user_id == _user(session, username).id)
        found = []
        for user, kind, public_key, fingerprint, created_at in session.execute(query):
            parts = public_key.split(maxsplit=2)
            found.append({"user": user, "kind": kind, "type": parts[0], "fingerprint": fingerprint,
                          "comment": parts[2] if len(parts) == 3 else "", "created_at": created_at.isoformat()})
        return found
