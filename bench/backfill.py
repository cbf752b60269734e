"""Backfill benchmark on the real Apache Kafka history (14,054 commits).

Rebuilds the history as a bare git repository with the corpus's make_repo.py,
times a raw ``git log --all`` of it, then a full devlink backfill of it (a
fresh data directory, SQLite by default, the same code path as
``devlink repo add``), in a child process so its peak memory can be read.
Finally it checks, for every issue key in the history, that the commits
devlink links to the key are exactly those whose message carries it according
to an independent implementation of the rules (lookaround regex, below).

    python bench/backfill.py [--runs 3] [--database-url URL] [--keep DIR]

Prints one line per figure and a final verdict line; exits 1 if a key differs.
"""

import argparse
import gzip
import json
import os
import re
import resource
import string
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(os.environ.get("DEVLINK_CORPUS", ROOT.parent / "shared" / "corpus")) / "histories"
HISTORY = CORPUS / "kafka.commits.jsonl.gz"

# The issue's rules, written independently of devlink.domain.issue_keys.
_SEP = re.escape(" \t\n\r\v\f" + string.punctuation)
REFERENCE_KEY = re.compile(rf"(?<![^{_SEP}])[A-Z][A-Z0-9]+-[0-9]+(?![^{_SEP}])")

CHILD = r"""
import json, sys, time
from devlink.config import load_settings
from devlink.runtime import Runtime
from devlink.sync.repositories import add_repository
from devlink.sync.jobs import run_sync
rt = Runtime.open(load_settings())
repository = add_repository(rt, sys.argv[1], name="kafka")
started = time.perf_counter()
results = run_sync(rt, repository.id, full=False)
seconds = time.perf_counter() - started
with rt.sessions() as session:
    from sqlalchemy import select
    from devlink.store.models import Repository
    error = session.scalar(select(Repository.last_error_message).where(Repository.id == repository.id))
print(json.dumps({"seconds": seconds, "commits": results[0].commits_new if results else 0, "error": error}))
"""


def build_repository(workdir: Path) -> tuple[Path, dict[str, str]]:
    repo = workdir / "kafka.git"
    mapping = workdir / "map.tsv"
    subprocess.run(
        [sys.executable, str(CORPUS / "make_repo.py"), str(HISTORY), str(repo), "--bare", "--branch", "trunk",
         "--refs", str(CORPUS / "kafka.refs.txt"), "--map", str(mapping), "--quiet"],
        check=True, stdout=subprocess.DEVNULL,
    )
    pairs = dict(line.split("\t") for line in mapping.read_text().splitlines())
    return repo, pairs


def time_git_log(repo: Path, runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(["git", "--git-dir", str(repo), "log", "--all"], check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - started)
    return min(times)


def run_backfill(repo: Path, home: Path, database_url: str | None) -> tuple[dict[str, object], float]:
    env = dict(os.environ, DEVLINK_HOME=str(home))
    if database_url:
        env["DEVLINK_DATABASE_URL"] = database_url
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    done = subprocess.run([sys.executable, "-c", CHILD, str(repo)], env=env, check=True, capture_output=True,
                          text=True)
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return json.loads(done.stdout.strip().splitlines()[-1]), max(peak_kib, before) / 1024


def expected_links(mapping: dict[str, str]) -> dict[str, set[str]]:
    expected: dict[str, set[str]] = {}
    with gzip.open(HISTORY, "rt", encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            for key in {m.group() for m in REFERENCE_KEY.finditer(record["message"])}:
                expected.setdefault(key, set()).add(mapping[record["sha"]])
    return expected


def stored_links(home: Path, database_url: str | None) -> dict[str, set[str]]:
    from sqlalchemy import select

    from devlink.config import load_settings
    from devlink.runtime import Runtime
    from devlink.store.models import Commit, IssueLink

    env = dict(os.environ, DEVLINK_HOME=str(home))
    if database_url:
        env["DEVLINK_DATABASE_URL"] = database_url
    rt = Runtime.open(load_settings(env), migrate=False)
    links: dict[str, set[str]] = {}
    with rt.sessions() as session:
        rows = session.execute(
            select(IssueLink.key, Commit.sha)
            .join(Commit, Commit.id == IssueLink.entity_id)
            .where(IssueLink.entity_type == "commit")
        )
        for key, sha in rows:
            links.setdefault(key, set()).add(sha)
    rt.close()
    return links


def reset_postgres(database_url: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="backfills to run; the best is reported")
    parser.add_argument("--database-url", help="e.g. postgresql+psycopg://root@127.0.0.1/benchdb (wiped!)")
    parser.add_argument("--keep", type=Path, help="keep the rebuilt repository and data here")
    args = parser.parse_args()

    workdir = args.keep or Path(tempfile.mkdtemp(prefix="devlink-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    repo, mapping = build_repository(workdir)
    commits = len(mapping)
    git_seconds = time_git_log(repo, 5)

    best: dict[str, object] | None = None
    peak_mib = 0.0
    home = workdir / "home-0"
    for run in range(args.runs):
        home = workdir / f"home-{run}"
        if args.database_url:
            reset_postgres(args.database_url)
        result, peak = run_backfill(repo, home, args.database_url)
        if result.get("error"):
            print(f"backfill failed: {result['error']}")
            return 1
        peak_mib = max(peak_mib, peak)
        if best is None or float(result["seconds"]) < float(best["seconds"]):  # type: ignore[arg-type]
            best = result
    assert best is not None
    seconds = float(best["seconds"])  # type: ignore[arg-type]

    expected = expected_links(mapping)
    stored = stored_links(home, args.database_url)
    differing = sorted(k for k in expected.keys() | stored.keys() if expected.get(k) != stored.get(k))

    engine = "postgresql" if args.database_url else "sqlite"
    print(f"history            : Apache Kafka, {commits} commits, {len(expected)} distinct keys")
    print(f"raw git log --all  : {git_seconds:.3f} s ({commits / git_seconds:,.0f} commits/s)")
    print(f"devlink backfill   : {seconds:.3f} s ({int(best['commits']):,} commits, "  # type: ignore[call-overload]
          f"{commits / seconds:,.0f} commits/s, {engine}, best of {args.runs})")
    print(f"ratio devlink/git  : {seconds / git_seconds:.2f}x (target <= 3x)")
    print(f"peak memory        : {peak_mib:.0f} MiB (devlink process; target < 300 MB)")
    print(f"keys checked       : {len(expected)}; differing: {len(differing)}"
          + (f" (first: {', '.join(differing[:5])})" if differing else ""))
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
