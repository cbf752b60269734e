"""Every stored secret, found by name: check that the keys decrypt them, re-encrypt them with a new key.

The secrets are in known columns (``SECRET_COLUMNS``), not searched for: the
commits and webhook deliveries are most of the database and hold none.  Three
kinds of column:

- always a Fernet token when set (``url_secret``, ``credential``, …): a value
  no key decrypts is unreadable;
- sometimes one (a tracker's ``proxy``: encrypted only when it carries a
  password): a value that is not a Fernet token is plain text and left alone;
- JSON objects of options (``hosts.options``, ``accounts.options``): the string
  values that are Fernet tokens are secrets (``sync/host_clients.py``
  ``dump_options`` encrypts the kind's ``secret_options``).

``rotate_key`` is ``devlink secret-key rotate``.  With the key file: a new key
is written first, before the old ones ([new, old…]), every secret is
re-encrypted with it in one transaction, and the file is rewritten with the new
key alone; a crash at any point leaves a file whose keys decrypt everything.
With ``DEVLINK_SECRET_KEY``, which devlink cannot edit: everything is
re-encrypted with the first key listed, and the user removes the others.

    found = check_secrets(rt)        # SecretsCheck(readable=12, unreadable=[])
    done = rotate_key(rt)            # Rotation(re_encrypted=12, …)
"""

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from cryptography.fernet import Fernet
from sqlalchemy import Column, Connection, Table, func, select, update

from devlink.crypto import Vault, key_file, write_key_file
from devlink.errors import Conflict
from devlink.runtime import Runtime
from devlink.store.models import Account, Base, Host, OAuthState, Repository
from devlink.store.tracker import SmartCommitRun, TrackerConnection

__all__ = ["SECRET_COLUMNS", "Rotation", "SecretsCheck", "Unreadable", "check_secrets", "reencrypt", "rotate_key"]

#: What a column holds: ``token`` (a Fernet token when set), ``maybe`` (a token or plain text), ``options`` (JSON).
Holds = Literal["token", "maybe", "options"]

#: Every column that holds secrets, by table; a new encrypted column must be added here.
SECRET_COLUMNS: dict[str, dict[str, Holds]] = {
    Host.__tablename__: {"oauth_client_secret": "token", "options": "options"},
    Account.__tablename__: {"credential": "token", "refresh_token": "token", "hook_secret": "token",
                            "options": "options"},
    Repository.__tablename__: {"url_secret": "token", "webhook_secret": "token", "hook_token": "token"},
    TrackerConnection.__tablename__: {"credential": "token", "proxy": "maybe", "devinfo_client_secret": "token"},
    OAuthState.__tablename__: {"verifier": "token", "options": "options"},
}


# version byte 0x80 and a 64-bit timestamp below 2**40: every token Fernet makes before the year 36812
_FERNET_TOKEN = re.compile(r"gAAAAA[A-Za-z0-9_-]{94,}={0,2}")


@dataclass(frozen=True)
class Unreadable:
    """A stored secret no key decrypts: where it is (``repositories.url_secret``), never its value."""

    column: str
    row: str

    def __str__(self) -> str:
        return f"{self.column}, row {self.row}"


@dataclass(frozen=True)
class SecretsCheck:
    readable: int
    unreadable: list[Unreadable] = field(default_factory=list)


@dataclass(frozen=True)
class Rotation:
    """What ``rotate_key`` did.

    ``source``: ``file`` or ``env``.  ``new_key``: with a single key in ``DEVLINK_SECRET_KEY``, a key
    made for the user to put first (nothing was re-encrypted).  ``old_keys``: how many keys the user
    should now remove from ``DEVLINK_SECRET_KEY`` (0 with the key file: devlink removed them).
    """

    source: Literal["file", "env"]
    re_encrypted: int
    unreadable: list[Unreadable] = field(default_factory=list)
    new_key: str | None = None
    old_keys: int = 0


def _is_token(value: object) -> bool:
    return isinstance(value, str) and _FERNET_TOKEN.fullmatch(value) is not None


def _row_label(table: str, key: object) -> str:
    # an OAuth state is the flow's own secret-ish parameter: its beginning is enough to tell rows apart
    return f"{str(key)[:6]}…" if table == OAuthState.__tablename__ else str(key)


def _secrets(connection: Connection) -> Iterator[tuple[Table, Column[Any], object, str, str | None, str, str]]:
    """(table, column, row key, label, JSON option or None, secret, column's value) of every stored secret."""
    for name, columns in SECRET_COLUMNS.items():
        table = Base.metadata.tables[name]
        key = next(iter(table.primary_key.columns))
        for column_name, holds in columns.items():
            column = table.c[column_name]
            label = f"{name}.{column_name}"
            rows = connection.execute(select(key, column).where(column.is_not(None)).order_by(key))
            for row_key, value in rows:
                if holds == "token" or (holds == "maybe" and _is_token(value)):
                    yield table, column, row_key, label, None, value, value
                elif holds == "options":
                    for option, inner in sorted(_options(value).items()):
                        if _is_token(inner):
                            yield table, column, row_key, f"{label}[{option}]", option, inner, value


def _options(raw: str) -> dict[str, Any]:
    try:
        values = json.loads(raw)
    except ValueError:
        return {}
    return values if isinstance(values, dict) else {}


def check_secrets(rt: Runtime, vault: Vault | None = None) -> SecretsCheck:
    """Try to decrypt every stored secret with ``vault`` (default: the runtime's); report which cannot be."""
    vault = vault or rt.vault
    readable, unreadable = 0, []
    with rt.engine.connect() as connection:
        for table, _, row_key, label, _, value, _ in _secrets(connection):
            if vault.readable(value):
                readable += 1
            else:
                unreadable.append(Unreadable(label, _row_label(table.name, row_key)))
    return SecretsCheck(readable, unreadable)


def reencrypt(rt: Runtime, vault: Vault) -> tuple[int, list[Unreadable]]:
    """Re-encrypt every stored secret with ``vault``'s first key, in one transaction.

    A secret the first key decrypts already is left as it is; one no key decrypts is left too, and
    reported.  Each row is updated only if it still holds the value read (a process that changed it
    meanwhile wrote it with its own key, which is kept).  Returns (how many re-encrypted, unreadable).
    """
    count, unreadable = 0, []
    with rt.engine.begin() as connection:
        # JSON options: every token of a row's column is rotated together, then the column written once
        pending: dict[tuple[str, str, object], tuple[Table, Column[Any], str, dict[str, str]]] = {}
        for table, column, row_key, label, option, value, raw in list(_secrets(connection)):
            if not vault.readable(value):
                unreadable.append(Unreadable(label, _row_label(table.name, row_key)))
                continue
            if vault.current(value):
                continue
            if option is None:
                key = next(iter(table.primary_key.columns))
                done = connection.execute(update(table).where(key == row_key, column == value)
                                          .values({column.name: vault.rotate(value)}))
                count += done.rowcount
            else:
                entry = pending.setdefault((table.name, column.name, row_key), (table, column, raw, {}))
                entry[3][option] = vault.rotate(value)
        for (_, _, row_key), (table, column, raw, rotated) in pending.items():
            options = {**_options(raw), **rotated}
            key = next(iter(table.primary_key.columns))
            done = connection.execute(update(table).where(key == row_key, column == raw)
                                      .values({column.name: json.dumps(options, sort_keys=True)}))
            count += len(rotated) if done.rowcount else 0
    return count, unreadable


def pending_outside_commands(rt: Runtime) -> int:
    """Smart commits claimed in an outside tracker and not yet recorded: their retry checks a signed marker."""
    with rt.sessions() as session:
        if session.get(TrackerConnection, 1) is None:
            return 0
        return session.scalar(select(func.count()).select_from(SmartCommitRun)
                              .where(SmartCommitRun.outcome == "pending")) or 0


def rotate_key(rt: Runtime, *, force: bool = False) -> Rotation:
    """``devlink secret-key rotate``: move every stored secret to a new key (see the module's docstring).

    With the key file, a pending Jira smart commit would be retried without recognising the marker
    signed with the old key (and so could run twice): that is refused unless ``force``.
    """
    if rt.settings.secret_key:
        if rt.vault.key_count == 1:
            return Rotation("env", 0, new_key=Fernet.generate_key().decode())
        count, unreadable = reencrypt(rt, rt.vault)
        return Rotation("env", count, unreadable, old_keys=rt.vault.key_count - 1)
    if not force and (waiting := pending_outside_commands(rt)):
        raise Conflict(
            f"{waiting} smart commit(s) are pending in the outside tracker: their retry needs the current key",
            reason="pending", hint="let the worker finish them (GET /api/v1/smart-commits?status=pending lists them), "
                 "or rotate with --force")
    path = key_file(rt.settings)
    vault = rt.vault.with_new_key(Fernet.generate_key())
    write_key_file(path, vault.encoded_keys())  # first: whatever happens next, the file decrypts everything
    count, unreadable = reencrypt(rt, vault)
    write_key_file(path, vault.encoded_keys()[:1])
    rt.vault = Vault(vault.encoded_keys()[0].encode(), source=str(path))
    return Rotation("file", count, unreadable)
