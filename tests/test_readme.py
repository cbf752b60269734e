"""The README's "Try it" steps, run in the order they are written, on a fresh data directory.

The commands are read from README.md itself, so the README cannot drift from what works: each
``devlink`` line runs in this process (``devlink demo`` with ``--no-serve``, since it serves
afterwards), the corpus script runs as a process, and ``devlink serve`` is a real server whose
page is fetched.  What KAFKA-16845 must show comes from the corpus, read independently.
"""

import gzip
import json
import re
import shlex
import string
import subprocess
import sys
from pathlib import Path

import pytest

from climain import InProcessCli
from servers import start_server, stop_server

ROOT = Path(__file__).resolve().parents[1]
KEY = "KAFKA-16845"
_SEP = re.escape(" \t\n\r\v\f" + string.punctuation)
REFERENCE_KEY = re.compile(rf"(?<![^{_SEP}]){KEY}(?![^{_SEP}])")  # docs/issue-keys.md, not devlink's extractor


def try_it_steps() -> list[list[str]]:
    """The command lines of the local "Try it" blocks (demo, then the Kafka history), in order."""
    section = (ROOT / "README.md").read_text().split("\n## Try it\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    assert len(blocks) >= 3 and "account add github" in blocks[2], "the third block is the GitHub one (needs github)"
    return [words for block in blocks[:2] for line in block.splitlines() if (words := shlex.split(line, comments=True))]


def expected_summaries() -> set[str]:
    history = ROOT.parent / "shared" / "corpus" / "histories" / "kafka.commits.jsonl.gz"
    with gzip.open(history, "rt", encoding="utf-8") as lines:
        messages = (json.loads(line)["message"] for line in lines)
        return {message.split("\n", 1)[0] for message in messages if REFERENCE_KEY.search(message)}


def test_the_readme_sequence_shows_the_kafka_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cli = InProcessCli(tmp_path / "home", monkeypatch, capsys)
    scratch: dict[str, Path] = {}  # /tmp/... paths of the README, kept under this test's directory

    def local(word: str) -> str:
        if word.startswith("/tmp/"):
            return str(scratch.setdefault(word, tmp_path / word.removeprefix("/tmp/")))
        return word

    steps = try_it_steps()
    assert next(s[:2] for s in steps if s[0] == "devlink") == ["devlink", "demo"]
    outputs: dict[str, str] = {}
    page = ""
    for words in steps:
        program, *args = (local(word) for word in words)
        if program == "python3":
            done = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, done.stderr
        elif args[0] == "serve":
            server = start_server(cli.home)
            try:
                with server.client() as client:
                    page = client.get(f"/issues/{KEY}").text
            finally:
                stop_server(server)
        else:
            assert program == "devlink"
            ran = cli(*args, *(["--no-serve"] if args == ["demo"] else []))
            assert ran.code == 0, f"devlink {shlex.join(args)}: {ran.stderr}"
            outputs[shlex.join(args)] = ran.stdout

    assert "only keys of its projects link" in outputs["demo"]  # the demo says what it changed
    summaries = expected_summaries()
    assert summaries, "the corpus has commits of the key"
    text = outputs[f"issue {KEY}"].splitlines()
    assert text[0].startswith(f"{KEY}: {len(summaries)} commit")
    assert {line.split("  ", 5)[-1] for line in text[1:] if not line.startswith("  branch")} == summaries
    document = json.loads(outputs[f"issue {KEY} --json"])
    assert document["project_known"] is True
    assert {c["summary"] for c in document["commits"]} == summaries
    assert all(summary.replace("<", "&lt;").replace(">", "&gt;") in page for summary in summaries)
