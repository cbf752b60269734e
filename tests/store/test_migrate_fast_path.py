"""Every command checks the schema on start: cheaply when it is current, with Alembic when it is not."""

import json
import subprocess
import sys
from pathlib import Path

from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from devlink.store.engine import make_engine
from devlink.store.migrate import alembic_config, current_revision, head_revision, upgrade

CHILD = """
import json, sys
from devlink.store.engine import make_engine
from devlink.store.migrate import upgrade
upgrade(make_engine(sys.argv[1]))
print(json.dumps(sorted(name for name in sys.modules if name.split(".")[0] == "alembic")))
"""


def test_the_head_read_from_the_files_is_alembics_head() -> None:
    engine = make_engine("sqlite://")
    assert head_revision() == ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
    assert head_revision() is not None


def test_new_behind_and_current_databases_all_end_at_the_head(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        assert current_revision(engine) is None  # no alembic_version table yet
        upgrade(engine)
        assert current_revision(engine) == head_revision()
        assert "repositories" in inspect(engine).get_table_names()

        command.downgrade(alembic_config(engine), "-1")  # one migration behind: the check must not skip it
        assert current_revision(engine) not in (None, head_revision())
        upgrade(engine)
        assert current_revision(engine) == head_revision()
        assert "sync_holder" in {c["name"] for c in inspect(engine).get_columns("repositories")}
    finally:
        engine.dispose()


def test_a_current_database_is_checked_without_importing_alembic(database_url: str, tmp_path: Path) -> None:
    engine = make_engine(database_url)
    upgrade(engine)
    engine.dispose()
    done = subprocess.run([sys.executable, "-c", CHILD, database_url], capture_output=True, text=True, timeout=120,
                          check=True)
    assert json.loads(done.stdout) == []
