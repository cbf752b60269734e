"""The tracker in use: choosing it, what it is, and what devlink keeps of an outside tracker's answers.

No ``tracker_connections`` row means the built-in tracker.  An outside tracker
(kind from ``trackers.OUTSIDE``) is verified before it is kept; its
credential is Fernet-encrypted and never leaves this module but to its
client.  Project keys are cached in the database for ``PROJECT_KEYS_TTL``
seconds, shared by every process, so a sync or a webhook asks the tracker at
most once per period and a new project is picked up within minutes; issue
details for the issue page for ``ISSUE_TTL`` seconds.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from devlink.errors import InvalidInput, NotFound, TrackerError
from devlink.runtime import Runtime
from devlink.store.engine import insert_ignore
from devlink.store.models import Repository, SyncCursor, table, utcnow
from devlink.store.tracker import DevPushItem, DevPushState, TrackerAlias, TrackerCacheEntry, TrackerConnection
from devlink.trackers import OUTSIDE, module_for
from devlink.trackers.base import DevelopmentSink, OutsideTracker, TrackerSettings, TrackerUnavailable
from devlink.trackers.builtin import BuiltinTracker
from devlink.trackers.builtin import add_alias as builtin_alias

__all__ = [
    "ISSUE_TTL",
    "PROJECT_KEYS_TTL",
    "Change",
    "add_alias",
    "add_outside_alias",
    "cached_answer",
    "describe",
    "issue_details",
    "known_project_keys",
    "open_outside",
    "open_sink",
    "outside_kind",
    "remember_answer",
    "use_builtin",
    "use_outside",
]

log = logging.getLogger(__name__)

PROJECT_KEYS_TTL = 300
ISSUE_TTL = 60
_ROW = 1


@dataclass
class Change:
    """What switching the tracker did, and what the user should know follows from it."""

    tracker: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def _settings(rt: Runtime, row: TrackerConnection) -> TrackerSettings:
    return TrackerSettings(url=row.url, token=rt.vault.decrypt(row.credential), email=row.email,
                           ca_bundle=row.ca_bundle, proxy=_proxy(rt, row.proxy), timeout=row.timeout or 30.0)


def _proxy(rt: Runtime, stored: str | None) -> str | None:
    """A proxy with a password is kept encrypted; a Fernet token never holds ``://``, a proxy URL always does."""
    if not stored or "://" in stored:
        return stored
    return rt.vault.decrypt(stored)


def _checked_proxy(proxy: str | None) -> str | None:
    if not proxy:
        return None
    parts = urlsplit(proxy.strip())
    try:
        port_ok = parts.port is None or 0 < parts.port < 65536
    except ValueError:
        port_ok = False
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok or len(proxy) > 300:
        shown = "" if "@" in proxy else f" {proxy[:100]!r}"  # a password may sit there, with or without a scheme
        raise InvalidInput(f"the proxy{shown} is not an http(s) proxy URL", reason="bad_url",
                           hint="for example http://proxy.example.com:3128 (user:password@ may come before the host)")
    return proxy.strip()


def _view(row: TrackerConnection | None, rt: Runtime) -> dict[str, Any]:
    if row is None:
        return {"kind": "builtin"}
    proxy = _proxy(rt, row.proxy)
    return {
        "kind": row.kind, "url": row.url, "deployment": row.deployment, "email": row.email,
        "user": row.user, "server_title": row.server_title, "version": row.version,
        "ca_bundle": row.ca_bundle, "proxy": _redacted_proxy(proxy), "timeout": row.timeout or 30.0,
        "development_data": ("devinfo" if row.devinfo_client_id else
                             "remote links" if row.deployment == "datacenter" else "off"),
        "devinfo": ({"client_id": row.devinfo_client_id, "gateway_url": row.gateway_url, "cloud_id": row.cloud_id}
                    if row.devinfo_client_id else None),
        "connected_at": row.updated_at.isoformat(),
    }


def _redacted_proxy(proxy: str | None) -> str | None:
    if not proxy or "@" not in proxy:
        return proxy
    scheme, _, rest = proxy.partition("://")
    return f"{scheme}://***@{rest.rpartition('@')[2]}"


def _forget_pushes(session: Session, *, due: bool) -> None:
    """Nothing was sent to a new tracker: forget what the old one got; ``due``: every linked repository is due."""
    session.execute(delete(DevPushItem))
    session.execute(delete(DevPushState))
    session.execute(delete(SyncCursor).where(SyncCursor.entity_type == "tracker_push"))  # development_push's
    if due:
        session.add_all(DevPushState(repository_id=r.id, repository_name=r.name[:200], state="pending", message="",
                                     sent=0, unknown_keys="[]", updated_at=utcnow())
                        for r in session.scalars(select(Repository).where(Repository.linked.is_(True))))


def describe(rt: Runtime) -> dict[str, Any]:
    """The tracker in use, as ``tracker show`` and ``GET /api/v1/tracker`` give it (never a credential)."""
    with rt.sessions() as session:
        return _view(session.get(TrackerConnection, _ROW), rt)


def outside_kind(rt: Runtime) -> str | None:
    with rt.sessions() as session:
        return session.scalar(select(TrackerConnection.kind).where(TrackerConnection.id == _ROW))


def use_outside(rt: Runtime, kind: str, *, url: str, token: str, email: str | None = None,
                ca_bundle: str | None = None, proxy: str | None = None, timeout: float | None = None,
                devinfo_client_id: str | None = None, devinfo_client_secret: str | None = None,
                gateway_url: str | None = None) -> Change:
    """Verify an outside tracker and make it the one in use; raise TrackerError saying what is wrong.

    ``devinfo_*``: the OAuth credentials Jira Cloud issues to on-premises tools, for its development
    information API (``gateway_url``: Atlassian's API gateway unless a test points elsewhere).
    """
    if kind not in OUTSIDE:
        raise InvalidInput(f"unknown tracker kind {kind!r}; one of: builtin, {', '.join(sorted(OUTSIDE))}",
                           reason="bad_kind")
    token = token.strip()
    if not token:
        raise InvalidInput("no token given; pass it on standard input: --token -", reason="invalid")
    if timeout is not None and not 0 < timeout <= 600:
        raise InvalidInput("--timeout must be more than 0 and at most 600 seconds", reason="invalid")
    proxy = _checked_proxy(proxy)
    email = email.strip() if email else None
    if email is not None and "@" not in email:
        raise InvalidInput(f"{email!r} is not an e-mail address", reason="invalid")
    module = module_for(kind)
    settings = TrackerSettings(url=url, token=token, email=email, ca_bundle=ca_bundle, proxy=proxy,
                               timeout=timeout or 30.0)
    site = module.verify(settings, cloud=email is not None)
    if bool(devinfo_client_id) != bool(devinfo_client_secret):
        raise InvalidInput("the development information API needs both the client id and its secret",
                           reason="invalid")
    devinfo = None
    if devinfo_client_id and devinfo_client_secret:
        devinfo = module.verify_devinfo(settings, site, client_id=devinfo_client_id.strip(),
                                        client_secret=devinfo_client_secret.strip(), gateway_url=gateway_url)
    with rt.sessions.begin() as session:
        before = session.get(TrackerConnection, _ROW)
        same_site = before is not None and before.url == site.url  # before the row takes the new values
        row = before or TrackerConnection(id=_ROW)
        row.kind, row.url, row.deployment = kind, site.url, "cloud" if site.cloud else "datacenter"
        row.email, row.credential = email, rt.vault.encrypt(token)
        row.ca_bundle, row.timeout = ca_bundle, timeout
        row.proxy = rt.vault.encrypt(proxy) if proxy and "@" in proxy else proxy
        row.server_title, row.version, row.user = site.title or None, site.version or None, site.user
        row.devinfo_client_id = devinfo["client_id"] if devinfo else None
        row.devinfo_client_secret = rt.vault.encrypt(devinfo["client_secret"]) if devinfo else None
        row.gateway_url = devinfo["gateway_url"] if devinfo else None
        row.cloud_id = devinfo["cloud_id"] if devinfo else None
        row.updated_at = utcnow()
        if before is None:
            session.add(row)
        session.execute(delete(TrackerCacheEntry))
        if not same_site:  # another site: its users and what it was sent are not the old one's
            session.execute(delete(TrackerAlias))
            _forget_pushes(session, due=True)
        session.flush()
        view = _view(row, rt)
    # the tracker's own words first (which site), then what follows for any tracker
    notes = module.connected(site, development_data=devinfo is not None, devlink_url=rt.settings.public_url,
                             devlink_url_set=bool(rt.settings.base_url))
    notes[1:1] = ["from now on only keys of the site's projects are linked, and smart commits act on its issues",
                  "links already made for keys of other projects stay until a full resync: devlink sync --full"]
    if urlsplit(site.url).scheme == "http" and urlsplit(site.url).hostname not in ("127.0.0.1", "localhost", "::1"):
        notes.insert(3, f"{site.url} is plain http: the token crosses the network unencrypted; use https if the "
                        "site has it")
    log.info("tracker.connected kind=%s deployment=%s", kind, view["deployment"])
    return Change(view, notes)


def use_builtin(rt: Runtime) -> Change:
    """Go back to the built-in tracker; the outside tracker's credential is deleted."""
    with rt.sessions.begin() as session:
        was = session.get(TrackerConnection, _ROW)
        if was is not None:
            session.delete(was)
        session.execute(delete(TrackerCacheEntry))
        session.execute(delete(TrackerAlias))
        _forget_pushes(session, due=False)
    notes = ["the built-in tracker is in use: smart commits act on its issues, and keys link when their project "
             "is one of its projects (every key, while it has none)"]
    if was is not None:
        notes.append("the outside tracker's credential is deleted; links made meanwhile stay until a full "
                     "resync: devlink sync --full")
    return Change({"kind": "builtin"}, notes)


@contextmanager
def open_outside(rt: Runtime, *, patient: bool = True) -> Iterator[OutsideTracker | None]:
    """The outside tracker in use, for one unit of work; None when the built-in one is.

    ``patient``: wait out a 429 or 5xx within the client's budget (background
    work); a page being rendered is not, and shows a note instead.
    """
    with rt.sessions() as session:
        row = session.get(TrackerConnection, _ROW)
        if row is None:
            yield None
            return
        kind, settings, cloud, me = row.kind, _settings(rt, row), row.deployment == "cloud", row.user
    tracker: OutsideTracker = module_for(kind).open_tracker(
        settings, cloud=cloud, aliases=lambda email: _aliases(rt, email),
        cached_keys=lambda fetch: _cached_keys(rt, fetch), patient=patient, sign=rt.vault.sign, me=me,
        verify=rt.vault.verify)
    try:
        yield tracker
    finally:
        tracker.close()


@contextmanager
def open_sink(rt: Runtime) -> Iterator[DevelopmentSink | None]:
    """Where the outside tracker takes development data; None with the built-in tracker or without a sink."""
    with rt.sessions() as session:
        row = session.get(TrackerConnection, _ROW)
        if row is None:
            yield None
            return
        kind, settings, cloud = row.kind, _settings(rt, row), row.deployment == "cloud"
        devinfo = None
        if row.devinfo_client_id and row.devinfo_client_secret:
            devinfo = {"client_id": row.devinfo_client_id, "client_secret": rt.vault.decrypt(row.devinfo_client_secret),
                       "gateway_url": row.gateway_url, "cloud_id": row.cloud_id}
    sink: DevelopmentSink | None = module_for(kind).open_sink(settings, cloud=cloud, devinfo=devinfo)
    try:
        yield sink
    finally:
        if sink is not None:
            sink.close()


def known_project_keys(rt: Runtime, *, ask: bool = True) -> frozenset[str] | None:
    """The project keys that link (docs/issue-keys.md): the built-in tracker's, or the outside one's, cached.

    ``ask=False`` (a webhook being answered): never ask the outside tracker; the cached keys however old,
    or none at all, so nothing links until a worker, which may ask, writes the links again.
    """
    with rt.sessions() as session:
        if session.get(TrackerConnection, _ROW) is None:
            return BuiltinTracker(session).project_keys()
        cached = _cache_get(rt, "projects", PROJECT_KEYS_TTL if ask else None, session)
        if cached is not None:
            return frozenset(cached)
        if not ask:
            return frozenset()
    with open_outside(rt) as tracker:
        if tracker is None:  # switched back meanwhile
            return known_project_keys(rt)
        return tracker.project_keys()


def _cached_keys(rt: Runtime, fetch: Callable[[], frozenset[str]]) -> frozenset[str]:
    """Fresh keys from the cache, else from ``fetch``; when the tracker is down, the last keys it gave."""
    cached = _cache_get(rt, "projects", PROJECT_KEYS_TTL)
    if cached is not None:
        return frozenset(cached)
    try:
        keys = fetch()
    except TrackerUnavailable:
        stale = _cache_get(rt, "projects", None)
        if stale is None:
            raise  # nothing to go by: the sync fails and is retried, rather than link the wrong keys
        log.warning("tracker.projects_stale reason=unavailable")
        return frozenset(stale)
    _cache_put(rt, "projects", sorted(keys))
    return keys


def issue_details(rt: Runtime, key: str) -> dict[str, Any] | None:
    """The outside tracker's issue for the issue page and API, or None with the built-in tracker.

    ``{"key", "summary", "status", "assignee", "url"}`` or ``{"key", "error"}``
    when the tracker cannot say; ``{"key", "missing": True}`` when it has no
    such issue.
    """
    kind = outside_kind(rt)
    if kind is None:
        return None
    cached = _cache_get(rt, f"issue:{key}", ISSUE_TTL)
    if cached is not None:
        return dict(cached)
    try:
        with open_outside(rt, patient=False) as tracker:
            if tracker is None:
                return None
            details = tracker.issue(key)
    except Exception as exc:  # remembered as briefly as an answer: a page must not wait on a dead site each time
        reason = exc.reason if isinstance(exc, TrackerError) else type(exc).__name__
        log.warning("tracker.issue_failed reason=%s", reason)
        message = exc.message if isinstance(exc, TrackerError) else f"its answer could not be used ({reason})"
        failed = {"key": key, "tracker": kind, "error": message}
        _cache_put(rt, f"issue:{key}", failed)
        return failed
    found: dict[str, Any] = ({"key": key, "tracker": kind, "missing": True} if details is None else
                             {"key": details.key, "tracker": kind, "summary": details.summary,
                              "status": details.status, "assignee": details.assignee, "url": details.url})
    _cache_put(rt, f"issue:{key}", found)
    return found


def add_alias(rt: Runtime, email: str, user: str) -> dict[str, str | None]:
    """Map an author e-mail to a user of the tracker in use; ``name`` is the outside tracker's name for them."""
    if outside_kind(rt) is not None:
        return add_outside_alias(rt, email, user)
    with rt.sessions.begin() as session:
        builtin_alias(session, email, user)
    return {"email": email.strip().lower(), "user": user, "name": None}


def add_outside_alias(rt: Runtime, email: str, user: str) -> dict[str, str | None]:
    """Map an author e-mail to an outside tracker's user (for Jira: a user name or an account id)."""
    address = email.strip().lower()
    if "@" not in address:
        raise InvalidInput(f"{email!r} is not an e-mail address")
    user = user.strip()
    if not user or len(user) > 200 or any(c.isspace() for c in user):
        raise InvalidInput(f"{user!r} is not a user name or account id")
    with open_outside(rt, patient=False) as tracker:
        if tracker is None:
            raise NotFound("no outside tracker is in use", hint="devlink tracker use KIND --url URL --token -")
        name = tracker.user(user)
        hint = tracker.user_hint
    if name is None:
        raise NotFound(f"the tracker has no user {user!r}", hint=hint)
    with rt.sessions.begin() as session:
        alias = session.scalars(select(TrackerAlias).where(TrackerAlias.email == address)).first()
        if alias is None:
            session.add(TrackerAlias(email=address, user=user, display_name=name))
        else:
            alias.user, alias.display_name = user, name
    return {"email": address, "user": user, "name": name}


def _aliases(rt: Runtime, email: str) -> list[tuple[str, str | None]]:
    with rt.sessions() as session:
        return [(u, n) for u, n in session.execute(
            select(TrackerAlias.user, TrackerAlias.display_name).where(TrackerAlias.email == email))]


def cached_answer(rt: Runtime, key: str, ttl: int) -> Any:
    """What the outside tracker answered under ``key`` (JSON), if younger than ``ttl`` seconds; else None."""
    return _cache_get(rt, key, ttl)


def remember_answer(rt: Runtime, key: str, value: Any) -> None:
    """Keep the outside tracker's answer ``value`` (JSON) under ``key``, shared by every process."""
    _cache_put(rt, key, value)


def _cache_get(rt: Runtime, key: str, ttl: int | None, session: Session | None = None) -> Any:
    """The cached answer if younger than ``ttl`` seconds (any age for None); read in ``session`` when given."""
    if session is None:
        with rt.sessions() as own:
            return _cache_get(rt, key, ttl, own)
    entry = session.get(TrackerCacheEntry, key)
    if entry is None or (ttl is not None and entry.fetched_at < utcnow() - timedelta(seconds=ttl)):
        return None
    return json.loads(entry.value)


def _cache_put(rt: Runtime, key: str, value: Any) -> None:
    text = json.dumps(value)
    with rt.sessions.begin() as session:
        entry = session.get(TrackerCacheEntry, key)
        if entry is not None:
            entry.value, entry.fetched_at = text, utcnow()
        else:  # another process may be storing it right now: first one wins, both are fresh
            insert_ignore(session, table(TrackerCacheEntry), [{"key": key, "value": text, "fetched_at": utcnow()}],
                          ["key"])
