"""The OAuth web flow of a host's OAuth application: ``/oauth/{kind}/start`` → the host → ``/oauth/{kind}/callback``.

``kind`` is a registered host kind (``GET /api/v1/hosts`` shows each host's).
Login CSRF is the danger: a host answers an app the user already authorised
with an immediate redirect to the callback, so whoever can make the admin's
browser start a flow links the account of their choice with the admin's grant.
Hence:

* ``GET /start`` is only a confirmation page (any site can link to it); the
  flow starts with its form's ``POST /start``, a write that ``RequestGuard``
  refuses when another site's page sends it.
* Browsers check a page's CSP ``form-action`` on the redirects that follow
  its form's submission, so a page with that form (this confirmation, the
  accounts page) allows the host's web origin there too (``sign_in_policy``).
* The POST sets a short-lived cookie (HttpOnly, SameSite=Lax, path
  ``/oauth/{kind}``) holding a random value; its hash is stored with the
  state.  The callback is refused unless the browser bringing it back holds
  that cookie, so a code and state obtained elsewhere cannot be fed to
  another browser.

``state`` is random, stored server-side with the PKCE verifier (encrypted)
and used once, within ten minutes; the callback trades the code for a token
and links the account as a token would, keeping the refresh token and expiry
when the host's tokens expire.  The client secret and the token never reach
the browser.
"""

import base64
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import delete, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from devlink.errors import DevlinkError, InvalidInput, NotFound
from devlink.hosts import HOSTS, for_kind
from devlink.hosts.base import HostError, origin_of
from devlink.hosts.protocol import HostKind, HostSettings
from devlink.runtime import Runtime
from devlink.store.models import Host, OAuthState, utcnow
from devlink.sync.accounts import AccountOptions, link_account
from devlink.sync.host_clients import host_kind, settings_of
from devlink.web.deps import RuntimeDep
from devlink.web.pages import templates
from devlink.web.responses import problem, problems
from devlink.web.security import SECURITY_HEADERS

__all__ = ["BROWSER_COOKIE", "router", "sign_in_policy"]

router = APIRouter(prefix="/oauth", tags=["oauth"])
STATE_LIFETIME = timedelta(minutes=10)
#: The cookie that binds a pending flow to the browser that started it (only its hash is stored).
BROWSER_COOKIE = "devlink_oauth"

ACCOUNT_HELP = "the user, organisation or group to link"
HOST_HELP = "host name, e.g. github.com, gitlab.example.com [default: the kind's public service]"
LINK_HELP = "all, none, or repository names separated by commas"
AUTO_LINK_HELP = "link the account's new repositories as they appear"
#: Bounds of the fields, so nothing oversized reaches the database (account_name is 200 characters).
ACCOUNT_MAX, HOST_MAX, LINK_MAX = 200, 300, 10_000


#: What may stand in a CSP source list: an origin, nothing that could end the directive.
_ORIGIN = re.compile(r"https?://[a-z0-9.\-]+(:[0-9]{1,5})?|https?://\[[0-9a-f:.]+\](:[0-9]{1,5})?")


def sign_in_policy(hosts: Iterable[Host]) -> str:
    """The Content-Security-Policy of a page with a Sign-in form: ``form-action`` also allows the hosts' web origins.

    Without them the browser stops ``POST /start``'s 303 to the authorize page (it checks form-action on
    the redirects a form submission follows).  An origin that is not plainly one is left out.
    """
    origins = sorted({o for o in (origin_of(settings_of(h).web_url) for h in hosts) if _ORIGIN.fullmatch(o)})
    policy = SECURITY_HEADERS["Content-Security-Policy"]
    return policy.replace("form-action 'self'", " ".join(["form-action 'self'", *origins]))


def _callback_url(rt: Runtime, kind: str) -> str:
    return f"{rt.settings.public_url}/oauth/{kind}/callback"


def _kind(kind: str) -> HostKind:
    if kind not in HOSTS:
        raise NotFound(f"no host kind {kind!r}; devlink knows {', '.join(HOSTS)}")
    return for_kind(kind)


def _oauth_host(session: Session, kind: HostKind, host: str) -> Host:
    """The host's row, refused when it has no OAuth application or is of another kind."""
    host = host or kind.default_web_url.split("://", 1)[-1]
    row = session.scalars(select(Host).where(Host.name == host.lower())).first()
    if row is None or not row.oauth_client_id or not row.oauth_client_secret or row.kind not in kind.stored_kinds:
        raise InvalidInput(
            f"no {kind.label} OAuth application is configured for {host}",
            reason="oauth_not_configured",
            hint=f"devlink host set --kind {kind.kind} --url https://{host} --oauth-client-id ID "
                 "--oauth-client-secret -",
        )
    return row


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _set_browser_cookie(rt: Runtime, response: Response, kind: str, value: str) -> None:
    """``value`` = the random value, or ``""`` with ``max_age=0`` to clear it."""
    response.set_cookie(
        BROWSER_COOKIE, value, max_age=int(STATE_LIFETIME.total_seconds()) if value else 0, path=f"/oauth/{kind}",
        secure=rt.settings.base_url.lower().startswith("https://"), httponly=True, samesite="lax",
    )


_NOT_CONFIGURED: dict[int | str, dict[str, Any]] = {
    404: {"description": "not_found: no such host kind"},
    422: {"description": "oauth_not_configured: no OAuth application for that host; invalid: a field"},
}


@router.get("/{kind}/start", response_class=HTMLResponse, response_description="the confirmation page",
            responses=_NOT_CONFIGURED)
def confirm(
    request: Request,
    rt: RuntimeDep,
    kind: str,
    account: Annotated[str, Query(min_length=1, max_length=ACCOUNT_MAX, description=ACCOUNT_HELP)],
    host: Annotated[str, Query(max_length=HOST_MAX, description=HOST_HELP)] = "",
    auto_link: Annotated[bool, Query(description=AUTO_LINK_HELP)] = False,
    link: Annotated[str, Query(max_length=LINK_MAX, description=LINK_HELP)] = "none",
) -> Response:
    """Show what signing in would link, with a button that POSTs here; nothing is stored, nothing redirects.

    Any site can send the browser to this URL, so it only asks (see the module docstring).
    """
    host_kind_ = _kind(kind)
    with rt.sessions() as session:
        row = _oauth_host(session, host_kind_, host)
        name, policy = row.name, sign_in_policy([row])
    names = [] if link in ("all", "none") else [n for n in link.split(",") if n]
    return templates.TemplateResponse(request, "oauth_confirm.html", {
        "account": account, "host": name, "auto_link": auto_link, "link": link, "names": names,
        "kind": host_kind_.kind, "label": host_kind_.label,
    }, headers={"Content-Security-Policy": policy})


@router.post("/{kind}/start", response_class=RedirectResponse, status_code=303, responses=_NOT_CONFIGURED,
             response_description="to the host's authorization page; sets the browser cookie")
def start(
    rt: RuntimeDep,
    kind: str,
    account: Annotated[str, Form(min_length=1, max_length=ACCOUNT_MAX, description=ACCOUNT_HELP)],
    host: Annotated[str, Form(max_length=HOST_MAX, description=HOST_HELP)] = "",
    auto_link: Annotated[bool, Form(description=AUTO_LINK_HELP)] = False,
    link: Annotated[str, Form(max_length=LINK_MAX, description=LINK_HELP)] = "none",
) -> Response:
    """Send the browser to the host to grant devlink access (state + PKCE S256, bound to this browser)."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    state, browser = secrets.token_urlsafe(24), secrets.token_urlsafe(32)
    host_kind_ = _kind(kind)
    with rt.sessions.begin() as session:
        row = _oauth_host(session, host_kind_, host)
        session.execute(delete(OAuthState).where(OAuthState.created_at < utcnow() - STATE_LIFETIME))
        options = {"auto_link": auto_link, "link": link, "browser": _digest(browser)}
        session.add(OAuthState(state=state, host_id=row.id, account_name=account, verifier=rt.vault.encrypt(verifier),
                               options=json.dumps(options)))
        url = host_kind_.oauth_authorize_url(settings_of(row), row.oauth_client_id or "", _callback_url(rt, kind),
                                             state, challenge)
    response = RedirectResponse(url, status_code=303)
    _set_browser_cookie(rt, response, kind, browser)
    return response


@router.get("/{kind}/callback", response_class=RedirectResponse, status_code=303,
            response_description="to the linked account's page; clears the browser cookie", responses={
    403: {"description": "other_browser: the callback came back to a browser that did not start the flow"},
    404: {"description": "bad_state: unknown or expired"},
    422: {"description": "the host refused (auth, bad_code, …), or linking failed"},
    **problems(429, 502),
})
async def callback(
    request: Request, rt: RuntimeDep, kind: str, code: str = "", state: str = "", error: str = "",
) -> Response:
    """Trade the code for a token, link the account, and show it; the browser cookie is cleared either way."""
    try:
        response = await _finish(rt, _kind(kind), code, state, error, request.cookies.get(BROWSER_COOKIE, ""))
    except DevlinkError as exc:
        response = problem(exc.status, exc.reason, exc.message, exc.hint)
    if kind in HOSTS:
        _set_browser_cookie(rt, response, kind, "")
    return response


@dataclass(frozen=True)
class _Pending:
    """What a stored state holds, read once: the row is gone when this exists."""

    account: str
    options: dict[str, Any]
    kind: HostKind
    settings: HostSettings
    client_id: str
    client_secret: str = field(repr=False)
    verifier: str = field(repr=False)


def _take_state(rt: Runtime, kind: HostKind, state: str) -> _Pending:
    """The pending flow of ``state``, deleted (used once, whatever happens next)."""
    with rt.sessions.begin() as session:
        pending = session.get(OAuthState, state) if state else None
        if pending is None or pending.created_at < utcnow() - STATE_LIFETIME:
            raise NotFound("unknown or expired OAuth state; start linking again", reason="bad_state")
        session.delete(pending)
        host = session.get(Host, pending.host_id)
        assert host is not None and host.oauth_client_id and host.oauth_client_secret
        other = None if host.kind in kind.stored_kinds else host_kind(host).label
        taken = _Pending(pending.account_name, json.loads(pending.options), kind, settings_of(host),
                         host.oauth_client_id,
                         rt.vault.decrypt(host.oauth_client_secret), rt.vault.decrypt(pending.verifier))
    if other is not None:  # raised after the commit: the state is used up all the same
        raise NotFound(f"this OAuth state belongs to a {other} host, not {kind.label}; start linking again",
                       reason="bad_state")
    return taken


def _same_browser(pending: _Pending, cookie: str) -> bool:
    """Whether ``cookie`` is the value the flow's start gave this browser (its hash is in the options)."""
    expected = pending.options.get("browser")
    return isinstance(expected, str) and bool(cookie) and hmac.compare_digest(expected, _digest(cookie))


async def _finish(rt: Runtime, kind: HostKind, code: str, state: str, error: str, cookie: str) -> Response:
    if error:
        if state:
            with rt.sessions.begin() as session:  # a denied flow's state is used up too
                session.execute(delete(OAuthState).where(OAuthState.state == state))
        raise HostError(f"the host did not grant access: {error}", reason="auth")
    pending = _take_state(rt, kind, state)
    if not _same_browser(pending, cookie):
        return problem(
            403, "other_browser", "this OAuth callback did not come back to the browser that started linking; "
            "nothing was linked",
            f"start again with Sign in on devlink's Accounts page, in one browser, at {rt.settings.public_url} "
            "(the flow needs its cookie)",
        )
    if not code:
        raise InvalidInput("the callback carries no code", reason="bad_code")
    settings = pending.settings
    grant = await run_in_threadpool(kind.exchange_oauth_code, settings, pending.client_id, pending.client_secret,
                                    code, _callback_url(rt, kind.kind), pending.verifier)
    link = pending.options.get("link", "none")
    chosen: str | list[str] = link if link in ("all", "none") else [n for n in link.split(",") if n]
    account_id, found = await run_in_threadpool(link_account, rt, AccountOptions(
        name=pending.account, kind=kind.kind, web_url=settings.web_url, api_url=settings.api_url,
        token=grant.access_token, grant=grant, auto_link=bool(pending.options.get("auto_link")), link=chosen,
    ))
    for repository_id in found.linked:
        rt.queue.request_sync(repository_id, full=True, trigger="manual")
    return RedirectResponse(f"/accounts/{account_id}", status_code=303)
