"""Every error devlink raises on purpose, and the one place their shape is defined.

    DevlinkError                    base: a message for a person, a reason code, an HTTP status
    ├── ConfigError                 settings that cannot work (bad URL, missing server)
    ├── NotFound                    no such repository, delivery target, ...
    ├── Conflict                    the thing already exists
    ├── InvalidInput                a request a user can fix (bad key, bad location)
    ├── GitError                    git could not read a repository; ``reason`` says why:
    │                               not_a_repository, unreachable, auth, bad_url, git
    ├── TrackerError                the tracker refused an action (no such issue, no permission)
    ├── Unauthorized                no session or token, or one that is not valid (401)
    ├── Forbidden                   signed in, but the role or a permission does not allow it (403)
    └── DeliveryError               a webhook delivery that is refused (bad token, bad body)

The CLI prints ``message`` (and ``hint``) and exits 1; the web layer renders the
same fields as problem+json.  Messages never contain credentials.
"""

from typing import ClassVar

__all__ = [
    "ConfigError",
    "Conflict",
    "DeliveryError",
    "DevlinkError",
    "Forbidden",
    "GitError",
    "InvalidInput",
    "NotFound",
    "TrackerError",
    "Unauthorized",
]


class DevlinkError(Exception):
    """Base class: carries a user-facing message, a machine reason and an HTTP status."""

    status: int = 500  # a class default; an instance may narrow it (HostError does, by reason)
    default_reason: ClassVar[str] = "error"

    def __init__(self, message: str, *, reason: str | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason
        self.hint = hint


class ConfigError(DevlinkError):
    """Raised when settings cannot work, naming the setting and the fix."""

    status = 500
    default_reason = "config"


class NotFound(DevlinkError):
    """Raised when a named thing does not exist."""

    status = 404
    default_reason = "not_found"


class Conflict(DevlinkError):
    """Raised when creating something that already exists."""

    status = 409
    default_reason = "conflict"


class InvalidInput(DevlinkError):
    """Raised for a request the user can correct."""

    status = 422
    default_reason = "invalid"


class GitError(DevlinkError):
    """Raised when git cannot clone, fetch or read a repository (422: the location cannot be used)."""

    status = 422
    default_reason = "git"


class TrackerError(DevlinkError):
    """Raised when the tracker refuses an action; the message is what a smart-commit error shows."""

    status = 422
    default_reason = "tracker"


class DeliveryError(DevlinkError):
    """Raised for a refused webhook delivery."""

    status = 400
    default_reason = "bad_delivery"


class Unauthorized(DevlinkError):
    """Raised when a request names nobody devlink knows: no session or token, or an expired or revoked one."""

    status = 401
    default_reason = "unauthorized"

    @classmethod
    def nobody(cls) -> "Unauthorized":
        """The refusal of a request that carries no credential at all."""
        return cls("sign in, or send an API token as Authorization: Bearer TOKEN", reason="unauthorized",
                   hint="make a token with: devlink token create NAME")


class Forbidden(DevlinkError):
    """Raised when the person is known but their role or a project permission does not allow the request."""

    status = 403
    default_reason = "forbidden"
