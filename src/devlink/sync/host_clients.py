"""A host API client for one linked account: its settings, its decrypted credential, and a shared budget.

The engine owns everything a client must remember between calls and across
worker processes: the ETag cache (``HttpCacheEntry``) and the rate-limit
budget (columns on ``Account``).  Before spending quota on scheduled work,
``budget_wait`` says how long to wait so a reserve stays for webhook-driven syncs.

A credential goes only to the API origin it was linked for (``Account.api_origin``):
``client_for`` refuses an account whose host now points elsewhere.
"""

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from devlink.hosts.base import HostError, origin_of
from devlink.hosts.github import Credential, GitHubClient, HostSettings, RateLimit, api_url_for
from devlink.runtime import Runtime
from devlink.store.engine import insert_ignore
from devlink.store.models import Account, Host, HttpCacheEntry, table, utcnow

__all__ = [
    "RESERVE_FRACTION",
    "DbConditionalCache",
    "budget_wait",
    "client_for",
    "credential_of",
    "settings_of",
]

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


def settings_of(host: Host) -> HostSettings:
    web = (host.web_url or "https://github.com").rstrip("/")
    return HostSettings(
        web_url=web,
        api_url=(host.api_url or api_url_for(web)).rstrip("/"),
        ca_bundle=host.ca_bundle,
        proxy=host.proxy,
        timeout=host.timeout or 30.0,
    )


def credential_of(rt: Runtime, host: Host, account: Account) -> Credential:
    if account.auth_kind == "app":
        if not (host.app_id and host.app_private_key):
            raise HostError(f"the GitHub App of {host.name} is not configured", reason="auth")
        return Credential(
            app_id=host.app_id,
            private_key=rt.vault.decrypt(host.app_private_key),
            installation_id=account.installation_id,
        )
    if not account.credential:
        raise HostError(f"account {account.name} has no credential; link it again", reason="auth")
    return Credential(token=rt.vault.decrypt(account.credential))


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


def client_for(rt: Runtime, account_id: int) -> GitHubClient:
    """The client of a linked account; use it as a context manager."""
    with rt.sessions() as session:
        account = session.get(Account, account_id)
        if account is None:
            raise HostError(f"account {account_id} is no longer linked", reason="not_found")
        host = session.get(Host, account.host_id)
        assert host is not None
        settings = settings_of(host)
        _check_origin(account, host, settings)
        credential = credential_of(rt, host, account)
    return GitHubClient(
        settings, credential, cache=DbConditionalCache(rt, account_id), on_rate=RateRecorder(rt, account_id)
    )


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
