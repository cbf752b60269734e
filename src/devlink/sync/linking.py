"""Issue-link rows for development entities, from the one key extractor."""

from collections.abc import Iterable
from typing import Any

from devlink.domain.issue_keys import project_key

__all__ = ["link_rows"]


def link_rows(
    repository_id: int, entity_type: str, keyed: Iterable[tuple[int, Iterable[str]]]
) -> list[dict[str, Any]]:
    """One row per (key, entity) for each ``(entity_id, keys)``; keys come from ``extract_keys``."""
    return [
        {
            "key": key,
            "project_key": project_key(key),
            "repository_id": repository_id,
            "entity_type": entity_type,
            "entity_id": entity_id,
        }
        for entity_id, keys in keyed
        for key in keys
    ]
