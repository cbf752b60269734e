"""The protocol the sync engine talks to: the few things smart commits and key linking need.

A tracker is built per unit of work (for the built-in one: around a database
session) and raises ``TrackerError`` with a message a user can act on; the
engine records that message on the smart-commit ledger.
"""

from datetime import datetime
from typing import Protocol

__all__ = ["Tracker"]


class Tracker(Protocol):
    def project_keys(self) -> frozenset[str] | None:
        """Keys of the projects that exist, or None when the tracker cannot tell (then every key links)."""

    def users_for_email(self, email: str) -> list[str]:
        """Usernames an author e-mail maps to (aliases first, then addresses; case-insensitive)."""

    def can(self, username: str, issue_key: str, permission: str) -> bool:
        """Whether ``username`` holds ``permission`` (comment, log_work, transition, ...) on the issue's project."""

    def comment(self, issue_key: str, username: str, body: str) -> None:
        """Add a comment as ``username``."""

    def log_work(self, issue_key: str, username: str, seconds: int, started: datetime, comment: str) -> None:
        """Log ``seconds`` of work as ``username``."""

    def transitions(self, issue_key: str) -> list[tuple[str, str]]:
        """(transition name, target status) available from the issue's current status, in workflow order."""

    def transition(self, issue_key: str, username: str, name: str) -> str:
        """Move the issue along transition ``name``; return the new status."""
