"""A host API client for one linked account: its settings, its decrypted credential, and a shared budget.

The engine owns everything a client must remember between calls and across
worker processes: the ETag cache (``HttpCacheEntry``), the rate-limit
budget (columns on ``Account``) and an expiring OAuth token's refresh.  Before
spending quota on scheduled work, ``budget_wait`` says how long to wait so a
reserve stays for webhook-driven syncs.

A credential goes only to the API origin it was linked for (``Account.api_origin``):
``client_for`` refuses an account whose host now points elsewhere.
"""

import json
import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from sqlalchemy import or_, select, update

from devlink.crypto import Vault
from devlink.hosts import for_kind
from devlink.hosts.base import HostError, RemoteRepository, origin_of
from devlink.hosts.protocol import Credential, HostClient, HostKind, HostSettings, RateLimit
from devlink.runtime import Runtime
from devlink.store.engine import insert_ignore
from devlink.store.models import Account, Host, HttpCacheEntry, Repository, table, utcnow
from devlink.sync.holders import dead_here, this_process

__all__ = [
    "RESERVE_FRACTION",
    "DbConditionalCache",
    "budget_wait",
    "client_for",
    "credential_of",
    "dump_options",
    "host_kind",
    "load_options",
    "remote_of",
    "settings_of",
]

log = logging.getLogger(__name__)

#: an expiring token is refreshed this long before it expires, so a request never carries one about to lapse
REFRESH_BEFORE = timedelta(minutes=5)
#: a refresh claimed longer ago than this by a process that cannot be judged is taken over
REFRESH_STALE = timedelta(seconds=60)  # at least; a slow host's claim lasts as long as its calls may (_stale_after)
REFRESH_WAIT = 30.0  # seconds a worker waits for another one's refresh

#: Share of an account's hourly budget kept for webhook-driven work.
RESERVE_FRACTION = 0.1
RESERVE_MIN = 50


class DbConditionalCache:
    """ETags and bodies per (account, URL) in the database, shared by every worker."""

    def __init__(self, rt: Runtime, account_id: int) -> None:
        self._rt, self._account_id = rt, account_id

    def get(self, url: str) -> tuple[str, str] | None:
        with self._rt.sessions() as session:
            row = session.execute(
                select(HttpCacheEntry.etag, HttpCacheEntry.body).where(
                    HttpCacheEntry.account_id == self._account_id, HttpCacheEntry.url == url
                )
            ).first()
        return (row[0], row[1]) if row else None

    def put(self, url: str, etag: str, body: str) -> None:
        if len(url) > 2000:
            return
        with self._rt.sessions.begin() as session:
            changed = session.execute(
                update(HttpCacheEntry)
                .where(HttpCacheEntry.account_id == self._account_id, HttpCacheEntry.url == url)
                .values(etag=etag, body=body, updated_at=utcnow())
            )
            if not changed.rowcount:  # type: ignore[attr-defined]
                # another worker may be storing the same URL right now (an account-wide page): first one wins
                insert_ignore(session, table(HttpCacheEntry), [
                    {"account_id": self._account_id, "url": url, "etag": etag, "body": body, "updated_at": utcnow()}
                ], ["account_id", "url"])


def host_kind(host: Host) -> HostKind:
    return for_kind(host.kind)


def settings_of(host: Host) -> HostSettings:
    kind = host_kind(host)
    web = (host.web_url or kind.default_web_url).rstrip("/")
    return HostSettings(
        web_url=web,
        api_url=(host.api_url or kind.api_url_for(web)).rstrip("/"),
        ca_bundle=host.ca_bundle,
        proxy=host.proxy,
        timeout=host.timeout or 30.0,
    )


def load_options(raw: str | None, vault: Vault | None = None, secret: frozenset[str] = frozenset()) -> dict[str, str]:
    """A row's JSON options; with a vault, the ``secret`` ones decrypted."""
    try:
        values = json.loads(raw) if raw else {}
    except ValueError:
        values = {}
    options = {str(k): str(v) for k, v in values.items() if isinstance(v, str)} if isinstance(values, dict) else {}
    if vault is not None:
        options = {k: vault.decrypt(v) if k in secret else v for k, v in options.items()}
    return options


def dump_options(options: Mapping[str, str | None], vault: Vault, secret: frozenset[str]) -> str | None:
    """Options as stored: empty values left out, the ``secret`` ones encrypted."""
    kept = {k: vault.encrypt(v) if k in secret else v for k, v in options.items() if v}
    return json.dumps(kept, sort_keys=True) if kept else None


def credential_of(rt: Runtime, host: Host, account: Account) -> Credential:
    kind = host_kind(host)
    options = {**load_options(host.options, rt.vault, kind.secret_options),
               **load_options(account.options, rt.vault, kind.secret_options)}
    if account.auth_kind == "app":
        return Credential(auth_kind="app", options=options)
    if not account.credential:
        raise HostError(f"account {account.name} has no credential; link it again", reason="auth")
    return Credential(
        token=rt.vault.decrypt(account.credential), auth_kind=account.auth_kind,
        refresh_token=rt.vault.decrypt(account.refresh_token) if account.refresh_token else None,
        expires_at=account.token_expires_at, options=options,
    )


def remote_of(row: Repository) -> RemoteRepository:
    """A linked repository as the host knows it, for the calls that name one."""
    path = row.host_full_name
    return RemoteRepository(external_id=row.external_id or "", full_name=path, owner=path.rpartition("/")[0],
                            clone_url=row.url, web_url=row.web_url or "", private=row.private,
                            archived=row.archived, default_branch=row.default_branch)


class RateRecorder:
    """Writes the budget the host last reported onto the account, where every worker reads it."""

    def __init__(self, rt: Runtime, account_id: int) -> None:
        self._rt, self._account_id = rt, account_id

    def __call__(self, rate: RateLimit) -> None:
        with self._rt.sessions.begin() as session:
            session.execute(
                update(Account)
                .where(Account.id == self._account_id)
                .values(rate_limit=rate.limit, rate_remaining=rate.remaining, rate_reset_at=rate.reset_at)
            )


def client_for(rt: Runtime, account_id: int) -> HostClient:
    """The client of a linked account, its token refreshed first when about to expire; a context manager."""
    with rt.sessions() as session:
        account = session.get(Account, account_id)
        if account is None:
            raise HostError(f"account {account_id} is no longer linked", reason="not_found")
        host = session.get(Host, account.host_id)
        assert host is not None
        settings = settings_of(host)
        _check_origin(account, host, settings)
        credential = credential_of(rt, host, account)
        kind = host_kind(host)
    if _due(credential):
        credential = _refresh(rt, account_id, credential)
    return kind.client(settings, credential, cache=DbConditionalCache(rt, account_id),
                       on_rate=RateRecorder(rt, account_id))


def _due(credential: Credential, now: datetime | None = None) -> bool:
    expires = credential.expires_at
    return expires is not None and expires - (now or datetime.now(UTC)) <= REFRESH_BEFORE


def _stale_after(settings: HostSettings) -> timedelta:
    """When a claim may be judged abandoned: never before the holder's refresh call could still answer
    (three attempts of the host's timeout, and some), so a slow host is not refreshed twice."""
    return max(REFRESH_STALE, timedelta(seconds=3 * settings.timeout + 30))


def _refresh(rt: Runtime, account_id: int, seen: Credential) -> Credential:
    """Refresh an expiring token once, whichever of several workers gets here first.

    Refresh tokens rotate (the host revokes the old one when it hands out the
    next), so exactly one process may spend it: the one whose conditional
    UPDATE claims the account while its token is still the one it read.  The
    others wait for the new token and read it; a claim left by a process that
    died is taken over at once, one nobody can judge after ``REFRESH_STALE``.
    """
    me = this_process()
    deadline = time.monotonic() + REFRESH_WAIT
    while True:
        with rt.sessions() as session:
            account = session.get(Account, account_id)
            if account is None:
                raise HostError(f"account {account_id} is no longer linked", reason="not_found")
            host = session.get(Host, account.host_id)
            assert host is not None
            current = credential_of(rt, host, account)
            stored_token, holder = account.credential, account.refresh_holder
            settings, kind = settings_of(host), host_kind(host)
            client_id = host.oauth_client_id
            client_secret = rt.vault.decrypt(host.oauth_client_secret) if host.oauth_client_secret else None
        if not _due(current):
            return current  # another worker refreshed it meanwhile
        if not current.refresh_token or not (client_id and client_secret):
            raise HostError(f"the token of account {account_id} expired and cannot be refreshed (no refresh token "
                            "or no OAuth application on the host); link the account again", reason="auth")
        now = utcnow()
        free = or_(Account.refresh_holder.is_(None), Account.refresh_started_at < now - _stale_after(settings))
        if holder and dead_here(holder):
            free = or_(free, Account.refresh_holder == holder)
        with rt.sessions.begin() as session:
            claimed = session.execute(update(Account).where(
                Account.id == account_id, Account.credential == stored_token, free,
            ).values(refresh_holder=me, refresh_started_at=now)).rowcount  # type: ignore[attr-defined]
        if claimed:
            return _spend_refresh(rt, account_id, kind, settings, client_id, client_secret, current, me,
                                  stored_token)
        if time.monotonic() > deadline:
            raise HostError(f"another worker is still refreshing the token of account {account_id}",
                            reason="network", retry_after=5.0)
        time.sleep(0.05)


def _spend_refresh(
    rt: Runtime, account_id: int, kind: HostKind, settings: HostSettings, client_id: str, client_secret: str,
    current: Credential, me: str, stored_token: str | None,
) -> Credential:
    assert current.refresh_token is not None
    try:
        grant = kind.refresh_oauth_token(settings, client_id, client_secret, current.refresh_token)
    except Exception as exc:  # whatever failed, the claim is released so the next worker tries at once
        reason, message = (exc.reason, exc.message) if isinstance(exc, HostError) else ("invalid", type(exc).__name__)
        with rt.sessions.begin() as session:
            session.execute(update(Account).where(Account.id == account_id, Account.refresh_holder == me).values(
                refresh_holder=None, refresh_started_at=None, last_error_reason=reason,
                last_error_message=message, last_error_at=utcnow()))
        raise
    refresh = grant.refresh_token or current.refresh_token
    # kept while the account still holds the token this refresh replaced, even if a slow claim was taken
    # over meanwhile: the host has spent the old refresh token, so these are the only ones that work now
    unchanged = Account.credential.is_(None) if stored_token is None else Account.credential == stored_token
    with rt.sessions.begin() as session:
        session.execute(update(Account).where(Account.id == account_id,
                                              or_(Account.refresh_holder == me, unchanged)).values(
            credential=rt.vault.encrypt(grant.access_token), refresh_token=rt.vault.encrypt(refresh),
            token_expires_at=grant.expires_at, refresh_holder=None, refresh_started_at=None))
    log.info("account.token_refreshed account=%s expires=%s", account_id, grant.expires_at)
    return Credential(token=grant.access_token, auth_kind=current.auth_kind, refresh_token=refresh,
                      expires_at=grant.expires_at, options=current.options)


def _check_origin(account: Account, host: Host, settings: HostSettings) -> None:
    """Refuse to hand out a client whose credential would go to another API than the one it was linked for."""
    origin = origin_of(settings.api_url)
    if account.api_origin == origin:
        return
    linked_for = account.api_origin or "an API address devlink did not record"
    raise HostError(
        f"the credential of {account.name} was linked for {linked_for}, but host {host.name} now has its API at "
        f"{origin}; devlink does not send it there", reason="auth",
        hint=f"if {settings.api_url} is right, an admin confirms it: devlink host set --url {settings.web_url} "
             f"--api-url {settings.api_url}",
    )


def budget_wait(account: Account, trigger: str, now: datetime | None = None) -> float:
    """Seconds to wait before spending this account's quota on ``trigger`` work (0: go ahead).

    Scheduled and manual work stops at the reserve; webhook-driven work may use
    the reserve and waits only once the budget is spent.
    """
    if account.rate_remaining is None or account.rate_reset_at is None or account.rate_limit is None:
        return 0.0  # nothing known yet, or a GHES without rate limiting
    now = now or datetime.now(UTC)
    reset = account.rate_reset_at
    if reset <= now:
        return 0.0
    floor = 0 if trigger == "hook" else max(RESERVE_MIN, int(account.rate_limit * RESERVE_FRACTION))
    if account.rate_remaining > floor:
        return 0.0
    return (reset - now + timedelta(seconds=1)).total_seconds()
