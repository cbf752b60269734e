"""The host protocol: what a host kind (``github``, ``gitlab``, …) provides the engine, the web layer and the CLI.

A host kind is one module exposing ``HOST``, an object with the attributes and
methods of ``HostKind``; ``devlink.hosts.for_kind`` finds it.  Everything the
engine keeps between calls (the credential, the ETag cache, the rate budget,
the webhook secrets) it hands in as plain values; a host module never touches
the store.  See docs/architecture.md, "What a host provides".
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol
from urllib.parse import urlsplit

from devlink.hosts.base import RemoteAccount, RemotePullRequest, RemoteRepository, WebhookEvent

__all__ = [
    "ConditionalCache",
    "Credential",
    "DeliveryHead",
    "HookTarget",
    "HostClient",
    "HostKind",
    "HostSettings",
    "RateLimit",
    "RemoteHook",
    "TokenGrant",
]


@dataclass(frozen=True)
class HostSettings:
    """Where a host is and how to reach it; the same CA bundle, proxy and timeout reach git too."""

    web_url: str
    api_url: str
    ca_bundle: str | None = None
    proxy: str | None = None  # None: HTTPS_PROXY / HTTP_PROXY / NO_PROXY from the environment
    timeout: float = 30.0

    @property
    def name(self) -> str:
        return urlsplit(self.web_url).netloc or self.web_url


@dataclass(frozen=True)
class Credential:
    """What an account acts with, decrypted.  ``options`` holds a kind's own parts (a GitHub App's id and key).

    ``expires_at`` is when ``token`` stops working (OAuth tokens of some hosts
    last two hours); the engine refreshes it with ``refresh_token`` first.
    """

    token: str | None = None
    auth_kind: str = "token"  # token | oauth | app
    refresh_token: str | None = None
    expires_at: datetime | None = None
    options: Mapping[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"Credential(kind={self.auth_kind}, secret=[secure])"


@dataclass(frozen=True)
class TokenGrant:
    """An OAuth token endpoint's answer."""

    access_token: str
    refresh_token: str | None = None
    expires_at: datetime | None = None
    scopes: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"TokenGrant(expires_at={self.expires_at}, scopes={self.scopes}, secret=[secure])"


@dataclass(frozen=True)
class RateLimit:
    limit: int
    remaining: int
    reset_at: datetime


class ConditionalCache(Protocol):
    """ETag store: ``get`` the (etag, body) last seen for a URL, ``put`` a new one."""

    def get(self, url: str) -> tuple[str, str] | None: ...

    def put(self, url: str, etag: str, body: str) -> None: ...


@dataclass(frozen=True)
class HookTarget:
    """Where a webhook lives: one repository, or a whole account (an organisation or group hook)."""

    level: Literal["repository", "account"]
    path: str  # the repository's full path on the host, or the account's name
    external_id: str  # the host's id of that repository or account


@dataclass(frozen=True)
class RemoteHook:
    """One webhook as the host lists it; ``current`` when its events and settings are the ones devlink wants."""

    id: str
    url: str | None
    current: bool


@dataclass(frozen=True)
class DeliveryHead:
    """What a delivery's headers (and URL query) say, before the body is read.

    ``level`` and ``target_id`` name where the hook was created (``app`` for a
    hook that belongs to the host, such as a GitHub App's); ``hook_id`` is the
    host's id of the hook when the host sends it.  ``delivery_id`` None: the
    host sent none, the engine dedupes on a hash of the body.
    """

    event: str
    delivery_id: str | None
    signature: str = field(repr=False)  # a GitLab token is the secret itself
    level: Literal["repository", "account", "app"]
    target_id: str
    hook_id: str | None = None


class HostClient(Protocol):
    """An API client for one account; a context manager.  Every call raises ``HostError`` with a reason."""

    settings: HostSettings

    def __enter__(self) -> HostClient: ...

    def __exit__(self, *exc: object) -> None: ...

    def viewer(self) -> str | None:
        """Check the credential (scopes, host version) and name who it acts as (None: an app acting as itself)."""
        ...

    def account(self, name: str) -> RemoteAccount:
        """The user, organisation, group or workspace ``name``; ``not_found`` when it is not visible."""
        ...

    def repositories(self, account: RemoteAccount, viewer: str | None) -> list[RemoteRepository]:
        """Every repository of ``account`` the credential can see (a group's subgroups included)."""
        ...

    def repository(self, external_id: str) -> RemoteRepository: ...

    def hooks(self, target: HookTarget) -> list[RemoteHook]: ...

    def create_hook(self, target: HookTarget, url: str, secret: str) -> str: ...

    def update_hook(self, target: HookTarget, hook_id: str, url: str, secret: str) -> None: ...

    def delete_hook(self, target: HookTarget, hook_id: str) -> None: ...

    def pulls(
        self, repository: RemoteRepository, since: datetime | None = None
    ) -> Iterator[tuple[RemotePullRequest, bool]]:
        """Pull (merge) requests, most recently updated first, each with whether its page changed.

        ``since``: a host that can filter by update time may stop at it; the engine stops there anyway.
        """
        ...

    def pull_details(self, repository: RemoteRepository, number: int) -> RemotePullRequest:
        """One pull request with reviewers, approvals and comment count."""
        ...

    def git_credentials(self) -> tuple[str, str]:
        """(user name, password) git sends over HTTPS, as this host wants them (``x-access-token``, ``oauth2``…)."""
        ...


class HostKind(Protocol):
    """A host kind: its defaults, its client, its webhooks and its OAuth flow."""

    kind: str  # the registry key and the URL segment: /hooks/{kind}, /oauth/{kind}/…
    label: str  # "GitHub", "GitLab"
    stored_kinds: tuple[str, ...]  # the values of hosts.kind it owns ("github", "github-enterprise")
    default_web_url: str
    account_words: Mapping[str, str]  # namespace kind → the host's own word ("organization" → "organisation")
    token_help: str  # what kind of token to create, with the scopes it needs
    max_body: int  # the largest webhook body the host sends
    signs_body: bool  # False: the secret travels in a header (GitLab's token), so it is checked before the body
    secret_options: frozenset[str]  # host or account option names that hold secrets (stored encrypted)
    host_option_names: tuple[str, ...]  # the host options an admin may set (a GitHub App's id, key, secret)

    def canonical_web_url(self, web_url: str) -> str: ...

    def api_url_for(self, web_url: str) -> str: ...

    def check_api_url(self, web_url: str, api_url: str) -> str | None:
        """Why ``api_url`` cannot be this host's API (a fixed public API), or None."""
        ...

    def stored_kind(self, web_url: str) -> str:
        """The ``hosts.kind`` a new host at ``web_url`` gets."""
        ...

    def client(
        self, settings: HostSettings, credential: Credential, *, cache: ConditionalCache | None = None,
        on_rate: Callable[[RateLimit], None] | None = None,
    ) -> HostClient: ...

    def prepare_credential(
        self, settings: HostSettings, name: str, token: str | None, options: Mapping[str, str]
    ) -> Credential:
        """The credential to link ``name`` with, from a token and/or this kind's options (may ask the host)."""
        ...

    def account_options(self, credential: Credential) -> dict[str, str]:
        """What to keep on the account besides the token (a GitHub App installation id)."""
        ...

    def host_options(self, credential: Credential) -> dict[str, str]:
        """What to keep on the host from a credential (a GitHub App's id and key)."""
        ...

    def hosts_own_hook(self, host_options: Mapping[str, str], auth_kind: str) -> bool:
        """Whether the host itself delivers for this account (a GitHub App's webhook): no hooks to install."""
        ...

    def hook_url(self, base_url: str, target: HookTarget) -> str:
        """The URL a webhook on ``target`` calls (``base_url`` is devlink's public URL)."""
        ...

    def read_delivery(self, headers: Mapping[str, str], query: Mapping[str, str]) -> DeliveryHead:
        """The headers' facts; ``DeliveryError`` (400) or ``Unauthorized`` (401) when they cannot be a delivery."""
        ...

    def verify(self, secret: str, body: bytes, head: DeliveryHead) -> bool:
        """Whether the delivery was made with ``secret``; constant time."""
        ...

    def host_secret(self, options: Mapping[str, str], head: DeliveryHead) -> str | None:
        """For an ``app``-level delivery: the (decrypted) secret of the host's own hook it names, or None."""
        ...

    def parse(self, event: str, payload: dict[str, object]) -> WebhookEvent:
        """A verified payload as an event value; ``WebhookPayloadError`` when it cannot be one."""
        ...

    def payload_target(self, payload: dict[str, object]) -> tuple[str | None, tuple[str, str] | None]:
        """(the repository id the payload names, (account option, value) naming its account, e.g. an installation)."""
        ...

    def oauth_authorize_url(
        self, settings: HostSettings, client_id: str, redirect_uri: str, state: str, challenge: str
    ) -> str: ...

    def exchange_oauth_code(
        self, settings: HostSettings, client_id: str, client_secret: str, code: str, redirect_uri: str, verifier: str
    ) -> TokenGrant: ...

    def refresh_oauth_token(
        self, settings: HostSettings, client_id: str, client_secret: str, refresh_token: str
    ) -> TokenGrant: ...
