"""Jira (Data Center / Server and Cloud) as the tracker, over its REST API (v2 on Data Center, v3 on Cloud).

``JiraClient`` is a thin httpx client: the credential goes only to the site's
own origin (no redirects are followed), every answer is size-bounded before
it is parsed, and 429 / 5xx answers are retried, honouring ``Retry-After``,
within a small budget; past it the caller gets ``TrackerUnavailable``.
``verify`` checks a site before devlink uses it; ``JiraTracker`` is the
``OutsideTracker`` smart commits run against.

Jira acts as the integration user whose token devlink holds, so the author's
own permission is checked first (Data Center: user permission search; Cloud:
the bulk permission check), and every comment and work log names the commit
and author it came from.  Each effect carries devlink's marker (a comment
property and a footer line; a footer line on work logs; an issue property on a
transition), which a retry after a crash looks for before acting again.

Why not the ``jira`` package: it pulls requests (a second HTTP stack beside
httpx, with its own proxy and TLS settings) and follows redirects with the
credential; the dozen calls devlink makes are simpler to keep bounded here.
"""

from __future__ import annotations

import hmac
import itertools
import json
import math
import re
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from devlink.domain.json_limits import JsonLimitError, loads_bounded
from devlink.domain.text import http_url
from devlink.errors import InvalidInput, TrackerError
from devlink.trackers.base import IssueDetails, Origin, TrackerSettings, TrackerUnavailable

__all__ = [
    "MIN_DATA_CENTER_VERSION",
    "JiraClient",
    "JiraTracker",
    "SiteInfo",
    "connected",
    "http_client",
    "jira_time",
    "open_sink",
    "open_tracker",
    "verify",
    "verify_devinfo",
]

#: Personal access tokens, which Data Center authenticates devlink with, arrived in Jira 8.14.
MIN_DATA_CENTER_VERSION = (8, 14)
MAX_ANSWER_BYTES = 16 * 1024 * 1024
MAX_PROJECT_PAGES = 200  # of 100 projects each, on Cloud
MAX_ATTEMPTS = 5  # of one call, however short the waits Jira asks for
RETRY_BUDGET = 30.0  # seconds one client may spend waiting on 429 / 5xx before giving up for this pass
USER_AGENT = "devlink (+https://github.com/devlink)"
_PERMISSION_KEYS = {"browse": "BROWSE_PROJECTS", "comment": "ADD_COMMENTS", "log_work": "WORK_ON_ISSUES",
                    "transition": "TRANSITION_ISSUES",
                    "view_development": "VIEW_DEV_TOOLS"}  # Jira Software's "View Development Tools"
_RETRIED = {429, 500, 502, 503, 504}


@dataclass(frozen=True)
class SiteInfo:
    """What ``verify`` learned: the kind of site and whom the credential acts as."""

    url: str
    cloud: bool
    title: str
    version: str
    user: str  # Data Center: the user name; Cloud: the account id
    user_display: str


def connected(site: SiteInfo, *, development_data: bool = False, devlink_url: str = "",
              devlink_url_set: bool = True) -> list[str]:
    """What ``tracker use`` tells: which site it is first, then where development data goes from now on."""
    notes = [f"connected to {'Jira Cloud' if site.cloud else 'Jira Data Center / Server'} {site.version} at "
             f"{site.url} as {site.user_display}"]
    if not devlink_url_set and not site.cloud:
        notes.append(f"Jira's links to devlink's issue pages use {devlink_url}; set DEVLINK_BASE_URL to the "
                     "address people reach devlink at")
    if site.cloud and not development_data:
        notes.append("development data is not sent to Jira Cloud without the devinfo OAuth credentials "
                     "(--devinfo-client-id, --devinfo-client-secret-file); docs/jira.md says how to create them")
    else:
        notes.append("each repository's development data is sent to the site after its next sync")
    return notes


def _host(url: str) -> str:
    return urlsplit(url).netloc or url


def jira_time(moment: datetime) -> str:
    """Jira's ``started`` format, ``2021-01-17T12:34:00.000+0000``; nothing else is accepted."""
    utc = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}+0000"


def site_url(url: str) -> str:
    """The site's base URL as devlink stores it: http(s), no credentials, query or trailing slash."""
    text = url.strip().rstrip("/")
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(f"{url!r} is not an http(s) URL of a Jira site", reason="bad_url",
                           hint="for example https://jira.example.com or https://your-site.atlassian.net")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise InvalidInput("the Jira URL must not carry credentials, a query or a fragment", reason="bad_url",
                           hint="give the token on standard input: --token -")
    return text.removesuffix("/rest/api/2").removesuffix("/rest/api/3")


def http_client(settings: TrackerSettings, *, auth: httpx.Auth | None = None,
                headers: dict[str, str] | None = None) -> httpx.Client:
    """An httpx client with the site's TLS, proxy and timeout; redirects are never followed (the credential)."""
    try:
        verify_tls: ssl.SSLContext | bool = (ssl.create_default_context(cafile=settings.ca_bundle)
                                             if settings.ca_bundle else True)
    except (OSError, ssl.SSLError) as exc:
        raise InvalidInput(f"cannot read the CA bundle {settings.ca_bundle}: {exc}", reason="tls") from None
    return httpx.Client(
        auth=auth, verify=verify_tls, proxy=settings.proxy or None, trust_env=settings.proxy is None,
        timeout=settings.timeout, follow_redirects=False,
        headers={"User-Agent": USER_AGENT, "Accept": "application/json", "Accept-Encoding": "identity",
                 **(headers or {})},
    )


#: the tracker's name in messages devlink shows about it (``sync`` reads it through ``trackers.module_for``)
LABEL = "Jira"


class JiraClient:
    """One site, one credential; use as a context manager or call ``close``."""

    label = LABEL  # who is talking, in messages

    def __init__(self, settings: TrackerSettings, *, cloud: bool,
                 sleep: Callable[[float], None] = time.sleep, retry_budget: float = RETRY_BUDGET) -> None:
        self.site = site_url(settings.url)
        self.cloud = cloud
        self.api = f"{self.site}/rest/api/{'3' if cloud else '2'}"
        self._timeout = settings.timeout
        self._sleep, self._budget = sleep, retry_budget
        if cloud:
            if not settings.email:
                raise InvalidInput("a Jira Cloud API token needs the e-mail of its account (--email)",
                                   reason="invalid")
            auth: httpx.Auth | None = httpx.BasicAuth(settings.email, settings.token)
            headers = {}
        else:
            auth, headers = None, {"Authorization": f"Bearer {settings.token}"}
        self._http = http_client(settings, auth=auth, headers=headers)

    def __enter__(self) -> JiraClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- requests ---------------------------------------------------------

    def call(self, method: str, path: str, *, params: dict[str, Any] | None = None, body: Any = None,
             missing_ok: bool = False) -> Any:
        """One API call (``path`` under the API root, or absolute under the site); the parsed JSON, or None.

        ``missing_ok``: a 404 returns None instead of raising.
        """
        url = path if path.startswith(self.site + "/") else f"{self.api}/{path.lstrip('/')}"
        spent = 0.0
        for attempt in itertools.count(1):
            status, headers, raw = self._send(method, url, params, body)
            if status in _RETRIED:
                wait = _retry_after(headers, default=min(2.0 ** attempt, 30.0))
                if attempt < MAX_ATTEMPTS and spent + wait <= self._budget:
                    self._sleep(wait)
                    spent += wait
                    continue
                what = "rate limit reached" if status == 429 else f"answered {status}"
                raise TrackerUnavailable(f"{self.label} at {_host(self.site)} {what}; devlink tries again",
                                         reason="rate_limited" if status == 429 else "server",
                                         retry_after=max(wait, 1.0))
            if status == 404 and missing_ok:
                return None
            if status >= 300:
                raise self._failure(status, headers, raw, path)
            if not raw.strip():
                return None
            try:
                return loads_bounded(raw)
            except JsonLimitError as exc:
                raise TrackerError(f"{_host(self.site)} {path} did not answer JSON ({exc.reason}): is {self.site} "
                                   "a Jira site?", reason="not_jira") from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _send(self, method: str, url: str, params: dict[str, Any] | None, body: Any
              ) -> tuple[int, httpx.Headers, bytes]:
        # httpx's timeout bounds each read, not the answer: a site dripping a byte at a time must not hold a
        # sync (and its repository's lock) or a page for ever
        deadline = time.monotonic() + 3 * self._timeout
        try:
            with self._http.stream(method, url, params=params, json=body) as response:
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > MAX_ANSWER_BYTES:
                    raise TrackerError(f"Jira's answer to {method} {url} is larger than "
                                       f"{MAX_ANSWER_BYTES >> 20} MB", reason="invalid")
                # asked for identity; a compressed answer could inflate without bound, or never yield a byte
                if response.headers.get("content-encoding", "identity").lower() not in ("identity", ""):
                    raise TrackerError(f"{self.label} at {_host(self.site)} sent a compressed answer devlink did "
                                       "not ask for", reason="invalid")
                chunks, size = [], 0
                for chunk in response.iter_raw():
                    if time.monotonic() > deadline:
                        raise TrackerUnavailable(f"{self.label} at {_host(self.site)} did not finish answering within "
                                                 f"{3 * self._timeout:g} s", reason="network")
                    size += len(chunk)
                    if size > MAX_ANSWER_BYTES:
                        raise TrackerError(f"Jira's answer to {method} {url} is larger than "
                                           f"{MAX_ANSWER_BYTES >> 20} MB", reason="invalid")
                    chunks.append(chunk)
                return response.status_code, response.headers, b"".join(chunks)
        except httpx.TimeoutException:
            raise TrackerUnavailable(f"{self.label} at {_host(self.site)} did not answer within {self._timeout:g} s",
                                     reason="network") from None
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None

    def _unreachable(self, exc: Exception) -> TrackerError:
        text = str(exc) or type(exc).__name__
        host = _host(self.site)
        if "CERTIFICATE_VERIFY_FAILED" in text:
            return TrackerError(f"TLS failure talking to {host}: its certificate is not trusted", reason="tls",
                                hint="give the CA bundle that signed it: --ca-bundle FILE")
        if "SSL" in text or "TLS" in text:
            return TrackerError(f"TLS failure talking to {host}: {text[:200]}", reason="tls",
                                hint="check http vs https in the URL, or give a CA bundle: --ca-bundle FILE")
        return TrackerUnavailable(f"cannot reach {self.label} at {host}: {text[:200]}", reason="network",
                                  hint="check the URL, the network and any proxy (--proxy)")

    def _failure(self, status: int, headers: httpx.Headers, raw: bytes, path: str) -> TrackerError:
        host = _host(self.site)
        if 300 <= status < 400:
            target = headers.get("location", "")
            return TrackerError(f"{host} redirected {path} to {target[:200]}; devlink sends the token only to "
                                "the URL it was given", reason="redirect",
                                hint="give the site's final URL (the one the redirect names)")
        said = _messages(raw)
        if status == 401:
            hint = ("check --email and that the API token belongs to it and has not been revoked" if self.cloud
                    else "check the personal access token (Profile → Personal Access Tokens) and its expiry")
            return TrackerError(f"{host} refused the token (401){': ' + said if said else ''}", reason="auth",
                                hint=f"{hint}; then give it again: devlink tracker use jira --url {self.site} "
                                "--token -")
        if status == 403:
            return TrackerError(f"{host} {path}: permission denied (403){': ' + said if said else ''}",
                                reason="permission", hint="the integration user lacks a Jira permission for this")
        if status == 404:
            return TrackerError(f"{host} {path}: not found{': ' + said if said else ''}", reason="not_found")
        return TrackerError(f"Jira refused {path} ({status}){': ' + said if said else ''}", reason="invalid")

    def pages(self, path: str, items: str, params: dict[str, Any] | None = None,
              max_pages: int = 100) -> Iterator[dict[str, Any]]:
        """Jira's ``startAt`` / ``maxResults`` paging, until ``isLast`` or the total is reached."""
        start = 0
        for _ in range(max_pages):
            answer = self.call("GET", path, params={**(params or {}), "startAt": start, "maxResults": 100})
            if not isinstance(answer, dict) or not isinstance(answer.get(items), list):
                raise TrackerError(f"Jira's answer to {path} has no list of {items}", reason="invalid")
            values = [item for item in answer[items] if isinstance(item, dict)]
            yield from values
            start += len(values)
            total = answer.get("total")
            if not values or answer.get("isLast") is True or (isinstance(total, int) and start >= total):
                return

    # -- what devlink asks ------------------------------------------------

    def server_info(self) -> dict[str, Any]:
        answer = self.call("GET", "serverInfo")
        if not isinstance(answer, dict) or not isinstance(answer.get("versionNumbers"), list):
            raise TrackerError(f"{self.site} does not look like Jira: /rest/api/{'3' if self.cloud else '2'}"
                               "/serverInfo has no versionNumbers", reason="not_jira",
                               hint="give the base URL of the Jira site, the one its pages are under")
        return answer

    def project_keys(self) -> frozenset[str]:
        if self.cloud:
            found = self.pages("project/search", "values", max_pages=MAX_PROJECT_PAGES)
        else:
            answer = self.call("GET", "project")
            found = iter(answer if isinstance(answer, list) else [])
        return frozenset(str(p["key"]) for p in found if isinstance(p, dict) and isinstance(p.get("key"), str))


def _messages(raw: bytes) -> str:
    """Jira's own words from ``{"errorMessages": [...], "errors": {...}}``, shortened."""
    try:
        body = loads_bounded(raw)
    except JsonLimitError:
        return ""
    if not isinstance(body, dict):
        return ""
    words = [str(m) for m in body.get("errorMessages") or [] if m]
    errors = body.get("errors")
    if isinstance(errors, dict):
        words += [f"{field}: {message}" for field, message in errors.items()]
    return "; ".join(words)[:500]


def _retry_after(headers: httpx.Headers, default: float) -> float:
    """Seconds Jira asks to wait: at least half a second (a zero would spin), at most an hour, else ``default``."""
    value = headers.get("retry-after", "")
    try:
        seconds = float(value)
    except ValueError:
        return default
    return min(max(seconds, 0.5), 3600.0) if math.isfinite(seconds) else default


def _version(info: dict[str, Any]) -> tuple[int, ...]:
    return tuple(int(n) for n in info.get("versionNumbers", []) if isinstance(n, int))


def verify(settings: TrackerSettings, *, cloud: bool) -> SiteInfo:
    """Check the site and the credential before devlink keeps them; raise TrackerError saying what is wrong.

    ``cloud`` is what the flags say (``--email`` given); the site's own
    ``deploymentType`` must agree.
    """
    with JiraClient(settings, cloud=cloud) as client:
        try:
            info = _anonymous_server_info(settings, client.site) or client.server_info()
        except TrackerError as exc:
            if exc.reason in ("not_found", "not_jira"):
                raise TrackerError(f"{client.site} does not look like a Jira site: it has no Jira server "
                                   "information at /rest/api/2/serverInfo or /rest/api/3/serverInfo", reason="not_jira",
                                   hint="give the base URL of the Jira site, the one its pages are under") from None
            raise
        is_cloud = str(info.get("deploymentType", "")).lower() == "cloud"
        if is_cloud != cloud:
            if is_cloud:
                raise TrackerError(f"{client.site} is Jira Cloud: it takes an API token with the e-mail of its "
                                   "account", reason="mismatch", hint="add --email EMAIL")
            raise TrackerError(f"{client.site} is Jira Data Center / Server: it takes a personal access token "
                               "without an e-mail", reason="mismatch", hint="leave out --email")
        version = _version(info)
        if not cloud and version < MIN_DATA_CENTER_VERSION:
            minimum = ".".join(map(str, MIN_DATA_CENTER_VERSION))
            raise TrackerError(f"{client.site} runs Jira {info.get('version', '?')}; devlink needs Jira Data "
                               f"Center / Server {minimum} or newer (personal access tokens)", reason="too_old")
        me = client.call("GET", "myself")
        if not isinstance(me, dict):
            raise TrackerError(f"{client.site}: /myself did not answer a user", reason="not_jira")
        user = str(me.get("accountId") if cloud else me.get("name") or me.get("key") or "")
        if not user:
            raise TrackerError(f"{client.site}: /myself names no user", reason="invalid")
        return SiteInfo(url=client.site, cloud=cloud, title=str(info.get("serverTitle") or "")[:200],
                        version=str(info.get("version") or "")[:50], user=user,
                        user_display=str(me.get("displayName") or user)[:200])


def _anonymous_server_info(settings: TrackerSettings, site: str) -> dict[str, Any] | None:
    """``serverInfo`` asked without the credential (Jira answers it to anyone), v2 then v3.

    It says what kind of site this is before the token goes anywhere, and
    tells a Data Center site given ``--email`` (it has no v3) from a URL that
    is not Jira.  None when neither answers: the authenticated call decides.
    """
    anonymous = TrackerSettings(url=site, token="", ca_bundle=settings.ca_bundle, proxy=settings.proxy,
                                timeout=settings.timeout)
    with JiraClient(anonymous, cloud=False, retry_budget=0.0) as probe:
        probe._http.headers.pop("Authorization", None)
        for version in ("2", "3"):
            try:
                info = probe.call("GET", f"{site}/rest/api/{version}/serverInfo")
            except TrackerUnavailable:
                raise
            except TrackerError as exc:
                if exc.reason in ("tls", "redirect"):
                    raise
                continue
            if isinstance(info, dict) and isinstance(info.get("versionNumbers"), list):
                return info
    return None


# ---------------------------------------------------------------- the tracker


#: what wiki markup could turn into a link, an image, a macro or emphasis in the footer's names
_WIKI_UNSAFE = re.compile(r"[^\w@.+\- ']")


def _safe_url(url: str | None) -> str | None:
    safe = http_url(url)
    return safe if safe and " " not in safe and "|" not in safe and "]" not in safe else None  # wiki: [text|url]


class JiraTracker:
    """``OutsideTracker`` over one ``JiraClient``; ids are Data Center user names or Cloud account ids.

    ``aliases(email)`` gives the devlink aliases of an address (they win over
    Jira's own search, which Cloud answers without hidden addresses);
    ``cached_keys`` returns project keys through devlink's shared cache.
    """

    user_hint = "give a Data Center user name, or a Jira Cloud account id (from the user's profile URL)"

    def __init__(self, client: JiraClient, *, aliases: Callable[[str], list[tuple[str, str | None]]],
                 cached_keys: Callable[[Callable[[], frozenset[str]]], frozenset[str]],
                 sign: Callable[[str], str] = lambda text: "", me: str | None = None,
                 verify: Callable[[str, str], bool] | None = None) -> None:
        self.client = client
        self._aliases, self._cached_keys = aliases, cached_keys
        self._sign, self._me = sign, me  # devlink's signature on its markers; the integration user's id
        # a marker may be older than the current key: ``verify`` accepts a signature by any key still held
        self._verify = verify or (lambda text, given: hmac.compare_digest(given.encode(), sign(text).encode()))
        self._issues: dict[str, dict[str, Any]] = {}
        self._transitions: dict[str, list[dict[str, Any]]] = {}
        self._names: dict[str, str] = {}

    def close(self) -> None:
        self.client.close()

    @property
    def cloud(self) -> bool:
        return self.client.cloud

    def project_keys(self) -> frozenset[str] | None:
        return self._cached_keys(self.client.project_keys)

    def issue(self, issue_key: str) -> IssueDetails | None:
        raw = self._raw_issue(issue_key, missing_ok=True)
        if raw is None:
            return None
        fields = _dict(raw.get("fields"))
        status = _dict(fields.get("status"))
        assignee = _dict(fields.get("assignee")) or None
        return IssueDetails(
            key=str(raw.get("key") or issue_key), summary=str(fields.get("summary") or "")[:1000],
            status=str(status.get("name") or "")[:100],
            assignee=str(assignee.get("displayName") or "")[:200] if assignee else None,
            url=f"{self.client.site}/browse/{issue_key}",
        )

    def _raw_issue(self, issue_key: str, *, missing_ok: bool = False) -> dict[str, Any] | None:
        raw = self._issues.get(issue_key)
        if raw is None:
            answer = self.client.call("GET", f"issue/{issue_key}", params={"fields": "summary,status,assignee"},
                                      missing_ok=True)
            if not isinstance(answer, dict):
                if missing_ok:
                    return None
                raise TrackerError(f"no issue {issue_key} in Jira (or the integration user cannot see it)",
                                   reason="not_found")
            raw = self._issues[issue_key] = answer
        return raw

    def users_for_email(self, email: str) -> list[str]:
        address = email.strip().lower()
        aliased = self._aliases(address)
        if aliased:
            for user, name in aliased:
                self._names[user] = name or user
            return sorted(user for user, _ in aliased)
        if "@" not in address:
            return []
        if self.cloud:
            found = self.client.call("GET", "user/search", params={"query": address, "maxResults": 50})
        else:
            found = self.client.call("GET", "user/search", params={"username": address, "maxResults": 50})
        users: dict[str, str] = {}
        for user in found if isinstance(found, list) else []:
            if not isinstance(user, dict) or str(user.get("emailAddress") or "").lower() != address:
                continue
            if user.get("active") is False:
                continue
            ident = str(user.get("accountId") if self.cloud else user.get("name") or "")
            if ident:
                users[ident] = str(user.get("displayName") or ident)
        self._names.update(users)
        return sorted(users)

    def display_name(self, username: str) -> str:
        return self._names.get(username, username)

    def user(self, ident: str) -> str | None:
        """The display name of a Jira user by user name (Data Center) or account id (Cloud); None if none."""
        if self.cloud:
            found = self.client.call("GET", "user/search", params={"accountId": ident, "maxResults": 1})
            field = "accountId"
        else:
            found = self.client.call("GET", "user/search", params={"username": ident, "maxResults": 50})
            field = "name"
        for user in found if isinstance(found, list) else []:
            if isinstance(user, dict) and user.get(field) == ident:
                return str(user.get("displayName") or ident)[:200]
        return None

    def can(self, username: str, issue_key: str, permission: str) -> bool:
        key = _PERMISSION_KEYS.get(permission)
        if key is None:
            raise TrackerError(f"unknown permission {permission!r}")
        try:
            return self._holds(username, issue_key, key)
        except TrackerError as exc:
            raise self._cannot_check(exc, username, f"on {issue_key}") from None

    def can_in_project(self, username: str, project_key: str, permission: str) -> bool:
        """Whether ``username`` holds ``permission`` in the whole project (``view_development``: VIEW_DEV_TOOLS).

        Data Center: ``GET user/permission/search?projectKey=…``; Cloud: the project's id from
        ``GET project/{key}``, then ``POST permissions/check`` with it.  A project Jira does not
        have (or devlink's user cannot see) grants nothing.
        """
        key = _PERMISSION_KEYS.get(permission)
        if key is None:
            raise TrackerError(f"unknown permission {permission!r}")
        try:
            if self.cloud:
                project = self.client.call("GET", f"project/{project_key}", missing_ok=True)
                if not isinstance(project, dict) or not str(project.get("id") or "").isdigit():
                    return False
                project_id = int(str(project["id"]))
                answer = self.client.call("POST", "permissions/check", body={
                    "accountId": username, "projectPermissions": [{"permissions": [key], "projects": [project_id]}]})
                granted = answer.get("projectPermissions") if isinstance(answer, dict) else None
                return any(isinstance(g, dict) and g.get("permission") == key
                           and project_id in (g.get("projects") or []) for g in granted or [])
            answer = self.client.call("GET", "user/permission/search", missing_ok=True,
                                      params={"username": username, "permissions": key, "projectKey": project_key})
            return any(isinstance(u, dict) and u.get("name") == username for u in answer or [])
        except TrackerError as exc:
            raise self._cannot_check(exc, username, f"in {project_key}") from None

    def _cannot_check(self, exc: TrackerError, username: str, where: str) -> TrackerError:
        """What a refused permission question means: devlink's Jira user lacks the permission to ask."""
        if exc.reason != "permission":
            return exc
        needs = "Administer Jira" if self.cloud else "Administer Projects (or Administer Jira)"
        return TrackerError(f"devlink's Jira user may not check what {self.display_name(username)} may do "
                            f"{where}: it needs the {needs} permission (docs/jira.md)", reason="permission")

    def _holds(self, username: str, issue_key: str, key: str) -> bool:
        if self.cloud:
            issue = self._raw_issue(issue_key)
            assert issue is not None
            issue_id = int(str(issue.get("id") or 0))
            answer = self.client.call("POST", "permissions/check", body={
                "accountId": username, "projectPermissions": [{"permissions": [key], "issues": [issue_id]}]})
            granted = answer.get("projectPermissions") if isinstance(answer, dict) else None
            return any(isinstance(g, dict) and g.get("permission") == key and issue_id in (g.get("issues") or [])
                       for g in granted or [])
        answer = self.client.call("GET", "user/permission/search",
                                  params={"username": username, "permissions": key, "issueKey": issue_key})
        return any(isinstance(u, dict) and u.get("name") == username for u in answer or [])

    # -- effects -----------------------------------------------------------

    def comment(self, issue_key: str, username: str, body: str, origin: Origin) -> None:
        if origin.retry and self._has_comment(issue_key, origin):
            return
        self.client.call("POST", f"issue/{issue_key}/comment", body={
            "body": self._text(body, username, origin),
            "properties": [self._property("devlink", self._mark(issue_key, "comment", origin))],
        })

    def log_work(self, issue_key: str, username: str, seconds: int, started: datetime, comment: str,
                 origin: Origin) -> None:
        if origin.retry and self._has_worklog(issue_key, origin):
            return
        body: dict[str, Any] = {"timeSpentSeconds": seconds, "started": jira_time(started),
                                "comment": self._text(comment, username, origin)}
        if self.cloud:  # Data Center's work logs take no properties: there the footer's marker is the mark
            body["properties"] = [self._property("devlink", self._mark(issue_key, "worklog", origin))]
        self.client.call("POST", f"issue/{issue_key}/worklog", params={"adjustEstimate": "auto"}, body=body)

    def transitions(self, issue_key: str) -> list[tuple[str, str]]:
        self._raw_issue(issue_key)  # "no issue KEY" before anything else
        answer = self.client.call("GET", f"issue/{issue_key}/transitions")
        found = [t for t in (answer or {}).get("transitions", []) if isinstance(t, dict)]
        self._transitions[issue_key] = found
        return [(str(t.get("name") or ""), str((t.get("to") or {}).get("name") or "")) for t in found]

    def transition(self, issue_key: str, username: str, name: str, origin: Origin) -> str:
        if issue_key not in self._transitions:
            self.transitions(issue_key)
        chosen = next((t for t in self._transitions[issue_key] if t.get("name") == name), None)
        if chosen is None:
            raise TrackerError(f"transition {name!r} is not available on {issue_key}")
        target = str((chosen.get("to") or {}).get("name") or name)
        self.client.call("POST", f"issue/{issue_key}/transitions", body={
            "transition": {"id": str(chosen.get("id"))},
            "properties": [self._property(_property_key(origin),
                                          {**self._mark(issue_key, f"transition:{target}", origin), "to": target})],
        })
        self._issues.pop(issue_key, None)
        self._transitions.pop(issue_key, None)
        return target

    def transitioned(self, issue_key: str, origin: Origin) -> str | None:
        if not origin.retry:
            return None
        found = self.client.call("GET", f"issue/{issue_key}/properties/{_property_key(origin)}", missing_ok=True)
        value = _property_value(found.get("value") if isinstance(found, dict) else None)
        target = value.get("to")
        if not isinstance(target, str) or not target:
            return None
        # anyone who may edit the issue may set a property: only devlink's signature makes it devlink's
        return target if self._signed(value, issue_key, f"transition:{target}", origin) else None

    def _mark(self, issue_key: str, what: str, origin: Origin) -> dict[str, str]:
        return {"ref": origin.marker, "sig": self._sign(f"{issue_key}|{what}|{origin.marker}")}

    def _signed(self, value: dict[str, Any], issue_key: str, what: str, origin: Origin) -> bool:
        given = value.get("sig")
        return (value.get("ref") == origin.marker and isinstance(given, str) and given.isascii()
                and self._verify(f"{issue_key}|{what}|{origin.marker}", given))

    def _by_me(self, entity: dict[str, Any]) -> bool:
        """Whether the integration user wrote it, and was the last to change it (Cloud: account id; Data
        Center: name or key): someone allowed to edit others' work logs must not turn one into a marker."""
        return self._me is not None and all(
            self._me in (who.get("accountId"), who.get("name"), who.get("key"))
            for who in (_dict(entity.get("author")), _dict(entity.get("updateAuthor") or entity.get("author"))))

    def _marked(self, entity: dict[str, Any], issue_key: str, what: str, origin: Origin) -> bool:
        """devlink's own property, signed, on an entity the integration user wrote: no one else can make one."""
        return self._by_me(entity) and any(
            isinstance(p, dict) and p.get("key") == "devlink"
            and self._signed(_property_value(p.get("value")), issue_key, what, origin)
            for p in entity.get("properties") or [])

    def _property(self, key: str, value: dict[str, Any]) -> dict[str, Any]:
        """An entity property as each API takes it: a JSON document on Cloud, its text on Data Center."""
        return {"key": key, "value": value if self.cloud else json.dumps(value)}

    # -- markers -------------------------------------------------------------

    def _has_comment(self, issue_key: str, origin: Origin) -> bool:
        # newest first: the effect being looked for is younger than the claim
        for comment in self.client.pages(f"issue/{issue_key}/comment", "comments",
                                         {"expand": "properties", "orderBy": "-created"}):
            if self._marked(comment, issue_key, "comment", origin):
                return True
        return False

    def _has_worklog(self, issue_key: str, origin: Origin) -> bool:
        """Cloud: the work log property devlink set.  Data Center takes none, so: its comment ends with the marker.

        The end, not anywhere: a commit's own text comes before devlink's footer, so an author who quotes
        another commit's marker cannot make that commit's pending command look done.
        """
        if self.cloud:
            return any(self._marked(w, issue_key, "worklog", origin) for w in self.client.pages(
                f"issue/{issue_key}/worklog", "worklogs", {"expand": "properties"}))
        answer = self.client.call("GET", f"issue/{issue_key}/worklog")  # DC: every work log at once, no paging
        return any(isinstance(w, dict) and self._by_me(w) and isinstance(w.get("comment"), str)
                   and w["comment"].rstrip().endswith(f"{origin.marker}_")
                   for w in _dict(answer).get("worklogs") or [])

    def _text(self, text: str, username: str, origin: Origin) -> Any:
        """The body Jira accepts: wiki text on Data Center, Atlassian Document Format on Cloud."""
        author = self.display_name(username)
        url = _safe_url(origin.commit_url)
        short = origin.sha[:12]
        if not self.cloud:
            commit = f"[{short}|{url}]" if url else short
            footer = (f"_From commit {commit} by {_WIKI_UNSAFE.sub('', author)[:200]} "
                      f"({_WIKI_UNSAFE.sub('', origin.author)[:200]}) · {origin.marker}_")
            return f"{text}\n\n{footer}" if text else footer
        commit_node: dict[str, Any] = {"type": "text", "text": short}
        if url:
            commit_node["marks"] = [{"type": "link", "attrs": {"href": url}}]
        content: list[dict[str, Any]] = []
        if text:
            lines: list[dict[str, Any]] = []
            for i, line in enumerate(text.split("\n")):
                if i:
                    lines.append({"type": "hardBreak"})
                if line:
                    lines.append({"type": "text", "text": line})
            content.append({"type": "paragraph", "content": lines or [{"type": "text", "text": " "}]})
        content.append({"type": "paragraph", "content": [
            {"type": "text", "text": "From commit ", "marks": [{"type": "em"}]},
            {**commit_node, "marks": [*commit_node.get("marks", []), {"type": "em"}]},
            {"type": "text", "text": f" by {author} ({origin.author}) · {origin.marker}", "marks": [{"type": "em"}]},
        ]})
        return {"type": "doc", "version": 1, "content": content}


def _property_value(value: Any) -> dict[str, Any]:
    """An entity property's value, given as a document (Cloud) or as its JSON text (Data Center)."""
    if isinstance(value, str):
        try:
            value = loads_bounded(value.encode(), max_depth=8)
        except JsonLimitError:
            return {}
    return _dict(value)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _property_key(origin: Origin) -> str:
    return f"devlink.smart-commit.{origin.sha}.{origin.position}"


def open_tracker(settings: TrackerSettings, *, cloud: bool,
                 aliases: Callable[[str], list[tuple[str, str | None]]],
                 cached_keys: Callable[[Callable[[], frozenset[str]]], frozenset[str]],
                 patient: bool = True, sign: Callable[[str], str] = lambda text: "",
                 me: str | None = None, verify: Callable[[str, str], bool] | None = None) -> JiraTracker:
    """The tracker of a connection devlink keeps (``sync.trackers.open_outside`` calls this by kind)."""
    client = JiraClient(settings, cloud=cloud, retry_budget=RETRY_BUDGET if patient else 0.0)
    return JiraTracker(client, aliases=aliases, cached_keys=cached_keys, sign=sign, me=me, verify=verify)


def open_sink(settings: TrackerSettings, *, cloud: bool, devinfo: dict[str, Any] | None) -> Any:
    """Where development data goes: devinfo on Cloud (when its credentials are set), remote links on Data Center."""
    from devlink.trackers import jira_development

    if cloud:
        if not devinfo:
            return None
        return jira_development.DevInfoSink(devinfo["gateway_url"] or jira_development.DEFAULT_GATEWAY,
                                            devinfo["cloud_id"], devinfo["client_id"], devinfo["client_secret"],
                                            settings)
    return jira_development.RemoteLinkSink(JiraClient(settings, cloud=False))


def verify_devinfo(settings: TrackerSettings, site: SiteInfo, *, client_id: str, client_secret: str,
                   gateway_url: str | None) -> dict[str, Any]:
    """Check the devinfo OAuth credentials (a token from the gateway) and find the site's cloud id."""
    from devlink.trackers import jira_development

    if not site.cloud:
        raise TrackerError("the development information API is Jira Cloud's; Data Center gets remote links "
                           "without it", reason="mismatch", hint="leave out the --devinfo-* options")
    gateway = (gateway_url or jira_development.DEFAULT_GATEWAY).rstrip("/")
    if urlsplit(gateway).scheme not in ("http", "https"):
        raise InvalidInput(f"{gateway_url!r} is not an http(s) URL", reason="bad_url")
    with JiraClient(settings, cloud=True) as client:
        tenant = client.call("GET", f"{client.site}/_edge/tenant_info")
    cloud_id = tenant.get("cloudId") if isinstance(tenant, dict) else None
    if not isinstance(cloud_id, str) or not re.fullmatch(r"[A-Za-z0-9-]{1,100}", cloud_id):
        raise TrackerError(f"{site.url}/_edge/tenant_info names no cloud id", reason="not_jira")
    jira_development.fetch_token(gateway, client_id, client_secret, settings)
    return {"client_id": client_id, "client_secret": client_secret, "gateway_url": gateway, "cloud_id": cloud_id}
