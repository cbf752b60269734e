"""A small, faithful GitLab stub for tests: real HTTP (or HTTPS) on 127.0.0.1, laid out like a GitLab instance.

``stub.web_url`` is the instance (OAuth, git over HTTP, web URLs), ``stub.api_url`` (``web_url + "/api/v4"``) the
REST API.  Where each shape comes from:

* Projects, groups, merge requests (list), users and namespaces inside them: the ``synthesized_from_schema`` values of
  ``shared/corpus/openapi/gitlab`` (GitLab's own OpenAPI v2 description, see SOURCE.txt there):
  ``GET_api_v4_groups_{id}_projects`` (API_Entities_Project), ``GET_api_v4_projects`` (BasicProjectDetails, for
  ``simple=true``), ``GET_api_v4_groups_{id}`` (GroupDetail), ``GET_api_v4_projects_{id}_merge_requests``
  (MergeRequestBasic; its ``author`` is API_Entities_UserBasic, its project's ``namespace`` NamespaceBasic).  The stub
  keeps every key of those examples and overrides the values its state decides; a schema placeholder (``"string"``)
  the stub does not model becomes ``null``, and fields GitLab exposes only on request (``license``, ``statistics``,
  ``custom_attributes``, ``title_html``…) or only in some cases (``owner`` for user namespaces, ``forked_from_project``
  for forks, ``runners_token`` for maintainers) follow the entity's condition.
* Where the corpus has no operation or no schema, GitLab's REST documentation (docs.gitlab.com/api/…) and its source:
  ``GET /version`` (version.md), ``GET /user`` (users.md), ``GET /personal_access_tokens/self``
  (personal_access_tokens.md), ``GET /namespaces/:id`` (namespaces.md), ``/projects/:id/hooks`` entity
  (project_webhooks.md, 17.x field list; the hook ``token`` is write-only), ``/groups/:id/hooks`` (group_webhooks.md;
  Premium — on Free the route does not exist and Grape's catch-all answers ``{"error":"404 Not Found"}``), MR detail
  extras and ``/approvals`` (merge_requests.md, merge_request_approvals.md), offset and keyset pagination
  (rest/_index.md; keyset refusals are ``405 {"error":"Keyset pagination is not yet available for this type of
  request"}`` from lib/api/helpers/pagination_strategies.rb), rate-limit headers and the ``Retry later`` 429
  (user/gitlab_com/index.md, Rack::Attack), OAuth 2 with PKCE (api/oauth2.md; Doorkeeper's error bodies and
  ``/oauth/token/info``), webhook delivery headers (user/project/integrations/webhooks.md).
* Error bodies: ``{"message":"401 Unauthorized"}`` for an unknown token (Grape ``unauthorized!``); an expired or
  revoked token gets rack-oauth2's ``invalid_token`` body from lib/api/api_guard.rb (``Token is expired. You can
  either do re-authorization or token refresh.`` / ``Token was revoked…``), a token without the needed scope
  ``403 {"error":"insufficient_scope",…,"scope":"api read_api"}``; missing records ``404 {"message":"404 Project Not
  Found"}`` (``not_found!('Project')``) or ``404 Not found`` (ActiveRecord::RecordNotFound); refusals ``403
  {"message":"403 Forbidden"}`` — also what a project with merge requests disabled answers on MR endpoints.

Git over HTTP is served on the same origin (``/{full_path}.git/…``) by real ``git http-backend`` once
``serve_git(root)`` is called; it takes Basic auth with any non-empty user name and a token as password, as GitLab.

Modelled on purpose, and where it is simpler than GitLab: renamed and transferred projects keep answering under
their old path (GitLab's redirect routes, ``find_by_full_path(follow_redirects: true)``); refreshing an OAuth token
revokes the old access/refresh pair at once (Doorkeeper keeps both on one row); a project cannot be more visible
than its group (GitLab refuses it); webhooks to loopback are allowed (``allow_local_hooks``, the admin setting);
project sharing (``with_shared``), admins, protected branches and notification levels are not modelled.
"""

from __future__ import annotations

import base64
import copy
import functools
import hashlib
import io
import itertools
import json
import math
import os
import re
import secrets
import socket
import ssl
import subprocess
import threading
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "openapi" / "gitlab"
Json = dict[str, Any]
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

GUEST, REPORTER, DEVELOPER, MAINTAINER, OWNER = 10, 20, 30, 40, 50
_GIT_PATH = re.compile(r"^/(.+?)\.git/(info/refs|git-upload-pack|git-receive-pack)$")
_READ = ("api", "read_api")  # what a GET of the REST API accepts (lib/api/api.rb: allow_access_with_scope)
_WRITE = ("api",)
_USER_READ = ("api", "read_api", "read_user")  # /user, /users, /version also take read_user
_GIT_READ = ("api", "read_repository", "write_repository")
_GIT_WRITE = ("api", "write_repository")
_DRAFT = re.compile(r"^\s*(\[draft\]|\(draft\)|draft:|draft\s-\s|draft\s|draft$)\s*", re.IGNORECASE)  # DRAFT_REGEX
_GIT_DENIED = (b"HTTP Basic: Access denied. If a password was provided for Git authentication, the password was "
               b"incorrect or you're required to use a token instead of a password. If a token was provided, it was "
               b"either incorrect, expired, or improperly scoped. See "
               b"https://gitlab.com/help/topics/git/troubleshooting_git.md#error-on-git-fetch-http-basic-access-denied"
               b"\n")
_INVALID_GRANT = ("The provided authorization grant is invalid, expired, revoked, does not match the redirection URI "
                  "used in the authorization request, or was issued to another client.")
_INVALID_CLIENT = ("Client authentication failed due to unknown client, no client authentication included, or "
                   "unsupported authentication method.")


@functools.cache
def _load(operation: str) -> Any:
    return json.loads((CORPUS / f"{operation}.json").read_text())


def example(operation: str, status: str = "200") -> Any:
    """A copy of the corpus's synthesized answer of ``operation`` (its first item for a list), e.g.
    ``example("GET_api_v4_groups_{id}_projects")``."""
    value = copy.deepcopy(_load(operation)["synthesized_from_schema"][status]["value"])
    return value[0] if isinstance(value, list) else value


def _placeholders_to_null(value: Json) -> Json:
    """The schema's ``"string"`` placeholder (a property without example) is no answer GitLab gives: null it."""
    return {k: None if v == "string" else v for k, v in value.items()}


def _iso(moment: datetime | None) -> str | None:
    """GitLab's timestamps: UTC with milliseconds and ``Z``."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _when(value: datetime | str | None) -> datetime:
    if value is None:
        return datetime.now(UTC).replace(microsecond=0)
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _fake_sha(*parts: object) -> str:
    return hashlib.sha1(":".join(map(str, parts)).encode()).hexdigest()


def _truthy(text: str) -> bool:
    return text.lower() in ("true", "1", "yes", "t")


def _int(text: str, default: int) -> int:
    try:
        return int(text)
    except ValueError:
        return default


@dataclass
class Request:
    """A request as the stub saw it: ``path`` as sent (still percent-encoded), header names in lower case;
    ``auth`` says how a credential came (``private-token``, ``bearer``, ``basic``, ``query``) or None."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes = b""
    auth: str | None = None


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
class _Ctx:
    method: str
    path: str  # as sent, for Link headers
    query: list[tuple[str, str]]
    body: bytes
    headers: dict[str, str]
    user: Json | None
    token: Json | None

    def q(self, name: str, default: str = "") -> str:
        return next((v for k, v in reversed(self.query) if k == name), default)

    def form(self) -> Json:
        """Parameters the way Grape reads them: query string, then a JSON or form body."""
        params: Json = dict(self.query)
        if "json" in self.headers.get("content-type", ""):
            data = json.loads(self.body or b"{}")
            params |= data if isinstance(data, dict) else {}
        elif self.body:
            params |= dict(parse_qsl(self.body.decode(), keep_blank_values=True))
        return params


def _message(status: int, message: Any) -> _Reply:
    return _Reply(status, {"message": message})


def _not_found(what: str | None = None) -> _Reply:
    return _message(404, f"404 {what} Not Found" if what else "404 Not found")


def _forbidden() -> _Reply:
    return _message(403, "403 Forbidden")


def _html(status: int, text: str, headers: dict[str, str] | None = None) -> _Reply:
    body = f"<!DOCTYPE html><html><body>{text}</body></html>".encode()
    return _Reply(status, body, {"Content-Type": "text/html; charset=utf-8", **(headers or {})})


def _failure_body(status: int) -> Any:
    """What GitLab answers ``status`` with when nothing more specific applies."""
    if status == 429:
        return b"Retry later\n"
    if status in (502, 503):  # Workhorse/nginx error pages are HTML
        return f"<!DOCTYPE html><html><body><h1>{status}</h1><p>GitLab is not responding.</p></body></html>".encode()
    phrases = {400: "400 Bad request", 401: "401 Unauthorized", 403: "403 Forbidden", 404: "404 Not Found",
               409: "409 Conflict", 422: "422 Unprocessable Entity", 500: "500 Internal Server Error"}
    return {"message": phrases.get(status, str(status))}


class GitLabStub:
    """GitLab state in plain dicts, served over HTTP.  Use as a context manager or call ``close()``."""

    def __init__(self, *, tls: tuple[Path, Path] | None = None) -> None:
        self.lock = threading.RLock()
        self.requests: list[Request] = []
        self.errors: list[str] = []  # tracebacks of stub bugs (answered 500)
        self.version = "17.5.0-ee"
        self.revision = "9a2b0c7e2f1"
        self.tier = "free"  # "premium" adds group hooks and the EE approvals fields
        self.allow_local_hooks = True  # the admin setting "Allow requests to the local network from webhooks"
        self.oauth_user: str | None = None  # who is signed in on the web UI (auto-approves /oauth/authorize)
        self.token_requests: Counter[str] = Counter()  # POST /oauth/token calls by grant_type
        self.git_backend: WsgiApp | None = None
        self.git_requests: list[tuple[str, str, str | None]] = []  # (method, path, user name of Basic auth)
        self.users: dict[str, Json] = {}  # lower-case username -> user
        self.groups: dict[str, Json] = {}  # lower-case full path -> group
        self.projects: dict[int, Json] = {}
        self._ids = itertools.count(1001)
        self._redirects: dict[str, int] = {}  # old lower-case full path -> project id
        self._tokens: dict[str, Json] = {}
        self._oauth_apps: dict[str, Json] = {}
        self._codes: dict[str, Json] = {}
        self._refresh: dict[str, str] = {}  # refresh token -> its access token
        self._failures: list[_Failure] = []
        self._limit: Json = {"limit": 2000, "remaining": 2000, "reset": time.time() + 60, "fixed": False}
        self._git_root: Path | None = None
        api: list[tuple[str, str, Callable[..., _Reply], tuple[str, ...] | None]] = [
            ("GET", r"/version", self._version, _USER_READ), ("GET", r"/user", self._user, _USER_READ),
            ("GET", r"/personal_access_tokens/self", self._token_self, ()),  # any scope
            ("GET", r"/users", self._users, _USER_READ),
            ("GET", r"/users/([^/]+)/projects", self._user_projects, _READ),
            ("GET", r"/namespaces/([^/]+)", self._namespace, _READ),
            ("GET", r"/groups/([^/]+)", self._group, _READ),
            ("GET", r"/groups/([^/]+)/projects", self._group_projects, _READ),
            ("GET|POST", r"/groups/([^/]+)/hooks", self._group_hooks, None),
            ("GET|PUT|DELETE", r"/groups/([^/]+)/hooks/(\d+)", self._group_hooks, None),
            ("GET", r"/projects/([^/]+)", self._project, _READ),
            ("GET|POST", r"/projects/([^/]+)/hooks", self._project_hooks, None),
            ("GET|PUT|DELETE", r"/projects/([^/]+)/hooks/(\d+)", self._project_hooks, None),
            ("GET", r"/projects/([^/]+)/merge_requests", self._merge_requests, _READ),
            ("GET", r"/projects/([^/]+)/merge_requests/(\d+)", self._merge_request, _READ),
            ("GET", r"/projects/([^/]+)/merge_requests/(\d+)/approvals", self._approvals, _READ),
        ]
        self._routes: list[tuple[set[str], re.Pattern[str], Callable[..., _Reply], tuple[str, ...] | None]] = [
            (set(m.split("|")), re.compile(p), h, s) for m, p, h, s in api]
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if isinstance(self.connection, ssl.SSLSocket):
                    self.connection.do_handshake()  # here, in the request's thread (see do_handshake_on_connect)

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def version_string(self) -> str:
                return "nginx"

            def handle_any(self) -> None:
                stub._serve(self)

            do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = handle_any

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        self._server.socket.settimeout(1.0)  # as GitHubStub: a reset before accept() must not hang close()
        scheme = "http"
        if tls:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*tls)
            # the handshake runs in the request's thread, not in accept(): a stalled client cannot block the server
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True,
                                                      do_handshake_on_connect=False)
            scheme = "https"
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        self._scheme = scheme

    @property
    def web_url(self) -> str:
        return f"{self._scheme}://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.web_url}/api/v4"

    def __enter__(self) -> GitLabStub:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    # -- state ---------------------------------------------------------------

    def add_user(self, username: str, id: int | None = None, *, name: str | None = None,
                 email: str | None = None, bot: bool = False) -> Json:
        """A user, with its personal namespace (``/{username}``)."""
        with self.lock:
            user = {"id": id or next(self._ids), "username": username, "name": name or username.capitalize(),
                    "email": email or f"{username}@example.com", "bot": bot, "namespace_id": next(self._ids),
                    "created_at": _when(None)}
            self.users[username.lower()] = user
            return user

    def _user_named(self, username: str) -> Json:
        return self.users.get(username.lower()) or self.add_user(username)

    def add_group(self, path: str, parent: str | None = None, id: int | None = None, *, name: str | None = None,
                  visibility: str = "private") -> Json:
        """A group, or a subgroup of ``parent`` (a full path): ``add_group("core", "acme/platform")``."""
        with self.lock:
            above = self.groups[parent.lower()] if parent else None
            full_path = f"{above['full_path']}/{path}" if above else path
            group: Json = {"id": id or next(self._ids), "path": path, "name": name or path, "full_path": full_path,
                     "parent_id": above["id"] if above else None, "visibility": visibility, "members": {},
                     "hooks": [], "hooks_denied": False, "created_at": _when(None), "description": ""}
            self.groups[full_path.lower()] = group
            return group

    def add_project(self, namespace_full_path: str, path: str, visibility: str = "private", archived: bool = False,
                    id: int | None = None, merge_requests_enabled: bool = True, *, name: str | None = None,
                    default_branch: str = "main", description: str | None = None,
                    created_at: datetime | str | None = None) -> Json:
        """A project in a group (full path) or a user's namespace (username); returns its live state."""
        with self.lock:
            if namespace_full_path.lower() not in self.groups and namespace_full_path.lower() not in self.users:
                raise KeyError(f"no group or user {namespace_full_path!r}: add_group/add_user first")
            order = ("private", "internal", "public")
            group = self.groups.get(namespace_full_path.lower())
            if group and order.index(visibility) > order.index(group["visibility"]):
                # GitLab refuses it too: "visibility_level … the group has a more restrictive visibility"
                raise ValueError(f"a {visibility} project cannot live in the {group['visibility']} group "
                                 f"{group['full_path']}")
            created = _when(created_at)
            project: Json = {"id": id or next(self._ids), "namespace": namespace_full_path.lower(), "path": path,
                       "name": name or path, "visibility": visibility, "archived": archived,
                       "merge_requests_enabled": merge_requests_enabled, "default_branch": default_branch,
                       "description": description, "members": {}, "hooks": [], "hooks_denied": False, "mrs": {},
                       "next_iid": 1, "created_at": created, "last_activity_at": created}
            self.projects[project["id"]] = project
            return project

    def project(self, full_path: str) -> Json:
        """The live state of a project by its current full path (change it freely)."""
        found = self._project_by_path(full_path, redirects=False)
        if found is None:
            raise KeyError(full_path)
        return found

    def full_path(self, project: Json) -> str:
        owner = self.groups.get(project["namespace"])
        return f"{owner['full_path'] if owner else self.users[project['namespace']]['username']}/{project['path']}"

    def rename_project(self, full_path: str, new_path: str, *, new_name: str | None = None) -> None:
        """Change a project's path; the old path keeps resolving (GitLab's redirect routes)."""
        with self.lock:
            found = self.project(full_path)
            self._redirects[full_path.lower()] = found["id"]
            found.update(path=new_path, name=new_name or found["name"])

    def transfer_project(self, full_path: str, new_namespace_full_path: str) -> None:
        with self.lock:
            found = self.project(full_path)
            if new_namespace_full_path.lower() not in self.groups | self.users:
                raise KeyError(new_namespace_full_path)
            self._redirects[full_path.lower()] = found["id"]
            found["namespace"] = new_namespace_full_path.lower()

    def delete_project(self, full_path: str) -> None:
        with self.lock:
            gone = self.projects.pop(self.project(full_path)["id"])
            self._redirects = {k: v for k, v in self._redirects.items() if v != gone["id"]}

    def add_member(self, group_or_project_path: str, username: str, access_level: int = MAINTAINER) -> None:
        """Membership in a group (inherited by its subgroups and projects) or a project."""
        with self.lock:
            target = self.groups.get(group_or_project_path.lower()) or self.project(group_or_project_path)
            target["members"][self._user_named(username)["username"].lower()] = access_level

    def add_token(self, token: str, username: str, scopes: Iterable[str] = ("api",), kind: str = "personal",
                  expires_at: date | datetime | str | None = None, resource: str | None = None, *,
                  name: str | None = None, access_level: int = MAINTAINER) -> Json:
        """A personal, group or project access token.  A group/project token belongs to a bot user ``username``
        that is a member of ``resource`` (the group's or project's full path) at ``access_level``.  ``expires_at``:
        a date (the token stops working that day, 00:00 UTC, as GitLab's) or an exact datetime."""
        if kind not in ("personal", "group", "project"):
            raise ValueError(kind)
        with self.lock:
            if kind == "personal":
                user = self._user_named(username)
            else:
                if resource is None:
                    raise ValueError(f"a {kind} access token needs resource=")
                user = self.users.get(username.lower()) or self.add_user(username, name=name or username, bot=True)
                user["bot"] = True
                self.add_member(resource, username, access_level)
            info = {"id": next(self._ids), "kind": kind, "username": user["username"].lower(),
                    "name": name or token[:8], "scopes": list(scopes), "expires_at": expires_at, "revoked": False,
                    "resource": resource, "created_at": _when(None), "last_used_at": None, "oauth": None}
            self._tokens[token] = info
            return info

    def revoke_token(self, token: str) -> None:
        with self.lock:
            self._tokens[token]["revoked"] = True

    def expire_access_token(self, token: str) -> None:
        """Make a token (OAuth or not) expired from now on."""
        with self.lock:
            self._tokens[token]["expires_at"] = datetime.now(UTC) - timedelta(seconds=1)

    def token_valid(self, token: str) -> bool:
        return self._token_state(token) == "ok"

    def _token_state(self, token: str) -> str:
        info = self._tokens.get(token)
        if info is None:
            return "unknown"
        if info["revoked"]:
            return "revoked"
        expires = info["expires_at"]
        if isinstance(expires, str):
            expires = date.fromisoformat(expires) if len(expires) == 10 else _when(expires)
        if isinstance(expires, datetime):
            return "expired" if expires <= datetime.now(UTC) else "ok"
        if isinstance(expires, date):
            return "expired" if expires <= datetime.now(UTC).date() else "ok"
        return "ok"

    def add_merge_request(self, project_path: str, iid: int | None = None, *, title: str, description: str = "",
                          source_branch: str, target_branch: str = "main", author: str, state: str = "opened",
                          draft: bool = False, reviewers: Iterable[str] = (), updated_at: datetime | str | None = None,
                          created_at: datetime | str | None = None, user_notes_count: int = 0,
                          sha: str | None = None) -> Json:
        """A merge request; ``draft`` puts GitLab's ``Draft: `` prefix on the title (GitLab derives it from there)."""
        with self.lock:
            found = self.project(project_path)
            iid = iid or found["next_iid"]
            found["next_iid"] = max(found["next_iid"], iid + 1)
            created = _when(created_at)
            mr = {"id": next(self._ids), "iid": iid, "title": title, "description": description,
                  "source_branch": source_branch, "target_branch": target_branch,
                  "author": self._user_named(author)["username"].lower(), "state": "opened",
                  "reviewers": [self._user_named(r)["username"].lower() for r in reviewers],
                  "created_at": created, "updated_at": _when(updated_at) if updated_at else created,
                  "merged_at": None, "closed_at": None, "user_notes_count": user_notes_count,
                  "sha": sha or _fake_sha(found["id"], iid, source_branch), "approved_by": []}
            found["mrs"][iid] = mr
            if draft:
                _set_draft(mr, True)
            _set_state(mr, state, mr["updated_at"])
            return mr

    def update_merge_request(self, project_path: str, iid: int, **changes: Any) -> Json:
        """Change a merge request (``state``, ``title``, ``draft``, ``reviewers``, ``user_notes_count``…);
        ``updated_at`` moves forward (at least a second), as every GitLab change does."""
        with self.lock:
            mr: Json = self.project(project_path)["mrs"][iid]
            moment = max(_when(changes.pop("updated_at", None)), mr["updated_at"] + timedelta(seconds=1))
            state, draft = changes.pop("state", mr["state"]), changes.pop("draft", None)
            if "reviewers" in changes:
                changes["reviewers"] = [self._user_named(r)["username"].lower() for r in changes["reviewers"]]
            mr.update(changes, updated_at=moment)
            if draft is not None:
                _set_draft(mr, draft)
            _set_state(mr, state, moment)
            return mr

    def add_approval(self, project_path: str, iid: int, username: str) -> None:
        with self.lock:
            mr = self.project(project_path)["mrs"][iid]
            name = self._user_named(username)["username"].lower()
            if name not in mr["approved_by"]:
                mr["approved_by"].append(name)
                mr["updated_at"] = max(_when(None), mr["updated_at"] + timedelta(seconds=1))

    def hooks(self, project_path: str) -> list[Json]:
        """A project's hooks as stored, INCLUDING the secret ``token`` (which the API never returns)."""
        return [dict(h) for h in self.project(project_path)["hooks"]]

    def group_hooks(self, group_path: str) -> list[Json]:
        return [dict(h) for h in self.groups[group_path.lower()]["hooks"]]

    def deny_hooks(self, project_path: str) -> None:
        """Every hook call on the project answers 403, whatever the caller's role."""
        with self.lock:
            self.project(project_path)["hooks_denied"] = True

    def fail_next(self, method: str, path_or_regex: str | re.Pattern[str], status: int,
                  headers: dict[str, str] | None = None, body: Any = None, *, times: int = 1) -> None:
        """The next ``times`` requests with ``method`` (``"*"``: any) whose path (as sent, percent-encoded) ends
        with ``path_or_regex`` (or matches the pattern) answer ``status``; ``body`` (JSON value or bytes) defaults to
        what GitLab sends for it (``Retry later`` text for 429, an HTML page for 502/503, ``{"message": …}``)."""
        with self.lock:
            reply = _Reply(status, _failure_body(status) if body is None else body, dict(headers or {}))
            if isinstance(reply.body, bytes) and not any(k.lower() == "content-type" for k in reply.headers):
                reply.headers["Content-Type"] = "text/plain" if status == 429 else "text/html; charset=utf-8"
            self._failures.append(_Failure(method.upper(), path_or_regex, reply, times))

    def set_rate_limit(self, remaining: int, limit: int = 2000, reset: float | None = None) -> None:
        """The API budget of every caller; ``reset`` is an epoch (default: a minute from now, GitLab.com's period).
        When the reset passes, the budget refills to ``limit``."""
        with self.lock:
            self._limit = {"limit": limit, "remaining": remaining, "reset": reset or time.time() + 60,
                           "fixed": False}

    def add_oauth_app(self, client_id: str, client_secret: str, redirect_uri: str, *,
                      scopes: Iterable[str] = ("api", "read_api", "read_user", "read_repository", "write_repository"),
                      confidential: bool = True) -> None:
        """An OAuth application; ``redirect_uri`` may hold several URIs, one a line, as GitLab's form does."""
        with self.lock:
            self._oauth_apps[client_id] = {"secret": client_secret, "redirect_uris": redirect_uri.split(),
                                           "scopes": list(scopes), "confidential": confidential}

    def serve_git(self, root_dir: Path) -> None:
        """Answer ``/{full_path}.git/…`` with real ``git http-backend`` on ``root_dir/{full_path}.git``."""
        self._git_root = Path(root_dir)
        self.git_backend = self._git_app

    def delivery_headers(self, event_header_value: str, token: str, *, uuid: str | None = None) -> dict[str, str]:
        """The headers GitLab sends with a webhook delivery (e.g. ``"Push Hook"``, ``"Merge Request Hook"``)."""
        return {"Content-Type": "application/json", "User-Agent": f"GitLab/{self.version.split('-')[0]}",
                "Idempotency-Key": str(_uuid4()), "X-Gitlab-Event": event_header_value,
                "X-Gitlab-Event-UUID": uuid or str(_uuid4()), "X-Gitlab-Instance": self.web_url,
                "X-Gitlab-Token": token, "X-Gitlab-Webhook-UUID": str(_uuid4())}

    # -- visibility and roles ------------------------------------------------

    def _ancestors(self, group: Json | None) -> list[Json]:
        chain = []
        while group is not None:
            chain.append(group)
            group = next((g for g in self.groups.values() if g["id"] == group["parent_id"]), None)
        return chain

    def _project_level(self, user: Json | None, project: Json) -> int:
        if user is None:
            return 0
        name = user["username"].lower()
        if project["namespace"] == name:
            return OWNER
        groups = self._ancestors(self.groups.get(project["namespace"]))
        return int(max([project["members"].get(name, 0), *(g["members"].get(name, 0) for g in groups)]))

    def _group_level(self, user: Json | None, group: Json) -> int:
        if user is None:
            return 0
        return int(max([0, *(g["members"].get(user["username"].lower(), 0) for g in self._ancestors(group))]))

    def _sees_project(self, user: Json | None, project: Json) -> bool:
        return (project["visibility"] == "public" or (project["visibility"] == "internal" and user is not None)
                or self._project_level(user, project) >= GUEST)

    def _sees_group(self, user: Json | None, group: Json) -> bool:
        """Public/internal groups, and groups a user belongs to, inherits or has a project or subgroup under."""
        if group["visibility"] == "public" or (group["visibility"] == "internal" and user is not None):
            return True
        if user is None:
            return False
        prefix = group["full_path"].lower() + "/"
        below = [g for k, g in self.groups.items() if k == group["full_path"].lower() or k.startswith(prefix)]
        return self._group_level(user, group) > 0 or any(g["members"].get(user["username"].lower()) for g in below) \
            or any(self._project_level(user, p) for p in self.projects.values()
                   if (self.full_path(p).lower() + "/").startswith(prefix))

    def _project_by_path(self, ident: str, *, redirects: bool = True) -> Json | None:
        if ident.isdigit():
            return self.projects.get(int(ident))
        key = ident.lower().strip("/")
        found = next((p for p in self.projects.values() if self.full_path(p).lower() == key), None)
        if found is None and redirects and key in self._redirects:
            found = self.projects.get(self._redirects[key])
        return found

    def _group_by(self, ident: str) -> Json | None:
        if ident.isdigit():
            return next((g for g in self.groups.values() if g["id"] == int(ident)), None)
        return self.groups.get(ident.lower())

    # -- serving -------------------------------------------------------------

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        try:
            split = urlsplit(handler.path)
            body = _read_body(handler)
            pairs = parse_qsl(split.query, keep_blank_values=True)
            headers = {k.lower(): v for k, v in handler.headers.items()}
            request = Request(handler.command, split.path, dict(pairs), headers, body, _auth_kind(headers, pairs))
            with self.lock:
                self.requests.append(request)
                injected = self._injected(request)
            if injected is None and _GIT_PATH.match(split.path) and self.git_backend is not None:
                self._serve_git(handler, split.path, split.query, body)
                return
            try:
                with self.lock:
                    if injected is not None:
                        reply = injected
                        if re.match(r"/api/v4(/|$)", split.path):
                            reply.headers = self._rate_headers() | reply.headers
                    elif re.match(r"/api/v4(/|$)", split.path):
                        reply = self._api(request, pairs)
                    else:
                        reply = self._web(request, pairs)
            except Exception:
                self.errors.append(traceback.format_exc())
                reply = _message(500, "500 Internal Server Error")
            self._write(handler, reply)
        except (ConnectionError, ssl.SSLError, TimeoutError):
            pass  # a client that hangs up is no stub failure

    def _write(self, handler: BaseHTTPRequestHandler, reply: _Reply) -> None:
        body = reply.body if isinstance(reply.body, bytes) else b"" if reply.body is None else _dumps(reply.body)
        handler.send_response(reply.status)
        names = {k.lower() for k in reply.headers}
        if reply.body is not None and not isinstance(reply.body, bytes) and "content-type" not in names:
            handler.send_header("Content-Type", "application/json")
        for name, value in reply.headers.items():
            handler.send_header(name, value)
        if reply.status not in (204, 304):
            handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        if handler.command != "HEAD" and reply.status not in (204, 304):
            handler.wfile.write(body)

    def _injected(self, request: Request) -> _Reply | None:
        for failure in self._failures:
            hit = (failure.path.search(request.path) if isinstance(failure.path, re.Pattern)
                   else request.path.endswith(failure.path))
            if hit and failure.method in ("*", request.method):
                failure.times -= 1
                if failure.times <= 0:
                    self._failures.remove(failure)
                return copy.deepcopy(failure.reply)
        return None

    def _rate_headers(self) -> dict[str, str]:
        bucket = self._limit
        return {"RateLimit-Limit": str(bucket["limit"]),
                "RateLimit-Observed": str(bucket["limit"] - bucket["remaining"]),
                "RateLimit-Remaining": str(bucket["remaining"]), "RateLimit-Reset": str(int(bucket["reset"])),
                "RateLimit-ResetTime": formatdate(bucket["reset"], usegmt=True)}

    def _authenticate(self, request: Request, pairs: list[tuple[str, str]]) -> tuple[Json | None, Json | None,
                                                                                   _Reply | None]:
        """(user, token, refusal) as lib/api/api_guard.rb decides them; no credential is an anonymous caller."""
        headers = request.headers
        scheme, _, bearer = headers.get("authorization", "").partition(" ")
        token = headers.get("private-token") or (bearer.strip() if scheme.lower() == "bearer" else "") or next(
            (v for k, v in pairs if k in ("private_token", "access_token")), "")
        if not token:
            return None, None, None
        state = self._token_state(token)
        if state == "unknown":
            return None, None, _message(401, "401 Unauthorized")
        if state in ("expired", "revoked"):
            text = ("Token is expired. You can either do re-authorization or token refresh." if state == "expired"
                    else "Token was revoked. You have to re-authorize from the user.")
            return None, None, _Reply(401, {"error": "invalid_token", "error_description": text}, {
                "WWW-Authenticate": f'Bearer realm="Protected by OAuth 2.0", error="invalid_token", '
                                    f'error_description="{text}"'})
        info = self._tokens[token]
        info["last_used_at"] = _when(None)
        return self.users[info["username"]], info, None

    def _api(self, request: Request, pairs: list[tuple[str, str]]) -> _Reply:
        bucket = self._limit
        if time.time() >= bucket["reset"]:
            bucket.update(remaining=bucket["limit"], reset=time.time() + 60)
        if bucket["remaining"] <= 0:
            wait = max(1, math.ceil(bucket["reset"] - time.time()))
            return _Reply(429, b"Retry later\n", {"Content-Type": "text/plain", "Retry-After": str(wait),
                                                  "RateLimit-Name": "throttle_authenticated_api",
                                                  **self._rate_headers()})
        bucket["remaining"] -= 1
        user, token, refused = self._authenticate(request, pairs)
        method = "GET" if request.method == "HEAD" else request.method
        ctx = _Ctx(method, request.path, pairs, request.body, request.headers, user, token)
        reply = refused or self._route(ctx, request.path[len("/api/v4"):] or "/")
        headers = {"Cache-Control": "max-age=0, private, must-revalidate", "Vary": "Origin",
                   "X-Request-Id": secrets.token_hex(13).upper(),
                   "X-Gitlab-Meta": json.dumps({"correlation_id": secrets.token_hex(13), "version": "1"}),
                   **self._rate_headers()}
        if method == "GET" and reply.status == 200:  # Rack::ETag + Rack::ConditionalGet
            body = reply.body if isinstance(reply.body, bytes) else _dumps(reply.body)
            etag = f'W/"{hashlib.md5(body).hexdigest()}"'
            headers["ETag"] = etag
            wanted = {t.strip() for t in request.headers.get("if-none-match", "").split(",")}
            if etag in wanted or etag.removeprefix("W/") in wanted:
                reply = _Reply(304)
        reply.headers = headers | reply.headers
        return reply

    def _route(self, ctx: _Ctx, path: str) -> _Reply:
        allowed: set[str] = set()
        for methods, pattern, handler, scopes in self._routes:
            match = pattern.fullmatch(path)
            if not match:
                continue
            if ctx.method not in methods:
                allowed |= methods
                continue
            needed = scopes if scopes is not None else (_READ if ctx.method == "GET" else _WRITE)
            if ctx.token is not None and needed and not set(needed) & set(ctx.token["scopes"]):
                return _Reply(403, {"error": "insufficient_scope", "error_description":
                                    "The request requires higher privileges than provided by the access token.",
                                    "scope": " ".join(needed)})
            answer: _Reply = handler(ctx, *(unquote(g) for g in match.groups()))
            return answer
        if allowed:
            return _Reply(405, {"error": "405 Not Allowed"}, {"Allow": ", ".join(sorted(allowed | {"OPTIONS"}))})
        return _Reply(404, {"error": "404 Not Found"})  # Grape's catch-all route

    # -- JSON shapes ---------------------------------------------------------

    def _user_basic(self, user: Json) -> Json:
        """API_Entities_UserBasic (the ``author`` of the corpus's merge request)."""
        data: Json = example("GET_api_v4_projects_{id}_merge_requests")["author"]
        del data["custom_attributes"], data["avatar_path"]  # only with_custom_attributes / only_path
        data.update(id=user["id"], username=user["username"], name=user["name"], state="active", locked=False,
                    avatar_url=None, web_url=f"{self.web_url}/{user['username']}", public_email=None)
        return data

    def _namespace_basic(self, owner_path: str) -> Json:
        data: Json = example("GET_api_v4_groups_{id}_projects")["namespace"]
        group = self.groups.get(owner_path)
        if group is not None:
            data.update(id=group["id"], name=group["name"], path=group["path"], kind="group",
                        full_path=group["full_path"], parent_id=group["parent_id"], avatar_url=None,
                        web_url=f"{self.web_url}/groups/{group['full_path']}")
        else:
            user = self.users[owner_path]
            data.update(id=user["namespace_id"], name=user["name"], path=user["username"], kind="user",
                        full_path=user["username"], parent_id=None, avatar_url=None,
                        web_url=f"{self.web_url}/{user['username']}")
        return data

    def _full_name(self, project: Json) -> str:
        group = self.groups.get(project["namespace"])
        names = [g["name"] for g in reversed(self._ancestors(group))] if group else [
            self.users[project["namespace"]]["name"]]
        return " / ".join([*names, project["name"]])

    def _project_json(self, project: Json, ctx: _Ctx, *, simple: bool = False, access: bool = False) -> Json:
        full, level = self.full_path(project), self._project_level(ctx.user, project)
        host = urlsplit(self.web_url).hostname
        common = {"id": project["id"], "description": project["description"], "name": project["name"],
                  "name_with_namespace": self._full_name(project), "path": project["path"],
                  "path_with_namespace": full, "created_at": _iso(project["created_at"]),
                  "default_branch": project["default_branch"], "tag_list": [], "topics": [],
                  "ssh_url_to_repo": f"git@{host}:{full}.git", "http_url_to_repo": f"{self.web_url}/{full}.git",
                  "web_url": f"{self.web_url}/{full}", "readme_url": None, "forks_count": 0, "avatar_url": None,
                  "star_count": 0, "last_activity_at": _iso(project["last_activity_at"]),
                  "visibility": project["visibility"], "namespace": self._namespace_basic(project["namespace"]),
                  "repository_storage": "default"}
        if simple:
            data = example("GET_api_v4_projects")
            for conditional in ("license", "custom_attributes", "forked_from_project", "license_url"):
                data.pop(conditional, None)
            data = _placeholders_to_null(data) | {k: v for k, v in common.items() if k in data}
            return data | ({"license_url": None, "license": None} if ctx.q("license") == "true" else {})
        data = example("GET_api_v4_groups_{id}_projects")
        for conditional in ("forked_from_project", "license", "license_url", "statistics", "custom_attributes"):
            data.pop(conditional)  # exposed only for forks / with license= / statistics= / with_custom_attributes=
        if project["namespace"] in self.groups:
            del data["owner"]  # Project entity: owner unless the project is in a group
        else:
            data["owner"] = self._user_basic(self.users[project["namespace"]])
        if level < MAINTAINER:
            del data["runners_token"]
        data = _placeholders_to_null(data)
        api = f"{self.api_url}/projects/{project['id']}"
        mr_level = "enabled" if project["merge_requests_enabled"] else "disabled"
        data.update(common, container_registry_image_prefix=f"registry.{host}/{full}",
                    _links={"self": api, "issues": f"{api}/issues", "merge_requests": f"{api}/merge_requests",
                            "repo_branches": f"{api}/repository/branches", "labels": f"{api}/labels",
                            "events": f"{api}/events", "members": f"{api}/members",
                            "cluster_agents": f"{api}/cluster_agents"},
                    marked_for_deletion_at=None, marked_for_deletion_on=None, packages_enabled=True, empty_repo=False,
                    archived=project["archived"], container_expiration_policy={
                        "cadence": "1d", "enabled": False, "keep_n": 10, "older_than": "90d", "name_regex": ".*",
                        "name_regex_keep": None, "next_run_at": _iso(project["created_at"] + timedelta(days=1))},
                    issues_enabled=True, merge_requests_enabled=project["merge_requests_enabled"], wiki_enabled=True,
                    jobs_enabled=True, snippets_enabled=True, container_registry_enabled=True,
                    service_desk_enabled=False, service_desk_address=None,
                    can_create_merge_request_in=level >= DEVELOPER, merge_requests_access_level=mr_level,
                    emails_disabled=False, emails_enabled=True, shared_runners_enabled=True, lfs_enabled=True,
                    creator_id=self.users[project["namespace"]]["id"] if project["namespace"] in self.users
                    else None, import_url=None,
                    import_type=None, import_status="none", import_error=None, open_issues_count=0,
                    description_html="", updated_at=_iso(project["last_activity_at"]), shared_with_groups=[],
                    ci_id_token_sub_claim_components=["project_path", "ref_type", "ref"],
                    ci_pipeline_variables_minimum_override_role="developer", merge_request_title_regex=None,
                    merge_request_title_regex_description=None, suggestion_commit_message=None,
                    merge_commit_template=None, squash_commit_template=None, issue_branch_template=None,
                    ci_config_path=None, compliance_frameworks=[], approvals_before_merge=0, mirror=False,
                    requirements_enabled=False, security_and_compliance_enabled=False)
        if ctx.q("license") == "true":
            data |= {"license_url": None, "license": None}  # no licence file detected in the repository
        if access:  # API_Entities_ProjectWithAccess (GET /projects/:id)
            own = project["members"].get(ctx.user["username"].lower()) if ctx.user else None
            inherited = max((g["members"].get(ctx.user["username"].lower(), 0)
                             for g in self._ancestors(self.groups.get(project["namespace"]))), default=0) \
                if ctx.user else 0
            data["permissions"] = {
                "project_access": {"access_level": own, "notification_level": 3} if own else None,
                "group_access": {"access_level": inherited, "notification_level": 3} if inherited else None}
        return data

    def _group_json(self, group: Json, ctx: _Ctx) -> Json:
        data = _placeholders_to_null(example("GET_api_v4_groups_{id}"))
        for conditional in ("custom_attributes", "statistics", "root_storage_statistics"):
            data.pop(conditional)
        if self._group_level(ctx.user, group) < OWNER:
            data.pop("runners_token")
        names = [g["name"] for g in reversed(self._ancestors(group))]
        projects = [p for p in self.projects.values() if p["namespace"] == group["full_path"].lower()
                    and self._sees_project(ctx.user, p)] if ctx.q("with_projects", "true") != "false" else []
        data.update(id=group["id"], web_url=f"{self.web_url}/groups/{group['full_path']}", name=group["name"],
                    path=group["path"], description=group["description"], visibility=group["visibility"],
                    share_with_group_lock=False, require_two_factor_authentication=False, two_factor_grace_period=48,
                    project_creation_level="developer", subgroup_creation_level="maintainer",
                    mentions_disabled=None, lfs_enabled=True, default_branch=None, default_branch_protection=2,
                    default_branch_protection_defaults={}, request_access_enabled=True,
                    full_name=" / ".join(names), full_path=group["full_path"], created_at=_iso(group["created_at"]),
                    parent_id=group["parent_id"], organization_id=1, shared_runners_setting="enabled",
                    ldap_group_links=[], saml_group_links=[], wiki_access_level="enabled",
                    repository_storage="default", allow_personal_snippets=True, shared_with_groups=[],
                    enabled_git_access_protocol="all", prevent_sharing_groups_outside_hierarchy=False,
                    projects=[self._project_json(p, ctx) for p in projects[:100]], shared_projects=[],
                    ip_restriction_ranges=None, membership_lock=False, prevent_forking_outside_group=None)
        return data

    def _mr_json(self, project: Json, mr: Json, ctx: _Ctx, *, detail: bool) -> Json:
        data = _placeholders_to_null(example("GET_api_v4_projects_{id}_merge_requests"))
        if ctx.q("render_html") != "true":
            data.pop("title_html")
            data.pop("description_html")
        full, iid, author = self.full_path(project), mr["iid"], self.users[mr["author"]]
        is_open, merged = mr["state"] == "opened", mr["state"] == "merged"
        data.update(id=mr["id"], iid=iid, project_id=project["id"], title=mr["title"], description=mr["description"],
                    state=mr["state"], created_at=_iso(mr["created_at"]), updated_at=_iso(mr["updated_at"]),
                    merged_by=self._user_basic(author) if merged else None,
                    merge_user=self._user_basic(author) if merged else None, merged_at=_iso(mr["merged_at"]),
                    closed_by=self._user_basic(author) if mr["state"] == "closed" else None,
                    closed_at=_iso(mr["closed_at"]), target_branch=mr["target_branch"],
                    source_branch=mr["source_branch"], user_notes_count=mr["user_notes_count"], upvotes=0,
                    downvotes=0, author=self._user_basic(author), assignees=[], assignee=None,
                    reviewers=[self._user_basic(self.users[r]) for r in mr["reviewers"]],
                    source_project_id=project["id"], target_project_id=project["id"], labels=[],
                    draft=bool(_DRAFT.match(mr["title"])), imported=False, imported_from="none",
                    work_in_progress=bool(_DRAFT.match(mr["title"])), milestone=None,
                    merge_when_pipeline_succeeds=False, merge_status="can_be_merged" if is_open else "unchecked",
                    detailed_merge_status="mergeable" if is_open else "not_open", merge_after=None, sha=mr["sha"],
                    merge_commit_sha=_fake_sha("merge", mr["id"]) if merged else None, squash_commit_sha=None,
                    discussion_locked=None, should_remove_source_branch=None, force_remove_source_branch=True,
                    prepared_at=_iso(mr["created_at"]), allow_collaboration=False, allow_maintainer_to_push=False,
                    reference=f"!{iid}", references={"short": f"!{iid}", "relative": f"!{iid}",
                                                     "full": f"{full}!{iid}"},
                    web_url=f"{self.web_url}/{full}/-/merge_requests/{iid}",
                    time_stats={"time_estimate": 0, "total_time_spent": 0, "human_time_estimate": None,
                                "human_total_time_spent": None},
                    squash=False, squash_on_merge=False, task_completion_status={"count": 0, "completed_count": 0},
                    has_conflicts=False, blocking_discussions_resolved=True, approvals_before_merge=None)
        if detail:  # API_Entities_MergeRequest adds these (merge_requests.md, "Get single MR")
            base = _fake_sha("base", mr["id"])
            data.update(subscribed=False, changes_count="1", latest_build_started_at=None,
                        latest_build_finished_at=None, first_deployed_to_production_at=None, pipeline=None,
                        head_pipeline=None, diff_refs={"base_sha": base, "head_sha": mr["sha"], "start_sha": base},
                        merge_error=None, first_contribution=False,
                        user={"can_merge": self._project_level(ctx.user, project) >= DEVELOPER})
            if ctx.q("include_diverged_commits_count") == "true":
                data["diverged_commits_count"] = 0
            if ctx.q("include_rebase_in_progress") == "true":
                data["rebase_in_progress"] = False
        return data

    def _hook_json(self, hook: Json, *, group: bool) -> Json:
        """ProjectHook / GroupHook entity (project_webhooks.md, group_webhooks.md); ``token`` is write-only."""
        data = {"id": hook["id"], "url": hook["url"], "name": hook["name"], "description": hook["description"],
                "created_at": _iso(hook["created_at"]),
                **{k: hook[k] for k in ("push_events", "tag_push_events", "merge_requests_events",
                                        "repository_update_events", "enable_ssl_verification")},
                "alert_status": "executable", "disabled_until": None, "url_variables": [],
                "push_events_branch_filter": hook["push_events_branch_filter"],
                "branch_filter_strategy": hook["branch_filter_strategy"], "custom_webhook_template": "",
                "custom_headers": []}
        data["group_id" if group else "project_id"] = hook["owner_id"]
        for name in _HOOK_EVENTS + (_GROUP_HOOK_EVENTS if group else ()):
            data[name] = hook[name]
        return data

    # -- pagination ------------------------------------------------------------

    def _paginate(self, ctx: _Ctx, items: list[Any]) -> tuple[list[Any], dict[str, str]]:
        """Offset pagination: ``page``, ``per_page`` (default 20, max 100), the X-* headers and ``Link``."""
        per_page = min(100, max(1, _int(ctx.q("per_page"), 20)))
        pages = max(1, math.ceil(len(items) / per_page))
        page = max(1, _int(ctx.q("page"), 1))
        query = [(k, v) for k, v in ctx.query if k not in ("page", "per_page")]

        def link(number: int, rel: str) -> str:
            params = urlencode([*query, ("page", str(number)), ("per_page", str(per_page))])
            return f'<{self.web_url}{ctx.path}?{params}>; rel="{rel}"'

        links = [link(page - 1, "prev")] if 1 < page <= pages else []
        links += [link(page + 1, "next")] if page < pages else []
        links += [link(1, "first"), link(pages, "last")]
        headers = {"X-Page": str(page), "X-Per-Page": str(per_page), "X-Total": str(len(items)),
                   "X-Total-Pages": str(pages), "X-Next-Page": str(page + 1) if page < pages else "",
                   "X-Prev-Page": str(page - 1) if 1 < page <= pages else "", "Link": ", ".join(links)}
        return items[(page - 1) * per_page:page * per_page], headers

    def _keyset(self, ctx: _Ctx, items: list[Json]) -> tuple[list[Json], dict[str, str]] | _Reply:
        """Keyset pagination (``pagination=keyset&order_by=id``): only a ``Link: <…id_after=N>; rel="next"``."""
        if ctx.q("order_by") != "id":
            return _Reply(405, {"error": "Keyset pagination is not yet available for this type of request"})
        per_page = min(100, max(1, _int(ctx.q("per_page"), 20)))
        descending = ctx.q("sort", "desc") == "desc"
        rows = sorted(items, key=lambda p: p["id"], reverse=descending)
        after, before = _int(ctx.q("id_after"), 0), _int(ctx.q("id_before"), 0)
        rows = [p for p in rows if (not after or p["id"] > after) and (not before or p["id"] < before)]
        page, headers = rows[:per_page], {}
        if len(rows) > per_page:
            query = [(k, v) for k, v in ctx.query if k not in ("id_after", "id_before")]
            cursor = ("id_before" if descending else "id_after", str(page[-1]["id"]))
            headers["Link"] = f'<{self.web_url}{ctx.path}?{urlencode([*query, cursor])}>; rel="next"'
        return page, headers

    # -- API handlers --------------------------------------------------------

    def _need_user(self, ctx: _Ctx) -> _Reply | None:
        return None if ctx.user is not None else _message(401, "401 Unauthorized")

    def _version(self, ctx: _Ctx) -> _Reply:
        """version.md: ``{"version", "revision", "kas", "enterprise"}``; needs a signed-in caller."""
        if refused := self._need_user(ctx):
            return refused
        return _Reply(200, {"version": self.version, "revision": self.revision,
                            "kas": {"enabled": False, "externalUrl": None, "externalK8sProxyUrl": None,
                                    "version": None},
                            "enterprise": self.version.endswith("-ee")})

    def _user(self, ctx: _Ctx) -> _Reply:
        """users.md "Get the current user": UserBasic plus the private profile (a bot for group/project tokens)."""
        if refused := self._need_user(ctx):
            return refused
        assert ctx.user is not None
        user, created = ctx.user, _iso(ctx.user["created_at"])
        return _Reply(200, self._user_basic(user) | {
            "created_at": created, "bio": "", "location": "", "linkedin": "", "twitter": "", "discord": "",
            "website_url": "", "organization": "", "job_title": "", "pronouns": None, "bot": user["bot"],
            "work_information": None, "local_time": None, "last_sign_in_at": created, "confirmed_at": created,
            "last_activity_on": created[:10] if created else None, "email": user["email"], "theme_id": 1,
            "color_scheme_id": 1, "projects_limit": 100000, "current_sign_in_at": created, "identities": [],
            "can_create_group": not user["bot"], "can_create_project": not user["bot"], "two_factor_enabled": False,
            "external": False, "private_profile": False, "commit_email": user["email"]})

    def _token_self(self, ctx: _Ctx) -> _Reply:
        """personal_access_tokens.md "Get single personal access token" with ``self`` (group/project tokens too)."""
        if ctx.token is None:
            return _message(401, "401 Unauthorized")
        if ctx.token["oauth"] is not None:
            return _not_found()  # an OAuth token is no personal access token
        info, expires = ctx.token, ctx.token["expires_at"]
        if isinstance(expires, datetime):
            expires = expires.date()
        return _Reply(200, {"id": info["id"], "name": info["name"], "revoked": info["revoked"],
                            "created_at": _iso(info["created_at"]), "description": None,
                            "scopes": list(info["scopes"]), "user_id": ctx.user["id"] if ctx.user else None,
                            "last_used_at": _iso(info["last_used_at"]), "active": True,
                            "expires_at": str(expires) if expires else None})

    def _users(self, ctx: _Ctx) -> _Reply:
        wanted = ctx.q("username").lower()
        users = [u for k, u in self.users.items() if not wanted or k == wanted]
        page, headers = self._paginate(ctx, sorted(users, key=lambda u: -u["id"]))
        return _Reply(200, [self._user_basic(u) for u in page], headers)

    def _user_projects(self, ctx: _Ctx, ident: str) -> _Reply:
        user = next((u for u in self.users.values() if str(u["id"]) == ident), None) or self.users.get(ident.lower())
        if user is None:
            return _not_found("User")
        projects = [p for p in self.projects.values()
                    if p["namespace"] == user["username"].lower() and self._sees_project(ctx.user, p)]
        return self._project_list(ctx, projects)

    def _namespace(self, ctx: _Ctx, ident: str) -> _Reply:
        """namespaces.md "Get details on a namespace": NamespaceBasic plus the EE plan fields."""
        if refused := self._need_user(ctx):
            return refused
        group = self._group_by(ident)
        user = None if group else next((u for u in self.users.values() if str(u["namespace_id"]) == ident),
                                       None) or self.users.get(ident.lower())
        if group is not None and self._group_level(ctx.user, group) >= GUEST:
            data = self._namespace_basic(group["full_path"].lower())
            members = {n for g in self.groups.values() if g["full_path"].lower() == group["full_path"].lower()
                       or g["full_path"].lower().startswith(group["full_path"].lower() + "/") for n in g["members"]}
            count = len(members)
        elif user is not None and ctx.user is not None and user["id"] == ctx.user["id"]:
            data, count = self._namespace_basic(user["username"].lower()), 1
        else:
            return _not_found("Namespace")
        plan = "premium" if self.tier == "premium" else "free"
        return _Reply(200, data | {"members_count_with_descendants": count, "root_repository_size": 0,
                                   "projects_count": 0, "billable_members_count": count, "max_seats_used": count,
                                   "seats_in_use": count, "plan": plan, "end_date": None, "trial_ends_on": None,
                                   "trial": False})

    def _group(self, ctx: _Ctx, ident: str) -> _Reply:
        group = self._group_by(ident)
        if group is None or not self._sees_group(ctx.user, group):
            return _not_found("Group")
        return _Reply(200, self._group_json(group, ctx))

    def _project_list(self, ctx: _Ctx, projects: list[Json]) -> _Reply:
        """Filters, order and pagination shared by the project lists (groups.md, projects.md)."""
        if ctx.q("archived"):
            projects = [p for p in projects if p["archived"] == _truthy(ctx.q("archived"))]
        if ctx.q("visibility"):
            projects = [p for p in projects if p["visibility"] == ctx.q("visibility")]
        if ctx.q("search"):
            projects = [p for p in projects if ctx.q("search").lower() in (p["name"] + p["path"]).lower()]
        if _truthy(ctx.q("owned", "false")):
            projects = [p for p in projects if self._project_level(ctx.user, p) >= OWNER]
        if ctx.q("min_access_level"):
            projects = [p for p in projects if self._project_level(ctx.user, p) >= _int(ctx.q("min_access_level"), 0)]
        simple = _truthy(ctx.q("simple", "false"))
        if ctx.q("pagination") == "keyset":
            keyed = self._keyset(ctx, projects)
            if isinstance(keyed, _Reply):
                return keyed
            page, headers = keyed
        else:
            keys: dict[str, Callable[[Json], Any]] = {
                "id": lambda p: p["id"], "name": lambda p: p["name"].lower(), "path": lambda p: p["path"].lower(),
                "created_at": lambda p: p["created_at"], "updated_at": lambda p: p["last_activity_at"],
                "last_activity_at": lambda p: p["last_activity_at"]}
            key = keys.get(ctx.q("order_by"), keys["created_at"])
            rows = sorted(projects, key=lambda p: (key(p), p["id"]), reverse=ctx.q("sort", "desc") != "asc")
            page, headers = self._paginate(ctx, rows)
        return _Reply(200, [self._project_json(p, ctx, simple=simple) for p in page], headers)

    def _group_projects(self, ctx: _Ctx, ident: str) -> _Reply:
        group = self._group_by(ident)
        if group is None or not self._sees_group(ctx.user, group):
            return _not_found("Group")
        key = group["full_path"].lower()
        subgroups = _truthy(ctx.q("include_subgroups", "false"))
        projects = [p for p in self.projects.values() if self._sees_project(ctx.user, p) and (
            p["namespace"] == key or (subgroups and p["namespace"].startswith(key + "/")))]
        return self._project_list(ctx, projects)  # with_shared: sharing is not modelled, nothing to add

    def _visible_project(self, ctx: _Ctx, ident: str) -> Json | _Reply:
        project = self._project_by_path(ident)
        if project is None or not self._sees_project(ctx.user, project):
            return _not_found("Project")
        return project

    def _project(self, ctx: _Ctx, ident: str) -> _Reply:
        project = self._visible_project(ctx, ident)
        if isinstance(project, _Reply):
            return project
        return _Reply(200, self._project_json(project, ctx, access=True))

    def _project_hooks(self, ctx: _Ctx, ident: str, hook_id: str | None = None) -> _Reply:
        project = self._visible_project(ctx, ident)
        if isinstance(project, _Reply):
            return project
        if ctx.user is None:
            return _message(401, "401 Unauthorized")
        if project["hooks_denied"] or self._project_level(ctx.user, project) < MAINTAINER:
            return _forbidden()  # authorize_admin_project
        return self._hooks(ctx, project["hooks"], project["id"], hook_id, group=False)

    def _group_hooks(self, ctx: _Ctx, ident: str, hook_id: str | None = None) -> _Reply:
        if self.tier != "premium":
            return _Reply(404, {"error": "404 Not Found"})  # no such route on Free (group webhooks are Premium)
        group = self._group_by(ident)
        if group is None or not self._sees_group(ctx.user, group):
            return _not_found("Group")
        if ctx.user is None:
            return _message(401, "401 Unauthorized")
        if group["hooks_denied"] or self._group_level(ctx.user, group) < OWNER:
            return _forbidden()
        return self._hooks(ctx, group["hooks"], group["id"], hook_id, group=True)

    def _hooks(self, ctx: _Ctx, hooks: list[Json], owner_id: int, hook_id: str | None, *, group: bool) -> _Reply:
        if hook_id is None and ctx.method == "GET":
            page, headers = self._paginate(ctx, hooks)
            return _Reply(200, [self._hook_json(h, group=group) for h in page], headers)
        try:
            params = ctx.form()
        except ValueError:
            return _message(400, "400 Bad request")
        if hook_id is None:  # POST
            if not params.get("url"):
                return _Reply(400, {"error": "url is missing"})
            hook = {"id": next(self._ids), "owner_id": owner_id, "created_at": _when(None), "url": "",
                    "name": None, "description": None, "token": None, "push_events": True,
                    "push_events_branch_filter": None, "branch_filter_strategy": "wildcard",
                    "enable_ssl_verification": True, **dict.fromkeys(_HOOK_BOOLEANS, False)}
            if group:
                hook |= dict.fromkeys(_GROUP_HOOK_EVENTS, False)
            refused = self._apply_hook(hook, params)
            if refused:
                return refused
            hooks.append(hook)
            return _Reply(201, self._hook_json(hook, group=group))
        found = next((h for h in hooks if h["id"] == int(hook_id)), None)
        if found is None:
            return _not_found()
        if ctx.method == "DELETE":
            hooks.remove(found)
            return _Reply(204)
        if ctx.method == "PUT":
            changed = dict(found)
            if refused := self._apply_hook(changed, params):
                return refused
            found.update(changed)
        return _Reply(200, self._hook_json(found, group=group))

    def _apply_hook(self, hook: Json, params: Json) -> _Reply | None:
        for name in ("url", "name", "description", "token", "push_events_branch_filter", "branch_filter_strategy"):
            if name in params:
                hook[name] = params[name]
        for name in (*_HOOK_BOOLEANS, *_GROUP_HOOK_EVENTS, "push_events", "enable_ssl_verification"):
            if name in params and name in hook:
                value = params[name]
                hook[name] = value if isinstance(value, bool) else _truthy(str(value))
        target = urlsplit(str(hook["url"]))
        if target.scheme not in ("http", "https") or not target.hostname:
            return _message(422, {"url": ["is blocked: Only allowed schemes are http, https"]})
        if not self.allow_local_hooks and target.hostname in ("127.0.0.1", "localhost", "::1"):
            return _message(422, {"url": ["is blocked: Requests to localhost are not allowed"]})
        return None

    def _mr_project(self, ctx: _Ctx, ident: str) -> Json | _Reply:
        project = self._visible_project(ctx, ident)
        if isinstance(project, _Reply):
            return project
        if not project["merge_requests_enabled"]:
            return _forbidden()  # authorize! :read_merge_request fails when the feature is disabled
        return project

    def _merge_requests(self, ctx: _Ctx, ident: str) -> _Reply:
        project = self._mr_project(ctx, ident)
        if isinstance(project, _Reply):
            return project
        state = ctx.q("state", "all")
        mrs = [m for m in project["mrs"].values() if state in ("all", m["state"])]
        for name in ("updated_after", "updated_before", "created_after", "created_before"):
            if ctx.q(name):  # "on or after" / "on or before" (merge_requests.md)
                bound, stamp = _when(ctx.q(name)), name.split("_")[0] + "_at"
                mrs = [m for m in mrs if (m[stamp] >= bound if name.endswith("after") else m[stamp] <= bound)]
        iids = {int(v) for k, v in ctx.query if k in ("iids[]", "iids") and v.isdigit()}
        if iids:
            mrs = [m for m in mrs if m["iid"] in iids]
        keys: dict[str, Callable[[Json], Any]] = {
            "created_at": lambda m: m["created_at"], "updated_at": lambda m: m["updated_at"],
            "title": lambda m: m["title"].lower(),
            "merged_at": lambda m: m["merged_at"] or datetime.min.replace(tzinfo=UTC)}
        key = keys.get(ctx.q("order_by"), keys["created_at"])
        rows = sorted(mrs, key=lambda m: (key(m), m["id"]), reverse=ctx.q("sort", "desc") != "asc")
        page, headers = self._paginate(ctx, rows)
        return _Reply(200, [self._mr_json(project, m, ctx, detail=False) for m in page], headers)

    def _merge_request(self, ctx: _Ctx, ident: str, iid: str) -> _Reply:
        project = self._mr_project(ctx, ident)
        if isinstance(project, _Reply):
            return project
        mr = project["mrs"].get(int(iid))
        return _Reply(200, self._mr_json(project, mr, ctx, detail=True)) if mr else _not_found()

    def _approvals(self, ctx: _Ctx, ident: str, iid: str) -> _Reply:
        """merge_request_approvals.md "Get approval state" (Free shape; Premium adds the rule fields)."""
        project = self._mr_project(ctx, ident)
        if isinstance(project, _Reply):
            return project
        mr = project["mrs"].get(int(iid))
        if mr is None:
            return _not_found()
        me = ctx.user["username"].lower() if ctx.user else None
        data = {"id": mr["id"], "iid": mr["iid"], "project_id": project["id"], "title": mr["title"],
                "description": mr["description"], "state": mr["state"], "created_at": _iso(mr["created_at"]),
                "updated_at": _iso(mr["updated_at"]),
                "merge_status": "can_be_merged" if mr["state"] == "opened" else "unchecked",
                "approved": bool(mr["approved_by"]),
                "approved_by": [{"user": self._user_basic(self.users[n])} for n in mr["approved_by"]],
                "user_has_approved": me in mr["approved_by"],
                "user_can_approve": me is not None and me not in mr["approved_by"]
                and self._project_level(ctx.user, project) >= DEVELOPER}
        if self.tier == "premium":
            data |= {"approvals_required": 0, "approvals_left": 0, "require_password_to_approve": False,
                     "suggested_approvers": [], "approvers": [], "approver_groups": [], "approval_rules_left": [],
                     "has_approval_rules": False, "merge_request_approvers_available": True,
                     "multiple_approval_rules_available": True, "invalid_approvers_rules": []}
        return _Reply(200, data)

    # -- the web side: OAuth 2 (Doorkeeper) ------------------------------------

    def _web(self, request: Request, pairs: list[tuple[str, str]]) -> _Reply:
        routes: dict[tuple[str, str], Callable[[Request, Json], _Reply]] = {
            ("GET", "/oauth/authorize"): self._authorize, ("POST", "/oauth/token"): self._oauth_token,
            ("GET", "/oauth/token/info"): self._token_info, ("POST", "/oauth/revoke"): self._revoke}
        handler = routes.get((request.method, request.path))
        if handler is None:
            return _html(404, "<h1>404</h1><p>Page Not Found</p>")
        params = dict(pairs)
        if request.method == "POST":
            if "json" in request.headers.get("content-type", ""):
                data = json.loads(request.body or b"{}")
                params |= {k: str(v) for k, v in data.items()} if isinstance(data, dict) else {}
            else:
                params |= dict(parse_qsl(request.body.decode(), keep_blank_values=True))
        return handler(request, params)

    def _authorize(self, request: Request, query: Json) -> _Reply:
        app = self._oauth_apps.get(query.get("client_id", ""))
        if app is None:
            return _html(400, f"<h1>An error has occurred</h1><p>{_INVALID_CLIENT}</p>")
        redirect = query.get("redirect_uri", "")
        if redirect not in app["redirect_uris"]:
            return _html(400, "<h1>An error has occurred</h1><p>The redirect URI included is not valid.</p>")
        state = {"state": query["state"]} if "state" in query else {}
        if query.get("response_type") != "code":
            return _redirect(redirect, {"error": "unsupported_response_type", "error_description":
                                        "The authorization server does not support this response type."} | state)
        scopes = query.get("scope", "api").split() or ["api"]
        if not set(scopes) <= set(app["scopes"]):
            return _redirect(redirect, {"error": "invalid_scope", "error_description":
                                        "The requested scope is invalid, unknown, or malformed."} | state)
        method = query.get("code_challenge_method", "plain" if query.get("code_challenge") else "")
        if method not in ("", "plain", "S256"):
            return _redirect(redirect, {"error": "invalid_request", "error_description":
                                        "The code challenge method must be plain or S256."} | state)
        if self.oauth_user is None:
            return _Reply(302, b"", {"Location": f"{self.web_url}/users/sign_in"})
        code = secrets.token_hex(32)
        self._codes[code] = {"client_id": query["client_id"], "redirect_uri": redirect, "scopes": scopes,
                             "challenge": query.get("code_challenge"), "method": method or "plain",
                             "username": self._user_named(self.oauth_user)["username"].lower(),
                             "expires": time.time() + 600}
        return _redirect(redirect, {"code": code} | state)

    def _oauth_token(self, request: Request, params: Json) -> _Reply:
        grant = params.get("grant_type", "")
        self.token_requests[grant] += 1
        scheme, _, credential = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "basic":
            client_id, _, secret = base64.b64decode(credential).decode().partition(":")
            params = {"client_id": unquote(client_id), "client_secret": unquote(secret)} | params
        app = self._oauth_apps.get(params.get("client_id", ""))
        secret_needed = app is not None and (app["confidential"] or bool(params.get("client_secret")))
        if app is None or (secret_needed and params.get("client_secret") != app["secret"]):
            return _oauth_error(401, "invalid_client", _INVALID_CLIENT)
        if grant == "authorization_code":
            for name in ("code", "redirect_uri"):
                if not params.get(name):
                    return _oauth_error(400, "invalid_request", f"Missing required parameter: {name}.")
            code = self._codes.pop(params["code"], None)  # single use, whatever happens next
            if (code is None or code["expires"] < time.time() or code["client_id"] != params["client_id"]
                    or code["redirect_uri"] != params["redirect_uri"]):
                return _oauth_error(400, "invalid_grant", _INVALID_GRANT)
            if code["challenge"] and not params.get("code_verifier"):
                return _oauth_error(400, "invalid_request", "Missing required parameter: code_verifier.")
            if code["challenge"] and not _pkce_ok(code, params["code_verifier"]):
                return _oauth_error(400, "invalid_grant", _INVALID_GRANT)
            return self._issue(params["client_id"], code["username"], code["scopes"])
        if grant == "refresh_token":
            if not params.get("refresh_token"):
                return _oauth_error(400, "invalid_request", "Missing required parameter: refresh_token.")
            old = self._refresh.get(params["refresh_token"])
            info = self._tokens.get(old or "")
            if info is None or info["revoked"] or info["oauth"]["client_id"] != params["client_id"]:
                return _oauth_error(400, "invalid_grant", _INVALID_GRANT)
            info["revoked"] = True  # rotation: the old access/refresh pair is revoked once used
            del self._refresh[params["refresh_token"]]
            return self._issue(params["client_id"], info["username"], info["scopes"])
        return _oauth_error(400, "unsupported_grant_type",
                            "The authorization grant type is not supported by the authorization server.")

    def _issue(self, client_id: str, username: str, scopes: list[str]) -> _Reply:
        access, refresh, created = secrets.token_hex(32), secrets.token_hex(32), int(time.time())
        self._tokens[access] = {"id": next(self._ids), "kind": "oauth", "username": username, "name": client_id,
                                "scopes": list(scopes), "expires_at": datetime.fromtimestamp(created + 7200, UTC),
                                "revoked": False, "resource": None, "created_at": _when(None), "last_used_at": None,
                                "oauth": {"client_id": client_id, "created": created, "refresh": refresh}}
        self._refresh[refresh] = access
        return _Reply(200, {"access_token": access, "token_type": "Bearer", "expires_in": 7200,
                            "refresh_token": refresh, "scope": " ".join(scopes), "created_at": created},
                      {"Cache-Control": "no-store", "Pragma": "no-cache"})

    def _token_info(self, request: Request, params: Json) -> _Reply:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        token = token.strip() if scheme.lower() == "bearer" else params.get("access_token", "")
        info = self._tokens.get(token)
        if info is None or info["oauth"] is None or self._token_state(token) != "ok":
            return _Reply(401, {"error": "invalid_token", "error_description": "The access token is invalid",
                                "state": "unauthorized"})
        left = max(0, int(info["expires_at"].timestamp() - time.time()))
        return _Reply(200, {"resource_owner_id": self.users[info["username"]]["id"], "scope": list(info["scopes"]),
                            "expires_in": left, "application": {"uid": info["oauth"]["client_id"]},
                            "created_at": info["oauth"]["created"], "scopes": list(info["scopes"]),
                            "expires_in_seconds": left})

    def _revoke(self, request: Request, params: Json) -> _Reply:
        token = params.get("token", "")
        access = self._refresh.get(token, token)
        if access in self._tokens and self._tokens[access]["oauth"] is not None:
            self._tokens[access]["revoked"] = True
        return _Reply(200, {})  # RFC 7009: 200 whether or not the token existed

    # -- git over HTTP -----------------------------------------------------------

    def _git_app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """GitLab's git access check, then ``git http-backend``: Basic auth with any non-empty user name and a
        token as password (``oauth2:<oauth token>`` too); anonymous reads of public projects."""
        path, query = str(environ["PATH_INFO"]), str(environ.get("QUERY_STRING", ""))
        match = _GIT_PATH.match(path)
        assert match is not None and self._git_root is not None
        push = match.group(2) == "git-receive-pack" or "service=git-receive-pack" in query
        scheme, _, credential = str(environ.get("HTTP_AUTHORIZATION") or "").partition(" ")
        login, password = _basic(credential) if scheme.lower() == "basic" else ("", "")
        with self.lock:
            self.git_requests.append((str(environ["REQUEST_METHOD"]), path, login or None))
            project = self._project_by_path(match.group(1))
            user, info = None, self._tokens.get(password)
            if login and password:
                if info is None or self._token_state(password) != "ok" or not set(info["scopes"]) & set(
                        _GIT_WRITE if push else _GIT_READ):
                    return _git_refusal(start_response, 401)
                user = self.users[info["username"]]
            if project is None or not self._sees_project(user, project):
                return _git_refusal(start_response, 401 if user is None else 404)
            if push and self._project_level(user, project) < DEVELOPER:
                return _git_refusal(start_response, 401 if user is None else 403)
            canonical = f"/{self.full_path(project)}.git/{match.group(2)}"
        length = int(str(environ.get("CONTENT_LENGTH") or 0))
        body = environ["wsgi.input"].read(length) if length else b""
        cgi = {k: str(v) for k, v in environ.items() if k.startswith("HTTP_") and k != "HTTP_AUTHORIZATION"}
        cgi.update(GIT_PROJECT_ROOT=str(self._git_root), GIT_HTTP_EXPORT_ALL="1", PATH_INFO=canonical,
                   REQUEST_METHOD=str(environ["REQUEST_METHOD"]), QUERY_STRING=query,
                   CONTENT_TYPE=str(environ.get("CONTENT_TYPE", "")), CONTENT_LENGTH=str(len(body)),
                   REMOTE_USER=login or "anonymous", REMOTE_ADDR="127.0.0.1", PATH=os.environ["PATH"])
        if "HTTP_GIT_PROTOCOL" in cgi:
            cgi["GIT_PROTOCOL"] = cgi["HTTP_GIT_PROTOCOL"]
        done = subprocess.run(["git", "http-backend"], input=body, env=cgi, capture_output=True, timeout=120)
        head, _, payload = done.stdout.partition(b"\r\n\r\n")
        status, headers = "200 OK", []
        for line in head.decode().split("\r\n"):
            name, _, value = line.partition(": ")
            if name.lower() == "status":
                status = value
            elif name:
                headers.append((name, value))
        start_response(status, headers)
        return [payload]

    def _serve_git(self, handler: BaseHTTPRequestHandler, path: str, query: str, body: bytes) -> None:
        """Smart HTTP on the instance's origin: the request handed to ``git_backend`` as WSGI, its answer back."""
        assert self.git_backend is not None
        environ: dict[str, Any] = {
            "REQUEST_METHOD": handler.command, "PATH_INFO": unquote(path), "QUERY_STRING": query,
            "CONTENT_TYPE": handler.headers.get("Content-Type", ""), "CONTENT_LENGTH": str(len(body)),
            "wsgi.input": io.BytesIO(body)}
        environ.update({f"HTTP_{name.upper().replace('-', '_')}": value for name, value in handler.headers.items()
                        if name.lower() not in ("content-type", "content-length", "transfer-encoding")})
        answer: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]]) -> None:
            answer.update(status=status, headers=headers)

        try:
            payload = b"".join(self.git_backend(environ, start_response))
        except Exception:
            self.errors.append(traceback.format_exc())
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
            payload = b"stub error\n"
        code, _, phrase = answer["status"].partition(" ")
        handler.send_response(int(code), phrase)
        for name, value in answer["headers"]:
            if name.lower() not in ("content-length", "transfer-encoding"):
                handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(payload)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that hangs up or fails the TLS handshake is no stub failure


_HOOK_EVENTS = ("issues_events", "confidential_issues_events", "note_events", "confidential_note_events",
                "pipeline_events", "wiki_page_events", "deployment_events", "feature_flag_events", "job_events",
                "releases_events", "emoji_events", "resource_access_token_events")
_HOOK_BOOLEANS = ("tag_push_events", "merge_requests_events", "repository_update_events", *_HOOK_EVENTS)
_GROUP_HOOK_EVENTS = ("subgroup_events", "member_events")


def _uuid4() -> uuid.UUID:
    return uuid.uuid4()


def _set_draft(mr: Json, draft: bool) -> None:
    bare = _DRAFT.sub("", mr["title"], count=1)
    mr["title"] = f"Draft: {bare}" if draft else bare


def _set_state(mr: Json, state: str, moment: datetime) -> None:
    if state not in ("opened", "closed", "merged", "locked"):
        raise ValueError(state)
    if state == mr["state"]:
        return
    mr["state"] = state
    mr["merged_at"] = moment if state == "merged" else None
    mr["closed_at"] = moment if state == "closed" else None


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    """The request body, by Content-Length or chunked (git sends large fetch negotiations chunked)."""
    if "chunked" in handler.headers.get("Transfer-Encoding", "").lower():
        chunks: list[bytes] = []
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()
    return handler.rfile.read(int(handler.headers.get("Content-Length") or 0))


def _auth_kind(headers: dict[str, str], pairs: list[tuple[str, str]]) -> str | None:
    scheme = headers.get("authorization", "").partition(" ")[0].lower()
    if "private-token" in headers:
        return "private-token"
    if scheme in ("bearer", "basic"):
        return scheme
    return "query" if any(k in ("private_token", "access_token") for k, _ in pairs) else None


def _basic(credential: str) -> tuple[str, str]:
    try:
        user, _, password = base64.b64decode(credential).decode().partition(":")
    except ValueError:
        return "", ""
    return user, password


def _pkce_ok(code: Json, verifier: str) -> bool:
    if code["method"] == "S256":
        verifier = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return bool(secrets.compare_digest(verifier, code["challenge"]))


def _oauth_error(status: int, error: str, description: str) -> _Reply:
    headers = {"Cache-Control": "no-store", "Pragma": "no-cache",
               "WWW-Authenticate": f'Bearer realm="Doorkeeper", error="{error}", error_description="{description}"'}
    return _Reply(status, {"error": error, "error_description": description}, headers)


def _redirect(target: str, params: dict[str, str]) -> _Reply:
    location = target + ("&" if "?" in target else "?") + urlencode(params)
    return _html(302, f'You are being <a href="{location}">redirected</a>.', {"Location": location})


def _git_refusal(start_response: Callable[..., Any], status: int) -> list[bytes]:
    if status == 401:
        start_response("401 Unauthorized", [("Content-Type", "text/plain"),
                                            ("WWW-Authenticate", 'Basic realm="GitLab"')])
        return [_GIT_DENIED]
    if status == 403:
        start_response("403 Forbidden", [("Content-Type", "text/plain")])
        return [b"You are not allowed to push code to this project.\n"]
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"The project you were looking for could not be found or you don't have permission to view it.\n"]


def encoded(full_path: str) -> str:
    """A project's or group's full path as the ``:id`` of an API path (``acme%2Fwidgets``)."""
    return quote(full_path, safe="")
