"""GitHub deliveries: find whose secret signs them, record them once, and act.

Order, so that a stranger's body costs nothing: the headers name the hook
(``X-GitHub-Hook-ID``) and what it was created on (repository, organisation or
GitHub App, with its id), which gives the secret to try (401 when no such hook
is known here); then the body is read (at most 25 MB) and its
``X-Hub-Signature-256`` checked over the raw bytes in constant time (401); only
then is it parsed, depth first bounded (400); then recorded (a replayed
``X-GitHub-Delivery`` changes nothing) and acted on.  Acting is cheap and never
waits on GitHub: a push queues a soft sync; a pull request is written from the
payload at once (visible in milliseconds) and queued for a refresh from the
API, which the payload alone cannot be trusted for.

A delivery is marked processed once its work is queued.  ``redeliver_pending``
runs from the schedule and acts on any left unprocessed (the process died
between answering 2xx and queueing), so nothing accepted is lost.
"""

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any, Protocol

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from devlink.domain.json_limits import JsonLimitError, loads_bounded
from devlink.errors import DeliveryError
from devlink.hosts.base import (
    Ping,
    PullRequestEvent,
    Push,
    RefChange,
    RemoteRepository,
    RepositoryEvent,
    Review,
    WebhookEvent,
    WebhookPayloadError,
)
from devlink.hosts.github_webhooks import (
    HOOK_ID_HEADER,
    SIGNATURE_HEADER,
    TARGET_ID_HEADER,
    TARGET_TYPE_HEADER,
    HookScope,
    parse_webhook,
    read_headers,
    verify_signature,
)
from devlink.runtime import Runtime
from devlink.store.engine import insert_ignore
from devlink.store.models import Account, Host, PullRequest, Repository, WebhookDelivery, table, utcnow
from devlink.sync.pulls import write_pull_request
from devlink.sync.trackers import known_project_keys

__all__ = ["Dispatcher", "Incoming", "Unauthorized", "incoming_github", "receive_github", "redeliver_pending"]

log = logging.getLogger(__name__)

HOST_KIND = "github"
REDELIVER_AFTER = timedelta(seconds=60)
_DELIVERY_ID = re.compile(r"^[A-Za-z0-9._:-]{1,200}$")  # GitHub's are GUIDs, globally unique: stored as sent
_HOOK_HEADERS = f"{HOOK_ID_HEADER}, {TARGET_TYPE_HEADER} and {TARGET_ID_HEADER}"


class Unauthorized(DeliveryError):
    status = 401
    default_reason = "bad_signature"


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
    """A secret that may have signed a delivery, and the hook it belongs to."""

    scope: HookScope
    secret: str  # Fernet token
    host_id: int
    repository_id: int | None = None  # repository hooks
    account_id: int | None = None  # repository (when linked through an account) and organisation hooks
    external_id: str | None = None  # the repository's id on the host (repository hooks)


@dataclass(frozen=True)
class Incoming:
    """A delivery known from its headers alone: the body is read only once this exists."""

    event: str
    delivery_id: str
    signature: str
    hook_id: str
    signers: tuple[Signer, ...]


def incoming_github(rt: Runtime, headers: Mapping[str, str]) -> Incoming:
    """Check a delivery's headers and find the secrets of the hook they name, before its body is read.

    400 for a missing event or delivery id; 401 (``unknown_hook``) without the hook headers or
    for a hook devlink did not install; 401 (``bad_signature``) without a signature.
    """
    sent = read_headers(headers)
    if not sent.event:
        raise DeliveryError("missing X-GitHub-Event header", reason="bad_event")
    if not sent.delivery_id or not _DELIVERY_ID.match(sent.delivery_id):
        raise DeliveryError("missing or malformed X-GitHub-Delivery header", reason="bad_delivery_id")
    if not (sent.hook_id and sent.scope and sent.target_id):
        raise Unauthorized(f"missing or malformed webhook headers: GitHub sends {_HOOK_HEADERS} with every delivery",
                           reason="unknown_hook")
    if not sent.signature:
        raise Unauthorized(f"missing {SIGNATURE_HEADER} header: set a secret on the webhook")
    with rt.sessions() as session:
        signers = _signers(session, sent.scope, sent.hook_id, sent.target_id)
    if not signers:
        log.info("hook.github.unknown_hook hook=%s scope=%s target=%s", sent.hook_id, sent.scope, sent.target_id)
        if sent.scope == "app":
            raise Unauthorized(f"no host here has GitHub App {sent.target_id} with a webhook secret",
                               reason="unknown_hook", hint="devlink host set --app-id ID --app-webhook-secret -")
        raise Unauthorized(f"webhook {sent.hook_id} of {sent.scope} {sent.target_id} is not one devlink installed",
                           reason="unknown_hook", hint="unlinked or removed repositories lose their webhook; "
                                                       "discovery reinstalls the hooks of linked ones")
    return Incoming(sent.event, sent.delivery_id, sent.signature, sent.hook_id, tuple(signers))


def _signers(session: Session, scope: HookScope, hook_id: str, target_id: str) -> list[Signer]:
    """The stored secrets of the hook the headers name (more than one only across hosts with clashing ids).

    A hook being created has its secret stored but no id yet (the host pings
    it before its id comes back): for its target, that secret is a candidate
    too, while the repository is linked and the hook ``pending``.
    """
    if scope == "repository":
        repositories = session.execute(select(
            Repository.host_id, Repository.webhook_secret, Repository.id, Repository.account_id,
        ).where(or_(Repository.webhook_id == hook_id,
                    and_(Repository.webhook_id.is_(None), Repository.webhook_state == "pending",
                         Repository.linked.is_(True), Repository.state == "active")),
                Repository.external_id == target_id))
        return [Signer(scope, secret, host_id, repository_id, account_id, target_id)
                for host_id, secret, repository_id, account_id in repositories if secret]
    if scope == "organization":
        accounts = session.execute(select(Account.host_id, Account.hook_secret, Account.id).where(
            or_(Account.hook_id == hook_id, Account.hook_id.is_(None)), Account.external_id == target_id))
        return [Signer(scope, secret, host_id, account_id=account_id) for host_id, secret, account_id in accounts
                if secret]
    # A GitHub App's webhook: one per App, its hook id never stored; the App id says which host's secret
    hosts = session.execute(select(Host.id, Host.app_webhook_secret).where(Host.app_id == target_id))
    return [Signer(scope, secret, host_id) for host_id, secret in hosts if secret]


def receive_github(rt: Runtime, dispatcher: Dispatcher, incoming: Incoming, body: bytes) -> dict[str, Any]:
    """Authenticate, parse, record and act on one delivery; returns the answer's JSON body."""
    signer = _verify(rt, incoming, body)
    try:
        payload = loads_bounded(body)
    except JsonLimitError as exc:
        raise DeliveryError(str(exc), reason=exc.reason) from None
    if not isinstance(payload, dict):
        raise DeliveryError("body must be a JSON object", reason="bad_json")
    with rt.sessions() as session:
        target = _target(session, signer, payload)
    try:
        parsed = parse_webhook(incoming.event, payload)
    except WebhookPayloadError as exc:
        raise DeliveryError(exc.message, reason="bad_payload") from None
    event, delivery_id = incoming.event, incoming.delivery_id
    with rt.sessions.begin() as session:
        fresh = insert_ignore(
            session,
            table(WebhookDelivery),
            [{"host_kind": HOST_KIND, "delivery_id": delivery_id, "repository_id": target.repository_id,
              "account_id": target.account_id, "event": event, "payload": body.decode("utf-8"),
              "received_at": utcnow()}],
            ["host_kind", "delivery_id"],
        )
    if not fresh:
        log.info("hook.github.duplicate delivery=%s", delivery_id)
        return {"status": "duplicate", "delivery": delivery_id}
    status = _act(rt, dispatcher, parsed, target)
    _processed(rt, delivery_id)
    log.info("hook.github.accepted event=%s delivery=%s repository=%s status=%s",
             event, delivery_id, target.repository_id, status)
    return {"status": status, "delivery": delivery_id, "repository": target.repository_id}


def _verify(rt: Runtime, incoming: Incoming, body: bytes) -> Signer:
    """The signer whose secret made ``X-Hub-Signature-256`` over the raw body; 401 when none did."""
    for signer in incoming.signers:
        if verify_signature(rt.vault.decrypt(signer.secret).encode(), body, incoming.signature):
            return signer
    log.info("hook.github.bad_signature hook=%s candidates=%d", incoming.hook_id, len(incoming.signers))
    raise Unauthorized(f"signature does not match the secret of webhook {incoming.hook_id}")


def _target(session: Session, signer: Signer, payload: dict[str, Any]) -> Target:
    """The repository and account a verified delivery is for: its hook's, else the ones its payload names."""
    repo = payload.get("repository")
    repo_id = str(repo["id"]) if isinstance(repo, dict) and isinstance(repo.get("id"), int | str) else None
    if signer.scope == "repository":
        if repo_id is not None and repo_id != signer.external_id:
            raise DeliveryError(f"the payload names repository {repo_id}, but its webhook belongs to repository "
                                f"{signer.external_id}", reason="bad_payload")
        return Target(signer.repository_id, signer.account_id)
    account_id = signer.account_id
    if signer.scope == "app":  # one webhook for every installation: the payload says which
        installation = payload.get("installation")
        installation_id = installation.get("id") if isinstance(installation, dict) else None
        account_id = None if installation_id is None else session.scalars(select(Account.id).where(
            Account.host_id == signer.host_id, Account.installation_id == str(installation_id))).first()
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
    if isinstance(event, Push | RefChange):
        return dispatcher.request_sync(repository_id, full=False, trigger="hook")
    if isinstance(event, PullRequestEvent) and event.pull is not None:
        _write_pull(rt, repository_id, event)
        dispatcher.refresh_pull(repository_id, event.pull.number)
        return "updated"
    return "ignored"


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
    row.url = remote.clone_url or row.url
    row.web_url = remote.web_url or row.web_url
    row.private, row.archived = remote.private, remote.archived
    row.state = "active"


def _processed(rt: Runtime, delivery_id: str) -> None:
    with rt.sessions.begin() as session:
        session.execute(update(WebhookDelivery).where(
            WebhookDelivery.host_kind == HOST_KIND, WebhookDelivery.delivery_id == delivery_id
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
            if kind == HOST_KIND:
                parsed = parse_webhook(event, json.loads(payload))
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
