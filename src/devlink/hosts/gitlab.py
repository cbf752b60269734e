"""GitLab (gitlab.com and self-managed, 15.5 or later) over REST v4, on a thin httpx client.

Not python-gitlab, which DESIGN.md allows "where it fits": it sends the token in ``PRIVATE-TOKEN``, a
custom header that ``requests`` keeps when a redirect leads to another host.  On a 429 it sleeps in-process,
and it hides the response headers devlink needs for the rate budget every worker shares.  Here every call:

- sends ``Authorization: Bearer`` (personal, group, project and OAuth tokens all
  take it) only to the API's own origin, and never follows a redirect: a 3xx is an
  error naming where it pointed (``Link`` next pages are checked the same way);
- hands each answer's ``RateLimit-*`` headers to ``on_rate`` and turns a 429 into
  ``HostError(reason="rate_limited", retry_after=…)``; nothing here sleeps
  (https://docs.gitlab.com/ee/user/gitlab_com/index.html#gitlab-com-specific-rate-limits);
- reads at most ``MAX_ANSWER_BYTES`` (uncompressed: devlink asks for ``identity``)
  within three times the timeout, parses it with ``loads_bounded``, and turns an answer of
  an unexpected shape into ``HostError(reason="invalid")``, never a KeyError;
- keeps only URLs from answers that are http(s) on the host's own origin: a
  ``javascript:`` ``web_url`` is dropped, a foreign ``http_url_to_repo`` never
  becomes a clone URL.

No conditional requests (``cache`` is not used): GitLab computes its ETags from the finished body
(Rack::ETag) and throttles requests, not bytes (Rack::Attack), so a 304 would save bandwidth, not budget.
The OAuth token calls are two form POSTs, written here like the rest rather than with Authlib.
Nothing here writes the store: callers get ``hosts.base`` values or ``HostError``.

    >>> settings = HostSettings(web_url=GITLAB_WEB, api_url=HOST.api_url_for(GITLAB_WEB))
    >>> with HOST.client(settings, Credential(token="glpat-…")) as gitlab:  # doctest: +SKIP
    ...     gitlab.viewer()
    'ada'
"""

from __future__ import annotations

import importlib
import math
import re
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, Literal, cast
from urllib.parse import quote, urlsplit

import httpx

from devlink.domain.json_limits import JsonLimitError, loads_bounded
from devlink.domain.times import parse_iso
from devlink.hosts.answers import checked_answers, short, ssl_context, transport_error
from devlink.hosts.base import (
    HostError,
    RemoteAccount,
    RemotePullRequest,
    RemoteRepository,
    Review,
    WebhookEvent,
    origin_of,
    same_origin,
)
from devlink.hosts.protocol import (
    ConditionalCache,
    Credential,
    DeliveryHead,
    HookTarget,
    HostClient,
    HostKind,
    HostSettings,
    RateLimit,
    RemoteHook,
    TokenGrant,
)

__all__ = [
    "GITLAB_WEB",
    "HOST",
    "MIN_VERSION",
    "GitLab",
    "GitLabClient",
    "parse_time",
    "pull_from",
    "repository_from",
]

GITLAB_WEB = "https://gitlab.com"
GITLAB_API = "https://gitlab.com/api/v4"
#: ``GET /personal_access_tokens/self`` (the token's own scopes) arrived in 15.5; everything else devlink
#: calls (merge request ``reviewers`` and ``draft``, ``approvals``, ``RateLimit-*`` headers) is older
MIN_VERSION = (15, 5)
SCOPE = "api"  # webhooks need it: read_api is read-only
TOKEN_HELP = "a personal, group or project access token with scope api"
PER_PAGE = 100  # GitLab's maximum page size
#: a page of 100 merge requests is normally well under 1 MB; a description may reach 1 MB on its own
MAX_ANSWER_BYTES = 32 * 1024 * 1024
MAX_PAGES = 5000  # of one list: half a million items, far past any group; it stops a Link loop
#: GitLab does not send a webhook whose JSON is larger than 25 MB (Gitlab::Json::LimitedEncoder,
#: gitlab-org/gitlab!38687), in Rails megabytes of 2^20 bytes
MAX_BODY = 25 * 1024 * 1024
USER_AGENT = "devlink"
HOOK_EVENTS = ("push_events", "tag_push_events", "merge_requests_events")


_VERSION = re.compile(r"^\s*(\d+)\.(\d+)")


# -- small helpers --------------------------------------------------------------------


def parse_time(value: object) -> datetime | None:
    """GitLab's ISO 8601 times (``2024-05-01T10:00:00.000Z`` or with an offset); None for anything else."""
    return parse_iso(value)


def _http(settings: HostSettings) -> httpx.Client:
    """An httpx client with the host's TLS, proxy and timeout; it never follows a redirect (the credential)."""
    return httpx.Client(
        verify=ssl_context(settings.ca_bundle), trust_env=settings.proxy is None, proxy=settings.proxy or None,
        timeout=settings.timeout, follow_redirects=False,
        headers={"User-Agent": USER_AGENT, "Accept": "application/json", "Accept-Encoding": "identity"},
    )


def _within(url: str, origin: str) -> bool:
    """Whether a request to ``url`` stays on ``origin`` (``scheme://host[:port]``); anything odd is refused."""
    if any(ord(char) <= 32 or ord(char) == 127 for char in url) or "\\" in url:
        return False
    parts = urlsplit(url)
    return parts.scheme.lower() in ("http", "https") and "@" not in parts.netloc and origin_of(url) == origin


def _on_origin(value: object, web_url: str) -> str | None:
    """A URL from an answer, kept only when it is http(s) on the host's own origin (no ``javascript:``)."""
    if not isinstance(value, str) or not value or len(value) > 2048:
        return None
    if any(ord(char) <= 32 or ord(char) == 127 for char in value) or "\\" in value:
        return None
    if urlsplit(value).scheme.lower() not in ("http", "https") or not same_origin(value, web_url):
        return None
    return value


def _enc(identifier: str) -> str:
    """A project or group id or full path as one path segment (``acme/platform`` → ``acme%2Fplatform``)."""
    return quote(str(identifier), safe="")


def _said(body: bytes) -> str:
    """What GitLab's error answer says: ``message`` (a string, or field → errors), ``error``/``error_description``."""
    try:
        data = loads_bounded(body[:65536], max_depth=8)
    except JsonLimitError:
        text = body[:200].decode("utf-8", "replace").strip()
        return "" if text.startswith("<") else short(text)  # an HTML error page of a proxy says nothing more
    if not isinstance(data, dict):
        return ""
    message = data.get("message")
    if isinstance(message, dict):
        parts = [f"{field} {' '.join(map(str, errors)) if isinstance(errors, list) else errors}"
                 for field, errors in message.items()]
        message = "; ".join(parts)
    text = str(message or data.get("error_description") or data.get("error") or "")
    return short(text)


def _unreachable(settings: HostSettings, exc: httpx.HTTPError) -> HostError:
    return transport_error(settings, exc, timed_out=isinstance(exc, httpx.TimeoutException))


def _read(settings: HostSettings, http: httpx.Client, method: str, url: str, **kwargs: Any
          ) -> tuple[httpx.Response, bytes]:
    """One exchange, its body read whole but bounded in size and time; transport failures become HostErrors."""
    # httpx's timeout bounds each read, not the answer: a host dripping a byte at a time must not hold a sync
    deadline = time.monotonic() + 3 * settings.timeout
    too_large = HostError(f"{settings.name} answered {method} {urlsplit(url).path} with more than "
                          f"{MAX_ANSWER_BYTES >> 20} MB", reason="invalid")
    try:
        with http.stream(method, url, **kwargs) as response:
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > MAX_ANSWER_BYTES:
                raise too_large
            # identity was asked for; a compressed answer could inflate without bound
            if response.headers.get("content-encoding", "identity").lower() not in ("identity", ""):
                raise HostError(f"{settings.name} sent a compressed answer devlink did not ask for", reason="invalid")
            chunks, size = [], 0
            for chunk in response.iter_raw():
                size += len(chunk)
                if size > MAX_ANSWER_BYTES:
                    raise too_large
                if time.monotonic() > deadline:
                    raise HostError(f"{settings.name} did not finish answering within {3 * settings.timeout:g} s",
                                    reason="network", retry_after=60)
                chunks.append(chunk)
            return response, b"".join(chunks)
    except httpx.HTTPError as exc:
        raise _unreachable(settings, exc) from None


def _json(settings: HostSettings, body: bytes, what: str) -> Any:
    if not body.strip():
        return None
    try:
        return loads_bounded(body)
    except JsonLimitError as exc:
        raise HostError(f"{settings.name} answered {what} with something that is not JSON ({exc.reason})",
                        reason="invalid", hint="check that the host URL points at a GitLab instance") from None


_checked_answers = checked_answers("check that the host URL points at a GitLab instance's API")


def _wait(headers: httpx.Headers) -> float:
    """Seconds a 429 asks to wait: ``Retry-After`` (seconds or a date), else ``RateLimit-Reset``, else 60."""
    now = time.time()
    value = headers.get("retry-after", "").strip()
    seconds: float | None = None
    if value:
        try:
            seconds = float(value)
        except ValueError:
            try:
                seconds = parsedate_to_datetime(value).timestamp() - now
            except (TypeError, ValueError, IndexError):
                seconds = None
    if seconds is None:
        reset = headers.get("ratelimit-reset", "").strip()
        if reset.isdigit():
            seconds = int(reset) - now
    if seconds is None or not math.isfinite(seconds):
        return 60.0
    return min(max(seconds, 1.0), 3600.0)


# -- the client -----------------------------------------------------------------------


class GitLabClient:
    """One credential on one GitLab; use as a context manager to reuse connections.

    ``cache`` is accepted for the protocol and not used (see the module docstring).
    """

    def __init__(
        self,
        settings: HostSettings,
        credential: Credential,
        *,
        cache: ConditionalCache | None = None,
        on_rate: Callable[[RateLimit], None] | None = None,
    ) -> None:
        if not credential.token:
            raise HostError(f"no token given for {settings.name}: GitLab needs {TOKEN_HELP}", reason="auth")
        self.settings = settings
        self.credential = credential
        self._on_rate = on_rate
        self._api = settings.api_url.rstrip("/")
        self._web = settings.web_url.rstrip("/")
        self._origins = {origin_of(self._api), origin_of(self._web)}
        self._http = _http(settings)
        self._http.headers["Authorization"] = f"Bearer {credential.token}"

    def __enter__(self) -> GitLabClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- requests ---------------------------------------------------------

    def _call(
        self, method: str, path: str, *, params: Mapping[str, Any] | None = None, body: Any = None,
        context: str | None = None,
    ) -> tuple[Any, httpx.Response]:
        """One API call (``path`` under the API, or an absolute URL on the host); (parsed JSON, response).

        ``context`` names what was asked, for the messages of 403 and 404.
        """
        url = path if "://" in path else f"{self._api}{path}"
        if not any(_within(url, origin) for origin in self._origins):
            raise HostError(
                f"{self.settings.name} pointed devlink at {short(origin_of(url))}, outside its API "
                f"({origin_of(self._api)}); devlink does not send the credential there", reason="invalid",
                hint="check the host's API URL and any proxy in front of it")
        kwargs: dict[str, Any] = {"params": dict(params) if params else None}
        if body is not None:
            kwargs["json"] = body
        response, raw = _read(self.settings, self._http, method, url, **kwargs)
        self._note_rate(response.headers)
        if response.status_code >= 300:
            raise self._failure(response, raw, method, urlsplit(url).path, context)
        return _json(self.settings, raw, f"{method} {urlsplit(url).path}"), response

    def get(self, path: str, params: Mapping[str, Any] | None = None, *, context: str | None = None) -> Any:
        return self._call("GET", path, params=params, context=context)[0]

    def paginate(self, path: str, params: Mapping[str, Any] | None = None, *,
                 context: str | None = None) -> Iterator[list[Any]]:
        """Each page of a list, following ``Link: rel="next"`` (offset or keyset alike), else ``X-Next-Page``."""
        url, query = path, {"per_page": PER_PAGE, **(params or {})}
        for _ in range(MAX_PAGES):
            page, response = self._call("GET", url, params=query, context=context)
            if not isinstance(page, list):
                raise TypeError("a list page that is not a list")
            yield page
            link = response.links.get("next", {}).get("url")
            next_url = str(response.url.join(link)) if link else None
            following = response.headers.get("x-next-page", "").strip()
            if next_url:
                url, query = next_url, {}
            elif following.isdigit() and page:
                query = {**query, "page": following}
            else:
                return
        raise HostError(f"{self.settings.name} {path}: more than {MAX_PAGES} pages", reason="invalid")

    def _note_rate(self, headers: httpx.Headers) -> None:
        """``RateLimit-Limit/-Remaining/-Reset`` (epoch seconds), sent by gitlab.com and by throttled instances."""
        if self._on_rate is None:
            return
        try:
            limit = int(headers["ratelimit-limit"])
            remaining = int(headers["ratelimit-remaining"])
            reset = datetime.fromtimestamp(int(headers["ratelimit-reset"]), UTC)
        except (KeyError, ValueError, OverflowError, OSError):
            return  # a self-managed instance without throttling sends none of them
        self._on_rate(RateLimit(limit, remaining, reset))

    def _failure(self, response: httpx.Response, raw: bytes, method: str, path: str,
                 context: str | None) -> HostError:
        error = self._refusal(response, raw, method, path, context)
        error.answered = response.status_code  # type: ignore[attr-defined]
        return error

    def _refusal(self, response: httpx.Response, raw: bytes, method: str, path: str,
                 context: str | None) -> HostError:
        status = response.status_code
        name = self.settings.name
        what = context or f"{method} {path}"
        if 300 <= status < 400:
            target = response.headers.get("location", "")
            return HostError(
                f"{name} redirected {what} to {short(origin_of(target) if '://' in target else target)}; devlink "
                "does not follow redirects with the token", reason="invalid",
                hint="give the host's final URL (https, and any path prefix such as /gitlab)")
        said = _said(raw)
        if status == 401:
            return HostError(f"{name} refused the token: invalid or expired token{': ' + said if said else ''}",
                             reason="auth", hint=f"create {TOKEN_HELP} and link the account again")
        if status == 403:
            scope = self._missing_scope(response, raw)
            if scope is not None:
                return HostError(f"{name} refused {what}: the token lacks a scope it needs ({scope}); devlink "
                                 f"needs scope {SCOPE}", reason="permission", hint=f"create {TOKEN_HELP}")
            return HostError(f"{name} {what}: permission denied (403){': ' + said if said else ''}",
                             reason="permission")
        if status == 404:
            return HostError(f"{name} {what}: not found (or not visible to this credential)", reason="not_found")
        if status == 410:
            return HostError(f"{name} {what}: gone{': ' + said if said else ''}", reason="gone")
        if status == 429:
            wait = _wait(response.headers)
            return HostError(f"{name} rate limit reached; work for this account waits {int(wait)} s",
                             reason="rate_limited", retry_after=wait)
        if status < 500:
            return HostError(f"{name} refused {what} ({status}){': ' + said if said else ''}", reason="invalid")
        return HostError(f"{name} {what}: answered {status}{': ' + said if said else ''}", reason="server",
                         retry_after=60)

    @staticmethod
    def _missing_scope(response: httpx.Response, raw: bytes) -> str | None:
        """The scopes a 403 ``insufficient_scope`` names (body ``scope`` or ``WWW-Authenticate``), else None."""
        challenge = response.headers.get("www-authenticate", "")
        try:
            data = loads_bounded(raw[:65536], max_depth=8) if raw.strip() else None
        except JsonLimitError:
            data = None
        if isinstance(data, dict) and data.get("error") == "insufficient_scope":
            return short(str(data.get("scope") or SCOPE), 100)
        if "insufficient_scope" in challenge:
            found = re.search(r'scope="([^"]*)"', challenge)
            return short(found.group(1) if found else SCOPE, 100)
        return None

    # -- linking ----------------------------------------------------------

    @_checked_answers
    def viewer(self) -> str | None:
        """Check the version and the token's scope ``api``; the username the token acts as."""
        try:
            version = str(self.get("/version", context="the version")["version"])
        except HostError as exc:
            if exc.reason != "not_found":
                raise
            raise HostError(f"{self.settings.name} has no GitLab API at {self._api} (/version is not found)",
                            reason="not_found", hint="check the host URL and any path prefix (/gitlab)") from None
        found = _VERSION.match(version)
        if not found:
            raise HostError(f"{self.settings.name} answered /version with {short(version, 60)!r}, not a GitLab "
                            "version", reason="invalid", hint="check that the host URL points at a GitLab instance")
        if (int(found.group(1)), int(found.group(2))) < MIN_VERSION:
            raise HostError(
                f"GitLab {found.group(1)}.{found.group(2)} on {self.settings.name} is older than "
                f"{MIN_VERSION[0]}.{MIN_VERSION[1]}, the first with the API devlink needs "
                "(personal_access_tokens/self)", reason="invalid", hint="upgrade GitLab")
        username = str(self.get("/user", context="the token's user")["username"])
        if self.credential.auth_kind == "oauth":
            info = self.get(f"{self._web}/oauth/token/info", context="the OAuth token")
            raw_scopes = info.get("scope", info.get("scopes"))
        else:
            raw_scopes = self.get("/personal_access_tokens/self", context="the token")["scopes"]
        scopes = raw_scopes.split() if isinstance(raw_scopes, str) else [str(s) for s in raw_scopes or []]
        if SCOPE not in scopes:
            raise HostError(f"the token needs scope {SCOPE}; read_api cannot manage webhooks (it has: "
                            f"{short(', '.join(scopes) or 'none', 100)})", reason="permission",
                            hint=f"create {TOKEN_HELP}")
        return username

    @_checked_answers
    def account(self, name: str) -> RemoteAccount:
        """A group by its full path (any depth), else a user by username."""
        path = name.strip().strip("/")
        try:
            group = self.get(f"/groups/{_enc(path)}", {"with_projects": "false"}, context=f"group {path}")
        except HostError as exc:
            if exc.reason != "not_found":
                raise
        else:
            login = str(group["full_path"])
            return RemoteAccount(login, "group", str(int(group["id"])), _on_origin(group.get("web_url"), self._web))
        if path and "/" not in path:
            try:
                users = self.get("/users", {"username": path}, context=f"user {path}")
            except HostError as exc:
                if exc.reason != "not_found":
                    raise
                users = []
            for user in users or []:
                if str(user.get("username", "")).lower() == path.lower():
                    return RemoteAccount(str(user["username"]), "user", str(int(user["id"])),
                                         _on_origin(user.get("web_url"), self._web))
        raise HostError(f"no group or user {name!r} on {self.settings.name}, or not visible to this credential",
                        reason="not_found", hint="give a group's full path (acme/platform) or a username")

    @_checked_answers
    def repositories(self, account: RemoteAccount, viewer: str | None) -> list[RemoteRepository]:
        """Every project of a group (its subgroups' too, archived ones flagged) or of a user the token can see."""
        if account.kind == "group":
            path = f"/groups/{_enc(account.external_id)}/projects"
            params: dict[str, Any] = {"include_subgroups": "true", "with_shared": "false",
                                      "order_by": "id", "sort": "asc"}
        else:
            path, params = f"/users/{_enc(account.external_id)}/projects", {"order_by": "id", "sort": "asc"}
        context = f"the projects of {account.login}"
        try:  # keyset pagination where the endpoint offers it: no deep OFFSET scans, no page that shifts
            items = [item for page in self.paginate(path, {**params, "pagination": "keyset"}, context=context)
                     for item in page]
        except HostError as exc:
            if getattr(exc, "answered", None) != 405:  # keyset is not offered here (rest/_index.md, "Keyset-based")
                raise
            items = [item for page in self.paginate(path, params, context=context) for item in page]
        prefix = account.login.lower() + "/"
        found: dict[str, RemoteRepository] = {}
        for item in items:
            repository = repository_from(item, self._web)
            if repository.full_name.lower().startswith(prefix):  # not a project shared into the group
                found.setdefault(repository.external_id, repository)
        return list(found.values())

    @_checked_answers
    def repository(self, external_id: str) -> RemoteRepository:
        """One project by id; ``gone`` when GitLab no longer has it for this credential (404/410)."""
        try:
            data = self.get(f"/projects/{_enc(external_id)}", context=f"project {external_id}")
        except HostError as exc:
            if exc.reason in ("not_found", "gone"):
                raise HostError(f"project {external_id} is not on {self.settings.name} any more, or not visible "
                                "to this credential", reason="gone") from None
            raise
        return repository_from(data, self._web)

    # -- webhooks ---------------------------------------------------------

    def _hooks_path(self, target: HookTarget) -> str:
        level = "projects" if target.level == "repository" else "groups"
        return f"/{level}/{_enc(target.external_id)}/hooks"

    def _hook_context(self, target: HookTarget) -> str:
        if target.level == "repository":
            return f"the webhooks of project {target.path}"
        return f"the webhooks of group {target.path} (group webhooks need GitLab Premium or Ultimate)"

    @_checked_answers
    def hooks(self, target: HookTarget) -> list[RemoteHook]:
        """The hooks on a project, or on a group (Free tier: ``not_found``, the engine uses project hooks)."""
        hooks: list[RemoteHook] = []
        for page in self.paginate(self._hooks_path(target), context=self._hook_context(target)):
            for item in page:
                url = item.get("url")
                hooks.append(RemoteHook(str(int(item["id"])), url if isinstance(url, str) else None,
                                        all(item.get(flag) is True for flag in (*HOOK_EVENTS,
                                                                                "enable_ssl_verification"))))
        return hooks

    @_checked_answers
    def create_hook(self, target: HookTarget, url: str, secret: str) -> str:
        data, _ = self._call("POST", self._hooks_path(target), body=_hook_body(url, secret),
                             context=self._hook_context(target))
        return str(int(data["id"]))

    def update_hook(self, target: HookTarget, hook_id: str, url: str, secret: str) -> None:
        self._call("PUT", f"{self._hooks_path(target)}/{_enc(hook_id)}", body=_hook_body(url, secret),
                   context=self._hook_context(target))

    def delete_hook(self, target: HookTarget, hook_id: str) -> None:
        self._call("DELETE", f"{self._hooks_path(target)}/{_enc(hook_id)}", context=self._hook_context(target))

    # -- merge requests ---------------------------------------------------

    def _mr_failure(self, exc: HostError, repository: RemoteRepository) -> HostError:
        if exc.reason == "permission" and "lacks a scope" not in exc.message:
            return HostError(f"merge requests are disabled on {repository.full_name}, or not visible to this "
                             "credential", reason="permission")
        return exc

    @_checked_answers
    def pulls(
        self, repository: RemoteRepository, since: datetime | None = None
    ) -> Iterator[tuple[RemotePullRequest, bool]]:
        """Merge requests, most recently updated first (from ``since`` on when given)."""
        params: dict[str, Any] = {"state": "all", "order_by": "updated_at", "sort": "desc"}
        if since is not None:
            moment = since if since.tzinfo else since.replace(tzinfo=UTC)
            params["updated_after"] = moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
        path = f"/projects/{_enc(repository.external_id)}/merge_requests"
        pages = self.paginate(path, params, context=f"the merge requests of {repository.full_name}")
        while True:
            try:
                page = next(pages)
            except StopIteration:
                return
            except HostError as exc:
                raise self._mr_failure(exc, repository) from None
            for item in page:
                yield pull_from(item, self._web), True

    @_checked_answers
    def pull_details(self, repository: RemoteRepository, number: int) -> RemotePullRequest:
        """One merge request: reviewers (``requested``), overridden by approvals, and the comment count."""
        path = f"/projects/{_enc(repository.external_id)}/merge_requests/{int(number)}"
        context = f"merge request !{number} of {repository.full_name}"
        try:
            data = self.get(path, context=context)
        except HostError as exc:
            raise self._mr_failure(exc, repository) from None
        reviews: dict[str, Review] = {}
        for user in data.get("reviewers") or []:
            if isinstance(user, dict) and user.get("username"):
                reviews[str(user["username"])] = Review(str(user["username"]), "requested")
        try:
            approvals = self.get(f"{path}/approvals", context=f"the approvals of {context}")
        except HostError as exc:
            if exc.reason not in ("permission", "not_found"):
                raise
            approvals = None  # an instance or tier without the approvals API: reviewers alone
        for entry in (approvals or {}).get("approved_by") or []:
            user = entry.get("user") if isinstance(entry, dict) else None
            if isinstance(user, dict) and user.get("username"):
                reviews[str(user["username"])] = Review(str(user["username"]), "approved")
        pull = pull_from(data, self._web)
        count = data.get("user_notes_count")
        return RemotePullRequest(**{
            **pull.__dict__,
            "comment_count": int(count) if isinstance(count, int) and not isinstance(count, bool) else None,
            "reviewers": tuple(reviews.values()),
        })

    def git_credentials(self) -> tuple[str, str]:
        """git over HTTPS: user ``oauth2`` and the token (GitLab ignores the name for access tokens)."""
        return "oauth2", str(self.credential.token)


# -- answers → values ---------------------------------------------------------------


def repository_from(data: dict[str, Any], web_url: str) -> RemoteRepository:
    """A project; ``full_name`` is its ``path_with_namespace`` at any depth (``acme/platform/core/app``)."""
    full_name = str(data["path_with_namespace"])
    namespace = data.get("namespace") or {}
    owner = namespace.get("full_path") if isinstance(namespace, dict) else None
    branch = data.get("default_branch")
    return RemoteRepository(
        external_id=str(int(data["id"])),
        full_name=full_name,
        owner=str(owner or full_name.rpartition("/")[0]),
        clone_url=_on_origin(data.get("http_url_to_repo"), web_url) or "",
        web_url=_on_origin(data.get("web_url"), web_url) or "",
        private=data.get("visibility") != "public",
        archived=data.get("archived") is True,
        default_branch=branch if isinstance(branch, str) and branch else None,
    )


def pull_from(data: dict[str, Any], web_url: str) -> RemotePullRequest:
    """A merge request as a list page or the single answer shows it (reviewers: None, the list does not say)."""
    raw_state = data.get("state")
    state: Literal["open", "draft", "merged", "closed"]
    if raw_state == "merged":
        state = "merged"
    elif raw_state == "closed":
        state = "closed"  # "locked" is the moment a merge runs (it falls back to "opened" if it fails): open
    elif data.get("draft") is True or data.get("work_in_progress") is True:
        state = "draft"
    else:
        state = "open"
    author = data.get("author")
    username = author.get("username") if isinstance(author, dict) else None
    return RemotePullRequest(
        number=int(data["iid"]),
        external_id=str(int(data["id"])),
        title=str(data.get("title") or ""),
        description=str(data.get("description") or ""),
        state=state,
        source_branch=str(data.get("source_branch") or ""),
        target_branch=str(data.get("target_branch") or ""),
        author=str(username) if username else None,
        url=_on_origin(data.get("web_url"), web_url),
        created_at=parse_time(data.get("created_at")),
        updated_at=parse_time(data.get("updated_at")),
        merged_at=parse_time(data.get("merged_at")),
    )


def _hook_body(url: str, secret: str) -> dict[str, Any]:
    """What devlink's hook sends: pushes (branches and tags) and merge requests, over verified TLS."""
    return {"url": url, "token": secret, **dict.fromkeys(HOOK_EVENTS, True), "enable_ssl_verification": True}


# -- OAuth ----------------------------------------------------------------------------


def _token_request(settings: HostSettings, form: dict[str, str], what: str) -> TokenGrant:
    """POST ``{web}/oauth/token`` (Doorkeeper); a refusal is ``auth`` with GitLab's ``error_description``."""
    url = f"{settings.web_url.rstrip('/')}/oauth/token"
    with _http(settings) as http:
        response, raw = _read(settings, http, "POST", url, data=form)
    if 300 <= response.status_code < 400:
        raise HostError(f"{settings.name} redirected its OAuth token endpoint; devlink does not follow it",
                        reason="invalid", hint="give the host's final URL (https, and any path prefix)")
    try:
        data = loads_bounded(raw) if raw.strip() else {}
    except JsonLimitError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    token = data.get("access_token")
    if response.status_code != 200 or not isinstance(token, str) or not token:
        error = data.get("error_description") or data.get("error") or f"HTTP {response.status_code}"
        raise HostError(f"{settings.name} refused the OAuth {what}: {short(str(error))}", reason="auth",
                        hint="link the account again through GitLab's authorisation page")
    refresh = data.get("refresh_token")
    expires_in = data.get("expires_in")
    expires_at = (datetime.now(UTC) + timedelta(seconds=int(expires_in))
                  if isinstance(expires_in, int) and not isinstance(expires_in, bool)
                  and 0 < expires_in <= 10 * 365 * 86400
                  else None)
    scope = data.get("scope")
    return TokenGrant(access_token=token, refresh_token=refresh if isinstance(refresh, str) and refresh else None,
                      expires_at=expires_at, scopes=tuple(scope.split()) if isinstance(scope, str) else ())


# -- the host kind --------------------------------------------------------------------


class GitLab:
    """The ``gitlab`` host kind: gitlab.com and self-managed instances (any path prefix, e.g. ``/gitlab``)."""

    kind = "gitlab"
    label = "GitLab"
    stored_kinds: tuple[str, ...] = ("gitlab",)
    default_web_url = GITLAB_WEB
    account_words: Mapping[str, str] = {"group": "group", "user": "user"}
    token_help = TOKEN_HELP
    max_body = MAX_BODY
    signs_body = False  # X-Gitlab-Token is the secret itself: checked before a byte of the body is read
    secret_options: frozenset[str] = frozenset()
    host_option_names: tuple[str, ...] = ()

    def canonical_web_url(self, web_url: str) -> str:
        """No trailing slash; ``www.gitlab.com`` is gitlab.com."""
        web = web_url.strip().rstrip("/")
        parts = urlsplit(web)
        if parts.netloc.lower() in ("www.gitlab.com", "gitlab.com") and parts.path in ("", "/"):
            return GITLAB_WEB
        return web

    def api_url_for(self, web_url: str) -> str:
        return f"{self.canonical_web_url(web_url)}/api/v4"

    def check_api_url(self, web_url: str, api_url: str) -> str | None:
        if self.canonical_web_url(web_url) == GITLAB_WEB and api_url.strip().rstrip("/") != GITLAB_API:
            return f"gitlab.com's API is {GITLAB_API}; {api_url!r} cannot be it"
        return None

    def stored_kind(self, web_url: str) -> str:
        return "gitlab"

    def client(
        self, settings: HostSettings, credential: Credential, *, cache: ConditionalCache | None = None,
        on_rate: Callable[[RateLimit], None] | None = None,
    ) -> GitLabClient:
        return GitLabClient(settings, credential, cache=cache, on_rate=on_rate)

    def prepare_credential(
        self, settings: HostSettings, name: str, token: str | None, options: Mapping[str, str]
    ) -> Credential:
        if not token:
            raise HostError(f"linking {name} on {settings.name} needs a token: {TOKEN_HELP}", reason="auth")
        return Credential(token=token, auth_kind=options.get("auth_kind", "token"))

    def account_options(self, credential: Credential) -> dict[str, str]:
        return {}

    def host_options(self, credential: Credential) -> dict[str, str]:
        return {}

    def hosts_own_hook(self, host_options: Mapping[str, str], auth_kind: str) -> bool:
        return False  # every hook is a project's or a group's, installed by devlink

    def hook_url(self, base_url: str, target: HookTarget) -> str:
        level = "project" if target.level == "repository" else "group"
        return f"{base_url.rstrip('/')}/hooks/gitlab?{level}={_enc(target.external_id)}"

    # webhooks: devlink.hosts.gitlab_webhooks, imported when a delivery arrives

    def read_delivery(self, headers: Mapping[str, str], query: Mapping[str, str]) -> DeliveryHead:
        return cast(DeliveryHead, _webhooks().read_delivery(headers, query))

    def verify(self, secret: str, body: bytes, head: DeliveryHead) -> bool:
        return bool(_webhooks().verify(secret, body, head))

    def host_secret(self, options: Mapping[str, str], head: DeliveryHead) -> str | None:
        return None  # GitLab has no host-level hook devlink receives (no App)

    def parse(self, event: str, payload: dict[str, object]) -> WebhookEvent:
        return cast(WebhookEvent, _webhooks().parse_webhook(event, payload))

    def payload_target(self, payload: dict[str, object]) -> tuple[str | None, tuple[str, str] | None]:
        return cast("tuple[str | None, tuple[str, str] | None]", _webhooks().payload_target(payload))

    # OAuth: https://docs.gitlab.com/ee/api/oauth2.html#authorization-code-with-proof-key-for-code-exchange-pkce

    def oauth_authorize_url(
        self, settings: HostSettings, client_id: str, redirect_uri: str, state: str, challenge: str
    ) -> str:
        query = httpx.QueryParams({
            "client_id": client_id, "redirect_uri": redirect_uri, "response_type": "code", "state": state,
            "scope": SCOPE, "code_challenge": challenge, "code_challenge_method": "S256",
        })
        return f"{settings.web_url.rstrip('/')}/oauth/authorize?{query}"

    def exchange_oauth_code(
        self, settings: HostSettings, client_id: str, client_secret: str, code: str, redirect_uri: str, verifier: str
    ) -> TokenGrant:
        return _token_request(settings, {
            "client_id": client_id, "client_secret": client_secret, "code": code, "grant_type": "authorization_code",
            "redirect_uri": redirect_uri, "code_verifier": verifier,
        }, "code")

    def refresh_oauth_token(
        self, settings: HostSettings, client_id: str, client_secret: str, refresh_token: str
    ) -> TokenGrant:
        """A new access token; GitLab rotates the refresh token too, so the grant's one replaces the old."""
        return _token_request(settings, {
            "client_id": client_id, "client_secret": client_secret, "refresh_token": refresh_token,
            "grant_type": "refresh_token",
        }, "refresh token")


def _webhooks() -> Any:
    """``devlink.hosts.gitlab_webhooks``, loaded on the first delivery (the client does not need it)."""
    return importlib.import_module("devlink.hosts.gitlab_webhooks")


HOST = GitLab()

if TYPE_CHECKING:  # mypy checks that both satisfy the protocol
    _kind: HostKind = HOST

    def _client(client: GitLabClient) -> HostClient:
        return client
