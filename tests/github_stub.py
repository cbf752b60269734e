"""A small, faithful GitHub stub for tests: real HTTP on 127.0.0.1, laid out like GitHub Enterprise Server.

``stub.web_url`` is the web host (OAuth), ``stub.api_url`` (``web_url + "/api/v3"``) the REST API.  Each JSON answer
starts from the first official example of its operation (``shared/corpus/openapi/github/api.github.com``) or, where
the spec has none, a recorded answer (``shared/corpus/github-api``), and overrides only what the stub's state decides
(ids, names, URLs, dates, states), so every other field keeps GitHub's shape.  Git data is not served here: a
repository's ``clone_url`` points wherever the test says (``GitHubGitServer`` takes GitHub-style token auth).
"""

from __future__ import annotations

import base64
import copy
import functools
import hashlib
import hmac
import io
import itertools
import json
import math
import re
import secrets
import socket
import string
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from gitrepos import GitHttpServer

_GIT_PATH = re.compile(r"^/[^/]+/[^/]+\.git/(info/refs|git-upload-pack|git-receive-pack)$")

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
DOCS = "https://docs.github.com/rest"
RATE_DOCS = "https://docs.github.com/rest/overview/resources-in-the-rest-api#rate-limiting"
A, W = "https://api.github.com", "https://github.com"  # the corpus's hosts, rewritten to the stub's
EXAMPLE_SHA = "6dcb09b5b57875f334f61aebed695e2e4193db5e"  # head sha of the pull request examples
_KEYS: dict[str, str] = {}  # app id -> PEM, per process: githubkit caches JWTs per issuer, across clients
_INSTALLATION_IDS = itertools.count(40_000_001)  # unique per process: githubkit caches tokens per installation
Json = dict[str, Any]


@functools.cache
def _load(path: str) -> Any:
    return json.loads((CORPUS / path).read_text())


def example(operation: str, status: str = "200", index: int = 0) -> Any:
    """A copy of an official example, e.g. ``example("GET_repos_{owner}_{repo}")``."""
    spec = _load(f"openapi/github/api.github.com/{operation}.json")
    return copy.deepcopy(spec["examples_by_status"][status][index]["value"])


def doc_url(operation: str) -> str:
    return str(_load(f"openapi/github/api.github.com/{operation}.json")["externalDocs"]["url"])


def recorded(scenario: str, index: int = 0) -> Any:
    """The body of a recorded PyGithub exchange (``github-api/pygithub-replay/sessions.json``)."""
    return copy.deepcopy(_load("github-api/pygithub-replay/sessions.json")[scenario][index]["response_body"])


def _rewrite(value: Any, subs: list[tuple[str, str]]) -> Any:
    """Replace the first matching prefix of every string in a JSON value."""
    if isinstance(value, dict):
        return {k: _rewrite(v, subs) for k, v in value.items()}
    if isinstance(value, list):
        return [_rewrite(v, subs) for v in value]
    if isinstance(value, str):
        return next((new + value[len(old):] for old, new in subs if value.startswith(old)), value)
    return value


def _put(target: Json, **values: Any) -> Json:
    """Override only fields the example has, so each operation keeps its own shape."""
    target.update({k: v for k, v in values.items() if k in target})
    return target


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def _when(value: datetime | str | None) -> datetime:
    if value is None:
        return datetime.now(UTC).replace(microsecond=0)
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _node_id(kind: str, number: int) -> str:
    code = {"User": "04", "Organization": "012", "Repository": "010", "PullRequest": "011"}.get(kind, "017")
    return base64.b64encode(f"{code}:{kind}{number}".encode()).decode()


def _fake_sha(*parts: object) -> str:
    return hashlib.sha1(":".join(map(str, parts)).encode()).hexdigest()


def _token(prefix: str) -> str:
    return prefix + "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(36))


@dataclass
class Request:
    """A request as the stub saw it: ``path`` as sent (``/api/v3/user``), header names in lower case."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes = b""


@dataclass
class _Reply:
    status: int
    body: Any = None  # a JSON value, bytes, or None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class _Failure:
    method: str
    path: str | re.Pattern[str]
    reply: _Reply
    times: int


@dataclass
class _Caller:
    kind: str = "anonymous"  # anonymous | user | installation | app
    login: str = ""
    scopes: tuple[str, ...] = ()
    installation: Json | None = None
    app_id: str = ""
    bucket: str = "anonymous"


@dataclass
class _Ctx:
    method: str  # HEAD is routed as GET
    query: list[tuple[str, str]]
    body: bytes
    caller: _Caller
    link_path: str  # the path Link headers point at

    def q(self, name: str, default: str = "") -> str:
        return next((v for k, v in reversed(self.query) if k == name), default)


def _error(status: int, message: str, doc: str = DOCS, **extra: Any) -> _Reply:
    return _Reply(status, {"message": message, **extra, "documentation_url": doc})


class GitHubStub:
    """GitHub state in plain dicts, served over HTTP.  Use as a context manager or call ``close()``."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.requests: list[Request] = []
        self.errors: list[str] = []  # tracebacks of stub bugs (answered 500)
        # Where git over HTTP is answered on the web host, as GitHub answers it on github.com/OWNER/NAME.git:
        # a WSGI app (``GitHubGitServer._app``); None answers those paths 404 like any unknown page.
        # True: a hook just created is pinged at once, before its id is answered (GitHub pings every new hook,
        # and the ping can beat the API's answer); ``pings`` records (hook id, the status devlink answered).
        self.ping_hooks = False
        self.pings: list[tuple[int, int]] = []
        self.git_backend: Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]] | None = None
        self.rate_limits = True  # False: GHES with rate limiting off (no X-RateLimit-* headers)
        self.installation_token_ttl = 3600.0  # seconds (githubkit renews a minute before expires_at)
        self.tokens_issued = 0
        self.oauth_user: str | None = None  # who is "logged in" on the web host
        self.accounts: dict[str, Json] = {}  # lower-case login -> account
        self.repos: dict[int, Json] = {}
        self.installations: dict[int, Json] = {}
        self._ids = itertools.count(1001)
        self._moved: dict[tuple[str, str], int] = {}  # old (owner, name) -> repository id
        self._gone: dict[tuple[str, str], int] = {}
        self._tokens: dict[str, Json] = {}
        self._buckets: dict[str, Json] = {}
        self._limit: Json = {"limit": 5000, "remaining": 5000, "reset": None}
        self._apps: dict[str, Json] = {}
        self._oauth_apps: dict[str, Json] = {}
        self._codes: dict[str, Json] = {}
        self._failures: list[_Failure] = []
        self._routes = _compile([
            ("GET", r"/user", self._get_user), ("GET", r"/users/([^/]+)", self._get_account),
            ("GET", r"/orgs/([^/]+)", self._get_org), ("GET", r"/user/repos", self._list_user_repos),
            ("GET", r"/users/([^/]+)/repos", self._list_account_repos),
            ("GET", r"/orgs/([^/]+)/repos", self._list_org_repos),
            ("GET", r"/rate_limit", self._rate_limit), ("GET|POST", r"/orgs/([^/]+)/hooks", self._org_hooks),
            ("GET|PATCH|DELETE", r"/orgs/([^/]+)/hooks/(\d+)", self._org_hooks),
            ("GET", r"/installation/repositories", self._installation_repositories),
            ("POST", r"/app/installations/(\d+)/access_tokens", self._issue_installation_token),
            ("GET", r"/(?:orgs|users)/([^/]+)/installation", self._account_installation),
            ("*", r"/repos/([^/]+)/([^/]+)(/.*)?", self._repo_scope),
            ("*", r"/repositories/(\d+)(/.*)?", self._repo_by_id),
        ])
        self._repo_routes = _compile([
            ("GET", r"", self._get_repo), ("GET|POST", r"/hooks", self._repo_hooks),
            ("GET|PATCH|DELETE", r"/hooks/(\d+)", self._repo_hooks), ("GET", r"/pulls", self._list_pulls),
            ("GET", r"/pulls/(\d+)", self._get_pull), ("GET", r"/pulls/(\d+)/reviews", self._list_reviews),
        ])
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no delayed-ACK stalls

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def version_string(self) -> str:
                return "GitHub.com"

            def handle_any(self) -> None:
                stub._serve(self)

            do_GET = do_HEAD = do_POST = do_PATCH = do_PUT = do_DELETE = handle_any

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        # a client that connects and resets before accept() leaves a blocking accept() waiting for the next
        # connection, and close()'s shutdown() with it: accept() times out instead (accepted sockets block)
        self._server.socket.settimeout(1.0)
        self.port = int(self._server.server_address[1])
        self.web_url = f"http://127.0.0.1:{self.port}"
        self.api_url = f"{self.web_url}/api/v3"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def __enter__(self) -> GitHubStub:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    # -- state ---------------------------------------------------------------

    def add_user(self, login: str, *, id: int | None = None, name: str | None = None, email: str | None = None) -> Json:
        with self.lock:
            account = {"login": login, "id": id or next(self._ids), "type": "User", "members": set(), "name": name,
                       "email": email, "hooks": [], "hooks_denied": False, "created_at": _when(None)}
            self.accounts[login.lower()] = account
            return account

    def add_org(self, login: str, *, id: int | None = None, members: Iterable[str] = ()) -> Json:
        """An organization; its ``members`` administer its repositories (and, with admin:org_hook, its hooks)."""
        with self.lock:
            account = self.add_user(login, id=id)
            account.update(type="Organization", members={self._account(m)["login"].lower() for m in members})
            return account

    def _account(self, login: str) -> Json:
        return self.accounts.get(login.lower()) or self.add_user(login)

    def add_token(self, token: str, login: str, scopes: str = "repo, admin:repo_hook, read:org") -> None:
        """A personal access token (classic) of ``login``; ``scopes`` is what ``X-OAuth-Scopes`` reports."""
        with self.lock:
            self._account(login)
            self._tokens[token] = {"kind": "user", "login": login, "expires": None,
                                   "scopes": tuple(s for s in re.split(r"[, ]+", scopes) if s)}

    def token_valid(self, token: str) -> bool:
        """Whether the API (and ``GitHubGitServer``) accepts ``token`` now: known and not expired."""
        info = self._tokens.get(token)
        return info is not None and (info["expires"] is None or info["expires"] > time.time())

    def add_repo(self, owner: str, name: str, *, private: bool = False, archived: bool = False,
                 clone_url: str | None = None, default_branch: str = "main", visible_to: Iterable[str] | None = None,
                 description: str | None = None, created_at: datetime | str | None = None) -> Json:
        """A repository; ``visible_to`` logins may read it (collaborators); ``clone_url`` defaults to the web host."""
        with self.lock:
            created = _when(created_at)
            repo = {"id": next(self._ids), "owner": self._account(owner)["login"], "name": name, "private": private,
                    "archived": archived, "clone_url": clone_url, "default_branch": default_branch,
                    "description": description, "visible_to": {v.lower() for v in visible_to or ()},
                    "created_at": created, "updated_at": created, "pushed_at": created, "hooks": [],
                    "hooks_denied": False, "pulls": {}, "next_number": 1}
            self.repos[repo["id"]] = repo
            return repo

    def repo(self, owner: str, name: str) -> Json:
        """The live state of a repository (change it freely)."""
        key = (owner.lower(), name.lower())
        found = next((r for r in self.repos.values() if (r["owner"].lower(), r["name"].lower()) == key), None)
        if found is None:
            raise KeyError(f"{owner}/{name}")
        return found

    def rename_repo(self, owner: str, name: str, new_name: str) -> None:
        with self.lock:
            repo = self.repo(owner, name)
            repo["name"] = new_name
            self._moved[(owner.lower(), name.lower())] = repo["id"]

    def transfer_repo(self, owner: str, name: str, new_owner: str) -> None:
        with self.lock:
            repo = self.repo(owner, name)
            repo["owner"] = self._account(new_owner)["login"]
            self._moved[(owner.lower(), name.lower())] = repo["id"]

    def delete_repo(self, owner: str, name: str, status: int = 404) -> None:
        """Remove a repository: its paths answer ``status`` (404, or 410) and its old names stop redirecting."""
        with self.lock:
            repo = self.repos.pop(self.repo(owner, name)["id"])
            self._moved = {k: v for k, v in self._moved.items() if v != repo["id"]}
            if status != 404:
                self._gone[(owner.lower(), name.lower())] = status

    def add_pull(self, owner: str, repo: str, *, number: int | None = None, title: str, body: str = "", head: str,
                 base: str = "main", user: str = "octocat", state: str = "open", draft: bool = False,
                 merged: bool = False, comments: int = 0, review_comments: int = 0,
                 requested_reviewers: Iterable[str] = (), created_at: datetime | str | None = None,
                 updated_at: datetime | str | None = None, head_sha: str | None = None,
                 base_sha: str | None = None) -> Json:
        with self.lock:
            found = self.repo(owner, repo)
            number = number or found["next_number"]
            found["next_number"] = max(found["next_number"], number + 1)
            created = _when(created_at)
            pull = {"id": next(self._ids), "number": number, "title": title, "body": body, "head": head, "base": base,
                    "user": self._account(user)["login"], "state": "open", "draft": draft, "merged": False,
                    "merged_at": None, "closed_at": None, "comments": comments, "review_comments": review_comments,
                    "requested_reviewers": [self._account(r)["login"] for r in requested_reviewers],
                    "created_at": created, "updated_at": _when(updated_at) if updated_at else created,
                    "head_sha": head_sha or _fake_sha(found["id"], number, head),
                    "base_sha": base_sha or _fake_sha(found["id"], base), "merge_commit_sha": _fake_sha("m", number),
                    "commits": 1, "additions": 1, "deletions": 0, "changed_files": 1, "reviews": []}
            found["pulls"][number] = pull
            _set_state(pull, state, merged, pull["updated_at"])
            return pull

    def update_pull(self, owner: str, repo: str, number: int, **changes: Any) -> Json:
        """Change a pull request (``state``, ``merged``, ``title``, ``head_sha``…); updated_at moves forward."""
        with self.lock:
            pull: Json = self.repo(owner, repo)["pulls"][number]
            moment = max(_when(changes.pop("updated_at", None)), pull["updated_at"] + timedelta(seconds=1))
            state, merged = changes.pop("state", pull["state"]), changes.pop("merged", pull["merged"])
            if "requested_reviewers" in changes:
                changes["requested_reviewers"] = [self._account(r)["login"] for r in changes["requested_reviewers"]]
            pull.update(changes, updated_at=moment)
            _set_state(pull, state, merged, moment)
            return pull

    def add_review(self, owner: str, repo: str, number: int, login: str, state: str = "APPROVED", *,
                   body: str = "", submitted_at: datetime | str | None = None) -> Json:
        """A review: as on GitHub, the reviewer leaves ``requested_reviewers`` and the pull's updated_at moves."""
        with self.lock:
            pull = self.repo(owner, repo)["pulls"][number]
            moment = _when(submitted_at)
            review = {"id": next(self._ids), "user": self._account(login)["login"], "state": state, "body": body,
                      "submitted_at": None if state == "PENDING" else moment, "commit_id": pull["head_sha"]}
            pull["reviews"].append(review)
            pull["requested_reviewers"] = [r for r in pull["requested_reviewers"] if r.lower() != login.lower()]
            pull["updated_at"] = max(moment, pull["updated_at"] + timedelta(seconds=1))
            return review

    def hooks(self, owner: str, repo: str) -> list[Json]:
        """A repository's hooks as stored (with the real ``config.secret``)."""
        return list(self.repo(owner, repo)["hooks"])

    def org_hooks(self, org: str) -> list[Json]:
        return list(self.accounts[org.lower()]["hooks"])

    def deny_hooks(self, owner: str, repo: str | None = None) -> None:
        """Hook calls answer 404, as GitHub does without admin rights (``repo=None``: the organization's hooks)."""
        with self.lock:
            (self.repo(owner, repo) if repo else self.accounts[owner.lower()])["hooks_denied"] = True

    def fail_next(self, method: str, path: str | re.Pattern[str], status: int, *, headers: dict[str, str] | None = None,
                  body: Any = None, times: int = 1) -> None:
        """The next ``times`` requests with ``method`` (``"*"``: any) whose path ends with ``path`` (or matches the
        pattern) answer ``status``.  ``body`` (JSON value or bytes) defaults to what GitHub sends, recorded where the
        corpus has it: 503 HTML page, 500/502, 403 abuse with Retry-After, 403 rate limit, 401."""
        with self.lock:
            reply = _Reply(status, _failure_body(status, headers or {}) if body is None else body, dict(headers or {}))
            self._failures.append(_Failure(method.upper(), path, reply, times))

    def set_rate_limit(self, remaining: int, limit: int = 5000, reset: float | None = None, *,
                       login: str | None = None) -> None:
        """Set the core budget of ``login``'s tokens (default: of every caller, now and later); ``reset``: epoch."""
        with self.lock:
            values = {"limit": limit, "remaining": remaining, "reset": reset or time.time() + 3600}
            if login:
                self._bucket(f"user:{login.lower()}").update(values)
                return
            self._limit = values
            for bucket in self._buckets.values():
                bucket.update(values)

    def add_app(self, app_id: int, *, slug: str | None = None, webhook_secret: str | None = None) -> str:
        """Register a GitHub App (with its own webhook when ``webhook_secret`` is set); returns its private key
        (PEM), the same for the same id within a process."""
        with self.lock:
            if str(app_id) not in _KEYS:
                key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
                _KEYS[str(app_id)] = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()).decode()
            public = serialization.load_pem_private_key(_KEYS[str(app_id)].encode(), None).public_key()
            self._apps[str(app_id)] = {"id": app_id, "slug": slug or f"app-{app_id}", "public_key": public,
                                       "hook": {"id": next(self._ids), "secret": webhook_secret}}
            return _KEYS[str(app_id)]

    def add_installation(self, app_id: int, account_login: str, installation_id: int | None = None, *,
                         repositories: Iterable[str] | None = None, permissions: dict[str, str] | None = None) -> int:
        """Install an app on an account, for all its repositories or only the named ``repositories``."""
        with self.lock:
            if str(app_id) not in self._apps:
                raise KeyError(f"add_app({app_id}) first")
            account = self._account(account_login)
            inst_id = installation_id or next(_INSTALLATION_IDS)
            self.installations[inst_id] = {
                "id": inst_id, "app_id": str(app_id), "account": account["login"], "created_at": _when(None),
                "repositories": None if repositories is None else {
                    self.repo(account["login"], n)["id"] for n in repositories},
                "permissions": permissions or {"metadata": "read", "contents": "read", "pull_requests": "read",
                                               "repository_hooks": "write", "organization_hooks": "write"}}
            return inst_id

    def delivery_headers(self, event: str, body: bytes, *, owner: str, repo: str | None = None,
                         app_id: int | None = None, delivery: str | None = None) -> dict[str, str]:
        """The headers GitHub sends when a hook delivers ``body``: the App's webhook (``app_id``), else the hook on
        ``owner/repo``, else ``owner``'s organization hook; signed with that hook's secret, naming it by id."""
        with self.lock:
            if app_id is not None:
                hook, kind, target = self._apps[str(app_id)]["hook"], "integration", app_id
            else:
                repository = self.repo(owner, repo) if repo else None
                if repository is not None and repository["hooks"]:
                    hook, kind, target = repository["hooks"][0], "repository", repository["id"]
                else:
                    account = self.accounts[owner.lower()]
                    if not account["hooks"]:
                        raise KeyError(f"no hook delivers for {owner}/{repo or ''}")
                    hook, kind, target = account["hooks"][0], "organization", account["id"]
            secret = hook["secret"] if app_id is not None else hook["config"].get("secret")
        # https://docs.github.com/webhooks/webhook-events-and-payloads#delivery-headers
        headers = {"Accept": "*/*", "Content-Type": "application/json", "User-Agent": "GitHub-Hookshot/044aadd",
                   "X-GitHub-Delivery": delivery or str(uuid.uuid4()), "X-GitHub-Event": event,
                   "X-GitHub-Hook-ID": str(hook["id"]), "X-GitHub-Hook-Installation-Target-ID": str(target),
                   "X-GitHub-Hook-Installation-Target-Type": kind}
        if secret:
            headers["X-Hub-Signature"] = "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()
            headers["X-Hub-Signature-256"] = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        return headers

    def add_oauth_app(self, client_id: str, client_secret: str, *, callback_url: str | None = None) -> None:
        with self.lock:
            self._oauth_apps[client_id] = {"secret": client_secret, "callback_url": callback_url}

    # -- serving -------------------------------------------------------------

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        split = urlsplit(handler.path)
        if self.git_backend is not None and _GIT_PATH.search(split.path):
            self._serve_git(handler, split.path, split.query)
            return
        pairs = parse_qsl(split.query, keep_blank_values=True)
        request = Request(handler.command, split.path, dict(pairs), {k.lower(): v for k, v in handler.headers.items()},
                          handler.rfile.read(int(handler.headers.get("Content-Length") or 0)))
        try:
            with self.lock:
                self.requests.append(request)
                is_api = re.match(r"/api/v3(/|$)", split.path)
                reply = self._api(request, pairs) if is_api else self._web(request, pairs)
        except Exception:
            self.errors.append(traceback.format_exc())
            reply = _error(500, "stub error (see GitHubStub.errors)")
        body = reply.body if isinstance(reply.body, bytes) else b"" if reply.body is None else _dumps(reply.body)
        handler.send_response(reply.status)
        for name, value in reply.headers.items():
            handler.send_header(name, value)
        if reply.status not in (204, 304):
            handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        if handler.command != "HEAD" and reply.status not in (204, 304):
            handler.wfile.write(body)

    def _serve_git(self, handler: BaseHTTPRequestHandler, path: str, query: str) -> None:
        """Smart HTTP on the web origin: the request handed to ``git_backend`` as WSGI, its answer written back."""
        assert self.git_backend is not None
        length = int(handler.headers.get("Content-Length") or 0)
        environ: dict[str, Any] = {
            "REQUEST_METHOD": handler.command, "PATH_INFO": path, "QUERY_STRING": query,
            "CONTENT_TYPE": handler.headers.get("Content-Type", ""), "CONTENT_LENGTH": str(length),
            "wsgi.input": io.BytesIO(handler.rfile.read(length)),
        }
        environ.update({f"HTTP_{name.upper().replace('-', '_')}": value for name, value in handler.headers.items()
                        if name.lower() not in ("content-type", "content-length")})
        answer: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]]) -> None:
            answer.update(status=status, headers=headers)

        body = b"".join(self.git_backend(environ, start_response))
        code, _, phrase = answer["status"].partition(" ")
        handler.send_response(int(code), phrase)
        for name, value in answer["headers"]:
            if name.lower() != "content-length":
                handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def _api(self, request: Request, pairs: list[tuple[str, str]]) -> _Reply:
        path = request.path[len("/api/v3"):] or "/"
        caller, refused = self._authenticate(request.headers)
        bucket = self._bucket(caller.bucket)
        method = "GET" if request.method == "HEAD" else request.method
        injected, charge = self._injected(request), False
        if injected or refused:
            reply = injected or refused
        elif self.rate_limits and bucket["remaining"] <= 0 and path != "/rate_limit":
            reply = self._rate_limited(caller)
        else:
            reply = _route(self._routes, _Ctx(method, pairs, request.body, caller, request.path), path)
            charge = path != "/rate_limit"  # GitHub: /rate_limit is free
        assert reply is not None
        headers = {"Content-Type": "application/json; charset=utf-8", "X-GitHub-Media-Type": "github.v3; format=json",
                   "X-GitHub-Enterprise-Version": "3.19.0",  # the GHES 3.19 GET /meta example's installed_version
                   "X-GitHub-Request-Id": f"{secrets.randbits(16):04X}:{secrets.randbits(16):04X}:"
                                          f"{secrets.randbits(24):X}:{secrets.randbits(28):X}:{int(time.time()):X}"}
        if caller.kind == "user":
            headers |= {"X-OAuth-Scopes": ", ".join(caller.scopes), "X-Accepted-OAuth-Scopes": ""}
        if method == "GET" and reply.status == 200:
            body = reply.body if isinstance(reply.body, bytes) else _dumps(reply.body)
            etag = f'W/"{hashlib.sha256(body).hexdigest()}"'
            headers |= {"ETag": etag, "Cache-Control": "private, max-age=60, s-maxage=60",
                        "Vary": "Accept, Authorization, Cookie, X-GitHub-OTP"}
            wanted = {t.strip().removeprefix("W/") for t in request.headers.get("if-none-match", "").split(",")}
            if etag.removeprefix("W/") in wanted:
                reply, charge = _Reply(304), False  # GitHub: a 304 costs no quota
        if charge and self.rate_limits:
            bucket["remaining"] = max(0, bucket["remaining"] - 1)
        if self.rate_limits:
            headers |= {"X-RateLimit-Limit": str(bucket["limit"]), "X-RateLimit-Remaining": str(bucket["remaining"]),
                        "X-RateLimit-Reset": str(int(bucket["reset"])), "X-RateLimit-Resource": "core",
                        "X-RateLimit-Used": str(bucket["limit"] - bucket["remaining"])}
        if reply.status in (204, 304):
            del headers["Content-Type"]
        own = {k.lower() for k in reply.headers}  # an injected failure's headers win
        headers = {k: v for k, v in headers.items() if k.lower() not in own} | reply.headers
        return _Reply(reply.status, reply.body, headers)

    def _bucket(self, key: str) -> Json:
        bucket = self._buckets.setdefault(key, dict(self._limit) | (
            {"limit": 60, "remaining": 60} if key == "anonymous" else {}))
        if bucket["reset"] is None:
            bucket["reset"] = time.time() + 3600
        elif bucket["reset"] <= time.time():  # a new hour, a new budget
            bucket.update(remaining=bucket["limit"], reset=time.time() + 3600)
        return bucket

    def _rate_limited(self, caller: _Caller) -> _Reply:
        if caller.kind == "anonymous":  # as recorded in SpecificExceptions.testRateLimitExceeded
            message = recorded("SpecificExceptions.testRateLimitExceeded", 1)["message"]
            return _Reply(403, {"message": message.replace("92.104.200.119", "127.0.0.1")})
        who = (f"installation ID {caller.installation['id']}" if caller.installation else
               f"user ID {self._account(caller.login)['id']}" if caller.login else f"app ID {caller.app_id}")
        return _error(403, f"API rate limit exceeded for {who}.", RATE_DOCS)

    def _injected(self, request: Request) -> _Reply | None:
        for failure in self._failures:
            hit = (failure.path.search(request.path) if isinstance(failure.path, re.Pattern)
                   else request.path.endswith(failure.path))
            if failure.times > 0 and failure.method in ("*", request.method) and hit:
                failure.times -= 1
                return copy.deepcopy(failure.reply)
        return None

    # -- who is calling ------------------------------------------------------

    def _authenticate(self, headers: dict[str, str]) -> tuple[_Caller, _Reply | None]:
        scheme, _, credential = headers.get("authorization", "").partition(" ")
        scheme, credential = scheme.lower(), credential.strip()
        if not scheme:
            return _Caller(), None
        if scheme == "basic":  # login:token, as git sends it
            credential = _basic(credential)[1]
        if self.token_valid(credential):
            info = self._tokens[credential]
            if info["kind"] == "user":
                return _Caller("user", info["login"], info["scopes"], bucket=f"user:{info['login'].lower()}"), None
            inst = self.installations[info["installation_id"]]
            return _Caller("installation", f"{self._apps[inst['app_id']]['slug']}[bot]", installation=inst,
                           bucket=f"installation:{inst['id']}"), None
        if scheme == "bearer" and credential.count(".") == 2:
            return self._app_caller(credential)
        return _Caller(), _error(401, "Bad credentials")

    def _app_caller(self, token: str) -> tuple[_Caller, _Reply | None]:
        """A GitHub App's JWT: RS256, ``iss`` = app id, ``exp`` at most 10 minutes ahead."""
        try:
            app = self._apps.get(str(jwt.decode(token, options={"verify_signature": False}).get("iss")))
            if app is None:
                raise jwt.InvalidIssuerError("unknown app")
            claims = jwt.decode(token, app["public_key"], algorithms=["RS256"], leeway=60,
                                options={"require": ["iat", "exp", "iss"]})
        except jwt.ExpiredSignatureError:
            return _Caller(), _error(401, "'Expiration time' claim ('exp') must be a numeric value representing the "
                                          "future time at which the assertion expires")
        except jwt.PyJWTError:
            return _Caller(), _error(401, "A JSON web token could not be decoded")
        if float(claims["exp"]) - time.time() > 660:
            return _Caller(), _error(401, "'Expiration time' claim ('exp') is too far in the future")
        return _Caller("app", app_id=str(app["id"]), bucket=f"app:{app['id']}"), None

    def _role(self, caller: _Caller, repo: Json) -> str:
        """'admin', 'read' or '' (no access)."""
        owner, login = self.accounts[repo["owner"].lower()], caller.login.lower()
        if caller.kind == "user" and (login == owner["login"].lower() or login in owner["members"]):
            return "admin"
        if caller.kind == "user" and login in repo["visible_to"]:
            return "read"
        if caller.installation and repo["id"] in {r["id"] for r in self._installation_repos(caller.installation)}:
            return "admin"
        return ""

    def _may_manage_hooks(self, caller: _Caller, target: Json, write: bool, org: bool) -> bool:
        if target["hooks_denied"]:
            return False
        if caller.installation:
            level = caller.installation["permissions"].get("organization_hooks" if org else "repository_hooks")
            mine = caller.installation["account"].lower() == target["login"].lower() if org else \
                self._role(caller, target) == "admin"
            return mine and (level == "write" or (level == "read" and not write))
        if org:
            return caller.login.lower() in target["members"] and "admin:org_hook" in caller.scopes
        scopes = {"repo", "admin:repo_hook", "write:repo_hook"} | ({"read:repo_hook"} if not write else set())
        scopes |= set() if target["private"] else {"public_repo"}
        return self._role(caller, target) == "admin" and bool(scopes & set(caller.scopes))

    # -- JSON from the examples ----------------------------------------------

    def _subs(self, full_name: str) -> list[tuple[str, str]]:
        return [(f"{A}/repos/octocat/Hello-World", f"{self.api_url}/repos/{full_name}"),
                (f"{W}/octocat/Hello-World", f"{self.web_url}/{full_name}"), (A, self.api_url), (W, self.web_url)]

    def _account_json(self, template: Json, account: Json, old: str = "octocat") -> Json:
        login = account["login"]
        data = _rewrite(template, [(f"{A}/users/{old}", f"{self.api_url}/users/{login}"),
                                   (f"{A}/orgs/{old}", f"{self.api_url}/orgs/{login}"),
                                   (f"{W}/{old}", f"{self.web_url}/{login}"), (A, self.api_url), (W, self.web_url)])
        owned = [r for r in self.repos.values() if r["owner"].lower() == login.lower()]
        private = sum(r["private"] for r in owned)
        return _put(data, login=login, id=account["id"], node_id=_node_id(account["type"], account["id"]),
                    avatar_url=f"{self.web_url}/avatars/u/{account['id']}?v=4", gravatar_id="", type=account["type"],
                    site_admin=False, name=account["name"], email=account["email"], company=None, blog="",
                    location=None, bio=None, twitter_username=None, description=None, billing_email=None,
                    public_repos=len(owned) - private, total_private_repos=private, owned_private_repos=private,
                    followers=0, following=0, created_at=_iso(account["created_at"]),
                    updated_at=_iso(account["created_at"]))

    def _simple_user(self, account: Json) -> Json:
        spec = _load("openapi/github/api.github.com/GET_repos_{owner}_{repo}.json")
        return self._account_json(copy.deepcopy(spec["examples_by_status"]["200"][0]["value"]["owner"]), account)

    def _repo_json(self, repo: Json, template: Json, caller: _Caller) -> Json:
        owner = self.accounts[repo["owner"].lower()]
        full, opened = f"{owner['login']}/{repo['name']}", sum(p["state"] == "open" for p in repo["pulls"].values())
        data = _put(_rewrite(template, self._subs(full)), id=repo["id"], node_id=_node_id("Repository", repo["id"]),
                    name=repo["name"], full_name=full, owner=self._simple_user(owner), private=repo["private"],
                    visibility="private" if repo["private"] else "public", description=repo["description"],
                    fork=False, archived=repo["archived"], disabled=False, default_branch=repo["default_branch"],
                    clone_url=repo["clone_url"] or f"{self.web_url}/{full}.git", svn_url=f"{self.web_url}/{full}",
                    git_url=f"git://127.0.0.1:{self.port}/{full}.git", ssh_url=f"git@127.0.0.1:{full}.git",
                    mirror_url=None, homepage=None, created_at=_iso(repo["created_at"]),
                    updated_at=_iso(repo["updated_at"]), pushed_at=_iso(repo["pushed_at"]), topics=[],
                    is_template=False, template_repository=None, license=None, size=0, forks_count=0, forks=0,
                    stargazers_count=0, watchers_count=0, watchers=0, subscribers_count=0, network_count=0,
                    open_issues_count=opened, open_issues=opened)
        data.setdefault("language", None)  # required by the schema and sent by GitHub, but not in the GET example
        for key in ("parent", "source"):  # the GET example is a fork's answer; the stub has no forks
            data.pop(key, None)
        if "organization" in data:
            data["organization"] = self._simple_user(owner)
            if owner["type"] != "Organization":
                del data["organization"]
        if caller.kind == "user" and "permissions" in data:
            admin = self._role(caller, repo) == "admin"
            data["permissions"] = {"admin": admin, "maintain": admin, "push": admin, "triage": admin, "pull": True}
        elif caller.kind != "installation":
            data.pop("permissions", None)
        return data

    def _pull_json(self, repo: Json, pull: Json, caller: _Caller, *, detail: bool) -> Json:
        raw = (example("GET_repos_{owner}_{repo}_pulls_{pull_number}") if detail
               else example("GET_repos_{owner}_{repo}_pulls")[0])
        owner, author = self.accounts[repo["owner"].lower()], self.accounts[pull["user"].lower()]
        full, n = f"{owner['login']}/{repo['name']}", pull["number"]
        rapi, rweb = f"{self.api_url}/repos/{full}", f"{self.web_url}/{full}"
        data: Json = _rewrite(raw, [(f"{A}/repos/octocat/Hello-World/pulls/1347", f"{rapi}/pulls/{n}"),
                              (f"{A}/repos/octocat/Hello-World/issues/1347", f"{rapi}/issues/{n}"),
                              (f"{A}/repos/octocat/Hello-World/statuses/{EXAMPLE_SHA}",
                               f"{rapi}/statuses/{pull['head_sha']}"),
                              (f"{W}/octocat/Hello-World/pull/1347", f"{rweb}/pull/{n}"), *self._subs(full)])
        association = ("OWNER" if author is owner else "MEMBER" if author["login"].lower() in owner["members"]
                       else "COLLABORATOR" if author["login"].lower() in repo["visible_to"] else "CONTRIBUTOR")
        _put(data, id=pull["id"], node_id=_node_id("PullRequest", pull["id"]), number=n, state=pull["state"],
             locked=False, title=pull["title"], user=self._simple_user(author), body=pull["body"] or None, labels=[],
             milestone=None, active_lock_reason=None, created_at=_iso(pull["created_at"]),
             updated_at=_iso(pull["updated_at"]), closed_at=_iso(pull["closed_at"]), merged_at=_iso(pull["merged_at"]),
             merge_commit_sha=pull["merge_commit_sha"], assignee=None, assignees=[],
             requested_reviewers=[self._simple_user(self.accounts[r.lower()]) for r in pull["requested_reviewers"]],
             requested_teams=[], author_association=association, auto_merge=None, draft=pull["draft"])
        for side, ref, sha in (("head", pull["head"], pull["head_sha"]), ("base", pull["base"], pull["base_sha"])):
            data[side] = {"label": f"{owner['login']}:{ref}", "ref": ref, "sha": sha, "user": self._simple_user(owner),
                          "repo": self._repo_json(repo, raw[side]["repo"], caller)}
        if detail:
            is_open = pull["state"] == "open"
            _put(data, merged=pull["merged"], mergeable=True if is_open else None, rebaseable=True if is_open else None,
                 mergeable_state="clean" if is_open else "unknown", maintainer_can_modify=False,
                 merged_by=self._simple_user(owner) if pull["merged"] else None,
                 **{k: pull[k] for k in ("comments", "review_comments", "commits", "additions", "deletions",
                                         "changed_files")})
        return data

    def _review_json(self, repo: Json, pull: Json, review: Json) -> Json:
        full, n, rid = f"{repo['owner']}/{repo['name']}", pull["number"], review["id"]
        data: Json = _rewrite(example("GET_repos_{owner}_{repo}_pulls_{pull_number}_reviews")[0], [
            (f"{W}/octocat/Hello-World/pull/12#pullrequestreview-80",
             f"{self.web_url}/{full}/pull/{n}#pullrequestreview-{rid}"),
            (f"{A}/repos/octocat/Hello-World/pulls/12", f"{self.api_url}/repos/{full}/pulls/{n}"), *self._subs(full)])
        reviewer = self.accounts[review["user"].lower()]
        _put(data, id=rid, node_id=_node_id("PullRequestReview", rid), user=self._simple_user(reviewer),
             body=review["body"], state=review["state"], submitted_at=_iso(review["submitted_at"]),
             commit_id=review["commit_id"],
             author_association="OWNER" if reviewer["login"] == repo["owner"] else "COLLABORATOR")
        if review["submitted_at"] is None:
            del data["submitted_at"]  # a pending review
        return data

    def _hook_json(self, hook: Json, scope_url: str, *, org: bool) -> Json:
        data = example("GET_orgs_{org}_hooks")[0] if org else example("GET_repos_{owner}_{repo}_hooks_{hook_id}")
        url, config = f"{scope_url}/hooks/{hook['id']}", dict(hook["config"])
        if "secret" in config:
            config["secret"] = "********"  # GitHub never echoes a webhook secret
        return _put(data, id=hook["id"], name=hook["name"], active=hook["active"], events=list(hook["events"]),
                    config=config, created_at=_iso(hook["created_at"]), updated_at=_iso(hook["updated_at"]), url=url,
                    test_url=f"{url}/test", ping_url=f"{url}/pings", deliveries_url=f"{url}/deliveries",
                    last_response={"code": None, "status": "unused", "message": None})

    def _installation_json(self, inst: Json) -> Json:
        """From the recorded GithubIntegration.testGetRepoInstallation answer (the spec has no example)."""
        account, app = self.accounts[inst["account"].lower()], self._apps[inst["app_id"]]
        stamp, settings = inst["created_at"].strftime("%Y-%m-%dT%H:%M:%S.000Z"), self.web_url
        if account["type"] == "Organization":
            settings += f"/organizations/{account['login']}"
        return _put(recorded("GithubIntegration.testGetRepoInstallation"), id=inst["id"],
                    account=self._simple_user(account), app_id=app["id"], app_slug=app["slug"],
                    repository_selection="all" if inst["repositories"] is None else "selected",
                    access_tokens_url=f"{self.api_url}/app/installations/{inst['id']}/access_tokens",
                    repositories_url=f"{self.api_url}/installation/repositories",
                    html_url=f"{settings}/settings/installations/{inst['id']}", target_id=account["id"],
                    target_type=account["type"], permissions=dict(inst["permissions"]),
                    events=["pull_request", "push"], created_at=stamp, updated_at=stamp)

    def _installation_repos(self, inst: Json) -> list[Json]:
        return [r for r in self.repos.values() if r["owner"].lower() == inst["account"].lower()
                and (inst["repositories"] is None or r["id"] in inst["repositories"])]

    # -- pagination and sorting ----------------------------------------------

    def _paginate(self, ctx: _Ctx, items: list[Any]) -> tuple[list[Any], dict[str, str]]:
        """GitHub's ``per_page`` (default 30, max 100) and ``page``, with ``Link`` ordered as in paginate-issues."""
        per_page = min(100, max(1, _int(ctx.q("per_page"), 30)))
        page, last = max(1, _int(ctx.q("page"), 1)), max(1, math.ceil(len(items) / per_page))
        query = [(k, v) for k, v in ctx.query if k != "page"]

        def link(number: int, rel: str) -> str:
            return f'<{self.web_url}{ctx.link_path}?{urlencode([*query, ("page", str(number))])}>; rel="{rel}"'

        links = [link(min(page - 1, last), "prev")] if page > 1 else []
        links += [link(page + 1, "next"), link(last, "last")] if page < last else []
        links += [link(1, "first")] if page > 1 else []
        return items[(page - 1) * per_page:page * per_page], {"Link": ", ".join(links)} if links else {}

    def _list(self, ctx: _Ctx, items: list[Json], keys: dict[str, Callable[[Json], Any]], default: str,
              ascending: set[str], render: Callable[[Json], Json]) -> _Reply:
        """Sort (``sort``/``direction``, with the operation's defaults), paginate and render a list."""
        sort = ctx.q("sort") if ctx.q("sort") in keys else default
        descending = (ctx.q("direction") or ("asc" if sort in ascending else "desc")) == "desc"
        page, headers = self._paginate(ctx, sorted(items, key=lambda x: (keys[sort](x), x["id"]), reverse=descending))
        return _Reply(200, [render(x) for x in page], headers)

    def _repos(self, ctx: _Ctx, repos: list[Json], default: str, operation: str) -> _Reply:
        keys: dict[str, Callable[[Json], Any]] = {
            "created": lambda r: r["created_at"], "updated": lambda r: r["updated_at"],
            "pushed": lambda r: r["pushed_at"], "full_name": lambda r: f"{r['owner']}/{r['name']}".lower()}
        return self._list(ctx, repos, keys, default, {"full_name"},
                          lambda r: self._repo_json(r, example(operation)[0], ctx.caller))

    # -- API handlers --------------------------------------------------------

    def _need_user(self, ctx: _Ctx) -> _Reply | None:
        if ctx.caller.kind == "anonymous":
            return _error(401, "Requires authentication")
        return None if ctx.caller.kind == "user" else _error(403, "Resource not accessible by integration")

    def _get_user(self, ctx: _Ctx) -> _Reply:
        return self._need_user(ctx) or _Reply(200, self._account_json(example("GET_user"),
                                                                      self._account(ctx.caller.login)))

    def _get_account(self, ctx: _Ctx, login: str) -> _Reply:
        account = self.accounts.get(login.lower())  # the public profile; type User or Organization
        return _Reply(200, self._account_json(example("GET_user", index=1), account)) if account else _not_found()

    def _get_org(self, ctx: _Ctx, login: str) -> _Reply:
        account = self.accounts.get(login.lower())
        if not account or account["type"] != "Organization":
            return _not_found()
        template = copy.deepcopy(_load("github-api/get-organization/raw-fixture.json")[0]["response"])
        template["archived_at"] = None  # required by the schema; GitHub added it after this 2022 recording
        return _Reply(200, self._account_json(template, account, "octokit-fixture-org"))

    def _list_user_repos(self, ctx: _Ctx) -> _Reply:
        if refused := self._need_user(ctx):
            return refused
        login, kind = ctx.caller.login.lower(), ctx.q("type", "all")
        affiliation = set((ctx.q("affiliation") or {"owner": "owner", "member": "collaborator,organization_member"}
                           .get(kind, "owner,collaborator,organization_member")).split(","))
        visibility = ctx.q("visibility") or (kind if kind in ("public", "private") else "all")

        def wanted(repo: Json) -> bool:
            owner = self.accounts[repo["owner"].lower()]
            related = ("owner" in affiliation and owner["login"].lower() == login) or (
                "collaborator" in affiliation and login in repo["visible_to"]) or (
                "organization_member" in affiliation and login in owner["members"])
            return related and visibility in ("all", "private" if repo["private"] else "public")

        return self._repos(ctx, [r for r in self.repos.values() if wanted(r)], "full_name", "GET_user_repos")

    def _list_account_repos(self, ctx: _Ctx, login: str) -> _Reply:
        """Public repositories owned by ``login`` (type=owner), private ones too for that user themself."""
        if login.lower() not in self.accounts:
            return _not_found()
        itself = ctx.caller.kind == "user" and ctx.caller.login.lower() == login.lower()
        repos = [r for r in self.repos.values() if r["owner"].lower() == login.lower() and (not r["private"] or itself)]
        return self._repos(ctx, repos, "full_name", "GET_users_{username}_repos")

    def _list_org_repos(self, ctx: _Ctx, login: str) -> _Reply:
        account, kind = self.accounts.get(login.lower()), ctx.q("type", "all")
        if not account or account["type"] != "Organization":
            return _not_found()
        repos = [r for r in self.repos.values() if r["owner"].lower() == login.lower()
                 and (not r["private"] or self._role(ctx.caller, r)) and kind != "forks"
                 and {"public": not r["private"], "private": r["private"]}.get(kind, True)]
        return self._repos(ctx, repos, "created", "GET_orgs_{org}_repos")

    def _rate_limit(self, ctx: _Ctx) -> _Reply:
        if not self.rate_limits:
            return _error(404, "Rate limiting is not enabled.")  # GHES with rate limiting off
        data, bucket = example("GET_rate_limit"), self._bucket(ctx.caller.bucket)
        core = {"limit": bucket["limit"], "used": bucket["limit"] - bucket["remaining"],
                "remaining": bucket["remaining"], "reset": int(bucket["reset"])}
        for numbers in data["resources"].values():
            numbers["reset"] = core["reset"]
        data["resources"]["core"], data["rate"] = core, dict(core)
        return _Reply(200, data)

    def _hooks(self, ctx: _Ctx, target: Json, hooks: list[Json], scope_url: str, hook_id: str | None,
               org: bool) -> _Reply:
        """List, create, read, edit or delete the hooks of a repository or an organization."""
        if not self._may_manage_hooks(ctx.caller, target, ctx.method != "GET", org):
            return _not_found()  # GitHub hides hooks from callers without admin rights
        if hook_id is None and ctx.method == "GET":
            page, headers = self._paginate(ctx, hooks)
            return _Reply(200, [self._hook_json(h, scope_url, org=org) for h in page], headers)
        try:
            data: Any = json.loads(ctx.body or b"{}")
        except ValueError:
            data = None
        if not isinstance(data, dict):
            return _error(400, "Problems parsing JSON")
        if hook_id is None:
            reply = self._create_hook(data, hooks, scope_url, org)
            if reply.status == 201 and self.ping_hooks:
                self._ping(hooks[-1], target, scope_url, ctx.caller, org=org)
            return reply
        hook = next((h for h in hooks if h["id"] == int(hook_id)), None)
        if hook is None:
            return _not_found()
        if ctx.method == "DELETE":
            hooks.remove(hook)
            return _Reply(204)
        if ctx.method == "PATCH":
            events = [*(data.get("events") or hook["events"]), *(data.get("add_events") or [])]
            hook.update(events=[e for e in dict.fromkeys(events) if e not in data.get("remove_events", [])],
                        active=data.get("active", hook["active"]), updated_at=_when(None),
                        config=_config(data["config"]) if isinstance(data.get("config"), dict) else hook["config"])
        return _Reply(200, self._hook_json(hook, scope_url, org=org))

    def _ping(self, hook: Json, target: Json, scope_url: str, caller: _Caller, *, org: bool) -> None:
        """Deliver the ``ping`` event of a new hook, signed with its secret, to its URL (loopback only)."""
        url = str(hook["config"]["url"])
        if urlsplit(url).hostname not in ("127.0.0.1", "localhost"):
            return
        about = ({"organization": {"id": target["id"], "login": target["login"]}} if org else
                 {"repository": {"id": target["id"], "name": target["name"],
                                 "full_name": f"{target['owner']}/{target['name']}",
                                 "owner": {"login": target["owner"]}}})
        body = json.dumps({"zen": "Keep it logically awesome.", "hook_id": hook["id"],
                           "hook": self._hook_json(hook, scope_url, org=org), **about,
                           "sender": {"login": caller.login}}).encode()
        secret = hook["config"].get("secret")
        headers = {"Content-Type": "application/json", "User-Agent": "GitHub-Hookshot/044aadd",
                   "X-GitHub-Delivery": str(uuid.uuid4()), "X-GitHub-Event": "ping",
                   "X-GitHub-Hook-ID": str(hook["id"]), "X-GitHub-Hook-Installation-Target-ID": str(target["id"]),
                   "X-GitHub-Hook-Installation-Target-Type": "organization" if org else "repository"}
        if secret:
            headers["X-Hub-Signature-256"] = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        try:
            status = httpx.post(url, content=body, headers=headers, timeout=10).status_code
        except httpx.HTTPError:
            status = 0
        self.pings.append((hook["id"], status))

    def _create_hook(self, data: Json, hooks: list[Json], scope_url: str, org: bool) -> _Reply:
        doc = doc_url("POST_orgs_{org}_hooks" if org else "POST_repos_{owner}_{repo}_hooks")
        config, events = data.get("config"), list(data.get("events") or ["push"])
        if not isinstance(config, dict) or not config.get("url"):
            return _error(422, "Validation Failed", doc, errors=[
                {"resource": "Hook", "code": "custom", "message": "Config must contain URL for webhooks"}])
        if any(h["config"]["url"] == config["url"] and set(h["events"]) & set(events) for h in hooks):
            return _error(422, "Validation Failed", doc, errors=[{"resource": "Hook", "code": "custom", "message":
                          f"Hook already exists on this {'organization' if org else 'repository'}"}])
        now = _when(None)
        hook = {"id": next(self._ids), "name": data.get("name", "web"), "active": bool(data.get("active", True)),
                "events": events, "config": _config(config), "created_at": now, "updated_at": now}
        hooks.append(hook)
        return _Reply(201, self._hook_json(hook, scope_url, org=org), {"Location": f"{scope_url}/hooks/{hook['id']}"})

    def _org_hooks(self, ctx: _Ctx, org: str, hook_id: str | None = None) -> _Reply:
        account = self.accounts.get(org.lower())
        if not account or account["type"] != "Organization":
            return _not_found()
        scope = f"{self.api_url}/orgs/{account['login']}"
        return self._hooks(ctx, account, account["hooks"], scope, hook_id, org=True)

    def _repo_hooks(self, ctx: _Ctx, repo: Json, hook_id: str | None = None) -> _Reply:
        scope = f"{self.api_url}/repos/{repo['owner']}/{repo['name']}"
        return self._hooks(ctx, dict(repo, login=repo["owner"]), repo["hooks"], scope, hook_id, org=False)

    def _installation_repositories(self, ctx: _Ctx) -> _Reply:
        inst = ctx.caller.installation
        if inst is None:
            return self._need_user(ctx) or _error(403, "You must authenticate with an installation access token in "
                                                       "order to list repositories for an installation.")
        template = example("GET_installation_repositories")["repositories"][0]
        repos = sorted(self._installation_repos(inst), key=lambda r: r["id"])
        page, headers = self._paginate(ctx, repos)
        return _Reply(200, {"total_count": len(repos),
                            "repository_selection": "all" if inst["repositories"] is None else "selected",
                            "repositories": [self._repo_json(r, copy.deepcopy(template), ctx.caller) for r in page]},
                      headers)

    def _app_installations(self, ctx: _Ctx, account: str | None = None) -> list[Json] | _Reply:
        """The calling app's installations (on ``account``), or the refusal of a caller that is not an app."""
        if ctx.caller.kind != "app":
            return _error(401, "A JSON web token could not be decoded")
        return [i for i in self.installations.values() if i["app_id"] == ctx.caller.app_id
                and (account is None or i["account"].lower() == account.lower())]

    def _account_installation(self, ctx: _Ctx, login: str) -> _Reply:
        found = self._app_installations(ctx, login)
        if isinstance(found, _Reply):
            return found
        return _Reply(200, self._installation_json(found[0])) if found else _not_found()

    def _issue_installation_token(self, ctx: _Ctx, inst_id: str) -> _Reply:
        mine = self._app_installations(ctx)
        if isinstance(mine, _Reply):
            return mine
        inst = next((i for i in mine if i["id"] == int(inst_id)), None)
        if inst is None:
            return _not_found()
        token, expires = _token("ghs_"), time.time() + self.installation_token_ttl
        self._tokens[token] = {"kind": "installation", "installation_id": inst["id"], "expires": expires}
        self.tokens_issued += 1
        body = example("POST_app_installations_{installation_id}_access_tokens", "201")
        del body["repositories"]  # only sent when the request narrows the repositories (not modelled)
        return _Reply(201, _put(body, token=token, permissions=dict(inst["permissions"]),
                                expires_at=datetime.fromtimestamp(expires, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                                repository_selection="all" if inst["repositories"] is None else "selected"))

    def _repo_scope(self, ctx: _Ctx, owner: str, name: str, rest: str | None) -> _Reply:
        key = (owner.lower(), name.lower())
        repo = next((r for r in self.repos.values() if (r["owner"].lower(), r["name"].lower()) == key), None)
        if repo is None and (moved := self._moved.get(key)) in self.repos:
            location = f"{self.api_url}/repositories/{moved}{rest or ''}"
            location += f"?{urlencode(ctx.query)}" if ctx.query else ""
            return _Reply(301 if ctx.method == "GET" else 307, {  # as in the rename-repository recording
                "message": "Moved Permanently", "url": location,
                "documentation_url": "https://docs.github.com/v3/#http-redirects"}, {"Location": location})
        if repo is None:
            status = self._gone.get(key, 404)
            return _error(status, HTTPStatus(status).phrase)
        return self._in_repo(ctx, repo, rest or "")

    def _repo_by_id(self, ctx: _Ctx, repo_id: str, rest: str | None) -> _Reply:
        repo = self.repos.get(int(repo_id))
        return self._in_repo(ctx, repo, rest or "") if repo else _not_found()

    def _in_repo(self, ctx: _Ctx, repo: Json, rest: str) -> _Reply:
        if rest == "/installation" and ctx.method == "GET":
            found = self._app_installations(ctx, repo["owner"])
            if isinstance(found, _Reply):
                return found
            inst = next((i for i in found if repo["id"] in {r["id"] for r in self._installation_repos(i)}), None)
            return _Reply(200, self._installation_json(inst)) if inst else _not_found()
        if repo["private"] and not self._role(ctx.caller, repo):
            return _not_found()
        ctx.link_path = f"/api/v3/repositories/{repo['id']}{rest}"  # GitHub's Link URLs name the repository by id
        return _route(self._repo_routes, ctx, rest, repo)

    def _get_repo(self, ctx: _Ctx, repo: Json) -> _Reply:
        return _Reply(200, self._repo_json(repo, example("GET_repos_{owner}_{repo}"), ctx.caller))

    def _list_pulls(self, ctx: _Ctx, repo: Json) -> _Reply:
        state, head, base = ctx.q("state", "open"), ctx.q("head").lower(), ctx.q("base")
        pulls = [p for p in repo["pulls"].values() if state in ("all", p["state"]) and (not base or p["base"] == base)
                 and (not head or head in (f"{repo['owner']}:{p['head']}".lower(), p["head"].lower()))]
        keys: dict[str, Callable[[Json], Any]] = {
            "created": lambda p: p["created_at"], "updated": lambda p: p["updated_at"],
            "popularity": lambda p: p["comments"], "long-running": lambda p: p["created_at"]}
        return self._list(ctx, pulls, keys, "created", {"updated", "popularity", "long-running"},
                          lambda p: self._pull_json(repo, p, ctx.caller, detail=False))

    def _get_pull(self, ctx: _Ctx, repo: Json, number: str) -> _Reply:
        pull = repo["pulls"].get(int(number))
        return _Reply(200, self._pull_json(repo, pull, ctx.caller, detail=True)) if pull else _not_found()

    def _list_reviews(self, ctx: _Ctx, repo: Json, number: str) -> _Reply:
        pull = repo["pulls"].get(int(number))
        if not pull:
            return _not_found()
        page, headers = self._paginate(ctx, pull["reviews"])  # chronological, as GitHub lists them
        return _Reply(200, [self._review_json(repo, pull, r) for r in page], headers)

    # -- the web host: OAuth app flow with PKCE ------------------------------

    def _web(self, request: Request, pairs: list[tuple[str, str]]) -> _Reply:
        if request.path == "/login/oauth/authorize" and request.method == "GET":
            return self._authorize(dict(pairs))
        if request.path == "/login/oauth/access_token" and request.method == "POST":
            return self._exchange_code(request, dict(pairs))
        return _html(404, "<h1>404</h1>")

    def _authorize(self, query: dict[str, str]) -> _Reply:
        app = self._oauth_apps.get(query.get("client_id", ""))
        redirect = query.get("redirect_uri") or (app or {}).get("callback_url")
        if app is None or not redirect:
            return _html(404, "<h1>404</h1>")
        if app["callback_url"] and not redirect.startswith(app["callback_url"]):
            return _redirect(app["callback_url"], {"error": "redirect_uri_mismatch", "state": query.get("state", ""),
                                                   "error_description": "The redirect_uri MUST match the registered "
                                                                        "callback URL for this application."})
        if self.oauth_user is None:
            return _html(200, "<h1>Sign in to GitHub</h1>")
        code = secrets.token_hex(10)
        self._codes[code] = {"client_id": query["client_id"], "redirect_uri": query.get("redirect_uri"),
                             "challenge": query.get("code_challenge"), "login": self.oauth_user,
                             "method": query.get("code_challenge_method", "plain"), "expires": time.time() + 600,
                             "scopes": [s for s in re.split(r"[ ,]+", query.get("scope", "")) if s]}
        return _redirect(redirect, {"code": code} | ({"state": query["state"]} if "state" in query else {}))

    def _exchange_code(self, request: Request, params: dict[str, str]) -> _Reply:
        """Form or JSON in; form out, or JSON with ``Accept: application/json``.  Errors are 200s, as on GitHub."""
        if "json" in request.headers.get("content-type", ""):
            params |= json.loads(request.body or b"{}")
        else:
            params |= dict(parse_qsl(request.body.decode(), keep_blank_values=True))
        app, code = self._oauth_apps.get(params.get("client_id", "")), self._codes.pop(params.get("code", ""), None)
        doc = "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/"
        if app is None or app["secret"] != params.get("client_secret"):
            answer = {"error": "incorrect_client_credentials", "error_uri": f"{doc}#incorrect-client-credentials",
                      "error_description": "The client_id and/or client_secret passed are incorrect."}
        elif not code or code["expires"] < time.time() or code["client_id"] != params["client_id"] or not _pkce_ok(
                code, params.get("code_verifier")):
            answer = {"error": "bad_verification_code", "error_uri": f"{doc}#bad-verification-code",
                      "error_description": "The code passed is incorrect or expired."}
        elif params.get("redirect_uri") and params["redirect_uri"] != code["redirect_uri"]:
            answer = {"error": "redirect_uri_mismatch", "error_uri": f"{doc}#redirect-uri-mismatch",
                      "error_description": "The redirect_uri MUST match the registered callback URL for this "
                                           "application."}
        else:
            token = _token("gho_")
            self.add_token(token, code["login"], ",".join(code["scopes"]))
            answer = {"access_token": token, "scope": ",".join(code["scopes"]), "token_type": "bearer"}
        if "application/json" in request.headers.get("accept", ""):
            return _Reply(200, answer, {"Content-Type": "application/json; charset=utf-8"})
        return _Reply(200, urlencode(answer).encode(), {"Content-Type": "application/x-www-form-urlencoded"})


def _compile(routes: list[tuple[str, str, Callable[..., _Reply]]]) -> list[tuple[set[str], re.Pattern[str], Any]]:
    return [(set(methods.split("|")), re.compile(pattern), handler) for methods, pattern, handler in routes]


def _route(routes: list[tuple[set[str], re.Pattern[str], Any]], ctx: _Ctx, path: str, *prefix: Any) -> _Reply:
    for methods, pattern, handler in routes:
        if (match := pattern.fullmatch(path)) and ("*" in methods or ctx.method in methods):
            return handler(ctx, *prefix, *match.groups())  # type: ignore[no-any-return]
    return _not_found()


def _set_state(pull: Json, state: str, merged: bool, moment: datetime) -> None:
    if merged and not pull["merged"]:
        pull.update(merged=True, merged_at=moment, state="closed", closed_at=moment)
    elif state != pull["state"] and not pull["merged"]:
        pull.update(state=state, closed_at=moment if state == "closed" else None)


def _failure_body(status: int, headers: dict[str, str]) -> Any:
    names = {k.lower(): v for k, v in headers.items()}
    if status == 503:
        return recorded("Exceptions.testNonJsonDataReturnedByGithub").encode()  # an HTML page, as recorded
    if status >= 500:
        return recorded("Retry.testReturnsRepoAfter1Retry")  # {"error": "Server Error"}
    if status in (403, 429) and "retry-after" in names:
        return recorded("SpecificExceptions.testAuthenticatedRateLimitExceeded", 1)  # abuse detection
    if status in (403, 429) and names.get("x-ratelimit-remaining") == "0":
        return {"message": "API rate limit exceeded for user ID 1.", "documentation_url": RATE_DOCS}
    message = {401: "Bad credentials", 422: "Validation Failed"}.get(status, HTTPStatus(status).phrase)
    return {"message": message, "documentation_url": DOCS}


def _not_found() -> _Reply:
    return _error(404, "Not Found")


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _int(text: str, default: int) -> int:
    try:
        return int(text)
    except ValueError:
        return default


def _basic(credential: str) -> tuple[str, str]:
    try:
        user, _, password = base64.b64decode(credential).decode().partition(":")
    except ValueError:
        return "", ""
    return user, password


def _config(config: Json) -> Json:
    normal = {"content_type": "form", "insecure_ssl": "0", **config}
    return normal | {"insecure_ssl": str(normal["insecure_ssl"])}


def _pkce_ok(code: Json, verifier: str | None) -> bool:
    if not code["challenge"]:
        return True
    if code["method"] == "S256" and verifier:
        verifier = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return bool(verifier == code["challenge"])


def _html(status: int, text: str) -> _Reply:
    return _Reply(status, f"<html><body>{text}</body></html>".encode(), {"Content-Type": "text/html; charset=utf-8"})


def _redirect(target: str, params: dict[str, str]) -> _Reply:
    location = target + ("&" if "?" in target else "?") + urlencode(params)
    reply = _html(302, f'You are being <a href="{location}">redirected</a>.')
    reply.headers["Location"] = location
    return reply


class GitHubGitServer(GitHttpServer):
    """``GitHttpServer`` taking, like GitHub, Basic auth with any user name (``x-access-token`` for App tokens) and
    any token the stub accepts now as password: PATs, OAuth tokens, unexpired installation tokens."""

    def __init__(self, root: Path, stub: GitHubStub) -> None:
        self.stub = stub
        super().__init__(root, "x-access-token", secrets.token_hex(16))

    def _app(self, environ: dict[str, object], start_response: object) -> list[bytes]:
        scheme, _, credential = str(environ.get("HTTP_AUTHORIZATION") or "").partition(" ")
        if scheme.lower() == "basic" and self.stub.token_valid(_basic(credential)[1]):
            environ = dict(environ, HTTP_AUTHORIZATION=self.expected)
        return super()._app(environ, start_response)
