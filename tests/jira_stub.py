"""A small, faithful Jira stub for tests: real HTTP on 127.0.0.1, as Data Center 10.3 or as Cloud.

``JiraStub(cloud=False)`` serves ``/rest/api/2`` (Data Center: personal access tokens), ``JiraStub(cloud=True)``
``/rest/api/3`` (Cloud: basic auth with e-mail and API token, rich text in Atlassian Document Format).
``DevInfoStub`` stands in for ``https://api.atlassian.com``: the OAuth client-credentials token endpoint and the
development information API 0.10 of Jira Software Cloud.

Every JSON answer starts from the official description in ``shared/corpus/openapi/jira`` (see SOURCE.txt there):
Cloud's first example of the operation, Data Center's ``synthesized_from_schema`` body (DC examples are per-property
only), and overrides only what the stub's state decides.  Every request's query parameters and JSON body are
validated against the same operation (jsonschema; ``$ref`` resolved against the whole document); one that does not
validate is recorded in ``violations`` and answered 400.

    with JiraStub(cloud=False) as jira:
        jira.add_user("alice", email="alice@example.com", display_name="Alice")
        jira.add_pat("dc-token", "alice")
        jira.add_project("KAFKA", "Kafka")
        jira.add_issue("KAFKA-1", summary="Fix it")
        httpx.get(f"{jira.url}/rest/api/2/issue/KAFKA-1", headers={"Authorization": "Bearer dc-token"})
        assert jira.violations == []
"""

from __future__ import annotations

import base64
import copy
import functools
import hmac
import itertools
import json
import re
import secrets
import socket
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar, NamedTuple
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import jsonschema

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "openapi" / "jira"
# flavour -> (extract folder, whole document, prefix the document's paths lack)
_SOURCES = {"dc": ("dc-10.3", "jira-software-dc-10.3-openapi.json", "/rest"),
            "cloud": ("cloud-platform-v3", "jira-cloud-platform-swagger-v3.v3.json", ""),
            "devinfo": ("devinfo-0.10/software-cloud-2022", "jira-software-cloud-swagger.v3.2022.json", "/rest")}
# the corpus's hosts, rewritten to the stub's
_HOSTS = ("https://your-domain.atlassian.net", "http://www.example.com/jira", "http://localhost:8090/jira",
          "https://jira.atlassian.com")
_JIRA_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}[+-]\d{4}")  # yyyy-MM-dd'T'HH:mm:ss.SSSZ
_ABSENT: Any = object()
# query parameters an operation's description documents but its parameter list lacks
_UNLISTED = {("dc", "GET", "/rest/api/2/issue/{issueIdOrKey}/transitions"): {"expand": {"type": "string"}}}
Json = dict[str, Any]

# the permission keys the stub knows (every user holds each one unless denied)
PROJECT_PERMISSIONS = {"BROWSE_PROJECTS", "CREATE_ISSUES", "EDIT_ISSUES", "ASSIGN_ISSUES", "RESOLVE_ISSUES",
                       "ADD_COMMENTS", "WORK_ON_ISSUES", "LINK_ISSUES", "ADMINISTER_PROJECTS", "TRANSITION_ISSUES",
                       "VIEW_DEV_TOOLS"}
GLOBAL_PERMISSIONS = {"ADMINISTER", "SYSTEM_ADMIN", "USER_PICKER"}
# devlink's built-in workflow: status -> (id, category id, category key, colour, category name)
STATUSES = {"To Do": ("10000", 2, "new", "blue-gray", "To Do"),
            "In Progress": ("3", 4, "indeterminate", "yellow", "In Progress"),
            "In Review": ("10002", 4, "indeterminate", "yellow", "In Progress"),
            "Done": ("10001", 3, "done", "green", "Done")}
WORKFLOW = [("11", "Start Progress", ("To Do",), "In Progress"), ("21", "Stop Progress", ("In Progress",), "To Do"),
            ("31", "Send To Review", ("In Progress",), "In Review"),
            ("41", "Resolve", ("In Progress", "In Review"), "Done"), ("51", "Reopen", ("Done",), "To Do")]


@functools.cache
def _document(name: str) -> Json:
    return json.loads((CORPUS / "full" / name).read_text())  # type: ignore[no-any-return]


@functools.cache
def operation(flavour: str, method: str, route: str) -> Json:
    """The corpus operation of an effective route (``"dc", "GET", "/rest/api/2/issue/{issueIdOrKey}"``): its extract,
    or else the operation in the whole document, with its examples parsed into ``examples_by_status``."""
    folder, document, prefix = _SOURCES[flavour]
    extract = CORPUS / folder / f"{method}_{route.strip('/').replace('/', '_')}.json"
    if extract.exists():
        return json.loads(extract.read_text())  # type: ignore[no-any-return]
    found = _document(document)["paths"][route.removeprefix(prefix)][method.lower()]
    examples: dict[str, list[Json]] = {}
    for status, response in found["responses"].items():
        for media in response.get("content", {}).values():
            if isinstance(value := media.get("example"), str):
                value = json.loads(value)
            if value is not None:
                examples[status] = [{"value": value}]
    return {**found, "examples_by_status": examples, "synthesized_from_schema": {}}


def template(flavour: str, method: str, route: str, status: str = "200") -> Any:
    """A copy of the operation's first example, else of its body synthesized from the schema."""
    spec = operation(flavour, method, route)
    if examples := spec["examples_by_status"].get(status):
        return copy.deepcopy(examples[0]["value"])
    return copy.deepcopy(spec["synthesized_from_schema"].get(status, {}).get("value", {}))


def check_request(flavour: str, method: str, route: str, query: list[tuple[str, str]], body: Any,
                  path_args: dict[str, str] | None = None) -> list[str]:
    """What in a request's path, query and JSON body (``_ABSENT``: none) the corpus operation does not allow."""
    spec, document = operation(flavour, method, route), _document(_SOURCES[flavour][1])
    params = {p["name"]: p for p in spec.get("parameters", []) if p.get("in") == "query"}
    params |= {n: {"schema": schema} for n, schema in _UNLISTED.get((flavour, method, route), {}).items()}
    given: dict[str, list[str]] = {}
    for name, value in query:
        given.setdefault(name, []).append(value)
    problems = [f"missing required query parameter {n!r}" for n, p in params.items()
                if p.get("required") and n not in given]
    path_args = path_args or {}
    for param in spec.get("parameters", []):
        if param.get("in") == "path" and param["name"] in path_args:
            errors = _validator(param.get("schema", {}), document).iter_errors(path_args[param["name"]])
            problems += [f"path {param['name']}: {e.message}" for e in errors]
    for name, values in given.items():
        if name not in params:
            problems.append(f"unknown query parameter {name!r}")
            continue
        schema = params[name].get("schema", {})
        errors = _validator(schema, document).iter_errors(_coerce(values, schema))
        problems += [f"query {name}: {e.message}" for e in errors]
    request_body = spec.get("requestBody")
    if request_body is None:
        problems += [] if body is _ABSENT else ["this operation takes no request body"]
    elif body is _ABSENT:
        problems += ["a request body is required"] if request_body.get("required") else []
    else:
        schema = request_body["content"].get("application/json", {}).get("schema", {})
        problems += [f"body{''.join(f'[{p!r}]' for p in e.absolute_path)}: {e.message}"
                     for e in _validator(schema, document).iter_errors(body)]
    return problems


def _validator(schema: Json, document: Json) -> jsonschema.Draft4Validator:
    # OpenAPI 3.0 schemas are close to draft 4; "#/components/..." resolves inside the wrapper
    return jsonschema.Draft4Validator({"allOf": [schema], "components": document.get("components", {})})


def _coerce(values: list[str], schema: Json) -> Any:
    kind = schema.get("type")
    if kind == "array":
        return [_coerce([part], schema.get("items", {})) for value in values for part in value.split(",") if part]
    value = values[-1]
    if kind == "integer" and re.fullmatch(r"-?\d+", value):
        return int(value)
    if kind == "boolean" and value in ("true", "false"):
        return value == "true"
    return value


def _rewrite(value: Any, base: str) -> Any:
    if isinstance(value, dict):
        return {k: _rewrite(v, base) for k, v in value.items()}
    if isinstance(value, list):
        return [_rewrite(v, base) for v in value]
    if isinstance(value, str):
        return next((base + value[len(host):] for host in _HOSTS if value.startswith(host)), value)
    return value


def jira_time(moment: datetime | None = None) -> str:
    """Jira's timestamp format, ``2021-01-17T12:34:00.000+0000``."""
    moment = (moment or datetime.now(UTC)).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def _duration(seconds: int) -> str:
    """Jira's default time tracking: 8-hour days, 5-day weeks (``12000`` -> ``"3h 20m"``)."""
    parts, rest = [], seconds // 60
    for unit, size in (("w", 5 * 8 * 60), ("d", 8 * 60), ("h", 60), ("m", 1)):
        if rest >= size:
            parts.append(f"{rest // size}{unit}")
            rest %= size
    return " ".join(parts) or "0m"


def _int(text: str, default: int) -> int:
    return int(text) if re.fullmatch(r"\d+", text) else default


def _is_adf(value: Any) -> bool:
    return (isinstance(value, dict) and value.get("type") == "doc" and value.get("version") == 1
            and isinstance(value.get("content"), list))


def _error(status: int, *messages: str, **errors: str) -> _Reply:
    return _Reply(status, {"errorMessages": list(messages), "errors": errors})


class Request(NamedTuple):
    """A request as the stub saw it: header names in lower case, ``body`` the parsed JSON (or None)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass
class _Reply:
    status: int
    body: Any = None  # a JSON value, str (HTML) or None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class _Ctx:
    method: str
    query: list[tuple[str, str]]
    body: Any  # parsed JSON or _ABSENT
    user: Json = field(default_factory=dict)  # {} when anonymous
    args: dict[str, str] = field(default_factory=dict)
    path: str = ""

    def q(self, name: str, default: str = "") -> str:
        return next((v for k, v in reversed(self.query) if k == name), default)


@dataclass
class _Hold:
    method: str
    path: re.Pattern[str]
    reached: threading.Event = field(default_factory=threading.Event)
    gate: threading.Event = field(default_factory=threading.Event)


class _LoopbackServer:
    """HTTP on 127.0.0.1:0 in a thread, with a request log, injected failures and held answers."""

    server_name = "stub"

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.requests: list[Request] = []
        self.violations: list[str] = []  # requests that the corpus operation does not allow
        self.errors: list[str] = []  # tracebacks of stub bugs (answered 500)
        self._failures: list[tuple[str, re.Pattern[str], _Reply, list[int]]] = []
        self._holds: list[_Hold] = []
        self._gates: list[threading.Event] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def handle_any(self) -> None:
                stub._serve(self)

            do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = handle_any

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.socket.settimeout(1.0)  # close() must not wait on a blocking accept()
        self.port = int(self._server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def __enter__(self) -> _LoopbackServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def fail_next(self, method: str, path_regex: str, status: int, headers: dict[str, str] | None = None,
                  body: Any = None, times: int = 1) -> None:
        """The next ``times`` requests with ``method`` (``"*"``: any) whose path matches ``path_regex``
        (``re.search``) answer ``status`` and ``body`` (default: Jira's error shape with the reason phrase)."""
        with self.lock:
            body = _error(status, HTTPStatus(status).phrase).body if body is None else body
            self._failures.append((method.upper(), re.compile(path_regex), _Reply(status, body, dict(headers or {})),
                                   [times]))

    def hold_after(self, method: str, path_regex: str) -> threading.Event:
        """The next matching request takes effect, then sets the returned event and waits for ``release()``
        before its answer is written (to kill a client between the server's effect and its answer)."""
        with self.lock:
            hold = _Hold(method.upper(), re.compile(path_regex))
            self._holds.append(hold)
            self._gates.append(hold.gate)
            return hold.reached

    def release(self) -> None:
        for gate in list(self._gates):
            gate.set()

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        split = urlsplit(handler.path)
        query = parse_qsl(split.query, keep_blank_values=True)
        headers = {k.lower(): v for k, v in handler.headers.items()}
        raw = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        body, reply = _ABSENT, None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = dict(parse_qsl(raw.decode(errors="replace"))) if "form" in headers.get("content-type", "") \
                    else _ABSENT
                if "json" in headers.get("content-type", ""):
                    self.violations.append(f"{handler.command} {split.path}: body is not JSON")
                    reply = _error(400, "Unexpected character in the request body: it is not JSON.")
        method = "GET" if handler.command == "HEAD" else handler.command
        hold = None
        try:
            with self.lock:
                self.requests.append(Request(handler.command, split.path, dict(query), headers,
                                             None if body is _ABSENT else body))
                reply = reply or self._injected(method, split.path) or self._dispatch(
                    method, split.path, query, headers, body, bool(raw))
                hold = next((h for h in self._holds if h.method in ("*", method) and h.path.search(split.path)), None)
                if hold:
                    self._holds.remove(hold)
        except Exception:
            self.errors.append(traceback.format_exc())
            reply = _error(500, f"{self.server_name} stub error (see .errors)")
        if hold:
            hold.reached.set()
            hold.gate.wait()
        if isinstance(reply.body, str):
            data, kind = reply.body.encode(), "text/html;charset=UTF-8"
        else:
            data = b"" if reply.body is None else json.dumps(reply.body).encode()
            kind = "application/json;charset=UTF-8"
        try:
            handler.send_response(reply.status)
            for name, value in (({"Content-Type": kind} if reply.status != 204 else {}) | reply.headers).items():
                handler.send_header(name, value)
            if reply.status != 204:
                handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            if handler.command != "HEAD" and reply.status != 204:
                handler.wfile.write(data)
        except OSError:  # the client went away (killed while held)
            pass

    def _injected(self, method: str, path: str) -> _Reply | None:
        for wanted, pattern, reply, left in self._failures:
            if wanted in ("*", method) and pattern.search(path) and left[0] > 0:
                left[0] -= 1
                return copy.deepcopy(reply)
        return None

    def _dispatch(self, method: str, path: str, query: list[tuple[str, str]], headers: dict[str, str], body: Any,
                  has_body: bool) -> _Reply:
        raise NotImplementedError

    def _checked(self, flavour: str, method: str, route: str, path: str, query: list[tuple[str, str]],
                 body: Any, path_args: dict[str, str]) -> list[str]:
        problems = check_request(flavour, method, route, query, body, path_args)
        self.violations += [f"{method} {path}: {p}" for p in problems]
        return problems


def _compile(routes: list[tuple[str, str, Callable[..., _Reply], str]]) -> list[tuple[set[str], str, re.Pattern[str],
                                                                                        Callable[..., _Reply], str]]:
    """(methods, route template, handler, flavours) -> the template's regex, ``{name}`` matching one segment."""
    return [(set(methods.split("|")), route, re.compile(re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", route)), handler,
             flavours) for methods, route, handler, flavours in routes]


class JiraStub(_LoopbackServer):
    """Jira's state in plain dicts, served over HTTP.  Use as a context manager or call ``close()``."""

    server_name = "Jira"

    def __init__(self, cloud: bool = False) -> None:
        self.cloud = cloud
        self.flavour = "cloud" if cloud else "dc"
        self.prefix = "/rest/api/3" if cloud else "/rest/api/2"
        self.version = "1001.0.0-SNAPSHOT" if cloud else "10.3.4"
        self.deployment_type = "Cloud" if cloud else "Server"  # what Jira DC 10 reports too
        self.server_title = "Jira"
        self.cloud_id = "8a6e2c4b-1f7d-4e0a-9c3b-5d2f6a7b8c9d"  # what /_edge/tenant_info answers (Cloud)
        self.page_size: int | None = None  # caps Cloud's project/search pages
        self.users: dict[str, Json] = {}  # handle (the name given to add_user) -> user
        self.projects: dict[str, Json] = {}
        self.issues: dict[str, Json] = {}
        self._tokens: dict[str, str] = {}  # DC PAT or Cloud "email:token" -> user handle
        self._denied: set[tuple[str, str | None, str]] = set()
        self._required: dict[str, set[str]] = {}
        self._project_ids, self._issue_ids, self._ids = (itertools.count(10000) for _ in range(3))
        self._routes = _compile([
            ("GET", "/serverInfo", self._server_info, "dc cloud"), ("GET", "/myself", self._myself, "dc cloud"),
            ("GET", "/project", self._project_list, "dc cloud"),
            ("GET", "/project/search", self._project_search, "cloud"),
            ("GET", "/project/{projectIdOrKey}", self._project_one, "dc cloud"),
            ("GET", "/issue/{issueIdOrKey}", self._issue, "dc cloud"),
            ("GET|POST", "/issue/{issueIdOrKey}/transitions", self._transitions, "dc cloud"),
            ("GET", "/issue/{issueIdOrKey}/properties/{propertyKey}", self._issue_property, "dc cloud"),
            ("GET|POST", "/issue/{issueIdOrKey}/comment", self._comments, "dc cloud"),
            ("GET|POST", "/issue/{issueIdOrKey}/worklog", self._worklogs, "dc cloud"),
            ("GET|POST|DELETE", "/issue/{issueIdOrKey}/remotelink", self._remote_links, "dc cloud"),
            ("GET", "/user/search", self._user_search, "dc cloud"),
            ("GET", "/user/permission/search", self._permission_search, "dc"),
            ("POST", "/permissions/check", self._permissions_check, "cloud"),
        ])
        super().__init__()

    # -- state ---------------------------------------------------------------

    def add_user(self, name: str, email: str | None = None, display_name: str | None = None,
                 account_id: str | None = None, email_visible: bool = True, key: str | None = None) -> Json:
        """A user; the stub's methods name it by ``name``.  DC: ``name`` and ``key`` (default: ``name``) identify
        it; Cloud: ``account_id`` (generated when None)."""
        with self.lock:
            user = {"handle": name, "name": name, "key": key or name, "email": email or f"{name}@example.com",
                    "display_name": display_name or name, "email_visible": email_visible, "active": True,
                    "accountId": account_id or secrets.token_hex(12)}
            self.users[name] = user
            return user

    def add_pat(self, token: str, user: str) -> None:
        """A Data Center personal access token (``Authorization: Bearer <token>``)."""
        self._tokens[token] = self.users[user]["handle"]

    def add_api_token(self, email: str, token: str, user: str) -> None:
        """A Cloud API token (basic auth ``email:token``)."""
        self._tokens[f"{email}:{token}"] = self.users[user]["handle"]

    def add_project(self, key: str, name: str) -> Json:
        with self.lock:
            project = {"id": str(next(self._project_ids)), "key": key, "name": name}
            self.projects[key] = project
            return project

    def add_issue(self, key: str, summary: str = "", status: str = "To Do", assignee: str | None = None) -> Json:
        with self.lock:
            project = self.projects[key.rsplit("-", 1)[0]]
            issue = {"id": str(next(self._issue_ids)), "key": key, "project": project["key"], "summary": summary,
                     "status": status, "assignee": assignee, "resolution": None, "comments": [], "worklogs": [],
                     "remote_links": [], "properties": {}}
            self.issues[key] = issue
            return issue

    def deny(self, user: str, project: str | None, permission: str) -> None:
        """Take ``permission`` from ``user`` in ``project`` (None: a global permission such as ADMINISTER)."""
        self._denied.add((user, project, permission))

    def holds(self, user: str, project: str | None, permission: str) -> bool:
        return (user, project, permission) not in self._denied

    def require_field(self, status: str, field_name: str) -> None:
        """Transitions to ``status`` need ``fields[field_name]`` (Jira's "Resolution is required.")."""
        self._required.setdefault(status, set()).add(field_name)

    def comments(self, key: str) -> list[Json]:
        return copy.deepcopy(self.issues[key]["comments"])

    def worklogs(self, key: str) -> list[Json]:
        return copy.deepcopy(self.issues[key]["worklogs"])

    def status(self, key: str) -> str:
        return str(self.issues[key]["status"])

    def remote_links(self, key: str) -> list[Json]:
        return copy.deepcopy(self.issues[key]["remote_links"])

    # -- serving ---------------------------------------------------------------

    def _dispatch(self, method: str, path: str, query: list[tuple[str, str]], headers: dict[str, str], body: Any,
                  has_body: bool) -> _Reply:
        if path == "/_edge/tenant_info" and self.cloud and method == "GET":  # documented in the Software Cloud doc
            return _Reply(200, {"cloudId": self.cloud_id})
        if not path.startswith("/rest/"):
            return _Reply(200, "<html>not jira</html>")
        if not path.startswith(self.prefix + "/"):
            return _error(404, f"null for uri: {self.url}{path}")
        suffix = path[len(self.prefix):]
        found = [(m, r, match, h) for m, r, p, h, f in self._routes
                 if self.flavour in f.split() and (match := p.fullmatch(suffix))]
        chosen = next(((r, match, h) for m, r, match, h in found if method in m), None)
        if chosen is None:
            return _error(405, "Method Not Allowed") if found else _error(404, f"null for uri: {self.url}{path}")
        route, match, handler = chosen
        args = {k: unquote(v) for k, v in match.groupdict().items()}
        user = self._authenticate(headers.get("authorization", ""))
        if user is None and not (route == "/serverInfo" and "authorization" not in headers):  # documented anonymous
            return _error(401, "You are not authenticated. Authentication required to perform this operation.")
        if has_body and "json" not in headers.get("content-type", ""):
            self.violations.append(f"{method} {path}: Content-Type {headers.get('content-type')!r} is not JSON")
            return _Reply(415, {"message": "Unsupported Media Type", "status-code": 415})
        if problems := self._checked(self.flavour, method, self.prefix + route, path, query, body, args):
            return _error(400, *problems)
        reply = handler(_Ctx(method, query, body if isinstance(body, dict) else {}, user or {}, args, path))
        if user:
            reply.headers.setdefault("X-AACCOUNTID" if self.cloud else "X-AUSERNAME",
                                     user["accountId"] if self.cloud else user["name"])
        reply.headers.setdefault("X-AREQUESTID", secrets.token_hex(8))
        return reply

    def _authenticate(self, header: str) -> Json | None:
        scheme, _, credential = header.partition(" ")
        if self.cloud and scheme.lower() == "basic":
            try:
                credential = base64.b64decode(credential).decode()
            except ValueError:
                return None
        elif self.cloud or scheme.lower() != "bearer":
            return None
        handle = next((h for t, h in self._tokens.items() if hmac.compare_digest(t.encode(), credential.encode())),
                      None)
        return self.users.get(handle) if handle else None

    def _example(self, method: str, route: str, status: str = "200") -> Any:
        return _rewrite(template(self.flavour, method, self.prefix + route, status), self.url)

    # -- JSON shapes ---------------------------------------------------------------

    def _user(self, user: Json, *, full: bool = False, own: bool = False) -> Json:
        if self.cloud:
            body = (self._example("GET", "/myself") if full else
                    self._example("POST", "/issue/{issueIdOrKey}/comment", "201")["author"])
            body.update(accountId=user["accountId"], displayName=user["display_name"], active=user["active"],
                        self=f"{self.url}{self.prefix}/user?accountId={user['accountId']}")
            body.pop("emailAddress", None)
            if own or user["email_visible"]:
                body["emailAddress"] = user["email"]
            return body  # type: ignore[no-any-return]
        body = self._example("GET", "/myself") if full else self._example(
            "POST", "/issue/{issueIdOrKey}/comment", "201")["author"]
        size = {"48x48": "large", "24x24": "small", "16x16": "xsmall", "32x32": "medium"}
        body.update(name=user["name"], key=user["key"], emailAddress=user["email"], displayName=user["display_name"],
                    active=user["active"], self=f"{self.url}{self.prefix}/user?username={quote(user['name'])}",
                    avatarUrls={k: f"{self.url}/secure/useravatar?size={v}&ownerId={quote(user['key'])}"
                                for k, v in size.items()})  # the synthesized avatarUrls is a string, not a map
        return body  # type: ignore[no-any-return]

    def _project_json(self, project: Json) -> Json:
        body = (self._example("GET", "/project/search")["values"][0] if self.cloud
                else self._example("GET", "/project/{projectIdOrKey}"))
        pid = project["id"]
        body.update(id=pid, key=project["key"], name=project["name"], self=f"{self.url}{self.prefix}/project/{pid}",
                    avatarUrls={k: f"{self.url}/secure/projectavatar?size={v}&pid={pid}" for k, v in
                                {"48x48": "large", "24x24": "small", "16x16": "xsmall", "32x32": "medium"}.items()})
        return body  # type: ignore[no-any-return]

    def _status_json(self, name: str) -> Json:
        body = self._example("GET", "/issue/{issueIdOrKey}/transitions")["transitions"][0]["to"]
        sid, cid, ckey, colour, cname = STATUSES[name]
        body.update(id=sid, name=name, description="", self=f"{self.url}{self.prefix}/status/{sid}",
                    iconUrl=f"{self.url}/images/icons/statuses/generic.png")
        body["statusCategory"].update(id=cid, key=ckey, colorName=colour, name=cname,
                                      self=f"{self.url}{self.prefix}/statuscategory/{cid}")
        return body  # type: ignore[no-any-return]

    def _visible_issue(self, ctx: _Ctx) -> Json | None:
        ref = ctx.args["issueIdOrKey"]
        issue = self.issues.get(ref.upper()) or next((i for i in self.issues.values() if i["id"] == ref), None)
        return issue if issue and self.holds(ctx.user["handle"], issue["project"], "BROWSE_PROJECTS") else None

    def _missing_issue(self) -> _Reply:
        return _error(404, "Issue does not exist or you do not have permission to see it.")

    def _page(self, ctx: _Ctx, items: list[Any], default: int, cap: int | None = None) -> tuple[int, int, list[Any]]:
        start, size = _int(ctx.q("startAt"), 0), min(_int(ctx.q("maxResults"), default), cap or default * 1000)
        return start, size, items[start:start + size]

    # -- operations ---------------------------------------------------------------

    def _server_info(self, ctx: _Ctx) -> _Reply:
        body = self._example("GET", "/serverInfo")  # Cloud's example; DC's ServerInfoBean documents no property
        numbers = [int(n) for n in re.findall(r"\d+", self.version.split("-")[0])][:3]
        body.update(baseUrl=self.url, version=self.version, versionNumbers=numbers, serverTitle=self.server_title,
                    deploymentType=self.deployment_type, serverTime=jira_time())
        if not self.cloud:
            body.update(buildNumber=numbers[0] * 100000 + numbers[1] * 1000 + numbers[2],
                        buildDate="2025-01-01T00:00:00.000+0000", scmInfo="0" * 40)
        return _Reply(200, body)

    def _myself(self, ctx: _Ctx) -> _Reply:
        body = self._user(ctx.user, full=True, own=True)
        if self.cloud:
            body["accountType"] = "atlassian"
        return _Reply(200, body)

    def _browsable(self, ctx: _Ctx) -> list[Json]:
        return [p for k, p in sorted(self.projects.items()) if self.holds(ctx.user["handle"], k, "BROWSE_PROJECTS")]

    def _project_list(self, ctx: _Ctx) -> _Reply:
        return _Reply(200, [self._project_json(p) for p in self._browsable(ctx)])

    def _project_one(self, ctx: _Ctx) -> _Reply:
        ref = ctx.args["projectIdOrKey"]
        project = next((p for p in self._browsable(ctx) if ref in (p["key"], p["id"])), None)
        if project is None:
            return _error(404, f"No project could be found with key '{ref}'.")
        return _Reply(200, self._project_json(project))

    def _project_search(self, ctx: _Ctx) -> _Reply:
        projects = self._browsable(ctx)
        start, size, page = self._page(ctx, projects, 50, self.page_size)
        body = self._example("GET", "/project/search")
        last = start + size >= len(projects)
        search = f"{self.url}{self.prefix}/project/search"
        body.update(self=f"{search}?startAt={start}&maxResults={size}", startAt=start, maxResults=size,
                    total=len(projects), isLast=last, values=[self._project_json(p) for p in page],
                    nextPage=f"{search}?startAt={start + size}&maxResults={size}")
        if last:
            del body["nextPage"]
        return _Reply(200, body)

    def _issue(self, ctx: _Ctx) -> _Reply:
        issue = self._visible_issue(ctx)
        if issue is None:
            return self._missing_issue()
        body = {k: v for k, v in self._example("GET", "/issue/{issueIdOrKey}").items() if k in ("expand", "id", "key")}
        assignee = self.users.get(issue["assignee"]) if issue["assignee"] else None
        fields = {"summary": issue["summary"], "status": self._status_json(issue["status"]),
                  "assignee": self._user(assignee) if assignee else None,
                  "project": self._project_json(self.projects[issue["project"]]),
                  "resolution": {"name": issue["resolution"]} if issue["resolution"] else None}
        wanted = {f for k, v in ctx.query if k == "fields" for f in v.split(",") if f}
        if wanted and not wanted & {"*all", "*navigable"}:
            fields = {k: v for k, v in fields.items() if k in wanted}
        fields = {k: v for k, v in fields.items() if f"-{k}" not in wanted}
        body.update(id=issue["id"], key=issue["key"], self=f"{self.url}{self.prefix}/issue/{issue['id']}",
                    fields=fields)
        return _Reply(200, body)

    def _available(self, user: Json, issue: Json) -> list[tuple[str, str, tuple[str, ...], str]]:
        if not self.holds(user["handle"], issue["project"], "TRANSITION_ISSUES"):
            return []  # Cloud: "the response will not list any transitions"
        return [t for t in WORKFLOW if issue["status"] in t[2]]

    def _transitions(self, ctx: _Ctx) -> _Reply:
        issue = self._visible_issue(ctx)
        if issue is None:
            return self._missing_issue()
        available = self._available(ctx.user, issue)
        if ctx.method == "GET":
            sample = self._example("GET", "/issue/{issueIdOrKey}/transitions")["transitions"][0]
            listed = []
            for n, (tid, name, _, to) in enumerate(available):
                required = sorted(self._required.get(to, ()))
                fields = {f: {"required": True, "schema": {"type": f, "system": f}, "name": f.capitalize(), "key": f,
                              "hasDefaultValue": False, "operations": ["set"]}
                          for f in required} if "transitions.fields" in ctx.q("expand") else {}
                entry = {**copy.deepcopy(sample), "id": tid, "name": name, "to": self._status_json(to),
                         "fields": fields}
                # only keys the flavour's schema has: DC's TransitionBean has no hasScreen/isGlobal
                entry.update({k: v for k, v in {"hasScreen": bool(required), "isGlobal": False, "isInitial": False,
                                                "isAvailable": True, "isConditional": False, "description": "",
                                                "opsbarSequence": 10 * (n + 1)}.items() if k in entry})
                listed.append(entry)
            return _Reply(200, {"transitions": listed})
        wanted = str((ctx.body.get("transition") or {}).get("id", ""))
        if not wanted:
            return _error(400, "Missing 'transition' identifier")
        chosen = next((t for t in available if t[0] == wanted), None)
        if chosen is None:
            return _error(400, f"Transition id '{wanted}' is not valid for this issue.")
        given = ctx.body.get("fields") or {}
        missing = {f: f"{f.capitalize()} is required." for f in sorted(self._required.get(chosen[3], ()))
                   if given.get(f) in (None, "", {})}
        if missing:
            return _error(400, **missing)
        issue["status"] = chosen[3]
        issue["properties"].update({p["key"]: p.get("value") for p in ctx.body.get("properties", [])})
        resolution = given.get("resolution")
        issue["resolution"] = (resolution.get("name") if isinstance(resolution, dict) else resolution) \
            if chosen[3] == "Done" else None
        return _Reply(204)

    def _issue_property(self, ctx: _Ctx) -> _Reply:
        issue, key = self._visible_issue(ctx), ctx.args["propertyKey"]
        if issue is None:
            return self._missing_issue()
        if key not in issue["properties"]:
            return _error(404, f"The property with key '{key}' does not exist.")
        return _Reply(200, {"key": key, "value": issue["properties"][key]})

    def _comments(self, ctx: _Ctx) -> _Reply:
        issue = self._visible_issue(ctx)
        if issue is None:
            return self._missing_issue()
        if ctx.method == "GET":
            start, size, page = self._page(ctx, issue["comments"], 100 if self.cloud else 50)
            keep = "properties" in ctx.q("expand")
            page = [{k: v for k, v in c.items() if keep or k != "properties"} for c in page]
            total = len(issue["comments"])
            return _Reply(200, {"comments": page, "maxResults": size, "startAt": start, "total": total})
        text = ctx.body.get("body")
        if self.cloud and not _is_adf(text):
            self.violations.append(f"POST {ctx.path}: body['body'] is not an Atlassian Document")
            return _error(400, "Operation value must be an Atlassian Document (see the Atlassian Document Format)")
        if not text or (self.cloud and not text["content"]):
            return _error(400, comment="Comment body can not be empty!")
        if not self.holds(ctx.user["handle"], issue["project"], "ADD_COMMENTS"):
            return _error(400, comment="You do not have the permission to comment on this issue.")
        comment = self._example("POST", "/issue/{issueIdOrKey}/comment", "201")
        cid, now = str(next(self._ids)), jira_time()
        for absent in ("renderedBody", "visibility", "properties", "jsdPublic"):
            comment.pop(absent, None)
        comment.update(id=cid, self=f"{self.url}{self.prefix}/issue/{issue['id']}/comment/{cid}", body=text,
                       author=self._user(ctx.user), updateAuthor=self._user(ctx.user), created=now, updated=now)
        comment.update({k: ctx.body[k] for k in ("visibility", "properties") if k in ctx.body})
        issue["comments"].append(comment)
        return _Reply(201, comment)

    def _worklogs(self, ctx: _Ctx) -> _Reply:
        issue = self._visible_issue(ctx)
        if issue is None:
            return self._missing_issue()
        if ctx.method == "GET":
            # DC's getIssueWorklog takes no paging parameters: every worklog at once
            start, size, page = self._page(ctx, issue["worklogs"], 5000 if self.cloud else len(issue["worklogs"]))
            return _Reply(200, {"startAt": start, "maxResults": size, "total": len(issue["worklogs"]),
                                "worklogs": page})
        body = ctx.body
        started = body.get("started")
        if not isinstance(started, str) or not _JIRA_TIME.fullmatch(started):
            return _error(400, started="Invalid date format. Please enter the date in the format "
                                       "\"yyyy-MM-dd'T'HH:mm:ss.SSSZ\".")
        seconds = body.get("timeSpentSeconds")
        if seconds is None and isinstance(body.get("timeSpent"), str):
            units = {"w": 144000, "d": 28800, "h": 3600, "m": 60}
            seconds = sum(int(n) * units[u] for n, u in re.findall(r"(\d+)\s*([wdhm])", body["timeSpent"]))
        if not seconds or seconds <= 0:
            return _error(400, timeLogged="You must indicate the time spent working.")
        if self.cloud and "comment" in body and not _is_adf(body["comment"]):
            self.violations.append(f"POST {ctx.path}: body['comment'] is not an Atlassian Document")
            return _error(400, "Operation value must be an Atlassian Document (see the Atlassian Document Format)")
        if not self.holds(ctx.user["handle"], issue["project"], "WORK_ON_ISSUES"):  # DC documents 403, Cloud 400
            return _error(400 if self.cloud else 403, "You do not have the permission to log work on this issue.")
        worklog = (self._example("GET", "/issue/{issueIdOrKey}/worklog")["worklogs"][0] if self.cloud
                   else self._example("POST", "/issue/{issueIdOrKey}/worklog", "201"))
        wid, now = str(next(self._ids)), jira_time()
        for absent in ("visibility", "comment", "properties"):
            worklog.pop(absent, None)
        worklog.update(id=wid, issueId=issue["id"], self=f"{self.url}{self.prefix}/issue/{issue['id']}/worklog/{wid}",
                       author=self._user(ctx.user), updateAuthor=self._user(ctx.user), started=started,
                       timeSpentSeconds=seconds, timeSpent=_duration(seconds), created=now, updated=now)
        worklog.update({k: body[k] for k in ("comment", "visibility", "properties") if k in body})
        issue["worklogs"].append(worklog)
        return _Reply(201, worklog)

    def _remote_links(self, ctx: _Ctx) -> _Reply:
        issue = self._visible_issue(ctx)
        if issue is None:
            return self._missing_issue()
        links, global_id = issue["remote_links"], ctx.q("globalId")
        found = next((link for link in links if global_id and link.get("globalId") == global_id), None)
        if ctx.method == "GET":
            if global_id and found is None:
                return _error(404, f"No remote issue link with global id '{global_id}' exists on this issue.")
            return _Reply(200, found if global_id else links)
        if not self.holds(ctx.user["handle"], issue["project"], "LINK_ISSUES"):
            return _error(403, "You do not have permission to link issues.")
        if ctx.method == "DELETE":
            if found is None:
                return _error(404, f"No remote issue link with global id '{global_id}' exists on this issue.")
            links.remove(found)
            return _Reply(204)
        obj = ctx.body.get("object") or {}
        missing = {f: f"'{f}' is required." for f in ("url", "title") if not obj.get(f)}
        if missing:
            return _error(400, **missing)
        global_id = ctx.body.get("globalId")
        found = next((link for link in links if global_id and link.get("globalId") == global_id), None)
        lid = found["id"] if found else next(self._ids)
        # the corpus examples' self has no API version: .../rest/api/issue/MKY-1/remotelink/10000
        link = {"id": lid, "self": f"{self.url}/rest/api/issue/{issue['key']}/remotelink/{lid}",
                **{k: ctx.body[k] for k in ("globalId", "application", "relationship", "object") if k in ctx.body}}
        if found:
            links[links.index(found)] = link  # "Any fields without values in the request are set to null"
        else:
            links.append(link)
        return _Reply(200 if found else 201, {"id": lid, "self": link["self"]})

    def _matches(self, user: Json, text: str) -> bool:
        text = text.lower()
        names = [user["display_name"], *user["display_name"].split()]
        emails = [user["email"]] if not self.cloud or user["email_visible"] else []
        return any(v.lower().startswith(text) for v in [*names, *emails, *([] if self.cloud else [user["name"]])])

    def _search_json(self, user: Json) -> Json:
        if not self.cloud:
            return self._user(user, full=True)
        body = self._example("GET", "/user/search")[0]
        body.update({k: v for k, v in self._user(user).items() if k in ("accountId", "displayName", "active", "self")})
        body.pop("emailAddress", None)
        return {**body, **({"emailAddress": user["email"]} if user["email_visible"] else {})}

    def _user_search(self, ctx: _Ctx) -> _Reply:
        users = sorted(self.users.values(), key=lambda u: u["name"])
        if self.cloud:
            if ctx.q("query") and ctx.q("accountId"):
                return _error(400, "Only one of 'query' or 'accountId' can be specified.")
            if ctx.q("accountId"):
                found = [u for u in users if u["accountId"] == ctx.q("accountId")]
            elif ctx.q("query"):
                found = [u for u in users if self._matches(u, ctx.q("query"))]
            else:
                return _error(400, "One of 'accountId', 'query' or 'property' query parameters is required.")
        elif not ctx.q("username"):
            return _error(400, "The username query parameter was not provided")
        else:
            found = [u for u in users if self._matches(u, ctx.q("username"))]
        return _Reply(200, [self._search_json(u) for u in self._page(ctx, found, 50)[2]])

    def _permission_search(self, ctx: _Ctx) -> _Reply:
        wanted = [p for p in ctx.q("permissions").split(",") if p]
        if not wanted or not set(wanted) <= PROJECT_PERMISSIONS:
            return _error(400, "The permissions list is empty or contains an invalid permission.")
        if ctx.q("issueKey"):
            issue = self.issues.get(ctx.q("issueKey").upper())
            if issue is None:
                return _error(404, f"The issue with the key '{ctx.q('issueKey')}' does not exist.")
            project = issue["project"]
        elif ctx.q("projectKey") in self.projects:
            project = ctx.q("projectKey")
        else:
            return _error(400 if not ctx.q("projectKey") else 404, "A project or issue key must be provided.")
        me = ctx.user["handle"]
        if not (self.holds(me, project, "ADMINISTER_PROJECTS") or self.holds(me, None, "ADMINISTER")):
            return _error(403, "You do not have permission to administer this project.")
        found = [u for u in sorted(self.users.values(), key=lambda u: u["name"])
                 if (not ctx.q("username") or self._matches(u, ctx.q("username")))
                 and all(self.holds(u["handle"], project, p) for p in wanted)]
        return _Reply(200, [self._user(u, full=True) for u in self._page(ctx, found, 50)[2]])

    def _permissions_check(self, ctx: _Ctx) -> _Reply:
        body = ctx.body
        account = body.get("accountId") or ctx.user["accountId"]
        if account != ctx.user["accountId"] and not self.holds(ctx.user["handle"], None, "ADMINISTER"):
            return _Reply(403, self._example("POST", "/permissions/check", "403"))
        asked = [p for e in body.get("projectPermissions", []) for p in e["permissions"] if p]
        unknown = {p: "Unrecognized permission" for p in [*asked, *body.get("globalPermissions", [])]
                   if p not in PROJECT_PERMISSIONS and p not in GLOBAL_PERMISSIONS}
        if unknown:
            return _error(400, **unknown)
        who = next((u for u in self.users.values() if u["accountId"] == account), None)
        handle = who["handle"] if who else ""
        by_id = {i["id"]: i for i in self.issues.values()}
        projects = {p["id"]: k for k, p in self.projects.items()}
        result = []
        for entry in body.get("projectPermissions", []):
            for permission in (p for p in entry["permissions"] if p):
                issues = [n for n in entry.get("issues", []) if str(n) in by_id and all(
                    self.holds(handle, by_id[str(n)]["project"], p) for p in {permission, "BROWSE_PROJECTS"})]
                allowed = [n for n in entry.get("projects", []) if str(n) in projects
                           and self.holds(handle, projects[str(n)], permission)]
                result.append({"issues": issues, "permission": permission, "projects": allowed})
        granted = [p for p in body.get("globalPermissions", []) if who and self.holds(handle, None, p)]
        return _Reply(200, {"globalPermissions": granted, "projectPermissions": result})


class DevInfoStub(_LoopbackServer):
    """The Atlassian API gateway for on-premises integrations: ``POST /oauth/token`` (client credentials) and the
    development information API at ``/jira/devinfo/0.1/cloud/{cloudId}/...`` (the base the Jira Software Cloud
    document gives for OAuth integrations; ``/jira/{cloudId}/rest/devinfo/0.10/...`` is answered too, but recorded
    as a violation: no document names it)."""

    server_name = "DevInfo"
    _ROUTES: ClassVar = [("POST", "/bulk"), ("GET", "/repository/{repositoryId}"),
                                      ("DELETE", "/repository/{repositoryId}"),
                                      ("DELETE", "/repository/{repositoryId}/{entityType}/{entityId}")]
    _KINDS: ClassVar = {"commit": "commits", "branch": "branches", "pull_request": "pullRequests"}

    def __init__(self) -> None:
        self.known_issue_keys: set[str] | None = None  # None: every key is known
        self.token_ttl = 3600
        self.scope = "manage:jira-data-provider"
        self.tokens_issued = 0
        self._clients: dict[str, Json] = {}
        self._tokens: dict[str, Json] = {}
        self._sites: dict[str, dict[str, Json]] = {}  # cloud id -> repository id -> stored repository
        super().__init__()

    def add_client(self, client_id: str, client_secret: str, cloud_id: str) -> None:
        self._clients[client_id] = {"secret": client_secret, "cloud_id": cloud_id}

    def devinfo_url(self, cloud_id: str) -> str:
        return f"{self.url}/jira/devinfo/0.1/cloud/{cloud_id}"

    def expire_tokens(self) -> None:
        for token in self._tokens.values():
            token["expires"] = 0.0

    @property
    def repositories(self) -> dict[str, Json]:
        """Every site's stored repositories, as GET repository answers them."""
        with self.lock:
            return {rid: self._render(repo) for site in self._sites.values() for rid, repo in site.items()}

    @staticmethod
    def _render(repo: Json) -> Json:
        return copy.deepcopy({**repo["meta"], **{kind: list(v.values()) for kind, v in repo["entities"].items()}})

    def _dispatch(self, method: str, path: str, query: list[tuple[str, str]], headers: dict[str, str], body: Any,
                  has_body: bool) -> _Reply:
        if path == "/oauth/token" and method == "POST":
            return self._issue_token(body if isinstance(body, dict) else {})
        match = (re.fullmatch(r"/jira/devinfo/0\.1/cloud/([^/]+)(/.*)", path)
                 or re.fullmatch(r"/jira/([^/]+)/rest/devinfo/0\.10(/.*)", path))
        if match is None:
            return _Reply(404, {"code": 404, "message": "Not Found"})
        cloud_id, op = match.groups()
        if "/rest/devinfo/" in path:
            self.violations.append(f"{method} {path}: not a documented route; on-premises integrations call "
                                   f"https://api.atlassian.com/jira/devinfo/0.1/cloud/{{cloudId}}{op}")
        token = self._tokens.get(headers.get("authorization", "").removeprefix("Bearer "))
        if token is None or token["expires"] < time.time() or token["cloud_id"] != cloud_id:
            return _Reply(401, {"code": 401, "message": "Unauthorized"})
        for wanted, route in self._ROUTES:
            pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", route)
            if wanted == method and (found := re.fullmatch(pattern, op)):
                args = {k: unquote(v) for k, v in found.groupdict().items()}
                problems = self._checked("devinfo", method, f"/rest/devinfo/0.10{route}", path, query, body, args)
                if problems:
                    return _Reply(400, {"errorMessages": [{"message": p} for p in problems]})
                site = self._sites.setdefault(cloud_id, {})
                return self._bulk(site, body, path) if route == "/bulk" else self._repository(
                    site, method, args, _Ctx(method, query, body))
        return _Reply(404, {"code": 404, "message": "Not Found"})

    def _issue_token(self, body: Json) -> _Reply:
        if body.get("grant_type") != "client_credentials":
            return _Reply(403, {"error": "unauthorized_client", "error_description": "Grant type not allowed"})
        client = self._clients.get(str(body.get("client_id")))
        secret = str(body.get("client_secret")).encode()
        if client is None or not hmac.compare_digest(client["secret"].encode(), secret):
            return _Reply(401, {"error": "access_denied", "error_description": "Unauthorized"})
        if body.get("audience") != "api.atlassian.com":
            message = f"Service not found: {body.get('audience')}"
            return _Reply(403, {"error": "access_denied", "error_description": message})
        token = secrets.token_urlsafe(32)
        self._tokens[token] = {"cloud_id": client["cloud_id"], "expires": time.time() + self.token_ttl}
        self.tokens_issued += 1
        return _Reply(200, {"access_token": token, "scope": self.scope, "expires_in": self.token_ttl,
                            "token_type": "Bearer"})

    def _limits(self, body: Json) -> tuple[int, list[str]]:
        """The limits the bulk operation states in prose rather than in its schema."""
        repositories, problems = body["repositories"], []
        if not repositories:
            problems.append("no repositories were provided")
        properties = body.get("properties", {})
        if len(properties) > 5:
            problems.append("more than 5 properties were submitted")
        problems += [f"property key {k!r} starts with '_' or contains ':'" for k in properties
                     if k.startswith("_") or ":" in k]
        problems += [f"property {k!r} is longer than 255 characters" for k, v in properties.items()
                     if len(k) > 255 or len(str(v)) > 255]
        if len({r["id"] for r in repositories}) < len(repositories):
            problems.append("repositories contain duplicates")
        for repo in repositories:
            for kind in self._KINDS.values():
                ids = [e["id"] for e in repo.get(kind, [])]
                if len(set(ids)) < len(ids):
                    problems.append(f"repository {repo['id']!r}: duplicate {kind} ids")
        total = sum(len(r.get(kind, [])) for r in repositories for kind in self._KINDS.values())
        if total > 1000:
            return 413, [f"{total} entities: the maximum across all repositories is 1000"]
        return 400, problems

    def _bulk(self, site: dict[str, Json], body: Json, path: str) -> _Reply:
        status, problems = self._limits(body)
        if problems:
            self.violations += [f"POST {path}: {p}" for p in problems]
            return _Reply(status, {"errorMessages": [{"message": p} for p in problems]})
        accepted: Json = {}
        failed: Json = {}
        unknown: set[str] = set()
        valid_id = re.compile(r"[A-Za-z0-9~._-]+")  # "Only alphanumeric characters, and '~.-_', are allowed"
        for repo in body["repositories"]:
            rid = repo["id"]
            if not valid_id.fullmatch(rid):
                failed[rid] = {"errorMessages": [{"message": f"Invalid repository id '{rid}'"}]}
                self.violations.append(f"POST {path}: repository id {rid!r} has characters outside [A-Za-z0-9~._-]")
                continue
            stored = site.setdefault(rid, {"meta": {}, "entities": {kind: {} for kind in self._KINDS.values()}})
            meta = {k: v for k, v in repo.items() if k not in self._KINDS.values()}
            if stored["meta"].get("updateSequenceId", -1) < repo["updateSequenceId"]:
                stored["meta"] = meta  # replaced only by a newer updateSequenceId
            accepted[rid] = {}
            for kind in (k for k in self._KINDS.values() if k in repo):
                accepted[rid][kind] = []
                for entity in repo[kind]:
                    if not valid_id.fullmatch(entity["id"]):
                        failed.setdefault(rid, {}).setdefault(kind, []).append(
                            {"id": entity["id"], "errorMessages": [{"message": f"Invalid id '{entity['id']}'"}]})
                        self.violations.append(f"POST {path}: {kind} id {entity['id']!r} has invalid characters")
                        continue
                    accepted[rid][kind].append(entity["id"])  # an out-of-order update is accepted, not applied
                    unknown |= {k for k in entity["issueKeys"]
                                if self.known_issue_keys is not None and k not in self.known_issue_keys}
                    old = stored["entities"][kind].get(entity["id"])
                    if old is None or old["updateSequenceId"] < entity["updateSequenceId"]:
                        stored["entities"][kind][entity["id"]] = copy.deepcopy(entity)
        result = template("devinfo", "POST", "/rest/devinfo/0.10/bulk", "202")
        result.update(acceptedDevinfoEntities=accepted, failedDevinfoEntities=failed, unknownIssueKeys=sorted(unknown))
        return _Reply(202, result)

    def _repository(self, site: dict[str, Json], method: str, args: dict[str, str], ctx: _Ctx) -> _Reply:
        repo = site.get(args["repositoryId"])
        if method == "GET":
            if repo is None:
                return _Reply(404, {"errorMessages": [{"message": f"Repository '{args['repositoryId']}' not found"}]})
            return _Reply(200, self._render(repo))
        limit = int(ctx.q("_updateSequenceId")) if ctx.q("_updateSequenceId") else None
        if repo is None:
            return _Reply(202)  # deletion is asynchronous: unknown ids are accepted too
        kinds = [self._KINDS[args["entityType"]]] if "entityType" in args else list(self._KINDS.values())
        for kind in kinds:
            for eid, entity in list(repo["entities"][kind].items()):
                if ("entityId" not in args or eid == args["entityId"]) and (
                        limit is None or entity["updateSequenceId"] <= limit):
                    del repo["entities"][kind][eid]
        if "entityType" not in args and (limit is None or repo["meta"].get("updateSequenceId", 0) <= limit) \
                and not any(repo["entities"].values()):
            del site[args["repositoryId"]]
        return _Reply(202)
