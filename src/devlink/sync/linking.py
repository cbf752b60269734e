"""Issue-link rows for development entities, from the one key extractor."""

from collections import Counter
from collections.abc import Iterable
from typing import Any

from devlink.domain.issue_keys import MAX_KEY_LENGTH, project_key

__all__ = [
    "LINK_COLUMNS",
    "count_unknown",
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


def count_unknown(
    keys: tuple[str, ...], linked: tuple[str, ...], known: frozenset[str] | None, unlinked: Counter[str] | None
) -> None:
    """Add to ``unlinked`` (project key -> mentions) the keys ``known_keys`` dropped because their project is unknown.

    Called with what ``known_keys`` returned for ``keys``, so the common cases
    (every key kept: no tracker projects, or only known projects mentioned)
    cost one length comparison.  Keys dropped for their length are not counted:
    creating a project would not link them.
    """
    if unlinked is None or known is None or len(linked) == len(keys):
        return
    for key in keys:
        project = project_key(key)
        if project not in known and len(key) <= MAX_KEY_LENGTH:
            unlinked[project] += 1
