"""Pages to link a host account and pick its repositories (the wizard), beside ``pages.py``.

Step 1, ``/accounts``: host kind, host URL, account and token (or "Sign in
with HOST" when the host has an OAuth application).  Step 2, ``/accounts/{id}``: every
repository found, with checkboxes, auto-link and smart-commit toggles, and why
a repository is not real-time when its webhook could not be installed.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from devlink.errors import DevlinkError
from devlink.hosts import for_kind, kinds
from devlink.store import queries
from devlink.store.models import Host, Repository
from devlink.sync.accounts import (
    AccountOptions,
    account_views,
    discover,
    find_account,
    link_account,
    link_repositories,
    set_account_options,
)
from devlink.web.deps import RuntimeDep, SessionDep
from devlink.web.oauth import sign_in_policy
from devlink.web.pages import templates

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


def _accounts_page(
    request: Request, session: Session, error: str | None = None, code: int = 200, typed: dict[str, str] | None = None
) -> Response:
    """``typed``: the name and URL the refused form held (never the token), shown again."""
    oauth_hosts = list(session.scalars(select(Host).where(Host.oauth_client_id.is_not(None))))
    host_kinds = [for_kind(k) for k in kinds()]
    return templates.TemplateResponse(
        request, "accounts.html",
        {"accounts": account_views(session), "error": error, "typed": typed or {},
         "oauth_hosts": [{"name": h.name, "kind": for_kind(h.kind).kind} for h in oauth_hosts],
         "kinds": [{"kind": k.kind, "label": k.label, "url": k.default_web_url} for k in host_kinds]},
        status_code=code, headers={"Content-Security-Policy": sign_in_policy(oauth_hosts)} if oauth_hosts else None,
    )


@router.get("/accounts", response_class=HTMLResponse)
def accounts(request: Request, session: SessionDep) -> Response:
    return _accounts_page(request, session)


@router.post("/accounts", response_class=HTMLResponse)
async def add_account(
    request: Request,
    rt: RuntimeDep,
    session: SessionDep,
    name: Annotated[str, Form()],
    token: Annotated[str, Form()],
    kind: Annotated[str, Form()] = "",
    url: Annotated[str, Form()] = "",
    link_all: Annotated[str, Form()] = "",
    auto_link: Annotated[str, Form()] = "",
) -> Response:
    options = AccountOptions(name=name.strip(), kind=kind.strip(), web_url=url.strip(), token=token.strip(),
                             link="all" if link_all else "none", auto_link=bool(auto_link))
    try:
        account_id, found = await run_in_threadpool(link_account, rt, options)
    except DevlinkError as exc:
        return _accounts_page(request, session, error=exc.message + (f" ({exc.hint})" if exc.hint else ""),
                              code=exc.status, typed={"name": name, "url": url, "kind": kind})
    for repository_id in found.linked:
        rt.queue.request_sync(repository_id, full=True, trigger="manual")
    return RedirectResponse(f"/accounts/{account_id}", status_code=status.HTTP_303_SEE_OTHER)


def _account_page(request: Request, session: Session, ref: str, error: str | None = None) -> Response:
    account = find_account(session, ref)
    view = next(v for v in account_views(session) if v["id"] == account.id)
    rows = session.scalars(select(Repository).where(Repository.account_id == account.id).order_by(Repository.name))
    repositories: list[dict[str, Any]] = queries.repository_views(session, rows)
    busy = any(r["sync"]["state"] in ("queued", "running") for r in repositories)
    return templates.TemplateResponse(
        request, "account.html", {"account": view, "repositories": repositories, "busy": busy, "error": error},
    )


@router.get("/accounts/{account}", response_class=HTMLResponse)
def account_page(request: Request, account: str, session: SessionDep) -> Response:
    return _account_page(request, session, account)


@router.post("/accounts/{account}/repositories")
async def choose_repositories(
    request: Request, account: str, rt: RuntimeDep, session: SessionDep,
    action: Annotated[str, Form()],
    repository: Annotated[list[str] | None, Form()] = None,
) -> Response:
    """The checkboxes: link or unlink the ticked repositories (``link-all`` takes every one)."""
    account_id = find_account(session, account).id
    names: str | list[str] = "all" if action == "link-all" else list(repository or [])
    try:
        if action == "unlink":
            await run_in_threadpool(link_repositories, rt, account_id, names, linked=False)
        elif names:
            for repository_id in await run_in_threadpool(link_repositories, rt, account_id, names):
                rt.queue.request_sync(repository_id, full=True, trigger="manual")
    except DevlinkError as exc:
        return _account_page(request, session, account, error=exc.message)
    return RedirectResponse(f"/accounts/{account_id}", status_code=status.HTTP_303_SEE_OTHER)


@router.post("/accounts/{account}/settings")
def account_settings(
    account: str, rt: RuntimeDep,
    auto_link: Annotated[str, Form()] = "", smart_commits: Annotated[str, Form()] = "",
) -> Response:
    view = set_account_options(rt, account, auto_link=bool(auto_link), smart_commits=bool(smart_commits))
    return RedirectResponse(f"/accounts/{view['id']}", status_code=status.HTTP_303_SEE_OTHER)


@router.post("/accounts/{account}/discover")
async def rediscover(request: Request, account: str, rt: RuntimeDep, session: SessionDep) -> Response:
    account_id = find_account(session, account).id
    try:
        found = await run_in_threadpool(discover, rt, account_id)
    except DevlinkError as exc:
        return _account_page(request, session, account, error=exc.message)
    for repository_id in found.linked:
        rt.queue.request_sync(repository_id, full=True, trigger="manual")
    return RedirectResponse(f"/accounts/{account_id}", status_code=status.HTTP_303_SEE_OTHER)
