"""Secrets at rest: Fernet with keys from ``DEVLINK_SECRET_KEY`` or a key file in the data directory.

Either may list several keys (the variable separated by commas, the file one a
line): the first encrypts and signs, every one decrypts, which is how
``devlink secret-key rotate`` (``sync/secrets.py``) moves to a new key.  The
key file is created on first use with mode 0600 and rewritten atomically.  Losing it makes stored
credentials unreadable (repositories keep their data; re-add the credential).

The files that hold secrets, or what they protect, are private to devlink's
user whatever the umask: ``private_directory`` and ``private_file`` create the
data directory (0700), the key file, the SQLite databases (0600; SQLite gives
the ``-wal`` and ``-shm`` files it creates the database file's mode) and take
group and other permissions off those that already exist.
"""

import contextlib
import hashlib
import hmac
import logging
import os
import stat
from collections.abc import Sequence
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from devlink.config import Settings
from devlink.errors import ConfigError

__all__ = ["Vault", "key_file", "parse_keys", "private_directory", "private_file", "write_key_file"]

log = logging.getLogger(__name__)

#: Files SQLite keeps beside a database: they hold the same rows.
_SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")

_MAKE_KEY = ('make one with: python -c "from cryptography.fernet import Fernet; '
             'print(Fernet.generate_key().decode())"')


def private_directory(path: Path, *, tighten: bool = False) -> None:
    """Create ``path`` (and missing parents) with mode 0700 if it is missing.

    An existing directory keeps its mode unless ``tighten`` (for directories only devlink uses, like
    the mirrors): it may be a shared one (``DEVLINK_HOME=/srv``), and the files devlink keeps in it
    are private on their own.
    """
    if not path.is_dir():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.mkdir(mode=0o700, exist_ok=True)
        except (FileExistsError, NotADirectoryError):  # a file where the directory, or one above it, should be
            raise ConfigError(f"{path} is not a directory: devlink keeps its data in a directory there",
                              hint="point DEVLINK_HOME at a directory (it is created if missing)") from None
        except PermissionError:
            raise ConfigError(f"cannot create {path}: permission denied",
                              hint="point DEVLINK_HOME at a directory this user may write") from None
    elif tighten:
        _tighten(path)


def private_file(path: Path, *, sqlite: bool = False) -> None:
    """Create an empty ``path`` with mode 0600 if it is missing, else take group and other bits off it.

    With ``sqlite``, the database's ``-wal``, ``-shm`` and ``-journal`` files are tightened too
    (new ones take the database's mode from SQLite).  A file devlink may use but not change
    (another owner) is left as it is, with a warning.
    """
    private_directory(path.parent)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for each in [path, *(path.with_name(path.name + end) for end in _SQLITE_COMPANIONS if sqlite)]:
        _tighten(each)


def _tighten(path: Path) -> None:
    """Take group and other permission bits off ``path``, if it exists and has any."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            path.chmod(mode & 0o700)
    except FileNotFoundError:
        pass
    except PermissionError:
        log.warning("files.not_private path=%s", path)


def parse_keys(text: str, *, separator: str = ",") -> list[str]:
    """The keys listed in ``text`` (``DEVLINK_SECRET_KEY``: by commas; a key file: by lines), blanks left out."""
    return [part.strip() for part in text.split(separator) if part.strip()]


def key_file(settings: Settings) -> Path:
    """Where the key file is (used unless ``DEVLINK_SECRET_KEY`` is set)."""
    return settings.home / "secret.key"


def write_key_file(path: Path, keys: Sequence[str]) -> None:
    """Replace ``path`` with ``keys``, one a line (the first is current), atomically and with mode 0600.

    The keys go to a new file beside it (created 0600, whatever the umask), which is flushed to disk
    and renamed over the old one: a crash leaves either the old file or the new one, never half of one.
    """
    private_directory(path.parent)
    scratch = path.with_name(f".{path.name}.{os.getpid()}.new")
    with contextlib.suppress(FileNotFoundError):
        scratch.unlink()  # a leftover of a run that died
    fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write("".join(f"{key}\n" for key in keys))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(scratch, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            scratch.unlink()
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself survives a crash
    finally:
        os.close(directory)


class Vault:
    """Encrypts and decrypts short secrets (URL credentials, hook tokens) with one or more Fernet keys.

    The first key encrypts and signs; every key decrypts (``MultiFernet``), so secrets written under
    an older key stay readable until ``devlink secret-key rotate`` re-encrypts them.  ``source`` names
    where the keys came from, for errors (never the keys themselves).

        vault = Vault(new_key, old_key)
        vault.decrypt(token_made_with_old_key)
        vault.rotate(token_made_with_old_key)  # the same secret, under new_key
    """

    def __init__(self, *keys: bytes, source: str = "DEVLINK_SECRET_KEY") -> None:
        if not keys:
            raise ConfigError(f"{source} holds no key", hint=_MAKE_KEY)
        fernets = []
        for position, key in enumerate(keys, start=1):
            try:
                fernets.append(Fernet(key))
            except (ValueError, TypeError):
                which = f"key {position} of {len(keys)} in {source}" if len(keys) > 1 else source
                raise ConfigError(f"{which} is not a valid key", hint=_MAKE_KEY) from None
        self._keys = tuple(keys)
        self._source = source
        self._fernet = MultiFernet(fernets)
        self._current = fernets[0]
        # separate keys for signatures, derived so that neither reveals the other; the first one signs
        self._signing = [hmac.new(key, b"devlink signatures", hashlib.sha256).digest() for key in keys]

    def __repr__(self) -> str:
        return f"Vault(keys={len(self._keys)}, [secure])"

    @classmethod
    def from_settings(cls, settings: Settings) -> "Vault":
        """The keys of ``DEVLINK_SECRET_KEY`` (comma-separated), else of the key file (one a line, made if missing)."""
        if settings.secret_key:
            return cls(*(key.encode() for key in parse_keys(settings.secret_key)), source="DEVLINK_SECRET_KEY")
        path = key_file(settings)
        if not path.exists():
            private_directory(settings.home)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(Fernet.generate_key())
        else:
            private_file(path)  # a key file copied in with the umask's mode
        text = Path(path).read_text(encoding="ascii", errors="replace")
        return cls(*(key.encode() for key in parse_keys(text, separator="\n")), source=str(path))

    @property
    def key_count(self) -> int:
        """How many keys decrypt: 1, or more while a rotation is under way."""
        return len(self._keys)

    @property
    def source(self) -> str:
        """Where the keys came from: ``DEVLINK_SECRET_KEY`` or the key file's path."""
        return self._source

    def with_new_key(self, key: bytes) -> "Vault":
        """A vault that encrypts with ``key`` and still decrypts with every key of this one."""
        return Vault(key, *self._keys, source=self._source)

    def encoded_keys(self) -> list[str]:
        """The keys as written in a key file, the current one first (for ``write_key_file`` only)."""
        return [key.decode() for key in self._keys]

    def sign(self, text: str) -> str:
        """An HMAC-SHA256 of ``text`` with the first key: marks what devlink left somewhere others can write too.

        Session cookies and CSRF tokens compare against this alone, so they end when the first key
        changes; what is stored elsewhere for long (markers on Jira issues) is checked with ``verify``.
        """
        return hmac.new(self._signing[0], text.encode(), hashlib.sha256).hexdigest()

    def verify(self, text: str, signature: str) -> bool:
        """Whether ``signature`` is ``sign(text)`` under any of the keys (constant time per key)."""
        given = signature.encode()
        return any(hmac.compare_digest(given, hmac.new(key, text.encode(), hashlib.sha256).hexdigest().encode())
                   for key in self._signing)

    def encrypt(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise ConfigError(
                "a stored secret cannot be decrypted with the current key",
                hint="was DEVLINK_SECRET_KEY or secret.key changed? restore it, or remove and re-add the repository",
            ) from None

    def readable(self, token: str) -> bool:
        """Whether one of the keys decrypts ``token``."""
        try:
            self._fernet.decrypt(token.encode())
        except InvalidToken:
            return False
        return True

    def current(self, token: str) -> bool:
        """Whether the first key decrypts ``token``: it needs no re-encryption."""
        try:
            self._current.decrypt(token.encode())
        except InvalidToken:
            return False
        return True

    def rotate(self, token: str) -> str:
        """``token``'s secret encrypted with the first key; ``ConfigError`` if no key decrypts it."""
        try:
            return self._fernet.rotate(token.encode()).decode()
        except InvalidToken:
            raise ConfigError("a stored secret cannot be decrypted with any key") from None

