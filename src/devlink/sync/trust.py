"""Who a smart commit may act as: the trust policies, checked before a commit's commands run.

Anyone can write any author e-mail into a commit, so mapping the author's
e-mail to a user (the ``author`` policy, the default) lets a committer act as
someone else.  Two stricter policies, set per repository or per account
(``Repository.smart_commit_trust``, else ``Account.smart_commit_trust``, else
``author``; see docs/smart-commits.md, "Who a smart commit acts as"):

* ``pusher``: the host's verified push webhook said who pushed the commit
  first (``CommitPush``, written by ``sync/webhooks.py``); that person, found
  by their e-mail (the built-in mapping) or by their login on that host
  (``UserIdentity``), must be the author's user and no one else.  A commit no
  webhook reported (a scheduled sync, the plain-git post-receive hook) is refused.
* ``signed``: git verifies the commit's SSH signature against an
  allowed-signers file written from the ``SigningKey`` rows (principal: the
  user name; namespace ``git``); the key must be one of the author's user.

``refusals`` says, per commit, why its commands must not run; the smart-commit
pass records that reason in the ledger for every command and runs none.  It
never raises for a commit: a failure to check (no ``ssh-keygen``, no mirror)
is every commit's reason.  Users here are devlink's own people
(``TrackerUser`` with their e-mails and aliases), whichever tracker the
commands land in.  The settings and the people's facts are ``sync/identities.py``.
"""

import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from devlink.domain.smart_commits import effective_trust
from devlink.errors import DevlinkError, GitError
from devlink.hosts.git import Mirror
from devlink.runtime import Runtime
from devlink.store.models import Account, Host, Repository
from devlink.store.people import CommitPush, SigningKey, UserIdentity
from devlink.store.tracker import TrackerUser
from devlink.trackers.builtin import BuiltinTracker

__all__ = ["SSH_KEY_TYPES", "TrustContext", "is_public_key_blob", "refusals", "trust_context"]

SSH_KEY_TYPES = frozenset({
    "ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com",
})
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,3}")
# a principal written into the allowed-signers file as is: no space, comma, quote or wildcard
_PRINCIPAL = re.compile(r"[A-Za-z0-9._@+][A-Za-z0-9._@+-]{0,99}")


def is_public_key_blob(key_type: str, blob: str) -> bool:
    """Whether (``key_type``, ``blob``) can be written into an allowed-signers line as they are."""
    return key_type in SSH_KEY_TYPES and _BASE64.fullmatch(blob) is not None


# ---------------------------------------------------------------------------------------- the check


@dataclass(frozen=True)
class TrustContext:
    """What one smart-commit pass of a repository checks its commits with."""

    policy: str
    repository_id: int
    provider: str | None  # the host's name: where pushers' logins are looked up
    mirror: Path
    location: str  # how messages name the repository


def trust_context(rt: Runtime, session: Session, repository: Repository) -> TrustContext:
    account = session.get(Account, repository.account_id) if repository.account_id is not None else None
    host = session.get(Host, repository.host_id)
    return TrustContext(
        policy=effective_trust(repository.smart_commit_trust, account.smart_commit_trust if account else None),
        repository_id=repository.id, provider=host.name if host is not None else None,
        mirror=Path(rt.settings.mirrors_dir) / f"{repository.id}.git", location=repository.name)


def refusals(rt: Runtime, context: TrustContext, commits: Sequence[tuple[str, str]]) -> dict[str, str]:
    """sha → why the commands of that commit must not run, for the (sha, author e-mail) pairs given."""
    if context.policy == "author" or not commits:
        return {}
    try:
        with rt.sessions() as session:
            if context.policy == "pusher":
                return _pusher_refusals(session, context, commits)
            return _signed_refusals(session, context, commits)
    except DevlinkError as exc:  # the check itself failed: nothing of this pass may run unchecked
        reason = f"refused by the {context.policy} policy: {exc.message}" + (f" ({exc.hint})" if exc.hint else "")
        return {sha: reason for sha, _ in commits}


def _author(session: Session, email: str, policy: str) -> tuple[str | None, str | None]:
    """(the author's user, None) or (None, the refusal)."""
    users = BuiltinTracker(session).users_for_email(email)
    if len(users) == 1:
        return users[0], None
    if not users:
        return None, (f"refused by the {policy} policy: no user has the author's e-mail {email} "
                      f"(map it to one: devlink tracker alias {email} USERNAME)")
    return None, f"refused by the {policy} policy: more than one user has the author's e-mail {email}"


def _pusher_refusals(session: Session, context: TrustContext, commits: Sequence[tuple[str, str]]) -> dict[str, str]:
    shas = [sha for sha, _ in commits]
    pushes: dict[str, tuple[str | None, str | None]] = {}
    for start in range(0, len(shas), 500):
        for sha, login, email in session.execute(select(CommitPush.sha, CommitPush.pusher_login,
                                                        CommitPush.pusher_email).where(
                CommitPush.repository_id == context.repository_id, CommitPush.sha.in_(shas[start:start + 500]))):
            pushes[sha] = (login, email)
    tracker = BuiltinTracker(session)
    found: dict[str, str] = {}
    for sha, author_email in commits:
        author, refusal = _author(session, author_email, "pusher")
        if refusal is None and sha not in pushes:
            refusal = ("refused by the pusher policy: no host webhook said who pushed this commit (a commit read by "
                       "a scheduled sync or a plain-git push hook has no pusher)")
        if refusal is None:
            login, email = pushes[sha]
            pushers = set(tracker.users_for_email(email)) if email else set()
            if login and context.provider:
                pushers.update(session.scalars(select(TrackerUser.username).join(
                    UserIdentity, UserIdentity.user_id == TrackerUser.id).where(
                    UserIdentity.provider == context.provider, UserIdentity.login == login.lower())))
            who = f"{context.provider or 'host'} user {login!r}" if login else "a user"
            who += f" ({email})" if email else ""
            if not pushers:
                hint = f"devlink identity add USER {context.provider} {login}" if login else "an e-mail of theirs"
                refusal = f"refused by the pusher policy: the push was made by {who}, who is no known user ({hint})"
            elif author not in pushers:
                refusal = f"refused by the pusher policy: the push was made by {who}, who is not {author}, the author"
            elif pushers != {author}:
                refusal = (f"refused by the pusher policy: the push was made by {who}, who maps to more than one user "
                           f"({', '.join(sorted(pushers))}), not to {author}, the author, alone")
        if refusal is not None:
            found[sha] = refusal
    return found


def _signed_refusals(session: Session, context: TrustContext, commits: Sequence[tuple[str, str]]) -> dict[str, str]:
    principals: dict[str, str] = {}  # principal in the allowed-signers file → username
    lines = []
    for user_id, username, public_key in session.execute(
            select(SigningKey.user_id, TrackerUser.username, SigningKey.public_key)
            .join(TrackerUser, TrackerUser.id == SigningKey.user_id).where(SigningKey.kind == "ssh")):
        principal = username if _PRINCIPAL.fullmatch(username) else f"devlink-user-{user_id}"
        principals[principal] = username
        parts = public_key.split()
        if len(parts) >= 2 and is_public_key_blob(parts[0], parts[1]):
            lines.append(f'{principal} namespaces="git" {parts[0]} {parts[1]}\n')
    if not Mirror(context.mirror, context.location).exists():
        raise GitError(f"no mirror of {context.location} to read signatures from", reason="git")
    with tempfile.TemporaryDirectory(prefix="devlink-signers-") as scratch:
        allowed = Path(scratch) / "allowed_signers"
        allowed.write_text("".join(lines), encoding="utf-8")
        seen = Mirror(context.mirror, context.location).signatures([sha for sha, _ in commits], allowed)
    found: dict[str, str] = {}
    for sha, author_email in commits:
        author, refusal = _author(session, author_email, "signed")
        status, signer = seen.get(sha, ("", ""))
        if refusal is not None:
            pass
        elif not status:
            refusal = "refused by the signed policy: the commit could not be read from the mirror"
        elif status == "N":
            refusal = "refused by the signed policy: the commit is not signed"
        elif status == "U" or (status == "G" and signer not in principals):
            refusal = ("refused by the signed policy: the commit is signed with an SSH key no user registered "
                       f"(register it: devlink signing-key add {author} FILE)")
        elif status == "G" and principals[signer] != author:
            refusal = (f"refused by the signed policy: the commit is signed with {principals[signer]}'s key, "
                       f"but the author is {author}")
        elif status == "E":
            refusal = ("refused by the signed policy: the signature cannot be checked (only SSH signatures are "
                       "supported; GPG and X.509 are not yet)")
        elif status != "G":
            refusal = f"refused by the signed policy: the signature does not verify (git's status {status})"
        if refusal is not None:
            found[sha] = refusal
    return found
