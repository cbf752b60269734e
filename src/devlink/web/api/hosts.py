"""``/api/v1/hosts``: each host's settings, which decide where its accounts' credentials go.

These endpoints and ``devlink host set`` are the only way to change a host:
linking an account never does (``sync.accounts.host_for_link``).  Secrets are
write-only; a view says whether each is set.  devlink has no users yet, so
whoever reaches the API may change a host; once it has users, only admins will.
"""

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from devlink.errors import InvalidInput
from devlink.sync.accounts import AccountOptions, configure_host, find_host, host_view, host_views
from devlink.web.deps import RuntimeDep, SessionDep
from devlink.web.responses import problems

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/hosts", tags=["hosts"])


class HostPatch(BaseModel):
    """The settings to change; a field left out stays as it is, ``""`` clears it (or restores the default)."""

    model_config = ConfigDict(extra="forbid")

    api_url: str | None = Field(default=None, max_length=500, description=(
        "REST API URL ('' restores the kind's default). The host's accounts are re-pinned to it: "
        "their credentials go there from now on"))
    ca_bundle: str | None = Field(default=None, max_length=1000, description="PEM file of CAs to trust ('' clears)")
    proxy: str | None = Field(default=None, max_length=500, description="HTTP(S) proxy ('' clears: *_PROXY applies)")
    timeout: float | None = Field(default=None, gt=0, le=3600, description="seconds per request")
    oauth_client_id: str | None = Field(default=None, max_length=200,
                                        description="OAuth application client id ('' clears)")
    oauth_client_secret: str | None = Field(default=None, max_length=500, description="write-only ('' clears)")
    app_id: str | None = Field(default=None, max_length=50, description="GitHub App id, with private_key")
    private_key: str | None = Field(default=None, max_length=20000, description="GitHub App private key (PEM), "
                                                                                 "write-only")
    app_webhook_secret: str | None = Field(default=None, max_length=500, description="write-only ('' clears)")


@router.get("")
def list_hosts(session: SessionDep) -> list[dict[str, Any]]:
    """Every host with an API, by name; secrets only as ``*_set`` booleans."""
    return host_views(session)


@router.get("/{name:path}", responses=problems(404))
def get_host(name: str, session: SessionDep) -> dict[str, Any]:
    """One host by name (``github.com``, ``ghe.example.com``) or id."""
    return host_view(find_host(session, name))


@router.patch("/{name:path}", responses=problems(404, 409))
def patch_host(name: str, body: HostPatch, rt: RuntimeDep, session: SessionDep) -> dict[str, Any]:
    """Change a host's settings; ``repinned`` lists the accounts whose credentials now go to its new API origin."""
    if (body.app_id is None) != (body.private_key is None):
        raise InvalidInput("app_id and private_key go together", reason="invalid")
    web_url = find_host(session, name).web_url or ""
    options = AccountOptions(name="", web_url=web_url, api_url=body.api_url, ca_bundle=body.ca_bundle,
                             proxy=body.proxy, timeout=body.timeout)
    own = {"app_id": body.app_id, "app_private_key": body.private_key, "app_webhook_secret": body.app_webhook_secret}
    return configure_host(rt, options, oauth_client_id=body.oauth_client_id,
                          oauth_client_secret=body.oauth_client_secret,
                          host_options={k: v for k, v in own.items() if v is not None} or None, create=False)
