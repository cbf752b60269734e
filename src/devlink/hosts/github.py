"""GitHub and GitHub Enterprise Server over REST, on githubkit's transport and auth.

githubkit gives us the HTTP client (CA bundle, proxy, timeout), the three
credential kinds (token, OAuth web flow, GitHub App installation tokens that it
refreshes a minute before they expire) and retries of 5xx answers.  Three
things devlink does on top, because they must outlive one process:

- ETags live in a ``ConditionalCache`` the engine backs with the database, so an
  unchanged page answers 304 and costs no quota in any worker;
- every answer's ``X-RateLimit-*`` is handed to ``on_rate`` so the engine can
  pause an account before the budget runs out (githubkit would sleep instead);
- answers are read as plain JSON, so older GHES shapes do not fail validation;
- redirects are followed here, not by httpx, and only within the API's own
  origin: the credential (and a request body such as a webhook secret) is
  never sent to another address, whatever ``Location`` or ``Link`` says.

Nothing here writes the store: callers get ``hosts.base`` values or ``HostError``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
import jwt
from githubkit import AppInstallationAuthStrategy, GitHub, TokenAuthStrategy
from githubkit.exception import (
    GitHubException,
    RateLimitExceeded,
    RequestError,
    RequestFailed,
    RequestTimeout,
)
from githubkit.retry import RetryChainDecision, RetryServerError
from githubkit.typing import RetryOption

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
)
from devlink.hosts.protocol import (
    ConditionalCache,
    Credential,
    DeliveryHead,
    HookTarget,
    HostSettings,
    RateLimit,
    RemoteHook,
    TokenGrant,
)

__all__ = [
    "GITHUB_API",
    "GITHUB_WEB",
    "HOOK_EVENTS",
    "ConditionalCache",
    "Credential",
    "GitHubClient",
    "HostSettings",
    "RateLimit",
    "api_url_for",
    "canonical_web_url",
    "exchange_oauth_code",
    "find_installation",
    "oauth_authorize_url",
    "parse_time",
]

GITHUB_WEB = "https://github.com"
GITHUB_API = "https://api.github.com"
HOOK_EVENTS = ("push", "create", "delete", "pull_request", "pull_request_review", "repository")
OAUTH_SCOPES = "repo admin:repo_hook read:org"
PER_PAGE = 100
USER_AGENT = "devlink"
MAX_REDIRECTS = 5


def canonical_web_url(web_url: str) -> str:
    """``https://www.github.com`` is github.com: one host, whose clone URLs are on ``github.com``."""
    web = web_url.strip().rstrip("/")
    parts = urlsplit(web)
    if parts.netloc.lower() == "www.github.com" and parts.path in ("", "/"):
        return GITHUB_WEB
    return web


def api_url_for(web_url: str) -> str:
    """github.com's API has its own host; a GitHub Enterprise Server serves it under ``/api/v3``."""
    web = canonical_web_url(web_url)
    if urlsplit(web).netloc.lower() == "github.com":
        return GITHUB_API
    return f"{web}/api/v3"


def parse_time(value: object) -> datetime | None:
    """GitHub's ISO 8601 times (``Z`` or an offset); older payloads send epoch seconds."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    return parse_iso(value)


def _retry_decision(backoff: float) -> Callable[[GitHubException, int], RetryOption]:
    """Retry 5xx and timeouts a few times with growing waits; never sleep through a rate limit here."""
    server = RetryServerError(max_retry=2)

    def timeouts(exc: GitHubException, count: int) -> RetryOption:
        if count < 2 and isinstance(exc, RequestTimeout):
            return RetryOption(True, timedelta(seconds=backoff * (count + 1)))
        return RetryOption(False)

    def scaled(exc: GitHubException, count: int) -> RetryOption:
        if isinstance(exc, RateLimitExceeded):
            return RetryOption(False)
        option = RetryChainDecision(server, timeouts)(exc, count)
        if option.do_retry and isinstance(exc, RequestFailed):
            return RetryOption(True, timedelta(seconds=backoff * (count + 1)))
        return option

    return scaled




_checked_answers = checked_answers("check that the host URL points at a GitHub (Enterprise) API")


class GitHubClient:
    """One credential on one host.  Use as a context manager to reuse connections."""

    #: seconds before a retried 5xx or timeout; tests lower it
    retry_backoff: float = 1.0

    def __init__(
        self,
        host: HostSettings,
        credential: Credential,
        *,
        cache: ConditionalCache | None = None,
        on_rate: Callable[[RateLimit], None] | None = None,
    ) -> None:
        self.host = self.settings = host
        self.credential = credential
        self._cache = cache
        self._on_rate = on_rate
        self._github = GitHub(
            _auth(credential),
            base_url=host.api_url.rstrip("/") + "/",
            user_agent=USER_AGENT,
            timeout=host.timeout,
            ssl_verify=ssl_context(host.ca_bundle),
            trust_env=host.proxy is None,
            proxy=host.proxy or None,
            http_cache=False,
            auto_retry=_retry_decision(self.retry_backoff),
            follow_redirects=False,  # githubkit's default is True; ``_send`` follows same-origin ones itself
        )
        self._origin = origin_of(host.api_url)

    def __enter__(self) -> GitHubClient:
        self._github.__enter__()  # type: ignore[no-untyped-call]
        return self

    def __exit__(self, *exc: object) -> None:
        self._github.__exit__(*exc)  # type: ignore[arg-type]

    # -- requests ---------------------------------------------------------

    def _send(
        self, method: str, path: str, *, params: dict[str, Any] | None = None, json_body: Any = None,
        etag: str | None = None,
    ) -> httpx.Response:
        headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
        if etag:
            headers["If-None-Match"] = etag
        response = self._request(method, path, params, json_body, headers)
        hops = 0
        while response.has_redirect_location:  # GitHub: a renamed repository's old path, 301 (307 for writes) to its id
            hops += 1
            if hops > MAX_REDIRECTS:
                raise HostError(f"{self.host.name} {path}: more than {MAX_REDIRECTS} redirects", reason="server")
            target = str(response.request.url.join(response.headers["location"]))
            if response.status_code == 303 or (response.status_code in (301, 302) and method == "POST"):
                method, json_body = "GET", None
            response = self._request(method, target, None, json_body, headers)
        return response

    def _request(
        self, method: str, url: str, params: dict[str, Any] | None, json_body: Any, headers: dict[str, str]
    ) -> httpx.Response:
        """One request; a URL outside the API's origin is refused before anything (credential, body) is sent."""
        if not _within(url, self._origin):
            raise HostError(
                f"{self.host.name} pointed devlink at {origin_of(url)}, outside its API ({self._origin}); "
                "devlink does not send the credential there", reason="invalid",
                hint="check the host's API URL (devlink host set --api-url) and any proxy in front of it")
        try:
            response = self._github.request(method, url, params=params, json=json_body, headers=headers)
        except RateLimitExceeded as exc:
            self._note_rate(exc.response.raw_response)
            wait = exc.retry_after.total_seconds()
            raise HostError(
                f"{self.host.name} rate limit reached; work for this account waits {int(wait)} s",
                reason="rate_limited", retry_after=wait,
            ) from None
        except RequestFailed as exc:
            self._note_rate(exc.response.raw_response)
            raise self._failure(exc.response.raw_response, url) from None
        except RequestError as exc:
            raise self._unreachable(exc) from None
        except GitHubException as exc:  # credential errors raised by githubkit's auth flows
            raise HostError(f"{self.host.name}: {type(exc).__name__}: {exc}", reason="auth") from None
        self._note_rate(response.raw_response)
        return response.raw_response

    def _conditional_get(
        self, url: str, params: dict[str, Any] | None, key: str
    ) -> tuple[httpx.Response, str | None]:
        """GET with the ETag stored under ``key``; returns the answer and, on a 304, the body stored with it."""
        cached = self._cache.get(key) if self._cache else None
        response = self._send("GET", url, params=params, etag=cached[0] if cached else None)
        return response, (cached[1] if response.status_code == 304 and cached else None)

    def _remember(self, key: str, response: httpx.Response, body: str) -> None:
        if self._cache and (etag := response.headers.get("etag")):
            self._cache.put(key, etag, body)

    def get_json(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """GET with the ETag cache: a 304 returns the body stored with that ETag, at no quota."""
        key = self._cache_key(path, params)
        response, cached = self._conditional_get(path, params, key)
        if cached is not None:
            return json.loads(cached)
        self._remember(key, response, response.text)
        return response.json() if response.content else None

    def pages(self, path: str, params: dict[str, Any] | None = None) -> Iterator[tuple[Any, bool]]:
        """Each page of a list as (body, changed), following ``Link: rel="next"``; 304 pages come from the cache.

        A cached page keeps its own ``next`` link, so walking on past an unchanged page needs no new answer.
        """
        url: str | None = path
        query: dict[str, Any] | None = {"per_page": PER_PAGE, **(params or {})}
        while url:
            key = "page:" + self._cache_key(url, query)
            response, cached = self._conditional_get(url, query, key)
            if cached is not None:
                page = json.loads(cached)
                body, changed, next_url = page["items"], False, page["next"]
            else:
                body, changed = response.json(), True
                next_url = response.links.get("next", {}).get("url")
                self._remember(key, response, json.dumps({"items": body, "next": next_url}))
            yield body, changed
            url, query = next_url, None

    def paginate(
        self, path: str, params: dict[str, Any] | None = None, *, item_key: str | None = None
    ) -> Iterator[Any]:
        """Every item of a list (``item_key`` names the list inside an object answer)."""
        for body, _ in self.pages(path, params):
            items = body.get(item_key, []) if item_key and isinstance(body, dict) else body
            yield from items or []

    def _cache_key(self, path: str, params: dict[str, Any] | None) -> str:
        query = "&".join(f"{k}={v}" for k, v in sorted((params or {}).items()))
        return f"{path}?{query}" if query else path

    def _note_rate(self, response: httpx.Response) -> None:
        if self._on_rate is None:
            return
        headers = response.headers
        try:
            limit = int(headers["x-ratelimit-limit"])
            remaining = int(headers["x-ratelimit-remaining"])
            reset = datetime.fromtimestamp(int(headers["x-ratelimit-reset"]), UTC)
        except (KeyError, ValueError):
            return  # GHES with rate limiting off sends none of them
        self._on_rate(RateLimit(limit, remaining, reset))

    def _failure(self, response: httpx.Response, path: str) -> HostError:
        status = response.status_code
        try:
            message = str(response.json().get("message") or response.reason_phrase)
        except (ValueError, AttributeError):
            message = response.reason_phrase or f"HTTP {status}"
        where = f"{self.host.name} {path}"
        if status == 401:
            return HostError(f"{self.host.name} refused the credential: {message}", reason="auth",
                             hint="check the token (or App key) and that it has not expired")
        if status == 403:
            return HostError(f"{where}: forbidden: {message}", reason="permission",
                             hint="the credential lacks a scope or permission for this")
        if status == 404:
            return HostError(f"{where}: not found (or not visible to this credential)", reason="not_found")
        if status == 410:
            return HostError(f"{where}: gone: {message}", reason="gone")
        if status == 422:
            return HostError(f"{where}: rejected: {message}", reason="invalid")
        if status == 429:
            wait = float(response.headers.get("retry-after") or 60)
            return HostError(f"{where}: too many requests", reason="rate_limited", retry_after=wait)
        return HostError(f"{where}: {self.host.name} answered {status} {message}", reason="server", retry_after=60)

    def _unreachable(self, exc: RequestError[Any]) -> HostError:
        cause = exc.exc if hasattr(exc, "exc") else exc
        return transport_error(self.host, cause, timed_out=isinstance(exc, RequestTimeout))

    # -- what devlink asks ------------------------------------------------

    @_checked_answers
    def viewer(self) -> str | None:
        """The login the token acts as; None for a GitHub App installation, which acts as itself."""
        if self.credential.auth_kind == "app":
            self.get_json("/installation/repositories", {"per_page": 1})
            return None
        return str(self.get_json("/user")["login"])

    @_checked_answers
    def account(self, name: str) -> RemoteAccount:
        try:
            data = self.get_json(f"/users/{name}")
        except HostError as exc:
            if exc.reason == "not_found":
                raise HostError(
                    f"account {name!r} not found on {self.host.name}, or not visible to this credential",
                    reason="not_found",
                ) from None
            raise
        kind: Literal["user", "organization"] = "organization" if data.get("type") == "Organization" else "user"
        return RemoteAccount(str(data["login"]), kind, str(data["id"]), data.get("html_url"))

    @_checked_answers
    def repositories(self, account: RemoteAccount, viewer: str | None) -> list[RemoteRepository]:
        """Every repository ``account`` owns that this credential can see, public and private."""
        if self.credential.auth_kind == "app":
            items = self.paginate("/installation/repositories", item_key="repositories")
        elif account.kind == "organization":
            items = self.paginate(f"/orgs/{account.login}/repos", {"type": "all"})
        elif viewer is not None and viewer.lower() == account.login.lower():
            items = self.paginate("/user/repos", {"affiliation": "owner"})
        else:
            items = self.paginate(f"/users/{account.login}/repos", {"type": "owner"})
        repos = [repository_from(item) for item in items]
        return [r for r in repos if r.owner.lower() == account.login.lower()]

    @_checked_answers
    def repository(self, external_id: str) -> RemoteRepository:
        return repository_from(self.get_json(f"/repositories/{external_id}"))

    # hooks: on a repository (``repos/OWNER/NAME``) or an organisation (``orgs/ORG``)

    @_checked_answers
    def hooks(self, target: HookTarget) -> list[RemoteHook]:
        return [RemoteHook(str(hook["id"]), _hook_url(hook), _hook_current(hook))
                for hook in self.paginate(f"/{_scope(target)}/hooks")]

    @_checked_answers
    def create_hook(self, target: HookTarget, url: str, secret: str) -> str:
        response = self._send("POST", f"/{_scope(target)}/hooks", json_body=_hook_body(url, secret))
        return str(response.json()["id"])

    def update_hook(self, target: HookTarget, hook_id: str, url: str, secret: str) -> None:
        self._send("PATCH", f"/{_scope(target)}/hooks/{hook_id}", json_body=_hook_body(url, secret))

    def delete_hook(self, target: HookTarget, hook_id: str) -> None:
        self._send("DELETE", f"/{_scope(target)}/hooks/{hook_id}")

    # pull requests

    @_checked_answers
    def pulls(
        self, repository: RemoteRepository, since: datetime | None = None
    ) -> Iterator[tuple[RemotePullRequest, bool]]:
        """Pull requests by last update, newest first, each with whether its page changed (ETag).

        GitHub cannot filter pull requests by update time; the caller stops at ``since``.
        """
        params = {"state": "all", "sort": "updated", "direction": "desc"}
        for body, changed in self.pages(f"/repos/{repository.full_name}/pulls", params):
            for item in body:
                yield pull_from(item), changed

    @_checked_answers
    def pull_details(self, repository: RemoteRepository, number: int) -> RemotePullRequest:
        """One pull request with its comment count and each reviewer's latest review state."""
        full_name = repository.full_name
        data = self.get_json(f"/repos/{full_name}/pulls/{number}")
        reviews = list(self.paginate(f"/repos/{full_name}/pulls/{number}/reviews"))
        pull = pull_from(data)
        return RemotePullRequest(**{**pull.__dict__, "reviewers": latest_reviews(data, reviews)})

    # credentials for git

    def git_credentials(self) -> tuple[str, str]:
        """GitHub takes a token as the password of ``x-access-token``."""
        return "x-access-token", self.git_password()

    def git_password(self) -> str:
        """The token git sends as ``x-access-token``'s password (an App's current installation token)."""
        if self.credential.token:
            return self.credential.token
        # any request carries the current token (githubkit renews it first when due); a conditional one is
        # answered 304 and costs no quota, so syncing an unchanged repository stays free for an App too
        path, params = "/installation/repositories", {"per_page": 1}
        key = self._cache_key(path, params)
        response, cached = self._conditional_get(path, params, key)
        if cached is None:
            self._remember(key, response, response.text)
        header = str(response.request.headers.get("authorization", ""))
        return header.split(" ", 1)[1] if " " in header else header


# -- credentials, OAuth -------------------------------------------------------


def find_installation(host: HostSettings, app_id: str, private_key: str, account: str) -> str:
    """An App acts per installation: find the one on ``account`` (organisation first, then user)."""
    token = _app_jwt(app_id, private_key)
    with _http(host) as http:
        for kind in ("orgs", "users"):
            try:
                answer = http.get(f"{host.api_url}/{kind}/{account}/installation",
                                  headers={"Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json"})
            except httpx.HTTPError as exc:
                raise HostError(f"cannot reach {host.name}: {short(str(exc))}", reason="network") from None
            if answer.status_code == 401:
                raise HostError(f"{host.name} refused the GitHub App's key (app id {app_id})", reason="auth")
            if answer.status_code == 200:
                return str(answer.json()["id"])
    raise HostError(f"the GitHub App is not installed on {account}", reason="not_found",
                    hint="install the App on the account, or pass --installation-id")


def _http(host: HostSettings) -> httpx.Client:
    """A plain client with the host's TLS, proxy and timeout, for calls outside the REST API's auth."""
    return httpx.Client(verify=ssl_context(host.ca_bundle), trust_env=host.proxy is None, proxy=host.proxy or None,
                        timeout=host.timeout, headers={"User-Agent": USER_AGENT})


def _app_jwt(app_id: str, private_key: str) -> str:
    """The App's own token; an unusable key is the caller's mistake (422), not the host failing."""
    now = int(datetime.now(UTC).timestamp())
    try:
        return jwt.encode({"iat": now - 60, "exp": now + 540, "iss": str(app_id)}, private_key, algorithm="RS256")
    except (ValueError, TypeError, jwt.PyJWTError) as exc:
        raise HostError(f"the GitHub App private key cannot be used: {exc}", reason="invalid") from None


def _auth(credential: Credential) -> TokenAuthStrategy | AppInstallationAuthStrategy:
    if credential.auth_kind == "app":
        app_id, key = credential.options.get("app_id"), credential.options.get("app_private_key")
        installation = credential.options.get("installation_id") or ""
        if not (app_id and key and installation.isdigit()):
            raise HostError("a GitHub App needs its private key and a numeric installation id", reason="invalid")
        _app_jwt(app_id, key)  # githubkit would report a bad key as a network error
        return AppInstallationAuthStrategy(app_id, key, int(installation))
    if not credential.token:
        raise HostError("no credential given: a token, or a GitHub App", reason="invalid")
    return TokenAuthStrategy(credential.token)


def oauth_authorize_url(host: HostSettings, client_id: str, redirect_uri: str, state: str, challenge: str) -> str:
    """Where the browser goes to grant devlink access (PKCE S256)."""
    query = httpx.QueryParams({
        "client_id": client_id, "redirect_uri": redirect_uri, "scope": OAUTH_SCOPES, "state": state,
        "code_challenge": challenge, "code_challenge_method": "S256",
    })
    return f"{host.web_url.rstrip('/')}/login/oauth/authorize?{query}"


def exchange_oauth_code(
    host: HostSettings, client_id: str, client_secret: str, code: str, redirect_uri: str, verifier: str
) -> TokenGrant:
    """Trade the callback's code (and the PKCE verifier) for a token, on the web host, not the API host."""
    try:
        with _http(host) as client:
            response = client.post(
                f"{host.web_url.rstrip('/')}/login/oauth/access_token",
                data={"client_id": client_id, "client_secret": client_secret, "code": code,
                      "redirect_uri": redirect_uri, "code_verifier": verifier},
                headers={"Accept": "application/json"},
            )
    except httpx.HTTPError as exc:
        raise HostError(f"cannot reach {host.name}: {short(str(exc))}", reason="network") from None
    data = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
    if response.status_code != 200 or "access_token" not in data:
        error = data.get("error_description") or data.get("error") or f"HTTP {response.status_code}"
        raise HostError(f"{host.name} refused the OAuth code: {error}", reason="auth")
    return _grant(data)


def refresh_oauth_token(host: HostSettings, client_id: str, client_secret: str, refresh_token: str) -> TokenGrant:
    """An OAuth App's tokens do not expire; a GitHub App's user tokens do (8 hours) and refresh here."""
    try:
        with _http(host) as client:
            response = client.post(
                f"{host.web_url.rstrip('/')}/login/oauth/access_token",
                data={"client_id": client_id, "client_secret": client_secret, "grant_type": "refresh_token",
                      "refresh_token": refresh_token},
                headers={"Accept": "application/json"},
            )
    except httpx.HTTPError as exc:
        raise HostError(f"cannot reach {host.name}: {short(str(exc))}", reason="network") from None
    data = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
    if response.status_code != 200 or "access_token" not in data:
        error = data.get("error_description") or data.get("error") or f"HTTP {response.status_code}"
        raise HostError(f"{host.name} refused to refresh the OAuth token: {error}", reason="auth")
    return _grant(data)


def _grant(data: dict[str, Any]) -> TokenGrant:
    expires_in = data.get("expires_in")
    expires_at = (datetime.now(UTC) + timedelta(seconds=int(expires_in))
                  if isinstance(expires_in, int) and 0 < expires_in <= 10 * 365 * 86400 else None)
    refresh = data.get("refresh_token")
    scopes = tuple(str(data.get("scope") or "").replace(",", " ").split())
    return TokenGrant(str(data["access_token"]), refresh if isinstance(refresh, str) else None, expires_at, scopes)


# -- answers → values -------------------------------------------------------


def repository_from(data: dict[str, Any]) -> RemoteRepository:
    owner = data.get("owner") or {}
    full_name = str(data.get("full_name") or f"{owner.get('login')}/{data.get('name')}")
    return RemoteRepository(
        external_id=str(data["id"]),
        full_name=full_name,
        owner=str(owner.get("login") or owner.get("name") or full_name.split("/")[0]),
        clone_url=str(data.get("clone_url") or ""),
        web_url=str(data.get("html_url") or ""),
        private=bool(data.get("private")),
        archived=bool(data.get("archived")),
        default_branch=data.get("default_branch"),
    )


def pull_from(data: dict[str, Any]) -> RemotePullRequest:
    merged_at = parse_time(data.get("merged_at"))
    if data.get("merged") or merged_at:
        state = "merged"
    elif data.get("state") == "closed":
        state = "closed"
    elif data.get("draft"):
        state = "draft"
    else:
        state = "open"
    comments = data.get("comments")
    review_comments = data.get("review_comments")
    count = int(comments) + int(review_comments) if comments is not None and review_comments is not None else None
    return RemotePullRequest(
        number=int(data["number"]),
        external_id=str(data.get("id") or ""),
        title=str(data.get("title") or ""),
        description=str(data.get("body") or ""),
        state=state,  # type: ignore[arg-type]
        source_branch=str((data.get("head") or {}).get("ref") or ""),
        target_branch=str((data.get("base") or {}).get("ref") or ""),
        author=(data.get("user") or {}).get("login"),
        url=data.get("html_url"),
        created_at=parse_time(data.get("created_at")),
        updated_at=parse_time(data.get("updated_at")),
        merged_at=merged_at,
        comment_count=count,
    )


_REVIEW_STATES = {"APPROVED": "approved", "CHANGES_REQUESTED": "changes_requested", "COMMENTED": "commented",
                  "DISMISSED": "dismissed"}


def latest_reviews(pull: dict[str, Any], reviews: list[dict[str, Any]]) -> tuple[Review, ...]:
    """Each reviewer once, with the state that counts: a later comment does not undo an approval."""
    latest: dict[str, str] = {}
    for review in reviews:  # GitHub lists reviews oldest first
        login = (review.get("user") or {}).get("login")
        state = _REVIEW_STATES.get(str(review.get("state", "")).upper())
        if not login or not state:
            continue
        if state == "commented" and latest.get(login) in ("approved", "changes_requested"):
            continue
        latest[login] = state
    for user in pull.get("requested_reviewers") or []:
        login = user.get("login")
        if login:
            latest[login] = "requested"  # asked again after reviewing: their review is pending
    return tuple(Review(login, state) for login, state in latest.items())  # type: ignore[arg-type]


def _within(url: str, origin: str) -> bool:
    """Whether a request to ``url`` stays on ``origin``: a path on it, or an absolute URL of it.

    Any scheme counts, in any case (``HTTP://…`` is absolute to httpx), and so does a
    scheme-relative ``//host/…``; a URL with white space or control characters is refused
    rather than guessed at.
    """
    if any(ord(char) <= 32 or ord(char) == 127 for char in url) or url.startswith(("\\", "/\\")):
        return False
    parts = urlsplit(url)
    if parts.scheme or parts.netloc or url.startswith("//"):
        return origin_of(url) == origin
    return True  # a path: githubkit appends it to the API base


def _scope(target: HookTarget) -> str:
    return f"repos/{target.path}" if target.level == "repository" else f"orgs/{target.path}"


def _hook_url(hook: dict[str, Any]) -> str | None:
    url = (hook.get("config") or {}).get("url")
    return url if isinstance(url, str) else None


def _hook_current(hook: dict[str, Any]) -> bool:
    """Active, JSON, and every event devlink needs."""
    config = hook.get("config") or {}
    return bool(hook.get("active", True) and set(hook.get("events") or []) >= set(HOOK_EVENTS)
                and config.get("content_type") == "json")


def _hook_body(url: str, secret: str) -> dict[str, Any]:
    return {"name": "web", "active": True, "events": list(HOOK_EVENTS),
            "config": {"url": url, "content_type": "json", "secret": secret, "insecure_ssl": "0"}}


# -- the host kind ------------------------------------------------------------


class GitHubKind:
    """github.com and GitHub Enterprise Server, as ``hosts.for_kind("github")`` gives them."""

    kind = "github"
    label = "GitHub"
    stored_kinds = ("github", "github-enterprise")
    default_web_url = GITHUB_WEB
    account_words: Mapping[str, str] = MappingProxyType({"organization": "organisation", "user": "user"})
    token_help = ("a personal access token (classic: scopes repo, admin:repo_hook, read:org; fine-grained: "
                  "contents, metadata, pull requests read and webhooks read/write)")
    max_body = 25 * 1024 * 1024  # GitHub caps payloads at 25 MB
    signs_body = True  # X-Hub-Signature-256 is an HMAC of the body
    secret_options = frozenset({"app_private_key", "app_webhook_secret"})
    host_option_names = ("app_id", "app_private_key", "app_webhook_secret")

    def canonical_web_url(self, web_url: str) -> str:
        return canonical_web_url(web_url)

    def api_url_for(self, web_url: str) -> str:
        return api_url_for(web_url)

    def check_api_url(self, web_url: str, api_url: str) -> str | None:
        if api_url_for(web_url) == GITHUB_API and api_url != GITHUB_API:
            return f"github.com's API is {GITHUB_API}; it cannot be moved (got {api_url!r})"
        return None

    def stored_kind(self, web_url: str) -> str:
        return "github" if urlsplit(canonical_web_url(web_url)).netloc.lower() == "github.com" else "github-enterprise"

    def client(
        self, settings: HostSettings, credential: Credential, *, cache: ConditionalCache | None = None,
        on_rate: Callable[[RateLimit], None] | None = None,
    ) -> GitHubClient:
        return GitHubClient(settings, credential, cache=cache, on_rate=on_rate)

    def prepare_credential(
        self, settings: HostSettings, name: str, token: str | None, options: Mapping[str, str]
    ) -> Credential:
        """A token, or a GitHub App (``app_id`` + ``app_private_key``) whose installation on ``name`` is found."""
        app_id, key = options.get("app_id"), options.get("app_private_key")
        if app_id and key:
            installation = options.get("installation_id") or find_installation(settings, app_id, key, name)
            return Credential(auth_kind="app", options={"app_id": app_id, "app_private_key": key,
                                                        "installation_id": installation})
        if not token:
            raise HostError("give a token, or a GitHub App id and private key", reason="invalid")
        return Credential(token=token, auth_kind=options.get("auth_kind", "token"))

    def account_options(self, credential: Credential) -> dict[str, str]:
        installation = credential.options.get("installation_id")
        return {"installation_id": installation} if installation else {}

    def host_options(self, credential: Credential) -> dict[str, str]:
        return {k: credential.options[k] for k in ("app_id", "app_private_key") if credential.options.get(k)}

    def hosts_own_hook(self, host_options: Mapping[str, str], auth_kind: str) -> bool:
        """A GitHub App with a webhook secret delivers for every installation: no hook per repository."""
        return auth_kind == "app" and bool(host_options.get("app_webhook_secret"))

    def hook_url(self, base_url: str, target: HookTarget) -> str:
        return f"{base_url}/hooks/github"

    def read_delivery(self, headers: Mapping[str, str], query: Mapping[str, str]) -> DeliveryHead:
        from devlink.hosts import github_webhooks

        return github_webhooks.read_delivery(headers)

    def verify(self, secret: str, body: bytes, head: DeliveryHead) -> bool:
        from devlink.hosts import github_webhooks

        return github_webhooks.verify_signature(secret.encode(), body, head.signature)

    def host_secret(self, options: Mapping[str, str], head: DeliveryHead) -> str | None:
        if head.level == "app" and options.get("app_id") == head.target_id:
            return options.get("app_webhook_secret")
        return None

    def parse(self, event: str, payload: dict[str, object]) -> WebhookEvent:
        from devlink.hosts import github_webhooks

        return github_webhooks.parse_webhook(event, payload)

    def payload_target(self, payload: dict[str, object]) -> tuple[str | None, tuple[str, str] | None]:
        repo = payload.get("repository")
        repo_id = str(repo["id"]) if isinstance(repo, dict) and isinstance(repo.get("id"), int | str) else None
        installation = payload.get("installation")
        installation_id = installation.get("id") if isinstance(installation, dict) else None
        hint = ("installation_id", str(installation_id)) if isinstance(installation_id, int | str) else None
        return repo_id, hint

    def oauth_authorize_url(
        self, settings: HostSettings, client_id: str, redirect_uri: str, state: str, challenge: str
    ) -> str:
        return oauth_authorize_url(settings, client_id, redirect_uri, state, challenge)

    def exchange_oauth_code(
        self, settings: HostSettings, client_id: str, client_secret: str, code: str, redirect_uri: str, verifier: str
    ) -> TokenGrant:
        return exchange_oauth_code(settings, client_id, client_secret, code, redirect_uri, verifier)

    def refresh_oauth_token(
        self, settings: HostSettings, client_id: str, client_secret: str, refresh_token: str
    ) -> TokenGrant:
        return refresh_oauth_token(settings, client_id, client_secret, refresh_token)


HOST = GitHubKind()
