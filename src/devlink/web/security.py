"""What every request passes before a route sees it, and what every response carries.

``RequestGuard`` is one pure ASGI middleware for three browser-facing defences:

* **Trusted hosts** (DNS rebinding): a page on ``evil.example`` whose name
  the attacker re-points at 127.0.0.1 talks to devlink same-origin, but its
  requests carry ``Host: evil.example``.  Only names that mean devlink pass
  (``allowed_hosts``); anything else is a 400 problem.
* **Cross-site writes** (CSRF): a POST, PUT, PATCH or DELETE that another
  site's page made the browser send is a 403 problem, on pages and API alike
  (a body-less ``fetch(..., {mode: "no-cors"})`` needs no CORS preflight).
  ``/hooks/*`` is exempt: webhooks come from servers, which send no
  ``Origin``; so do tools such as curl, which pass.
* **Security headers** on every response it lets through or sends itself:
  a CSP allowing only devlink's own files (no inline script or style is
  used), no sniffing, no framing, same-origin referrers.
"""

import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from devlink.config import Settings
from devlink.web.responses import problem

__all__ = ["SECURITY_HEADERS", "RequestGuard", "allowed_hosts", "cross_site", "host_name"]

#: ``img-src data:``: Swagger UI's stylesheet draws its icons as data: URLs.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}
_RAW_HEADERS = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in SECURITY_HEADERS.items()]
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def allowed_hosts(settings: Settings) -> frozenset[str]:
    """The names the ``Host`` header may carry besides IP literals: ``*`` in the set allows any."""
    names = {"localhost", socket.gethostname(), socket.getfqdn(), settings.host, *settings.allowed_hosts}
    if settings.base_url:
        names.add(urlsplit(settings.base_url).hostname or "")
    return frozenset(n.lower().rstrip(".") for n in names if n)


def host_name(host: str) -> str:
    """The name in a ``Host`` header, without port, lower case: ``[::1]:8000`` → ``::1``."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    name, _, port = host.rpartition(":")
    return (name if name and port.isdigit() else host).rstrip(".")


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def cross_site(method: str, path: str, headers: dict[str, str]) -> bool:
    """Whether a write was sent by another site's page (see the module docstring)."""
    if method in _SAFE_METHODS or path == "/hooks" or path.startswith("/hooks/"):
        return False
    host = headers.get("host", "").lower()
    origin = headers.get("origin") or headers.get("referer")
    fetch_site = headers.get("sec-fetch-site", "").lower()
    if fetch_site == "cross-site" or (fetch_site == "same-site" and not origin):
        return True
    return bool(origin) and urlsplit(origin).netloc.lower() != host


#: what an API request or form post may carry; webhooks (``/hooks``) bound their own bodies, per host
MAX_REQUEST_BODY = 1024 * 1024


def _bounded(method: str, path: str) -> bool:
    return method not in _SAFE_METHODS and not (path == "/hooks" or path.startswith("/hooks/"))


async def _read_at_most(receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or None as soon as it passes ``limit`` bytes (nothing more is read)."""
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return bytes(body)
        body += message.get("body", b"")
        if len(body) > limit:
            return None
        if not message.get("more_body", False):
            return bytes(body)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the app the body read already, then the server's own (for a disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class RequestGuard:
    """Trusted hosts, then cross-site writes; security headers on every response (module docstring)."""

    def __init__(self, app: ASGIApp, *, hosts: Iterable[str]) -> None:
        self.app = app
        self.hosts = frozenset(hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(name, value) for name, value in _RAW_HEADERS if name not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        refusal = self._refusal(scope["method"], scope["path"], headers)
        if refusal is None and _bounded(scope["method"], scope["path"]):
            body = await _read_at_most(receive, MAX_REQUEST_BODY)
            if body is None:
                refusal = problem(413, "too_large", f"request body too large: at most {MAX_REQUEST_BODY} bytes")
            else:
                receive = _replay(body, receive)
        if refusal is not None:
            await refusal(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)

    def _refusal(self, method: str, path: str, headers: dict[str, str]) -> Response | None:
        host = headers.get("host", "")
        name = host_name(host)
        if "*" not in self.hosts and not _is_ip(name) and name not in self.hosts:
            return problem(400, "bad_host", f"Host {host!r} is not a name of this devlink",
                           "add the name to DEVLINK_ALLOWED_HOSTS (comma-separated names; * allows any)")
        if cross_site(method, path, headers):
            return problem(403, "cross_site", f"cross-site {method} refused: another site's page sent it",
                           "use devlink's own pages, or a client that is not a browser (curl sends no Origin)")
        return None
