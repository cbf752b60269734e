"""Start-up stays light: the commands run most import only what they use (timed by bench/cli_startup.py).

Each case runs one command in a fresh interpreter and lists the modules it loaded, so the guard holds
without timing anything: a heavy import slipping back to the top of ``devlink.cli`` (or of a module it
imports at the top) fails here.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

#: the host client, the migration tool, the web stack and the queue: loaded by the commands that use them only;
#: pydantic too (typer would load it to coerce arguments: ``keys`` and ``issue`` are taken before typer)
HEAVY = {"githubkit", "alembic", "fastapi", "uvicorn", "starlette", "huey", "httpx", "jinja2", "redis", "pydantic"}
#: what ``keys`` and ``--help`` must not load either: they never open the database or draw a table
STORE = {"sqlalchemy", "rich", "cryptography"}

CHILD = """
import json, sys
from devlink.cli import main
listing = sys.argv[2]
sys.argv = ["devlink", *json.loads(sys.argv[1])]
try:
    main()
except SystemExit:
    pass
with open(listing, "w") as out:
    json.dump(sorted({name.split(".")[0] for name in sys.modules}), out)
"""


def loaded_by(home: Path, *args: str) -> set[str]:
    """The top-level packages a fresh ``devlink ARGS`` process has imported when it is done."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEVLINK_")}
    env["DEVLINK_HOME"] = str(home)
    listing = home.parent / "modules.json"
    done = subprocess.run([sys.executable, "-c", CHILD, json.dumps(args), str(listing)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return set(json.loads(listing.read_text()))


@pytest.mark.parametrize("args", [["keys", "fix ABC-1"], ["keys", "--json", "ABC-1"], ["--help"]])
def test_keys_and_help_load_neither_the_store_nor_the_heavy_libraries(tmp_path: Path, args: list[str]) -> None:
    home = tmp_path / "home"
    assert loaded_by(home, *args) & (HEAVY | STORE) == set()
    assert not (home / "devlink.db").exists()  # keys never opens the database


def test_issue_on_a_current_database_loads_no_heavy_library(tmp_path: Path) -> None:
    home = tmp_path / "home"
    subprocess.run([sys.executable, "-m", "devlink", "migrate"], env={**os.environ, "DEVLINK_HOME": str(home)},
                   check=True, capture_output=True, timeout=120)
    loaded = loaded_by(home, "issue", "ABC-1", "--json")
    assert "sqlite3" in loaded  # it did read the database, through the driver alone
    assert loaded & (HEAVY | STORE) == set()


def test_issue_on_a_new_database_creates_it_through_the_usual_path(tmp_path: Path) -> None:
    home = tmp_path / "home"
    loaded = loaded_by(home, "issue", "ABC-1", "--json")
    assert {"sqlalchemy", "alembic"} <= loaded  # the plain path never creates or migrates a database
    assert (home / "devlink.db").exists()
