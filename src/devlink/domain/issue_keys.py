"""The one issue-key extractor every part of devlink uses.

A key is a project key (an upper-case ASCII letter, then one or more upper-case
ASCII letters or digits), ``-`` and a number: ``ABC-123``, ``A1BC-9``.  It must
stand alone: the character before and after it is the edge of the text, ASCII
white space or ASCII punctuation.  Anything else, including non-ASCII spaces and
dashes, glues the key to its neighbour, so ``key0MES-123`` and ``ABC-12é`` carry
no key.  The rules are written out in docs/issue-keys.md.

    >>> extract_keys("feature/ABC-12-do-thing fixes ABC-12, DEF-3")
    ('ABC-12', 'DEF-3')
"""

import re
import string

__all__ = ["KEY_PATTERN", "extract_keys", "is_key", "project_key"]

_WHITESPACE = " \t\n\r\v\f"
_SEPARATORS = re.escape(_WHITESPACE + string.punctuation)

#: A key with its stand-alone rule expressed as lookarounds: "not preceded by a
#: non-separator" also accepts the start of the text, likewise at the end.
KEY_PATTERN = re.compile(rf"(?<![^{_SEPARATORS}])[A-Z][A-Z0-9]+-[0-9]+(?![^{_SEPARATORS}])")

_WHOLE_KEY = re.compile(r"[A-Z][A-Z0-9]+-[0-9]+")


def extract_keys(text: str) -> tuple[str, ...]:
    """Return the distinct keys of ``text`` in order of first appearance.

    A tuple rather than a set so that every caller prints keys in the same,
    reproducible order; duplicates collapse as the rules require.
    """
    return tuple(dict.fromkeys(match.group() for match in KEY_PATTERN.finditer(text)))


def is_key(text: str) -> bool:
    """Tell whether ``text`` is exactly one issue key (used to validate API paths)."""
    return _WHOLE_KEY.fullmatch(text) is not None


def project_key(key: str) -> str:
    """The project part of a key: ``project_key("KAFKA-12") == "KAFKA"``."""
    return key.rpartition("-")[0]
