"""The tracker and smart-commit commands as a user runs them, and ``devlink demo``."""

import json
import re
import subprocess
import sys
from pathlib import Path

from devlink.config import load_settings
from devlink.runtime import Runtime
from devlink.sync.people import sign_in
from devlink.trackers.builtin import issue_view

IMPORT = """
[[users]]
username = "ada"
name = "Ada Lovelace"
emails = ["ada@example.com"]

[[projects]]
key = "DEMO"
name = "Demo"
[projects.permissions]
browse = ["everyone"]
comment = ["ada"]

[[issues]]
key = "DEMO-1"
summary = "first"
assignee = "ada"
"""


def devlink(home: Path, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("DEVLINK_")}
    env["DEVLINK_HOME"] = str(home)
    return subprocess.run([sys.executable, "-m", "devlink", *args], env=env, capture_output=True, text=True,
                          input=input, timeout=120)


def test_import_is_idempotent_and_one_at_a_time_commands_work(tmp_path: Path) -> None:
    home = tmp_path / "home"
    data = tmp_path / "tracker.toml"
    data.write_text(IMPORT)
    first = devlink(home, "tracker", "import", str(data))
    assert (first.returncode, first.stdout) == (0, "imported 0 workflows, 1 users, 1 projects, 0 aliases, 1 issues\n")
    assert devlink(home, "tracker", "import", str(data)).returncode == 0

    assert devlink(home, "tracker", "user", "bob", "--name", "Bob", "--email", "Bob@Example.com").returncode == 0
    assert devlink(home, "tracker", "alias", "ada@old-laptop.local", "ada").stdout == "ada@old-laptop.local → ada\n"
    assert devlink(home, "tracker", "issue", "DEMO-2", "second", "--assignee", "bob").returncode == 0
    duplicate = devlink(home, "tracker", "issue", "DEMO-2", "again")
    assert (duplicate.returncode, duplicate.stderr.strip()) == (1, "error: issue DEMO-2 already exists")
    unknown = devlink(home, "tracker", "issue", "NOPE-1", "x")
    assert unknown.stderr.startswith("error: no project NOPE\nhint: create it with: devlink tracker project KEY NAME")

    rt = Runtime.open(load_settings({"DEVLINK_HOME": str(home)}))
    with rt.sessions() as session:
        demo1, demo2 = issue_view(session, "DEMO-1"), issue_view(session, "DEMO-2")
        from devlink.trackers.builtin import BuiltinTracker

        tracker = BuiltinTracker(session)
        assert tracker.users_for_email("ADA@old-laptop.local") == ["ada"]
        assert tracker.users_for_email("bob@example.com") == ["bob"]
        assert (tracker.can("ada", "DEMO-1", "comment"), tracker.can("bob", "DEMO-1", "comment")) == (True, False)
    rt.close()
    assert (demo1["status"], demo1["assignee"], demo2["assignee"]) == ("To Do", "ada", "bob")


def test_import_errors_name_the_item(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[issues]]\nkey = "DEMO-1"\nsummary = "x"\nstatus = "Doing"\n'
                   '[[projects]]\nkey = "DEMO"\nname = "Demo"\n')
    done = devlink(tmp_path / "home", "tracker", "import", str(bad))
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "error: issue DEMO-1: unknown status 'Doing' (one of To Do, In Progress, In Review, Done)"
    )
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    unreadable = devlink(tmp_path / "home", "tracker", "import", str(broken))
    assert unreadable.stderr.startswith(f"error: {broken} cannot be read")


def test_smart_commit_parse_prints_the_stable_json(tmp_path: Path) -> None:
    done = devlink(tmp_path, "smart-commit", "parse", "--json", input="KEY-1 #time 1h 30m fixing #close\n")
    assert done.returncode == 0
    assert json.loads(done.stdout) == {"groups": [{"keys": ["KEY-1"], "commands": [
        {"type": "time", "name": "time", "args": "1h 30m fixing", "seconds": 5400, "comment": "fixing"},
        {"type": "transition", "name": "close", "args": ""},
    ]}]}
    human = devlink(tmp_path, "smart-commit", "parse", "AB-12 #comment hello")
    assert human.stdout == "AB-12: #comment [comment] hello\n"
    assert devlink(tmp_path, "smart-commit", "parse", "A-12 #comment no key").stdout == "no smart-commit commands\n"
    no_duration = devlink(tmp_path, "smart-commit", "parse", "AB-12 #time 2x")
    assert no_duration.stdout == "AB-12: #time [time] (no duration: write it like 1w 2d 4h 30m) 2x\n"


def test_demo_sets_everything_up(tmp_path: Path) -> None:
    home = tmp_path / "home"
    done = devlink(home, "demo", "--no-serve", "--port", "8999")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == (
        f"demo repository {home / 'demo' / 'demo.git'} linked as 'demo': 13 commits indexed; "
        "smart commits: 7 done, 1 error"
    )
    assert "http://127.0.0.1:8999/issues/DEMO-1" in done.stdout
    passwords = dict(re.findall(r"sign in as (\w+) \(\w+\) with password (\S+)", done.stdout))
    assert set(passwords) == {"alice", "bob"}
    hook = home / "demo" / "demo.git" / "hooks" / "post-receive"
    assert "url='http://127.0.0.1:8999/hooks/git'" in hook.read_text()
    again = devlink(home, "demo", "--no-serve")
    # the same totals, from the ledger (nothing ran twice: DEMO-1 below still has its one comment)
    assert "smart commits: 7 done, 1 error" in again.stdout
    assert "sign in with the passwords the first devlink demo printed" in again.stdout  # not new ones
    assert "devlink tracker project KAFKA" in done.stdout
    kafka = devlink(home, "tracker", "project", "KAFKA", "Kafka")
    assert kafka.returncode == 0, kafka.stderr
    assert "devlink tracker project KAFKA" not in devlink(home, "demo", "--no-serve").stdout  # done already
    rt = Runtime.open(load_settings({"DEVLINK_HOME": str(home)}))
    with rt.sessions() as session:
        demo1 = issue_view(session, "DEMO-1")
    principal, _ = sign_in(rt, "alice", passwords["alice"], "127.0.0.1")
    member, _ = sign_in(rt, "bob", passwords["bob"], "127.0.0.1")
    rt.close()
    assert (principal.role, member.role) == ("admin", "member")
    assert demo1["status"] == "Done"
    assert [c["body"] for c in demo1["comments"]] == ["Fixed: the importer now reads the last line."]

