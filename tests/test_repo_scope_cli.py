"""``devlink repo set REPO --projects KEY,KEY`` / ``--all-projects``, and the CLI's reads under the scope.

The CLI acts as the local administrator: it sees every project, but a scoped
repository still shows up only under the projects it serves.
"""

import json
import subprocess
import sys
from pathlib import Path

from gitrepos import GitRepo


def devlink(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("DEVLINK_")}
    env["DEVLINK_HOME"] = str(home)
    return subprocess.run([sys.executable, "-m", "devlink", *args], env=env, capture_output=True, text=True,
                          timeout=120)


def _shas(home: Path, key: str) -> set[str]:
    done = devlink(home, "issue", key, "--json")
    assert done.returncode == 0, done.stderr
    return {c["repository"]["name"] for c in json.loads(done.stdout)["commits"]}


def test_repo_set_scopes_a_repository_to_projects_and_back(tmp_path: Path) -> None:
    home = tmp_path / "home"
    for key in ("APP", "OPS"):
        assert devlink(home, "tracker", "project", key, key.title()).returncode == 0
    for name in ("app", "shared"):
        repo = GitRepo(tmp_path / name)
        repo.commit("APP-1 and OPS-1 work")
        added = devlink(home, "repo", "add", str(tmp_path / name), "--name", name)
        assert added.returncode == 0, added.stderr

    scoped = devlink(home, "repo", "set", "app", "--projects", "APP")
    assert (scoped.returncode, scoped.stdout) == (0, "app: serves APP\n")
    assert _shas(home, "OPS-1") == {"shared"}
    assert _shas(home, "APP-1") == {"app", "shared"}
    listed = {r["name"]: r["projects"] for r in json.loads(devlink(home, "repo", "list", "--json").stdout)}
    assert listed == {"app": ["APP"], "shared": []}
    table = devlink(home, "repo", "list").stdout
    assert "projects" in table and "APP" in table and "all" in table

    unknown = devlink(home, "repo", "set", "app", "--projects", "APP,NOPE")
    assert unknown.returncode == 1 and "not a project of the tracker: NOPE" in unknown.stderr
    both = devlink(home, "repo", "set", "app", "--projects", "APP", "--all-projects")
    assert both.returncode == 1 and "not both" in both.stderr
    nothing = devlink(home, "repo", "set", "app")
    assert nothing.returncode == 1 and "nothing to change" in nothing.stderr

    everything = devlink(home, "repo", "set", "app", "--all-projects", "--no-smart-commits")
    assert (everything.returncode, everything.stdout) == (0, "app: serves every project\napp: smart commits off\n")
    assert _shas(home, "OPS-1") == {"app", "shared"}
    assert "projects" not in devlink(home, "repo", "list").stdout  # no repository scoped: no column
