"""A project key is at most 10 characters at every way in: the CLI, the import file, the API, the function."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from devlink.errors import InvalidInput
from devlink.runtime import Runtime
from devlink.store.tracker import Project
from devlink.trackers.builtin import create_issue, create_project, import_data
from servers import start_server, stop_server

TOO_LONG = "ABCDEFGHIJK"  # 11 characters
LONGEST = "ABCDEFGHIJ"
ERROR = f"invalid project key '{TOO_LONG}': at most 10 characters (it has 11)"
HINT = "project keys are 2 to 10 upper-case letters or digits, starting with a letter: DEMO, APP2"


def devlink(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEVLINK_")}
    env["DEVLINK_HOME"] = str(home)
    return subprocess.run([sys.executable, "-m", "devlink", *args], env=env, capture_output=True, text=True,
                          timeout=120)


def projects(rt: Runtime) -> list[str]:
    with rt.sessions() as session:
        return sorted(session.scalars(select(Project.key)))


def test_create_project_and_the_import_file_refuse_a_long_key(runtime: Runtime) -> None:
    with pytest.raises(InvalidInput) as direct, runtime.sessions.begin() as session:
        create_project(session, TOO_LONG, "Too long")
    assert (direct.value.message, direct.value.reason, direct.value.hint) == (ERROR, "bad_project_key", HINT)
    with pytest.raises(InvalidInput, match="at most 10 characters"), runtime.sessions.begin() as session:
        import_data(session, {"projects": [{"key": "OK", "name": "fine"}, {"key": TOO_LONG, "name": "x"}]})
    assert projects(runtime) == []  # the import is one transaction: nothing half-loaded

    with runtime.sessions.begin() as session:
        create_project(session, LONGEST, "Longest")
        create_issue(session, f"{LONGEST}-{'9' * 89}", "the longest key devlink links")  # 100 characters
        with pytest.raises(InvalidInput, match="is 101 characters long; at most 100 are linked") as refused:
            create_issue(session, f"{LONGEST}-{'9' * 90}", "one digit too many")
    assert refused.value.reason == "bad_key"
    assert projects(runtime) == [LONGEST]


def test_the_cli_refuses_a_long_key(tmp_path: Path) -> None:
    home = tmp_path / "home"
    direct = devlink(home, "tracker", "project", TOO_LONG, "Too long")
    assert (direct.returncode, direct.stdout, direct.stderr) == (1, "", f"error: {ERROR}\nhint: {HINT}\n")
    data = tmp_path / "tracker.toml"
    data.write_text(f'[[projects]]\nkey = "{TOO_LONG}"\nname = "Too long"\n')
    imported = devlink(home, "tracker", "import", str(data))
    assert (imported.returncode, imported.stderr) == (1, f"error: {ERROR}\nhint: {HINT}\n")
    assert devlink(home, "tracker", "project", LONGEST, "Longest").stdout == f"project {LONGEST}: Longest\n"


def test_the_api_refuses_a_long_key(tmp_path: Path) -> None:
    server = start_server(tmp_path / "home", worker=False)
    try:
        with server.client() as client:
            refused = client.post("/api/v1/projects", json={"key": TOO_LONG, "name": "Too long"})
            huge = client.post("/api/v1/projects", json={"key": "A" * 100_000, "name": "huge"})
            accepted = client.post("/api/v1/projects", json={"key": LONGEST, "name": "Longest"})
            listed = client.get("/api/v1/projects").json()
    finally:
        stop_server(server)
    assert refused.status_code == 422
    assert {k: refused.json()[k] for k in ("type", "title", "hint")} == {
        "type": "bad_project_key", "title": ERROR, "hint": HINT}
    assert huge.status_code == 422 and len(huge.text) < 1000  # the message does not echo the whole key
    assert accepted.status_code == 201
    assert listed == [{"key": LONGEST, "name": "Longest"}]
