"""Secrets at rest: Fernet with a key from ``DEVLINK_SECRET_KEY`` or a key file in the data directory.

The key file is created on first use with mode 0600.  Losing it makes stored
credentials unreadable (repositories keep their data; re-add the credential).
"""

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from devlink.config import Settings
from devlink.errors import ConfigError

__all__ = ["Vault"]


class Vault:
    """Encrypts and decrypts short secrets (URL credentials, hook tokens)."""

    def __init__(self, key: bytes) -> None:
        try:
            self._fernet = Fernet(key)
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
            settings.home.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(Fernet.generate_key())
        return cls(Path(path).read_bytes().strip())

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
