"""Text from hosts made safe to store: no database refuses it, nothing is dropped silently; URLs safe to link."""

import re

__all__ = ["http_url", "storable"]

# what a browser strips from a URL before it reads the scheme: edges up to space, tabs and newlines inside
_URL_EDGES = "".join(chr(c) for c in range(0x21))
_URL_INNER = re.compile(r"[\t\n\r]")


def http_url(url: str | None) -> str | None:
    """``url`` if it is an http(s) URL as a browser would read it, else None: a host's ``html_url`` may be
    ``javascript:…``, and a repository's location a path on this server, which is nobody else's business."""
    cleaned = _URL_INNER.sub("", (url or "").strip(_URL_EDGES))
    return cleaned if cleaned.lower().startswith(("http://", "https://")) else None


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
