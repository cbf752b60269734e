"""Text from hosts made safe to store: no database refuses it, nothing is dropped silently."""

__all__ = ["storable"]


def storable(text: str) -> str:
    """Replace NUL (PostgreSQL refuses it) and lone surrogates (no UTF-8 encoder takes them) with U+FFFD.

    JSON from a host may carry both as escapes (``\\u0000``, ``\\ud800``); a
    pull request title must not fail a webhook or a sync because of them.
    """
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = "".join("\ufffd" if "\ud800" <= ch <= "\udfff" else ch for ch in text)
    return text
