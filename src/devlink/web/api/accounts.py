"""``/api/v1/accounts``: link host accounts, discover and choose their repositories.

The same functions as ``devlink account``; credentials go in and never come out.
"""

from typing import Any, Literal

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from devlink.hosts import kinds
from devlink.store import queries
from devlink.store.models import Repository
from devlink.sync.accounts import (
    AccountOptions,
    Discovery,
    account_views,
    discover,
    find_account,
    link_account,
    link_repositories,
    remove_account,
    set_account_options,
)
from devlink.sync.identities import set_account_trust
from devlink.web.deps import RuntimeDep, SessionDep
from devlink.web.responses import problems

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/accounts", tags=["accounts"])


#: What the API accepts as a host, API or proxy URL (httpx and git reach nothing else).
_HTTP_URL = r"^https?://[^\s/?#]+[^\s]*$"


class AccountIn(BaseModel):
    model_config = ConfigDict(strict=True)  # 0 is not false, "1" is not true: the schema says boolean
    host: str = Field(default=kinds()[0], description="host kind", json_schema_extra={"enum": list(kinds())})
    name: str = Field(description="the user, organisation or group (its full path) to link")
    url: str = Field(default="", description="web URL of a self-hosted server ('': the kind's public service)")
    api_url: str | None = Field(default=None, pattern=_HTTP_URL, description=(
        "must match the host's (a new host takes its kind's default, e.g. URL/api/v4)"))
    token: str | None = Field(default=None, description="access token; stored encrypted, never returned")
    app_id: str | None = Field(default=None, description="GitHub App id (with private_key)")
    private_key: str | None = Field(default=None, description="GitHub App private key, PEM")
    installation_id: str | None = Field(default=None, pattern=r"^[0-9]{1,19}$",
                                        description="default: the App's installation on the account")
    ca_bundle: str | None = Field(default=None, description="path of a PEM file of CAs to trust for this host")
    proxy: str | None = Field(default=None, pattern=_HTTP_URL,
                               description="HTTP(S) proxy; default: the *_PROXY environment")
    timeout: float | None = Field(default=None, gt=0, le=3600, description="seconds per request (default 30)")
    auto_link: bool = Field(default=False, description="link repositories created later")
    smart_commits: bool = Field(default=True, description="smart commits on for repositories linked from it")
    link: Literal["all", "none"] | list[str] = Field(default="none", description="all, none, or repository names")


class AccountPatch(BaseModel):
    model_config = ConfigDict(strict=True)
    auto_link: bool | None = None
    smart_commits: bool | None = None
    smart_commit_trust: Literal["author", "pusher", "signed"] | None = Field(
        default=None, description="the trust policy of its repositories that set none (see the repository's); "
                                  "null: author")


class LinkIn(BaseModel):
    model_config = ConfigDict(strict=True)
    repositories: Literal["all"] | list[str] = Field(description="'all' or repository names (owner/name or name)")


def _discovery_view(found: Discovery) -> dict[str, Any]:
    return {"found": found.found, "new": found.new, "renamed": [list(pair) for pair in found.renamed],
            "gone": found.gone, "linked": found.linked, "webhooks": found.hooks, "warnings": found.warnings}


@router.get("")
def list_accounts(session: SessionDep) -> list[dict[str, Any]]:
    """Linked accounts with host, options, rate-limit budget and last error."""
    return account_views(session)


@router.post("", status_code=status.HTTP_201_CREATED, responses=problems(404, 409, 429, 502))
async def create_account(body: AccountIn, rt: RuntimeDep, response: Response) -> dict[str, Any]:
    """Verify the credential, link the account, discover its repositories and link the chosen ones.

    Linked repositories get a webhook and a queued backfill.
    """
    fields = body.model_dump(exclude={"host", "url", "app_id", "private_key", "installation_id"})
    own = {"app_id": body.app_id, "app_private_key": body.private_key, "installation_id": body.installation_id}
    options = AccountOptions(kind=body.host, web_url=body.url, options={k: v for k, v in own.items() if v}, **fields)
    account_id, found = await run_in_threadpool(link_account, rt, options)
    for repository_id in found.linked:
        rt.queue.request_sync(repository_id, full=True, trigger="manual")
    response.headers["Location"] = f"/api/v1/accounts/{account_id}"
    return {**_account(rt, account_id), "discovery": _discovery_view(found)}


def _account(rt: RuntimeDep, account_id: int) -> dict[str, Any]:
    with rt.sessions() as session:
        return next(v for v in account_views(session) if v["id"] == account_id)


@router.get("/{account}", responses=problems(404))
def get_account(account: str, rt: RuntimeDep, session: SessionDep) -> dict[str, Any]:
    return _account(rt, find_account(session, account).id)


@router.patch("/{account}", responses=problems(404))
def patch_account(account: str, body: AccountPatch, rt: RuntimeDep) -> dict[str, Any]:
    """Auto-link and smart-commit defaults."""
    view = set_account_options(rt, account, auto_link=body.auto_link, smart_commits=body.smart_commits)
    if "smart_commit_trust" in body.model_fields_set:
        set_account_trust(rt, str(view["id"]), body.smart_commit_trust)
    return _account(rt, view["id"])


@router.delete("/{account}", status_code=status.HTTP_204_NO_CONTENT, responses=problems(404, 429, 502))
async def delete_account(account: str, rt: RuntimeDep) -> Response:
    """Remove devlink's webhooks and forget the account with its repositories' data."""
    await run_in_threadpool(remove_account, rt, account)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{account}/repositories", responses=problems(404))
def account_repositories(account: str, session: SessionDep) -> list[dict[str, Any]]:
    """Every repository discovered on the account, linked or not."""
    account_id = find_account(session, account).id
    rows = session.scalars(select(Repository).where(Repository.account_id == account_id).order_by(Repository.name))
    return queries.repository_views(session, rows)


@router.post("/{account}/discover", responses=problems(404, 429, 502))
async def rediscover(account: str, rt: RuntimeDep, session: SessionDep) -> dict[str, Any]:
    """List the host's repositories again now (it also runs daily and on ``repository`` webhooks)."""
    account_id = find_account(session, account).id
    found = await run_in_threadpool(discover, rt, account_id)
    for repository_id in found.linked:
        rt.queue.request_sync(repository_id, full=True, trigger="manual")
    return _discovery_view(found)


@router.post("/{account}/repositories/link", responses=problems(404, 429, 502))
async def link(account: str, body: LinkIn, rt: RuntimeDep, session: SessionDep) -> dict[str, Any]:
    """Link repositories (installing webhooks) and queue their backfill."""
    account_id = find_account(session, account).id
    changed = await run_in_threadpool(link_repositories, rt, account_id, body.repositories)
    for repository_id in changed:
        rt.queue.request_sync(repository_id, full=True, trigger="manual")
    return {"linked": changed}


@router.post("/{account}/repositories/unlink", responses=problems(404, 429, 502))
async def unlink(account: str, body: LinkIn, rt: RuntimeDep, session: SessionDep) -> dict[str, Any]:
    """Stop syncing repositories and remove their webhooks; their data stays."""
    account_id = find_account(session, account).id
    changed = await run_in_threadpool(link_repositories, rt, account_id, body.repositories, linked=False)
    return {"unlinked": changed}
