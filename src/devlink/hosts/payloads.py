"""Reading a verified webhook payload field by field, so every refusal names the field and what was wrong.

Each host kind's webhook module subclasses ``PayloadReader`` with its own name and the readers of its
own shapes (a repository, a project); the error wording is the same for every host.
"""

from __future__ import annotations

from typing import Any, ClassVar

from devlink.hosts.base import WebhookPayloadError

__all__ = ["PayloadReader", "type_name"]

Json = dict[str, Any]


def type_name(value: object) -> str:
    """A JSON value's type as JSON calls it, for error messages."""
    names = {dict: "object", list: "array", str: "string", int: "number", float: "number", bool: "boolean"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


class PayloadReader:
    """A payload plus the event name; ``host`` ("GitHub", "GitLab") starts every message."""

    host: ClassVar[str] = "host"

    def __init__(self, event: str, data: Json) -> None:
        self.event = event
        self.data = data

    def error(self, path: str, problem: str = "is missing") -> WebhookPayloadError:
        return WebhookPayloadError(f"{self.host} {self.event} payload: `{path}` {problem}")

    def obj(self, value: object, path: str) -> Json:
        if isinstance(value, dict):
            return value
        if value is None:
            raise self.error(path)
        raise self.error(path, f"must be an object, got {type_name(value)}")

    def text(self, value: object, path: str) -> str:
        if isinstance(value, str) and value:
            return value
        if value is None or value == "":
            raise self.error(path)
        raise self.error(path, f"must be a string, got {type_name(value)}")

    def optional_text(self, value: object, path: str) -> str | None:
        """A string that may be absent (None); any other type is an error."""
        if value is None or isinstance(value, str):
            return value
        raise self.error(path, f"must be a string, got {type_name(value)}")
