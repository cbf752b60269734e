"""Settings, read once from ``DEVLINK_*`` environment variables and an optional TOML file.

Precedence: environment, then the TOML file (``DEVLINK_CONFIG``, default
``$DEVLINK_HOME/devlink.toml``), then the defaults in ``DEFAULTS``.  Keys in
the file are the variable names without the prefix, in lower case::

    # ~/.local/share/devlink/devlink.toml
    database_url = "postgresql+psycopg://devlink@db/devlink"
    queue_url = "redis://127.0.0.1:6379/0"
    sync_interval = 30        # minutes
"""

import json
import os
import re
import socket
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devlink.errors import ConfigError

__all__ = ["DEFAULTS", "SERVER_FILE", "Settings", "forget_server", "listen_url", "load_settings", "record_server"]

#: Where a running ``devlink serve`` writes the address it listens on, in ``DEVLINK_HOME``.
SERVER_FILE = "server.json"

#: Every default in one table; commands never carry their own.
DEFAULTS: dict[str, Any] = {
    "home": "~/.local/share/devlink",
    "database_url": "",  # empty: SQLite file in home
    "queue_url": "",  # empty: SQLite-backed Huey in home
    "sync_interval": 60,  # minutes between soft syncs of a repository
    "host": "127.0.0.1",
    "port": 8000,
    "workers": 2,  # consumer threads of the embedded queue
    "secret_key": "",  # empty: a key file in home, created on first use
    "batch_size": 2000,  # commits written per database round trip
    "smart_commit_max_age": 14,  # days: older commits run no smart commits
    "hours_per_day": 8,  # #time 1d
    "days_per_week": 5,  # #time 1w
    "base_url": "",  # devlink's public URL, for webhooks and OAuth; empty: http://HOST:PORT
    "discovery_interval": 24,  # hours between re-listing an account's repositories
    "allowed_hosts": "",  # extra names the Host header may carry, comma-separated; "*": any (see deployment.md)
    "local_repository_roots": "",  # directories the API and pages may link local paths under; empty: none
    "forwarded_allow_ips": "",  # proxies whose X-Forwarded-For/-Proto are believed; empty: 127.0.0.1 (uvicorn's)
}


@dataclass(frozen=True)
class Settings:
    """The normalised settings; build with ``load_settings``."""

    home: Path
    database_url: str
    queue_url: str
    sync_interval: int
    host: str
    port: int
    workers: int
    secret_key: str
    batch_size: int
    smart_commit_max_age: int
    hours_per_day: int
    days_per_week: int
    base_url: str = ""
    discovery_interval: int = 24
    served_url: str = ""  # where a running ``devlink serve`` of this home listens (SERVER_FILE), if any
    allowed_hosts: tuple[str, ...] = ()  # lower case, no port; ("*",) allows any Host
    local_repository_roots: tuple[Path, ...] = ()  # absolute and resolved; the CLI on the server is not bound
    forwarded_allow_ips: str = ""  # comma-separated addresses or networks, or *; "" leaves uvicorn's default

    @property
    def public_url(self) -> str:
        """The URL hosts reach devlink at: ``DEVLINK_BASE_URL``, else where ``serve`` listens (or would)."""
        return (self.base_url or self.served_url or listen_url(self.host, self.port)).rstrip("/")

    @property
    def mirrors_dir(self) -> Path:
        """Where the bare git mirrors live."""
        return self.home / "mirrors"

    @property
    def uses_redis(self) -> bool:
        return self.queue_url.startswith(("redis://", "rediss://", "unix://"))


def load_settings(env: dict[str, str] | None = None) -> Settings:
    """Read and normalise settings; raises ConfigError naming the bad setting."""
    env = dict(os.environ if env is None else env)
    home = Path(env.get("DEVLINK_HOME") or DEFAULTS["home"]).expanduser()
    config_file = Path(env.get("DEVLINK_CONFIG") or home / "devlink.toml").expanduser()
    from_file = _read_toml(config_file)
    raw: dict[str, Any] = {}
    for name, default in DEFAULTS.items():
        value = env.get(f"DEVLINK_{name.upper()}")
        raw[name] = value if value not in (None, "") else from_file.get(name, default)
    raw["home"] = home
    database_url = str(raw["database_url"]) or f"sqlite:///{home / 'devlink.db'}"
    queue_url = str(raw["queue_url"])
    if queue_url and not queue_url.startswith(("redis://", "rediss://", "unix://", "sqlite://")):
        raise ConfigError(
            f"DEVLINK_QUEUE_URL must be a redis:// URL (got a {queue_url.split(':', 1)[0]!r} URL)",
            hint="leave it empty for the embedded SQLite queue",
        )
    return Settings(
        home=home,
        database_url=database_url,
        queue_url=queue_url,
        sync_interval=_positive_int("sync_interval", raw["sync_interval"]),
        host=str(raw["host"]),
        port=_positive_int("port", raw["port"]),
        workers=_positive_int("workers", raw["workers"]),
        secret_key=str(raw["secret_key"]),
        batch_size=_positive_int("batch_size", raw["batch_size"]),
        smart_commit_max_age=_positive_int("smart_commit_max_age", raw["smart_commit_max_age"]),
        hours_per_day=_positive_int("hours_per_day", raw["hours_per_day"]),
        days_per_week=_positive_int("days_per_week", raw["days_per_week"]),
        base_url=_base_url(str(raw["base_url"])),
        discovery_interval=_positive_int("discovery_interval", raw["discovery_interval"]),
        served_url=_served_url(home),
        allowed_hosts=_host_names(raw["allowed_hosts"]),
        local_repository_roots=_roots(raw["local_repository_roots"]),
        forwarded_allow_ips=str(raw["forwarded_allow_ips"]).strip(),
    )


def listen_url(host: str, port: int) -> str:
    """``http://HOST:PORT``, with an IPv6 address in brackets."""
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def record_server(home: Path, url: str) -> str:
    """Note the address this ``devlink serve`` listens on, so other commands on this home link hooks to it.

    Returns the address noted: another live ``serve`` of the same home on this
    machine keeps its note (hooks already point at it), so a second one leaves
    it alone.  A note from another machine name cannot be checked (a container
    gets a new name each start) and is replaced.
    """
    note = _read_note(home)
    if note is not None:
        other, pid, machine = note
        if other != url.rstrip("/") and machine == socket.gethostname() and pid != os.getpid() and _alive(pid):
            return other
    home.mkdir(parents=True, exist_ok=True)
    scratch = home / f".{SERVER_FILE}.{os.getpid()}"
    scratch.write_text(json.dumps({"url": url, "pid": os.getpid(), "machine": socket.gethostname()}))
    scratch.replace(home / SERVER_FILE)
    return url


def forget_server(home: Path) -> None:
    """Remove the note when this process wrote it (a later ``serve`` of the same home may have replaced it)."""
    path = home / SERVER_FILE
    try:
        if json.loads(path.read_text()).get("pid") == os.getpid():
            path.unlink()
    except (OSError, ValueError, AttributeError):
        pass


def _read_note(home: Path) -> tuple[str, int, str] | None:
    """(URL without a trailing slash, pid, machine name) of the server note, or None: missing or malformed."""
    try:
        note = json.loads((home / SERVER_FILE).read_text())
        url, pid, machine = str(note["url"]), int(note["pid"]), str(note.get("machine", ""))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    if not url.startswith(("http://", "https://")):
        return None
    return url.rstrip("/"), pid, machine


def _served_url(home: Path) -> str:
    """The URL of the ``devlink serve`` running on this home, or "" (none, or it is gone)."""
    note = _read_note(home)
    if note is None:
        return ""
    url, pid, machine = note
    if machine == socket.gethostname() and not _alive(pid):
        return ""  # that server stopped without removing its note (killed)
    return url


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except PermissionError:
        return True  # it exists, as another user
    except (OSError, OverflowError):
        return False
    return True


def _base_url(value: str) -> str:
    if value and not value.startswith(("http://", "https://")):
        raise ConfigError(
            f"DEVLINK_BASE_URL must start with http:// or https:// (got {value!r})",
            hint="the address GitHub and browsers use to reach devlink, e.g. https://devlink.example.com",
        )
    return value.rstrip("/")


_HOST_NAME = re.compile(r"^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$")


def _host_names(value: object) -> tuple[str, ...]:
    """``DEVLINK_ALLOWED_HOSTS``: names (no scheme, no port) a browser may use to reach devlink, or ``*``.

    A TOML list is accepted as well as a comma-separated string.
    """
    items = value if isinstance(value, list) else str(value).split(",")
    names = tuple(str(item).strip().lower().rstrip(".") for item in items if str(item).strip())
    for name in names:
        if name != "*" and not _HOST_NAME.match(name):
            raise ConfigError(
                f"DEVLINK_ALLOWED_HOSTS: {name!r} is not a host name",
                hint="comma-separated names without scheme or port, e.g. devlink.example.com,devlink; * allows any",
            )
    return names


def _roots(value: object) -> tuple[Path, ...]:
    """``DEVLINK_LOCAL_REPOSITORY_ROOTS``: absolute directories, separated by ``:`` (or a TOML list)."""
    items = value if isinstance(value, list) else str(value).split(os.pathsep)
    roots = []
    for item in (str(each).strip() for each in items):
        if not item:
            continue
        path = Path(item).expanduser()
        if not path.is_absolute():
            raise ConfigError(f"DEVLINK_LOCAL_REPOSITORY_ROOTS: {item!r} is not an absolute path",
                              hint="absolute directories separated by ':', e.g. /srv/git:/var/lib/repos")
        roots.append(path.resolve())
    return tuple(roots)


def _read_toml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc


def _positive_int(name: str, value: object) -> int:
    try:
        number = int(str(value))
    except ValueError:
        raise ConfigError(f"DEVLINK_{name.upper()} must be a whole number, got {value!r}") from None
    if number <= 0:
        raise ConfigError(f"DEVLINK_{name.upper()} must be greater than 0, got {number}")
    return number
