"""Issue-link rows for development entities, from the one key extractor."""

from collections.abc import Iterable
from typing import Any

from devlink.domain.issue_keys import project_key

__all__ = ["LINK_COLUMNS", "link_rows", "link_tuples"]


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
