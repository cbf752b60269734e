"""Times: zones as git records them (minutes east of UTC), and ISO 8601 as hosts and the store write it."""

from datetime import UTC, datetime, timedelta, timezone

__all__ = ["parse_iso", "tz_of"]


def parse_iso(value: object) -> datetime | None:
    """An ISO 8601 time (``Z`` or an offset; a time without one is UTC) as an aware datetime; None otherwise."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def tz_of(minutes: int) -> timezone:
    """The fixed-offset zone a commit was written in, for showing its local time: ``tz_of(330)`` is +05:30."""
    return timezone(timedelta(minutes=minutes))
