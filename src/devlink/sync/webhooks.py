"""Host deliveries: find whose secret made them, record them once, and act.

Order, so that a stranger's body costs nothing: the host kind reads the
headers (and the hook URL's query), which name the hook and what it was
created on (a repository, an account, or the host itself, such as a GitHub
App), which gives the secrets to try (401 when no such hook is known here);
then the body is read (at most the kind's ``max_body``) and checked with the
secret in constant time (401); only then is it parsed, depth first bounded
(400); then recorded (a replayed delivery id changes nothing; a host that
sends none is deduplicated on a hash of the body) and acted on.  Acting is
cheap and never waits on the host: a push records who the host says pushed
each of its commits (``CommitPush``, the first report stands) and queues a soft sync; a pull request
is written from the payload at once (visible in milliseconds) and queued for a
refresh from the API, which the payload alone cannot be trusted for.

A delivery is marked processed once its work is queued.  ``redeliver_pending``
runs from the schedule and acts on any left unprocessed (the process died
between answering 2xx and queueing), so nothing accepted is lost.
"""

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any, Protocol

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from devlink.domain.json_limits import JsonLimitError, loads_bounded
from devlink.errors import DeliveryError, NotFound
from devlink.hosts import HOSTS, for_kind
from devlink.hosts.base import (
    MAX_PUSHED_SHAS,
    Ping,
    PullRequestEvent,
    Push,
    RefChange,
    RemoteRepository,
    RepositoryEvent,
    Review,
    WebhookEvent,
    WebhookPayloadError,
    WebhookUnauthorized,
)
from devlink.hosts.protocol import DeliveryHead, HostKind
from devlink.runtime import Runtime
from devlink.store.engine import insert_ignore
from devlink.store.models import Account, Host, PullRequest, Repository, WebhookDelivery, table, utcnow
from devlink.store.people import CommitPush
from devlink.sync.host_clients import load_options
from devlink.sync.pulls import write_pull_request
from devlink.sync.trackers import known_project_keys

__all__ = ["Dispatcher", "Incoming", "Unauthorized", "incoming", "receive", "redeliver_pending", "verify_headers"]

log = logging.getLogger(__name__)

REDELIVER_AFTER = timedelta(seconds=60)

Unauthorized = WebhookUnauthorized


class Dispatcher(Protocol):
    """Where a delivery's work goes: the job queue."""

    def request_sync(self, repository_id: int, *, full: bool, trigger: str) -> str: ...

    def refresh_pull(self, repository_id: int, number: int) -> None: ...

    def discover(self, account_id: int) -> None: ...


@dataclass(frozen=True)
class Target:
    repository_id: int | None
    account_id: int | None


@dataclass(frozen=True)
class Signer:
    """A secret that may have made a delivery, and the hook it belongs to."""

    level: str  # repository | account | app
    secret: str  # Fernet token
    host_id: int
    repository_id: int | None = None  # repository hooks
    account_id: int | None = None  # repository (when linked through an account) and account hooks
    external_id: str | None = None  # the repository's id on the host (repository hooks)


@dataclass(frozen=True)
class Incoming:
    """A delivery known from its headers alone: the body is read only once this exists."""

    kind: HostKind
    head: DeliveryHead
    signers: tuple[Signer, ...]

    @property
    def event(self) -> str:
        return self.head.event


def host_kind_for_hooks(kind: str) -> HostKind:
    """The host kind a ``/hooks/{kind}`` URL names; 404 for one devlink does not know."""
    if kind not in HOSTS:
        raise NotFound(f"no host kind {kind!r} delivers here; devlink knows {', '.join(HOSTS)}")
    return for_kind(kind)


def incoming(rt: Runtime, kind: HostKind, headers: Mapping[str, str], query: Mapping[str, str]) -> Incoming:
    """Check a delivery's headers and find the secrets of the hook they name, before its body is read.

    The host kind answers 400 or 401 for headers that cannot be a delivery; 401
    (``unknown_hook``) for a hook devlink did not install.
    """
    head = kind.read_delivery(headers, query)
    with rt.sessions() as session:
        signers = _signers(session, kind, head)
    if not signers:
        log.info("hook.%s.unknown_hook hook=%s level=%s target=%s", kind.kind, head.hook_id, head.level,
                 head.target_id)
        if head.level == "app":
            raise Unauthorized(f"no host here has {kind.label} App {head.target_id} with a webhook secret",
                               reason="unknown_hook", hint="devlink host set --app-id ID --app-webhook-secret -")
        hook = f"webhook {head.hook_id} of" if head.hook_id else "a webhook on"
        raise Unauthorized(f"{hook} {head.level} {head.target_id} is not one devlink installed",
                           reason="unknown_hook", hint="unlinked or removed repositories lose their webhook; "
                                                       "discovery reinstalls the hooks of linked ones")
    return Incoming(kind, head, tuple(signers))


def _signers(session: Session, kind: HostKind, head: DeliveryHead) -> list[Signer]:
    """The stored secrets of the hook the headers name (more than one only across hosts with clashing ids).

    A hook being created has its secret stored but no id yet (the host may
    call it before its id comes back): for its target, that secret is a
    candidate too, while the repository is linked and the hook ``pending``.
    A host that does not send its hook's id is matched on the target alone.
    """
    hosts = select(Host.id).where(Host.kind.in_(kind.stored_kinds))
    if head.level == "repository":
        pending = and_(Repository.webhook_id.is_(None), Repository.webhook_state == "pending",
                       Repository.linked.is_(True), Repository.state == "active")
        installed = Repository.webhook_id == head.hook_id if head.hook_id else Repository.webhook_id.is_not(None)
        repositories = session.execute(select(
            Repository.host_id, Repository.webhook_secret, Repository.id, Repository.account_id,
        ).where(or_(installed, pending), Repository.external_id == head.target_id, Repository.host_id.in_(hosts)))
        return [Signer(head.level, secret, host_id, repository_id, account_id, head.target_id)
                for host_id, secret, repository_id, account_id in repositories if secret]
    if head.level == "account":
        query = select(Account.host_id, Account.hook_secret, Account.id).where(
            Account.external_id == head.target_id, Account.host_id.in_(hosts))
        if head.hook_id:
            query = query.where(or_(Account.hook_id == head.hook_id, Account.hook_id.is_(None)))
        accounts = session.execute(query)
        return [Signer(head.level, secret, host_id, account_id=account_id) for host_id, secret, account_id in accounts
                if secret]
    # the host's own hook (a GitHub App's): its kind says which host's stored secret it is
    found = []
    for host_id, options in session.execute(select(Host.id, Host.options).where(Host.id.in_(hosts))):
        secret = kind.host_secret(load_options(options), head)
        if secret:
            found.append(Signer(head.level, secret, host_id))
    return found


def verify_headers(rt: Runtime, incoming: Incoming) -> Signer | None:
    """For a host whose secret travels in a header: the signer, checked before the body is read (401 else).

    None for a host that signs the body: ``receive`` checks it then.  A caller without the secret never
    makes devlink read (up to the host's ``max_body``) what it sent.
    """
    return None if incoming.kind.signs_body else _verify(rt, incoming, b"")


def receive(rt: Runtime, dispatcher: Dispatcher, incoming: Incoming, body: bytes,
            signer: Signer | None = None) -> dict[str, Any]:
    """Authenticate (unless ``verify_headers`` did: ``signer``), parse, record and act on one delivery.

    Returns the answer's JSON body.
    """
    kind, head = incoming.kind, incoming.head
    signer = signer or _verify(rt, incoming, body)
    try:
        payload = loads_bounded(body)
    except JsonLimitError as exc:
        raise DeliveryError(str(exc), reason=exc.reason) from None
    if not isinstance(payload, dict):
        raise DeliveryError("body must be a JSON object", reason="bad_json")
    with rt.sessions() as session:
        target = _target(session, kind, signer, payload)
    try:
        parsed = kind.parse(head.event, payload)
    except WebhookPayloadError as exc:
        raise DeliveryError(exc.message, reason="bad_payload") from None
    event = head.event
    delivery_id = head.delivery_id or f"sha256:{hashlib.sha256(body).hexdigest()}"
    with rt.sessions.begin() as session:
        fresh = insert_ignore(
            session,
            table(WebhookDelivery),
            [{"host_kind": kind.kind, "delivery_id": delivery_id, "repository_id": target.repository_id,
              "account_id": target.account_id, "event": event[:100], "payload": body.decode("utf-8"),
              "received_at": utcnow()}],
            ["host_kind", "delivery_id"],
        )
    if not fresh:
        log.info("hook.%s.duplicate delivery=%s", kind.kind, delivery_id)
        return {"status": "duplicate", "delivery": delivery_id}
    status = _act(rt, dispatcher, parsed, target)
    _processed(rt, kind.kind, delivery_id)
    log.info("hook.%s.accepted event=%s delivery=%s repository=%s status=%s",
             kind.kind, event, delivery_id, target.repository_id, status)
    return {"status": status, "delivery": delivery_id, "repository": target.repository_id}


def _verify(rt: Runtime, incoming: Incoming, body: bytes) -> Signer:
    """The signer whose secret made the delivery; 401 when none did."""
    for signer in incoming.signers:
        if incoming.kind.verify(rt.vault.decrypt(signer.secret), body, incoming.head):
            return signer
    log.info("hook.%s.bad_signature hook=%s candidates=%d", incoming.kind.kind, incoming.head.hook_id,
             len(incoming.signers))
    hook = f"webhook {incoming.head.hook_id}" if incoming.head.hook_id else "the webhook"
    raise Unauthorized(f"the delivery was not made with the secret of {hook}")


def _target(session: Session, kind: HostKind, signer: Signer, payload: dict[str, Any]) -> Target:
    """The repository and account a verified delivery is for: its hook's, else the ones its payload names."""
    repo_id, account_hint = kind.payload_target(payload)
    if signer.level == "repository":
        if repo_id is not None and repo_id != signer.external_id:
            raise DeliveryError(f"the payload names repository {repo_id}, but its webhook belongs to repository "
                                f"{signer.external_id}", reason="bad_payload")
        return Target(signer.repository_id, signer.account_id)
    account_id = signer.account_id
    if signer.level == "app":  # one webhook for every installation: the payload says which
        account_id = None
        if account_hint is not None:
            option, value = account_hint
            stored = json.dumps({option: value})[1:-1]  # as ``dump_options`` writes it: SQL narrows the rows
            for row_id, options in session.execute(select(Account.id, Account.options).where(
                    Account.host_id == signer.host_id, Account.options.contains(stored, autoescape=True))):
                if load_options(options).get(option) == value:
                    account_id = row_id
                    break
    if account_id is None or repo_id is None:
        return Target(None, account_id)
    repository_id = session.scalars(select(Repository.id).where(
        Repository.host_id == signer.host_id, Repository.account_id == account_id,
        Repository.external_id == repo_id)).first()
    return Target(repository_id, account_id)


def _act(rt: Runtime, dispatcher: Dispatcher, event: WebhookEvent, target: Target) -> str:
    repository_id = target.repository_id
    if isinstance(event, Ping):
        if repository_id is not None:
            with rt.sessions.begin() as session:
                session.execute(update(Repository).where(Repository.id == repository_id).values(
                    webhook_state="installed", webhook_error=None))
        return "pong"
    if isinstance(event, RepositoryEvent):
        return _repository_event(rt, dispatcher, event, target)
    if repository_id is None or not _linked(rt, repository_id):
        return "ignored"
    if isinstance(event, Push):
        _record_pushes(rt, repository_id, event)  # before the sync whose smart commits read them
    if isinstance(event, Push | RefChange):
        return dispatcher.request_sync(repository_id, full=False, trigger="hook")
    if isinstance(event, PullRequestEvent) and event.pull is not None:
        _write_pull(rt, repository_id, event)
        dispatcher.refresh_pull(repository_id, event.pull.number)
        return "updated"
    return "ignored"


def _record_pushes(rt: Runtime, repository_id: int, event: Push) -> None:
    """Who pushed each commit of a verified push, for the ``pusher`` trust policy; the first report of a commit
    stands (a later push of the same commit, a replay or a redelivery changes nothing)."""
    if event.pusher is None or not event.pushed:
        return
    login = event.pusher.login[:200] if event.pusher.login else None
    email = event.pusher.email[:320] if event.pusher.email else None
    now = utcnow()
    rows = [{"repository_id": repository_id, "sha": sha, "pusher_login": login, "pusher_email": email,
             "pushed_at": now} for sha in event.pushed[:MAX_PUSHED_SHAS]]
    with rt.sessions.begin() as session:
        insert_ignore(session, table(CommitPush), rows, ["repository_id", "sha"])


def _linked(rt: Runtime, repository_id: int) -> bool:
    with rt.sessions() as session:
        row = session.get(Repository, repository_id)
        return bool(row and row.linked and row.state == "active")


def _write_pull(rt: Runtime, repository_id: int, event: PullRequestEvent) -> None:
    pull = event.pull
    assert pull is not None
    known = known_project_keys(rt, ask=False)  # the answer waits for nobody; refresh_pull re-links in the worker
    with rt.sessions.begin() as session:
        if event.review is not None:  # one review: fold it into the reviewers already known
            stored = session.scalars(select(PullRequest.reviewers).where(
                PullRequest.repository_id == repository_id, PullRequest.number == pull.number)).first()
            reviewers = {r["login"]: r["state"] for r in json.loads(stored or "[]")}
            reviewers[event.review.login] = event.review.state
            pull = replace(pull, reviewers=tuple(Review(login, state) for login, state in reviewers.items()))
        write_pull_request(session, repository_id, pull, known)


def _repository_event(rt: Runtime, dispatcher: Dispatcher, event: RepositoryEvent, target: Target) -> str:
    """A repository created, deleted, renamed, moved or changed: asked of the host when an account can.

    A signed body stays valid for ever, and a replay with a fresh delivery id
    passes the duplicate check, so for an account's repositories the payload
    only says *that* something changed: discovery reads what is true now
    (and auto-links, installs hooks, follows renames, marks gone).  A
    repository linked without an account has no one to ask; its payload stands.
    """
    remote = event.repository
    if target.account_id is not None:
        dispatcher.discover(target.account_id)
        return "discovering"
    if target.repository_id is None or remote is None:
        return "ignored"
    with rt.sessions.begin() as session:
        row = session.get(Repository, target.repository_id)
        if row is None:
            return "ignored"
        if event.action == "deleted":
            row.state = "gone"
            return "gone"
        _follow(session, row, remote)
    return "updated"


def _follow(session: Session, row: Repository, remote: RemoteRepository) -> None:
    """A rename, transfer or visibility change: the row (found by the host's id) takes the new facts."""
    host = session.get(Host, row.host_id)
    prefix = f"{host.name}/" if host is not None and row.name.startswith(f"{host.name}/") else ""
    wanted = prefix + remote.full_name
    taken = session.scalars(select(Repository.id).where(Repository.name == wanted, Repository.id != row.id)).first()
    if taken is None:
        row.name = wanted
    row.host_path = remote.full_name
    row.url = remote.clone_url or row.url
    row.web_url = remote.web_url or row.web_url
    row.private, row.archived = remote.private, remote.archived
    row.state = "active"


def _processed(rt: Runtime, kind: str, delivery_id: str) -> None:
    with rt.sessions.begin() as session:
        session.execute(update(WebhookDelivery).where(
            WebhookDelivery.host_kind == kind, WebhookDelivery.delivery_id == delivery_id
        ).values(processed_at=utcnow()))


def redeliver_pending(rt: Runtime, dispatcher: Dispatcher) -> int:
    """Act on deliveries recorded but never processed (a crash after the 2xx); return how many."""
    cutoff = utcnow() - REDELIVER_AFTER
    with rt.sessions() as session:
        pending = list(session.execute(select(
            WebhookDelivery.host_kind, WebhookDelivery.delivery_id, WebhookDelivery.event,
            WebhookDelivery.payload, WebhookDelivery.repository_id, WebhookDelivery.account_id,
        ).where(WebhookDelivery.processed_at.is_(None), WebhookDelivery.received_at < cutoff).limit(500)))
    for kind, delivery_id, event, payload, repository_id, account_id in pending:
        try:
            if kind in HOSTS:
                parsed = for_kind(kind).parse(event, json.loads(payload))
                if account_id is None and repository_id is not None:  # recorded before migration 0005
                    with rt.sessions() as session:
                        row = session.get(Repository, repository_id)
                        account_id = row.account_id if row else None
                _act(rt, dispatcher, parsed, Target(repository_id, account_id))
            elif repository_id is not None:
                dispatcher.request_sync(repository_id, full=False, trigger="hook")
        except Exception:  # one bad row must not block the others; it is marked and logged
            log.exception("hook.redeliver_failed delivery=%s", delivery_id)
        with rt.sessions.begin() as session:
            session.execute(update(WebhookDelivery).where(
                WebhookDelivery.host_kind == kind, WebhookDelivery.delivery_id == delivery_id
            ).values(processed_at=utcnow()))
    return len(pending)
