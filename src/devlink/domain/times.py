"""Time zones as git records them: minutes east of UTC."""

from datetime import timedelta, timezone

__all__ = ["tz_of"]


def tz_of(minutes: int) -> timezone:
    """The fixed-offset zone a commit was written in, for showing its local time: ``tz_of(330)`` is +05:30."""
    return timezone(timedelta(minutes=minutes))
