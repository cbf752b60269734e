"""Issue-link rows for development entities, from the one key extractor."""

from collections.abc import Iterable
from typing import Any

from devlink.domain.issue_keys import MAX_KEY_LENGTH, project_key

__all__ = [
    "LINK_COLUMNS",
    "known_keys",
    "link_rows",
    "link_tuples",
]


#: The columns of ``link_tuples`` rows, in order.
LINK_COLUMNS = ["key", "project_key", "repository_id", "entity_type", "entity_id"]


def link_rows(
    repository_id: int, entity_type: str, keyed: Iterable[tuple[int, Iterable[str]]]
) -> list[dict[str, Any]]:
    """One row per (key, entity) for each ``(entity_id, keys)``; keys come from ``extract_keys``."""
    return [dict(zip(LINK_COLUMNS, row, strict=True)) for row in link_tuples(repository_id, entity_type, keyed)]


def link_tuples(
    repository_id: int, entity_type: str, keyed: Iterable[tuple[int, Iterable[str]]]
) -> list[tuple[str, str, int, str, int]]:
    """``link_rows`` as tuples in ``LINK_COLUMNS`` order, for ``insert_tuples_ignore``."""
    return [
        (key, project_key(key), repository_id, entity_type, entity_id)
        for entity_id, keys in keyed
        for key in keys
    ]


def known_keys(keys: tuple[str, ...], known: frozenset[str] | None) -> tuple[str, ...]:
    """The keys to link or act on: those of existing projects when the tracker knows its projects (``known``).

    Keys longer than ``MAX_KEY_LENGTH`` never count: no issue has one, and a
    column must not refuse a commit message.
    """
    return tuple(
        key for key in keys
        if len(key) <= MAX_KEY_LENGTH and (known is None or project_key(key) in known)
    )
