"""The head revision of devlink's migrations, read from the files without Alembic or SQLAlchemy.

Every command checks the schema on start (``store.migrate.upgrade``), and
``devlink issue KEY`` reads the database without the ORM when it is at this
revision (``store.development.open_plain``); both must cost nothing when
there is nothing to do.
"""

import re
from functools import cache
from pathlib import Path

__all__ = ["MIGRATIONS", "head_revision"]

MIGRATIONS = Path(__file__).parent / "migrations"
_REVISION = re.compile(r"""^(down_revision|revision)\s*(?::[^=]*)?=\s*(?:['"]([^'"]*)['"]|None)\s*$""", re.M)


@cache
def head_revision() -> str | None:
    """The one head of the migration files, or None when they do not name exactly one (Alembic then decides).

    Each file under ``versions/`` declares ``revision = 'X'`` and
    ``down_revision = 'Y'`` (or ``None``); the head is the revision no other
    file names as its parent.  A merge (a tuple of parents) or a file that does
    not match makes this None rather than a guess.
    """
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in sorted((MIGRATIONS / "versions").glob("*.py")):
        found = dict((name, value) for name, value in _REVISION.findall(path.read_text(encoding="utf-8")))
        if "revision" not in found or "down_revision" not in found or not found["revision"]:
            return None
        revisions.add(found["revision"])
        if found["down_revision"]:
            parents.add(found["down_revision"])
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None
