"""Link a host account, discover its repositories, link them and keep their webhooks right.

The functions behind ``devlink account``, ``devlink host``, the accounts and hosts APIs and the wizard.
Repositories are matched on the host's repository id, never the name, so a
renamed or transferred repository keeps its commits, branches and links.

A host's settings (API URL, TLS, proxy, timeout) decide where the credential
of every account on it goes, so only ``configure_host`` changes them: linking
an account may create a host, never alter one, and each account remembers the
API origin its credential was verified against (``Account.api_origin``).
"""

import hashlib
import ipaddress
import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from devlink.crypto import Vault
from devlink.errors import Conflict, InvalidInput, NotFound
from devlink.hosts import for_kind, kinds, registered_kind
from devlink.hosts.base import HostError, RemoteAccount, RemoteRepository, origin_of
from devlink.hosts.protocol import HookTarget, HostClient, HostKind, TokenGrant
from devlink.runtime import Runtime
from devlink.store.models import Account, Host, Repository, utcnow
from devlink.store.queries import account_view
from devlink.sync.host_clients import client_for, dump_options, host_kind, load_options, settings_of

__all__ = [
    "AccountOptions",
    "Discovery",
    "account_views",
    "configure_host",
    "discover",
    "discover_due",
    "find_account",
    "find_host",
    "hook_url",
    "hook_url_warning",
    "host_for_link",
    "host_view",
    "host_views",
    "kind_named",
    "link_account",
    "link_repositories",
    "parse_row_id",
    "remove_account",
    "set_account_options",
    "unlink_repository",
]

log = logging.getLogger(__name__)

#: Row ids are 64-bit signed on every engine; a larger number is no row's id.
MAX_ROW_ID = 2**63 - 1

UNAVAILABLE = (
    "the credential cannot manage webhooks here ({cause}); this repository syncs every {minutes} min "
    "instead of in real time. Give the credential what the host needs to manage webhooks ({needs}) and run "
    "discovery again"
)


@dataclass(frozen=True)
class AccountOptions:
    """How to reach the host and what to link; everything but ``name`` and one credential has a default."""

    name: str
    kind: str = ""  # a registered host kind; "" is the first (``hosts.kinds()``)
    web_url: str = ""  # "" is the kind's default (its public service)
    api_url: str | None = None
    token: str | None = None
    #: the host kind's own credential parts (a GitHub App: ``app_id``, ``app_private_key``, ``installation_id``)
    options: Mapping[str, str] = field(default_factory=dict)
    grant: TokenGrant | None = None  # the token came from the OAuth web flow, with its refresh token and expiry
    ca_bundle: str | None = None
    proxy: str | None = None
    timeout: float | None = None
    auto_link: bool = False
    smart_commits: bool = True
    link: str | list[str] = "none"  # "all", "none", or repository names
    #: linking may create a new host with the connection settings given here (the CLI: the operator's own
    #: tool); over the web, a new host starts from its defaults and an admin changes them (``configure_host``)
    may_set_up_host: bool = False


@dataclass
class Discovery:
    """What a discovery run changed."""

    account_id: int
    found: int = 0
    new: list[str] = field(default_factory=list)
    renamed: list[tuple[str, str]] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)
    linked: list[int] = field(default_factory=list)  # newly linked: the caller starts their backfill
    hooks: dict[str, str] = field(default_factory=dict)  # repository name → webhook state
    warnings: list[str] = field(default_factory=list)  # e.g. the host cannot reach the webhook URL


def kind_named(kind: str) -> HostKind:
    """A registered host kind by name ("" is the first); 422 naming the kinds there are."""
    try:
        return for_kind(kind or kinds()[0])
    except KeyError:
        raise InvalidInput(f"unknown host kind {kind!r}; devlink knows {', '.join(kinds())}",
                           reason="bad_kind") from None


def host_kind_name(session: Session, account: Account) -> str:
    """The registered kind of an account's host, without importing its module."""
    host = session.get(Host, account.host_id)
    return registered_kind(host.kind) if host is not None else ""


def hook_url(rt: Runtime, kind: HostKind, target: HookTarget) -> str:
    """The address a webhook of ``kind`` on ``target`` calls."""
    return kind.hook_url(rt.settings.public_url, target)


def hook_url_warning(rt: Runtime, kind: str = "") -> str | None:
    """Why a host could not deliver to ``/hooks/{kind}`` (a loopback or unspecified address), or None when it may."""
    url = f"{rt.settings.public_url}/hooks/{kind or '…'}"
    name = (urlsplit(url).hostname or "").lower()
    fix = "set DEVLINK_BASE_URL to the address the host reaches devlink at"
    if name == "localhost" or name.endswith(".localhost"):
        return f"the host will call {url}, which only this machine can reach; {fix}"
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return None
    if address.is_unspecified:
        return f"the host will call {url}, but {name} is an address to listen on, not one to call; {fix}"
    if address.is_loopback:
        return f"the host will call {url}, which only this machine can reach; {fix}"
    return None


def parse_row_id(ref: str) -> int | None:
    """``ref`` as a row id: ASCII digits only (``int()`` also reads ``٣`` as 3) and within 64 bits; else None."""
    if not (ref.isascii() and ref.isdigit()):
        return None
    number = int(ref)
    return number if number <= MAX_ROW_ID else None


def _host_name(kind: HostKind, web_url: str) -> tuple[str, str]:
    """(the host's name, its web URL) for ``http(s)://HOST[/PATH]``."""
    web = kind.canonical_web_url(web_url or kind.default_web_url)
    parts = urlsplit(web)
    if parts.scheme not in ("http", "https") or not parts.hostname or "@" in parts.netloc or parts.query:
        raise InvalidInput(f"host URL must be http(s)://HOST (got {web_url!r})", reason="bad_url")
    return parts.netloc.lower() + parts.path.rstrip("/"), web


def _api_url(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or "@" in parts.netloc or parts.query:
        raise InvalidInput(f"the API URL must be http(s)://HOST[/PATH] (got {url!r})", reason="bad_url")
    return url.strip().rstrip("/")


def _proxy_url(url: str) -> str:
    """A proxy both the API client and git can use: http(s)://HOST[:PORT], without credentials.

    Credentials in a proxy URL would be stored and shown in the clear (a host's
    view lists its proxy), so they are refused rather than kept.
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput("the proxy must be an http(s)://HOST[:PORT] URL", reason="bad_url")
    if "@" in parts.netloc:
        raise InvalidInput("a proxy URL cannot carry credentials: devlink would store and show them in the clear",
                           reason="bad_url", hint="use a proxy that admits devlink's address without a password")
    try:
        parts.port  # noqa: B018 - a port that is not a number raises here
    except ValueError:
        raise InvalidInput("the proxy URL has an invalid port", reason="bad_url") from None
    return url.strip().rstrip("/")


def _differences(host: Host, options: AccountOptions, vault: Vault) -> list[str]:
    """The settings ``options`` gives that differ from the host's (what is not given is not compared)."""
    stored, kind = settings_of(host), host_kind(host)
    differ = []
    if options.api_url and _api_url(options.api_url) != stored.api_url:
        differ.append("api_url")
    if options.ca_bundle is not None and (options.ca_bundle or None) != host.ca_bundle:
        differ.append("ca_bundle")
    if options.proxy is not None and (_proxy_url(options.proxy) if options.proxy else None) != host.proxy:
        differ.append("proxy")
    if options.timeout is not None and float(options.timeout) != stored.timeout:
        differ.append("timeout")
    kept = load_options(host.options, vault, kind.secret_options)
    given = {k: v for k, v in options.options.items() if k in kind.host_option_names and v}
    if any(k in kept for k in given) and any(kept.get(k) != v for k, v in given.items()):
        differ.append(", ".join(sorted(given)))
    return differ


def host_for_link(session: Session, options: AccountOptions, vault: Vault) -> Host:
    """The host row for a web URL to link an account on: created with ``options`` on first use, never changed.

    Anyone who may link an account reaches this, and a host's settings decide
    where every account's credential on it goes; so options that differ from
    an existing host's are refused (409), never applied nor silently ignored.
    ``configure_host`` (``devlink host set``, ``PATCH /api/v1/hosts/{name}``) changes them.
    """
    kind = kind_named(options.kind)
    name, web = _host_name(kind, options.web_url)
    host = session.scalars(select(Host).where(Host.name == name)).first()
    if host is None:
        host = _new_host(kind, name, web)
        given = _connection_settings_given(host, options)
        if given and not options.may_set_up_host:
            raise Conflict(
                f"host {name} is not set up yet, and linking an account does not set a host's "
                f"{', '.join(given)}", reason="host_settings",
                hint=f"leave {', '.join(given)} out to use the defaults, or set the host up first: "
                     f"devlink host set --url {web} …",
            )
        _apply_settings(host, options)
        session.add(host)
        session.flush()
        return host
    _same_kind(host, kind)
    differ = _differences(host, options, vault)
    if differ:
        raise Conflict(
            f"host {name} is set up with another {', '.join(differ)}; linking an account never changes a host's "
            "settings", reason="host_settings",
            hint=f"leave {', '.join(differ)} out to use the host's settings, or have an admin change them first: "
                 f"devlink host set --url {web} … (or PATCH /api/v1/hosts/{name})",
        )
    return host


def _connection_settings_given(host: Host, options: AccountOptions) -> list[str]:
    """The connection settings ``options`` asks a new host to take instead of its defaults."""
    given = []
    if options.api_url and _api_url(options.api_url) != host.api_url:
        given.append("api_url")
    if options.ca_bundle:
        given.append("ca_bundle")
    if options.proxy:
        given.append("proxy")
    if options.timeout is not None:
        given.append("timeout")
    return given


def _same_kind(host: Host, kind: HostKind) -> None:
    if host.kind not in kind.stored_kinds:
        raise Conflict(f"host {host.name} is a {host_kind(host).label} host, not {kind.label}",
                       reason="host_kind", hint=f"link it as: devlink account add {host_kind(host).kind} …")


def _new_host(kind: HostKind, name: str, web: str) -> Host:
    return Host(kind=kind.stored_kind(web), name=name, web_url=web, api_url=kind.api_url_for(web))


def _apply_settings(host: Host, options: AccountOptions) -> None:
    """Write the connection settings ``options`` gives; ``""`` resets one (the API URL to its default)."""
    kind, web = host_kind(host), host.web_url or host_kind(host).default_web_url
    if options.api_url is not None:
        api_url = _api_url(options.api_url) if options.api_url else kind.api_url_for(web)
        if problem := kind.check_api_url(web, api_url):  # a public service has one API: a token sent elsewhere is lost
            raise InvalidInput(problem, reason="bad_url", hint="for a self-hosted server, give its own --url")
        host.api_url = api_url
    if options.ca_bundle is not None:
        host.ca_bundle = options.ca_bundle or None
    if options.proxy is not None:
        host.proxy = _proxy_url(options.proxy) if options.proxy else None
    if options.timeout is not None:
        if not 0 < options.timeout <= 3600:
            raise InvalidInput(f"the timeout must be between 0 and 3600 seconds (got {options.timeout:g})",
                               reason="bad_timeout")
        host.timeout = options.timeout


def find_host(session: Session, ref: str) -> Host:
    """A host with an API by name (``github.com``, ``ghe.example.com``), web URL or id."""
    row_id = parse_row_id(ref)
    host = session.get(Host, row_id) if row_id is not None else None
    if host is None and ref.startswith(("http://", "https://")):
        parts = urlsplit(ref.strip().rstrip("/"))
        name = (parts.netloc.lower() + parts.path).rstrip("/")
        host = session.scalars(select(Host).where(Host.name == name)).first()
        if host is None:  # a public service's other spelling (www.)
            for kind in kinds():
                other = _host_name(for_kind(kind), ref)[0]
                host = host or session.scalars(select(Host).where(Host.name == other)).first()
    elif host is None:
        name = ref.strip().lower().rstrip("/")
        host = session.scalars(select(Host).where(Host.name == name)).first()
    if host is None or host.api_url is None:
        raise NotFound(f"no host {ref!r}",
                       hint="see them with: GET /api/v1/hosts; create one: devlink host set --url URL")
    return host


def host_views(session: Session) -> list[dict[str, Any]]:
    """Every host that has an API (not the plain-git one), by name."""
    return [host_view(h) for h in session.scalars(select(Host).where(Host.api_url.is_not(None)).order_by(Host.name))]


def configure_host(
    rt: Runtime, options: AccountOptions, *, oauth_client_id: str | None = None, oauth_client_secret: str | None = None,
    host_options: Mapping[str, str | None] | None = None, create: bool = True,
) -> dict[str, Any]:
    """Create or change a host's settings (API URL, TLS, proxy, timeout, OAuth app, the kind's own): the admin's way.

    ``host_options`` sets the host kind's own settings (``""`` clears one); names it does not know are refused.

    The accounts on the host are then pinned to its API origin as it now
    stands: the admin chose it, and ``repinned`` names the accounts whose
    credentials will go there from now on.
    """
    kind = kind_named(options.kind)
    name, web = _host_name(kind, options.web_url)
    with rt.sessions.begin() as session:
        host = session.scalars(select(Host).where(Host.name == name)).first()
        if host is None:
            if not create:
                raise NotFound(f"no host {name!r}", hint=f"create it: devlink host set --url {web}")
            host = _new_host(kind, name, web)
            session.add(host)
        elif options.kind:
            _same_kind(host, kind)
        _apply_settings(host, options)
        if oauth_client_id is not None:
            host.oauth_client_id = oauth_client_id or None
        if oauth_client_secret is not None:
            host.oauth_client_secret = rt.vault.encrypt(oauth_client_secret) if oauth_client_secret else None
        if host_options:
            _set_host_options(host, host_options, rt.vault)
        session.flush()
        repinned = _repin(session, host)
        return {**host_view(host), "repinned": repinned}


def _repin(session: Session, host: Host) -> list[str]:
    """Pin every account of ``host`` to its current API origin; return the names of those that moved."""
    origin = origin_of(settings_of(host).api_url)
    moved = list(session.scalars(select(Account.name).where(
        Account.host_id == host.id, or_(Account.api_origin.is_(None), Account.api_origin != origin)
    ).order_by(Account.name)))
    if moved:
        session.execute(update(Account).where(Account.host_id == host.id).values(api_origin=origin))
        log.warning("host.repinned host=%s origin=%s accounts=%s", host.name, origin, ",".join(moved))
    return moved


def _set_host_options(host: Host, given: Mapping[str, str | None], vault: Vault) -> None:
    kind = host_kind(host)
    unknown = sorted(set(given) - set(kind.host_option_names))
    if unknown:
        raise InvalidInput(f"a {kind.label} host has no setting {', '.join(unknown)}", reason="invalid")
    stored = load_options(host.options, vault, kind.secret_options)
    for key, value in given.items():
        if value is not None:
            stored[key] = value
    host.options = dump_options(stored, vault, kind.secret_options)


def host_view(host: Host) -> dict[str, Any]:
    """A host's settings; secrets only as whether they are set."""
    kind = host_kind(host)
    stored = load_options(host.options)
    own: dict[str, Any] = {}
    for key in kind.host_option_names:
        if key in kind.secret_options:
            own[f"{key}_set"] = bool(stored.get(key))
        else:
            own[key] = stored.get(key)
    return {"id": host.id, "kind": host.kind, "host_kind": kind.kind, "name": host.name, "web_url": host.web_url,
            "api_url": host.api_url, "ca_bundle": host.ca_bundle, "proxy": host.proxy, "timeout": host.timeout,
            "oauth_client_id": host.oauth_client_id, "oauth_client_secret_set": bool(host.oauth_client_secret), **own}


def link_account(rt: Runtime, options: AccountOptions) -> tuple[int, Discovery]:
    """Verify the credential, store the account, discover its repositories and link the chosen ones.

    Nothing is stored when the credential or the account name is wrong.
    """
    kind = kind_named(options.kind)
    if not options.token and not options.options:
        raise InvalidInput(f"give a token: {kind.token_help}", reason="no_credential")
    with rt.sessions() as session:  # a dry run: a new host is kept only once the credential checks out
        host = host_for_link(session, options, rt.vault)
        settings = settings_of(host)
        _refuse_linked_twice(session, host, options.name)
        session.rollback()
    given = {**options.options, **({"auth_kind": "oauth"} if options.grant else {})}
    credential = kind.prepare_credential(settings, options.name, options.token, given)
    if options.grant:
        credential = replace(credential, refresh_token=options.grant.refresh_token,
                             expires_at=options.grant.expires_at)
    with kind.client(settings, credential) as client:
        viewer = client.viewer()  # a wrong token fails here, before anything is stored
        remote = client.account(options.name)
    with rt.sessions.begin() as session:
        host = host_for_link(session, options, rt.vault)
        if settings_of(host) != settings:
            raise Conflict(f"the settings of host {host.name} changed while linking; link again",
                           reason="host_settings")
        _refuse_linked_twice(session, host, remote.login)
        kept = load_options(host.options, rt.vault, kind.secret_options)
        new_host_options = {k: v for k, v in kind.host_options(credential).items() if k not in kept}
        if new_host_options:  # the host's first App (else: the same one, as _differences checked)
            host.options = dump_options({**kept, **new_host_options}, rt.vault, kind.secret_options)
        account = Account(
            host_id=host.id, name=remote.login, kind=remote.kind, external_id=remote.external_id,
            auth_kind=credential.auth_kind,
            credential=rt.vault.encrypt(credential.token) if credential.token else None,
            refresh_token=rt.vault.encrypt(credential.refresh_token) if credential.refresh_token else None,
            token_expires_at=credential.expires_at,
            options=dump_options(kind.account_options(credential), rt.vault, kind.secret_options),
            auto_link=options.auto_link, smart_commits=options.smart_commits,
            api_origin=origin_of(settings.api_url),  # the credential goes nowhere else (client_for)
        )
        session.add(account)
        try:
            session.flush()
        except IntegrityError:  # linked by someone else meanwhile
            raise Conflict(f"account {remote.login} on {host.name} is already linked",
                           reason="account_linked") from None
        account_id = account.id
    log.info("account.linked account=%s host=%s kind=%s viewer=%s", remote.login, settings.name, remote.kind, viewer)
    result = discover(rt, account_id, link=options.link)
    return account_id, result


def _refuse_linked_twice(session: Session, host: Host, name: str) -> None:
    """The same account, or a group inside (or around) one already linked: its repositories would change owner."""
    if session.scalars(select(Account.id).where(Account.host_id == host.id, _same_login(name))).first():
        raise Conflict(f"account {name} on {host.name} is already linked", reason="account_linked")
    wanted = name.strip().rstrip("/").lower()
    for other in session.scalars(select(Account.name).where(Account.host_id == host.id)):
        mine = other.lower()
        if wanted.startswith(mine + "/") or mine.startswith(wanted + "/"):
            raise Conflict(f"{name} overlaps account {other}, already linked on {host.name}: a repository "
                           "belongs to one account", reason="account_linked",
                           hint=f"link the projects through {other}, or remove it first")


def _same_login(name: str) -> Any:
    """Exactly this login, ignoring case as hosts do (never a LIKE pattern: ``%`` and ``_`` are characters)."""
    return func.lower(Account.name) == name.lower()


def find_account(session: Session, ref: str) -> Account:
    """An account by id (ASCII digits), ``name`` or ``host/name``; names match exactly, case aside."""
    row_id = parse_row_id(ref)
    account = session.get(Account, row_id) if row_id is not None else None
    if account is None and "/" in ref:  # a group's full path (acme/platform) is a name too
        named = list(session.scalars(select(Account).where(_same_login(ref.strip().rstrip("/")))))
        if len(named) > 1:
            raise InvalidInput(f"several hosts have an account {ref}; say HOST/{ref}", reason="ambiguous")
        account = named[0] if named else None
    if account is None and "/" in ref:
        host_name, _, name = ref.rpartition("/")
        account = session.scalars(select(Account).join(Host, Host.id == Account.host_id).where(
            Host.name == host_name.lower(), _same_login(name))).first()
    elif account is None:
        matches = list(session.scalars(select(Account).where(_same_login(ref))))
        if len(matches) > 1:
            raise InvalidInput(f"several hosts have an account {ref}; say HOST/{ref}", reason="ambiguous")
        account = matches[0] if matches else None
    if account is None:
        raise NotFound(f"no linked account {ref!r}", hint="see: devlink account list")
    return account


def account_views(session: Session) -> list[dict[str, Any]]:
    """Every linked account as the API and ``account list`` show it."""
    views = []
    for account, host in session.execute(
        select(Account, Host).join(Host, Host.id == Account.host_id).order_by(Host.name, Account.name)
    ).all():
        rows = list(session.execute(
            select(Repository.linked, Repository.state).where(Repository.account_id == account.id)
        ))
        counts = {"total": len(rows), "linked": sum(1 for linked, _ in rows if linked),
                  "gone": sum(1 for _, state in rows if state == "gone")}
        views.append(account_view(account, host, counts))
    return views


def set_account_options(
    rt: Runtime, ref: str, *, auto_link: bool | None = None, smart_commits: bool | None = None
) -> dict[str, Any]:
    """Change the account's toggles; ``smart_commits`` is the default for repositories linked later."""
    with rt.sessions.begin() as session:
        account = find_account(session, ref)
        if auto_link is not None:
            account.auto_link = auto_link
        if smart_commits is not None:
            account.smart_commits = smart_commits
        host = session.get(Host, account.host_id)
        assert host is not None
        return account_view(account, host)


def discover(rt: Runtime, account_id: int, *, link: str | list[str] = "none") -> Discovery:
    """List the account's repositories on the host and bring the store in line.

    New ones are added unlinked (linked when the account auto-links, or when
    named in ``link``); renames and transfers update the row found by the
    host's id; repositories no longer listed are marked gone.  Webhooks of
    linked repositories are then checked and repaired.
    """
    result = Discovery(account_id)
    with rt.sessions() as session:
        account = session.get(Account, account_id)
        if account is None:
            raise NotFound(f"no linked account {account_id}")
        host_id, auto_link, login = account.host_id, account.auto_link, account.name
        kind_of_account = host_kind_name(session, account)
        remote = RemoteAccount(account.name, _namespace(account.kind), account.external_id or "")
    try:
        with client_for(rt, account_id) as client:
            viewer = client.viewer()
            listed = client.repositories(remote, viewer)
    except HostError as exc:
        _record_account_error(rt, account_id, exc)
        raise
    result.found = len(listed)
    wanted = _wanted(link, listed)
    with rt.sessions.begin() as session:
        account = session.get(Account, account_id)
        assert account is not None
        stored = {
            r.external_id: r for r in session.scalars(select(Repository).where(Repository.host_id == host_id))
        }
        seen: set[str] = set()
        for remote_repo in listed:
            seen.add(remote_repo.external_id)
            if not _fits(remote_repo):  # one unusable repository must not cost the account all the others
                result.warnings.append(f"{remote_repo.full_name[:120]}…: its path or clone URL is longer than "
                                       f"devlink keeps ({_MAX_PATH} characters); skipped")
                log.warning("account.repository_too_long account=%s path_length=%d", login, len(remote_repo.full_name))
                continue
            row = stored.get(remote_repo.external_id)
            is_new = row is None
            if row is None:
                row = _new_repository(session, account, remote_repo)
                result.new.append(row.name)
            else:
                old = row.name
                _refresh(session, row, account, remote_repo)
                if old != row.name:
                    result.renamed.append((old, row.name))
            # auto-link takes new repositories only: one the admin unlinked stays unlinked
            should_link = remote_repo.full_name in wanted or (is_new and auto_link and not row.archived)
            if should_link and not row.linked:
                row.linked, row.smart_commits = True, account.smart_commits
                result.linked.append(row.id)
        for row in stored.values():
            if row.account_id == account_id and row.external_id not in seen and row.state != "gone":
                row.state = "gone"
                result.gone.append(row.name)
        account.discovered_at = utcnow()
        account.next_discovery_at = utcnow() + timedelta(hours=rt.settings.discovery_interval)
        account.last_error_reason = account.last_error_message = None
        account.last_error_at = None
    result.hooks = ensure_hooks(rt, account_id)
    if warning := hook_url_warning(rt, kind_of_account):
        result.warnings.append(warning)
    log.info("account.discovered account=%s found=%d new=%d renamed=%d gone=%d linked=%d",
             login, result.found, len(result.new), len(result.renamed), len(result.gone), len(result.linked))
    return result


def discover_due(rt: Runtime, enqueue: Callable[[int], None]) -> list[int]:
    """Queue discovery of every account whose daily re-listing is due; claims are conditional UPDATEs."""
    now = utcnow()
    due = (or_(Account.next_discovery_at.is_(None), Account.next_discovery_at <= now),)
    with rt.sessions() as session:
        ids = list(session.scalars(select(Account.id).where(*due)))
    queued = []
    for account_id in ids:
        with rt.sessions.begin() as session:
            claimed = session.execute(update(Account).where(Account.id == account_id, *due).values(
                next_discovery_at=now + timedelta(hours=rt.settings.discovery_interval)))
        if claimed.rowcount:  # type: ignore[attr-defined]
            enqueue(account_id)
            queued.append(account_id)
    return queued


def _namespace(kind: str) -> Any:
    return kind if kind in ("user", "organization", "group", "workspace") else "user"


def _last(path: str) -> str:
    return path.rsplit("/", 1)[-1].lower()


def _wanted(link: str | list[str], listed: list[RemoteRepository]) -> set[str]:
    if link == "all":
        return {r.full_name for r in listed if not r.archived}
    if link == "none":
        return set()
    names = {n.lower() for n in link}
    found = {r.full_name for r in listed if r.full_name.lower() in names or _last(r.full_name) in names}
    missing = names - {n.lower() for n in found} - {_last(n) for n in found}
    if missing:
        raise NotFound(f"not among the account's repositories: {', '.join(sorted(missing))}")
    return found


#: what the repositories table holds (models.py): a longer value from a host would fail the whole discovery
_MAX_NAME, _MAX_URL, _MAX_WEB_URL, _MAX_PATH = 200, 1000, 500, 1000


def _bounded(name: str) -> str:
    """``name`` if it fits the column, else its start and a digest of the whole (still unique, still readable)."""
    if len(name) <= _MAX_NAME:
        return name
    return f"{name[:_MAX_NAME - 9]}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def _fits(remote: RemoteRepository) -> bool:
    """Whether devlink can keep the repository: its path and clone URL fit (GitLab nests groups 20 deep)."""
    return len(remote.full_name) <= _MAX_PATH and len(remote.clone_url or "") <= _MAX_URL


def _web_url(remote: RemoteRepository) -> str | None:
    return remote.web_url if remote.web_url and len(remote.web_url) <= _MAX_WEB_URL else None


def _unique_name(session: Session, full_name: str, host: Host, own_id: int | None) -> str:
    """``owner/name``, unless another host's repository has it: then ``host/owner/name`` (bounded: ``_bounded``)."""
    for name in (_bounded(full_name), _bounded(f"{host.name}/{full_name}")):
        taken = session.scalars(select(Repository.id).where(Repository.name == name)).first()
        if taken is None or taken == own_id:
            return name
    return _bounded(f"{host.name}/{full_name}")[:_MAX_NAME - 7] + f"/{secrets.token_hex(3)}"


def _new_repository(session: Session, account: Account, remote: RemoteRepository) -> Repository:
    host = session.get(Host, account.host_id)
    assert host is not None
    row = Repository(
        host_id=account.host_id, account_id=account.id, external_id=remote.external_id,
        name=_unique_name(session, remote.full_name, host, None), url=remote.clone_url, web_url=_web_url(remote),
        host_path=remote.full_name,
        linked=False, smart_commits=account.smart_commits, private=remote.private, archived=remote.archived,
        default_branch=remote.default_branch, state="active",
    )
    session.add(row)
    session.flush()
    return row


def _refresh(session: Session, row: Repository, account: Account, remote: RemoteRepository) -> None:
    host = session.get(Host, account.host_id)
    assert host is not None
    if row.host_full_name != remote.full_name:
        row.name = _unique_name(session, remote.full_name, host, row.id)
    row.host_path = remote.full_name
    row.account_id = account.id  # a transfer between two linked accounts moves it
    row.url, row.web_url = remote.clone_url or row.url, _web_url(remote) or row.web_url
    row.private, row.archived, row.default_branch = remote.private, remote.archived, remote.default_branch
    row.state = "active"


def _record_account_error(rt: Runtime, account_id: int, exc: HostError) -> None:
    with rt.sessions.begin() as session:
        session.execute(
            update(Account).where(Account.id == account_id).values(
                last_error_reason=exc.reason, last_error_message=exc.message, last_error_at=utcnow()
            )
        )


def link_repositories(rt: Runtime, account_id: int, names: list[str] | str, *, linked: bool = True) -> list[int]:
    """Link (or unlink) repositories already discovered; returns the ids whose state changed."""
    with rt.sessions.begin() as session:
        rows = list(session.scalars(select(Repository).where(Repository.account_id == account_id)))
        if names == "all":
            chosen = [r for r in rows if not r.archived and r.state == "active"]
        else:
            wanted = {n.lower() for n in names}
            chosen = [r for r in rows if r.name.lower() in wanted or _last(r.name) in wanted]
            missing = wanted - {r.name.lower() for r in chosen} - {_last(r.name) for r in chosen}
            if missing:
                raise NotFound(f"not among the account's repositories: {', '.join(sorted(missing))}",
                               hint="run discovery first: devlink account repos ACCOUNT --refresh")
        changed = [r.id for r in chosen if r.linked != linked]
        for row in chosen:
            row.linked = linked
    if linked:
        ensure_hooks(rt, account_id)
    else:
        for repository_id in changed:
            unlink_repository(rt, repository_id)
    return changed


def unlink_repository(rt: Runtime, repository_id: int) -> None:
    """Stop syncing a repository and remove devlink's webhook from it; its data stays."""
    with rt.sessions.begin() as session:
        row = session.get(Repository, repository_id)
        if row is None:
            raise NotFound(f"no repository {repository_id}")
        row.linked = False
        account_id, hook_id = row.account_id, row.webhook_id
        target = HookTarget("repository", row.host_full_name, row.external_id or "")
        row.webhook_id = None
        row.webhook_secret = None  # nothing signed with it is accepted any more, even if the delete fails
        row.webhook_state = None
    if account_id and hook_id:
        try:
            with client_for(rt, account_id) as client:
                client.delete_hook(target, hook_id)
        except HostError as exc:
            if exc.reason not in ("not_found", "gone"):
                log.warning("hook.delete_failed repository=%s reason=%s", repository_id, exc.reason)


def remove_account(rt: Runtime, ref: str) -> str:
    """Unlink every repository (removing webhooks), then forget the account and its data."""
    with rt.sessions() as session:
        account = find_account(session, ref)
        account_id, name, hook_id = account.id, account.name, account.hook_id
        account_target = HookTarget("account", account.name, account.external_id or "")
        linked = list(session.scalars(
            select(Repository.id).where(Repository.account_id == account_id, Repository.linked.is_(True))
        ))
    for repository_id in linked:
        unlink_repository(rt, repository_id)
    if hook_id:
        try:
            with client_for(rt, account_id) as client:
                client.delete_hook(account_target, hook_id)
        except HostError as exc:
            log.warning("hook.delete_failed account=%s reason=%s", name, exc.reason)
    with rt.sessions.begin() as session:
        session.execute(delete(Account).where(Account.id == account_id))
    return name


# -- webhooks ---------------------------------------------------------------


def ensure_hooks(rt: Runtime, account_id: int) -> dict[str, str]:
    """Make sure every linked repository gets deliveries: one account hook when allowed, else one per repository."""
    with rt.sessions() as session:
        account = session.get(Account, account_id)
        if account is None:
            return {}
        warning = hook_url_warning(rt, host_kind_name(session, account))
        rows = list(session.scalars(select(Repository).where(
            Repository.account_id == account_id, Repository.linked.is_(True), Repository.state == "active"
        )))
        host = session.get(Host, account.host_id)
        assert host is not None
        kind = host_kind(host)
        # an organisation's or group's own hook covers all its repositories (a user has none)
        account_target = (HookTarget("account", account.name, account.external_id or "")
                          if account.kind not in ("user",) and account.auth_kind != "app" else None)
        hosts_own = kind.hosts_own_hook(load_options(host.options), account.auth_kind)
        targets = [(r.id, r.name, HookTarget("repository", r.host_full_name, r.external_id or ""), r.webhook_id,
                    r.webhook_secret) for r in rows]
    states: dict[str, str] = {}
    if not targets:
        return states
    if hosts_own:  # the host's own webhook (a GitHub App's) delivers for every installation: no hook to install
        for repository_id, name, _, _, _ in targets:
            _set_hook(rt, repository_id, None, None, "app", None)
            states[name] = "app"
        return states
    with client_for(rt, account_id) as client:
        if account_target and _ensure_account_hook(rt, client, kind, account_id, account_target):
            for repository_id, name, target, hook_id, _ in targets:
                if hook_id:  # the account hook replaces a per-repository one
                    _delete_quietly(client, target, hook_id)
                _set_hook(rt, repository_id, None, None, "account", warning)
                states[name] = "account"
            return states
        for repository_id, name, target, hook_id, secret in targets:
            states[name] = _ensure_repo_hook(rt, client, kind, repository_id, target, hook_id, secret, warning)
    return states


def _reconcile_hook(
    rt: Runtime, client: HostClient, target: HookTarget, hook_id: str | None, stored_secret: str | None, url: str,
    before_create: Callable[[str], None],
) -> tuple[str, str]:
    """Make ``target`` hold exactly one correct hook to ``url``; return (id, secret).

    Keeps the hook devlink knows (or adopts one at its URL), deletes other
    hooks to this URL, recreates a missing one, and rewrites a changed one,
    its URL too when devlink's address changed (a new port, DEVLINK_BASE_URL).
    A secret cannot be read back from a host, so an adopted hook gets one
    devlink knows.  ``before_create`` stores the secret of a hook about to be
    created, without an id yet: a host may call a new hook at once, often
    before its id comes back, and that call must verify.
    """
    ours = [h for h in client.hooks(target) if h.url == url or (hook_id and h.id == hook_id)]
    keep = next((h for h in ours if h.id == hook_id), ours[0] if ours else None)
    for stale in ours:
        if stale is not keep:
            client.delete_hook(target, stale.id)
    secret = rt.vault.decrypt(stored_secret) if stored_secret else secrets.token_urlsafe(32)
    if keep is None:
        before_create(rt.vault.encrypt(secret))
        return client.create_hook(target, url, secret), secret
    if not keep.current or keep.url != url or not stored_secret or keep.id != hook_id:
        client.update_hook(target, keep.id, url, secret)
    return keep.id, secret


def _ensure_repo_hook(
    rt: Runtime, client: HostClient, kind: HostKind, repository_id: int, target: HookTarget, hook_id: str | None,
    stored_secret: str | None, warning: str | None = None,
) -> str:
    try:
        new_id, secret = _reconcile_hook(rt, client, target, hook_id, stored_secret, hook_url(rt, kind, target),
                                         lambda pending: _set_pending_hook(rt, Repository, repository_id, pending))
    except HostError as exc:
        if exc.reason in ("permission", "not_found"):
            minutes = rt.settings.sync_interval
            _set_hook(rt, repository_id, None, None, "unavailable",
                      UNAVAILABLE.format(cause=exc.message, minutes=minutes, needs=kind.token_help))
            return "unavailable"
        _set_hook(rt, repository_id, hook_id, stored_secret, "failed", exc.message)
        return "failed"
    _set_hook(rt, repository_id, new_id, rt.vault.encrypt(secret), "installed", warning)
    return "installed"


def _ensure_account_hook(
    rt: Runtime, client: HostClient, kind: HostKind, account_id: int, target: HookTarget
) -> bool:
    """One organisation or group hook for all repositories, when the credential (and the host's tier) allow it."""
    with rt.sessions() as session:
        account = session.get(Account, account_id)
        assert account is not None
        known_id, stored_secret = account.hook_id, account.hook_secret
    try:
        hook_id, secret = _reconcile_hook(rt, client, target, known_id, stored_secret, hook_url(rt, kind, target),
                                          lambda pending: _set_pending_hook(rt, Account, account_id, pending))
    except HostError as exc:
        with rt.sessions.begin() as session:  # no hook was created: its pending secret must not stay a signer
            session.execute(update(Account).where(Account.id == account_id).values(
                hook_id=known_id, hook_secret=stored_secret))
        if exc.reason in ("permission", "not_found"):
            return False  # not an owner, or a tier without account hooks: per-repository hooks instead
        raise
    with rt.sessions.begin() as session:
        session.execute(update(Account).where(Account.id == account_id).values(
            hook_id=hook_id, hook_secret=rt.vault.encrypt(secret)))
    return True


def _set_hook(
    rt: Runtime, repository_id: int, hook_id: str | None, secret: str | None, state: str, error: str | None
) -> None:
    with rt.sessions.begin() as session:
        session.execute(update(Repository).where(Repository.id == repository_id).values(
            webhook_id=hook_id, webhook_secret=secret, webhook_state=state, webhook_error=error))


def _set_pending_hook(rt: Runtime, model: type[Repository] | type[Account], row_id: int, secret: str) -> None:
    """The secret of a hook being created, its id still unknown (``sync.webhooks`` accepts it for the target)."""
    values = ({"webhook_id": None, "webhook_secret": secret, "webhook_state": "pending"} if model is Repository
              else {"hook_id": None, "hook_secret": secret})
    with rt.sessions.begin() as session:
        session.execute(update(model).where(model.id == row_id).values(**values))


def _delete_quietly(client: HostClient, target: HookTarget, hook_id: str) -> None:
    try:
        client.delete_hook(target, hook_id)
    except HostError as exc:
        log.info("hook.delete_skipped target=%s reason=%s", target.path, exc.reason)
