"""GitHub deliveries: find whose secret signs them, record them once, and act.

Order: decode, authenticate (the signature must match the secret of the
repository the payload names, or of its organisation's hook), parse, record
(a replayed ``X-GitHub-Delivery`` changes nothing), then act.  Acting is cheap
and never waits on GitHub: a push queues a soft sync; a pull request is
written from the payload at once (visible in milliseconds) and queued for a
refresh from the API, which the payload alone cannot be trusted for.

A delivery is marked processed once its work is queued.  ``redeliver_pending``
runs from the schedule and acts on any left unprocessed (the process died
between answering 2xx and queueing), so nothing accepted is lost.
"""

import json
import logging
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any, Protocol

from sqlalchemy import select, update
from sqlalchemy.orm import Session

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
from devlink.hosts.github_webhooks import parse_webhook, verify_signature
from devlink.runtime import Runtime
from devlink.store.engine import insert_ignore
from devlink.store.models import Account, Host, PullRequest, Repository, WebhookDelivery, table, utcnow
from devlink.sync.pulls import write_pull_request
from devlink.trackers.builtin import BuiltinTracker

__all__ = ["Dispatcher", "Unauthorized", "receive_github", "redeliver_pending"]

log = logging.getLogger(__name__)

HOST_KIND = "github"
REDELIVER_AFTER = timedelta(seconds=60)


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


def receive_github(
    rt: Runtime, dispatcher: Dispatcher, *, event: str, delivery_id: str, body: bytes, signature: str | None
) -> dict[str, Any]:
    """Authenticate, record and act on one delivery; returns the answer's JSON body."""
    try:
        # GitHub sends UTF-8; json.loads(bytes) would also take UTF-16/32, which the record below cannot store
        text = body.decode("utf-8")
        payload = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DeliveryError(f"body is not UTF-8 JSON: {exc}", reason="bad_json") from None
    if not isinstance(payload, dict):
        raise DeliveryError("body must be a JSON object", reason="bad_json")
    target = _authenticate(rt, payload, body, signature)
    try:
        parsed = parse_webhook(event, payload)
    except WebhookPayloadError as exc:
        raise DeliveryError(exc.message, reason="bad_payload") from None
    with rt.sessions.begin() as session:
        fresh = insert_ignore(
            session,
            table(WebhookDelivery),
            [{"host_kind": HOST_KIND, "delivery_id": delivery_id, "repository_id": target.repository_id,
              "event": event, "payload": text, "received_at": utcnow()}],
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


def _authenticate(rt: Runtime, payload: dict[str, Any], body: bytes, signature: str | None) -> Target:
    """The repository (or account) whose secret signed this body; 401 when none did."""
    if not signature:
        raise Unauthorized("missing X-Hub-Signature-256 header: set a secret on the webhook")
    repo = payload.get("repository") if isinstance(payload.get("repository"), dict) else None
    org = payload.get("organization") if isinstance(payload.get("organization"), dict) else None
    owner = (repo or {}).get("owner") or {}
    logins = {str(x).lower() for x in ((org or {}).get("login"), owner.get("login"), owner.get("name")) if x}
    with rt.sessions() as session:
        candidates: list[tuple[Target, str]] = []
        if repo and repo.get("id") is not None:
            for row in session.scalars(select(Repository).where(Repository.external_id == str(repo["id"]))):
                if row.webhook_secret:
                    candidates.append((Target(row.id, row.account_id), row.webhook_secret))
                account = session.get(Account, row.account_id) if row.account_id else None
                if account is not None and account.hook_secret:
                    candidates.append((Target(row.id, account.id), account.hook_secret))
        installation = payload.get("installation") if isinstance(payload.get("installation"), dict) else None
        if installation and installation.get("id") is not None:  # a GitHub App's webhook, signed with its secret
            candidates.extend(_app_candidates(session, repo, str(installation["id"])))
        if logins:
            for account in session.scalars(select(Account).where(Account.hook_secret.is_not(None))):
                if account.name.lower() in logins and account.hook_secret:
                    candidates.append((Target(None, account.id), account.hook_secret))
    for target, secret in candidates:
        if verify_signature(rt.vault.decrypt(secret).encode(), body, signature):
            return target
    log.info("hook.github.bad_signature candidates=%d", len(candidates))
    raise Unauthorized("signature does not match the secret of any linked repository or account")


def _app_candidates(session: Session, repo: dict[str, Any] | None, installation_id: str) -> list[tuple[Target, str]]:
    """Accounts linked through this App installation, with their host's App webhook secret."""
    found: list[tuple[Target, str]] = []
    accounts = session.execute(
        select(Account.id, Host.id, Host.app_webhook_secret).join(Host, Host.id == Account.host_id)
        .where(Account.installation_id == installation_id, Host.app_webhook_secret.is_not(None))
    ).all()
    for account_id, host_id, secret in accounts:
        if not secret:
            continue
        repository_id = None
        if repo and repo.get("id") is not None:
            repository_id = session.scalars(select(Repository.id).where(
                Repository.host_id == host_id, Repository.external_id == str(repo["id"]))).first()
        found.append((Target(repository_id, account_id), secret))
    return found


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
    with rt.sessions.begin() as session:
        known = BuiltinTracker(session).project_keys()
        if event.review is not None:  # one review: fold it into the reviewers already known
            stored = session.scalars(select(PullRequest.reviewers).where(
                PullRequest.repository_id == repository_id, PullRequest.number == pull.number)).first()
            reviewers = {r["login"]: r["state"] for r in json.loads(stored or "[]")}
            reviewers[event.review.login] = event.review.state
            pull = replace(pull, reviewers=tuple(Review(login, state) for login, state in reviewers.items()))
        write_pull_request(session, repository_id, pull, known)


def _repository_event(rt: Runtime, dispatcher: Dispatcher, event: RepositoryEvent, target: Target) -> str:
    remote = event.repository
    if event.action == "created" and target.account_id is not None:
        dispatcher.discover(target.account_id)  # auto-link decides; discovery installs the hook
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
            WebhookDelivery.payload, WebhookDelivery.repository_id,
        ).where(WebhookDelivery.processed_at.is_(None), WebhookDelivery.received_at < cutoff).limit(500)))
    for kind, delivery_id, event, payload, repository_id in pending:
        try:
            if kind == HOST_KIND:
                parsed = parse_webhook(event, json.loads(payload))
                account_id = None
                if repository_id is not None:
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
