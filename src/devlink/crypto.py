"""Secrets at rest: Fernet with a key from ``DEVLINK_SECRET_KEY`` or a key file in the data directory.

The key file is created on first use with mode 0600.  Losing it makes stored
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
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from devlink.config import Settings
from devlink.errors import ConfigError

__all__ = ["Vault", "private_directory", "private_file"]

log = logging.getLogger(__name__)

#: Files SQLite keeps beside a database: they hold the same rows.
_SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


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


class Vault:
    """Encrypts and decrypts short secrets (URL credentials, hook tokens)."""

    def __init__(self, key: bytes) -> None:
        try:
            self._fernet = Fernet(key)
            # a separate key for signatures, derived so that neither reveals the other
            self._signing = hmac.new(key, b"devlink signatures", hashlib.sha256).digest()
        except (ValueError, TypeError):
            raise ConfigError(
                "DEVLINK_SECRET_KEY is not a valid key",
                hint='make one with: python -c "from cryptography.fernet import Fernet; '
                'print(Fernet.generate_key().decode())"',
            ) from None

    def __repr__(self) -> str:
        return "Vault(key=[secure])"

    @classmethod
    def from_settings(cls, settings: Settings) -> "Vault":
        if settings.secret_key:
            return cls(settings.secret_key.encode())
        path = settings.home / "secret.key"
        if not path.exists():
            private_directory(settings.home)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(Fernet.generate_key())
        else:
            private_file(path)  # a key file copied in with the umask's mode
        return cls(Path(path).read_bytes().strip())

    def sign(self, text: str) -> str:
        """An HMAC-SHA256 of ``text``: marks what devlink itself left somewhere others can write too."""
        return hmac.new(self._signing, text.encode(), hashlib.sha256).hexdigest()

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
