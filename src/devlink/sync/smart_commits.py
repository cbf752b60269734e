"""Run the smart commits of newly seen commits, each (commit sha, issue key, command position) once.

Which commits: those of one repository with an id past the repository's
``smart_commits`` cursor, first seen by a soft sync or a push hook (never by
the first sync or a full resync: ``first_seen_by = 'backfill'``), in a
repository with smart commits on, parents before children.  The cursor is set past every
commit of the repository after each pass, so the first sync leaves nothing to
run, and a crash before the cursor moves only means the next pass looks again.

Exactly once: a command's ledger row (``SmartCommitRun``, unique on sha, key
and position) is inserted in the same transaction as the command's effect on
the built-in tracker.  Whoever inserts it runs the command; everyone else
(another branch, repository or fork with the same commit, a retry, a resync)
finds it there and does nothing.  A crash rolls back both together.

An outside tracker (Jira) is not in that transaction, so there a command is
claimed (a ``pending`` row, committed), done in the tracker with devlink's
marker on it, then recorded.  A pass that meets a ``pending`` row of its own
repository is the retry of one that died or found the tracker down (passes
of one repository never overlap: they run under its sync lock), so it asks
the tracker whether the marked effect is there before acting.  When the
tracker is unavailable the pass stops, its cursor stays, and the sync comes
back after the tracker's ``Retry-After``: never twice, never dropped.

A commit runs at most ``MAX_COMMANDS_PER_COMMIT`` (issue key, command) pairs,
in message order; the rest are recorded as one ``skipped`` row, under the
identity (sha, key, position) of the first pair left out, that says how many
were left out.  The pairs, and so that row, depend on the message alone, so
every repository that sees the commit runs the same ones, once.

Before a commit's commands run, the repository's trust policy
(``sync/trust.py``: ``author``, ``pusher`` or ``signed``) may refuse the
commit; each of its commands is then recorded as an ``error`` with that
reason and none runs.

A failing command is recorded with its reason and never stops the others or
the sync.  Every check (issue, user, permission, duration, transition) happens
before the tracker is changed, so a refused command leaves no trace but its
ledger row.
"""

import itertools
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session

from devlink.domain.smart_commits import Command, CommandType, TimeUnits, match_transition, parse
from devlink.errors import TrackerError
from devlink.runtime import Runtime
from devlink.store.development import commit_url
from devlink.store.engine import insert_ignore
from devlink.store.models import Commit, Repository, SyncCursor, table, utcnow
from devlink.store.tracker import SmartCommitRun
from devlink.sync.linking import known_keys
from devlink.sync.trackers import known_project_keys, open_outside
from devlink.sync.trust import TrustContext, refusals, trust_context
from devlink.trackers.base import Origin, OutsideTracker, Tracker, TrackerUnavailable
from devlink.trackers.builtin import BuiltinTracker

__all__ = ["MAX_COMMANDS_PER_COMMIT", "SMART_COMMIT_CURSOR", "SmartCommitTally", "run_smart_commits"]

log = logging.getLogger(__name__)

SMART_COMMIT_CURSOR = "smart_commits"
#: The most (issue key, command) pairs one commit runs.  A constant, not a setting: every process must agree
#: on it, or the same commit seen by two workers (or before and after a change) would run different commands.
MAX_COMMANDS_PER_COMMIT = 100
_MAX_WORKLOG = 366 * 24 * 3600
_PERMISSION = {CommandType.COMMENT: "comment", CommandType.TIME: "log_work", CommandType.TRANSITION: "transition"}
_VERB = {"comment": "comment on", "log_work": "log work on", "transition": "transition"}


@dataclass
class SmartCommitTally:
    """What one pass did; the counts are of ledger rows written by this pass."""

    done: int = 0
    error: int = 0
    skipped: int = 0
    pending: int = 0  # left for a later pass: the outside tracker was unavailable
    retry_after: float | None = None  # seconds until that pass may try again
    outcomes: list[tuple[str, str, int, str, str]] = field(default_factory=list)  # sha, key, pos, outcome, message


def run_smart_commits(rt: Runtime, repository_id: int) -> SmartCommitTally:
    """Run what is new in ``repository_id``; never raises for a bad message, user or command."""
    tally = SmartCommitTally()
    with rt.sessions() as session:
        repository = session.get(Repository, repository_id)
        if repository is None:
            return tally
        enabled = repository.smart_commits
        cursor = session.get(SyncCursor, (repository_id, SMART_COMMIT_CURSOR))
        bounds = [int(part) for part in cursor.value.split(",")] if cursor else []
        newest = session.scalar(select(func.max(Commit.id)).where(Commit.repository_id == repository_id)) or 0
        web_url = repository.web_url
        trust = trust_context(rt, session, repository)
    if bounds and enabled:
        units = TimeUnits(hours_per_day=rt.settings.hours_per_day, days_per_week=rt.settings.days_per_week)
        oldest_allowed = utcnow() - timedelta(days=rt.settings.smart_commit_max_age)
        if bounds[-1] < newest:
            bounds.append(newest)
            # this pass's end is known before it runs: a pass that dies (or fails) leaves it, and the next
            # one still runs this pass's commits before those of later passes
            _save_cursor(rt, repository_id, ",".join(map(str, bounds)), exists=True)
        try:
            with open_outside(rt) as outside:
                projects = known_project_keys(rt) or frozenset()  # no project: no key is a command
                run = _Pass(repository_id, units, oldest_allowed, projects, outside, web_url, trust)
                # one segment per pass that stored commits: an earlier pass's commits (parents) go first
                for after, up_to in itertools.pairwise(bounds):
                    commits = _new_commits(rt, repository_id, after, up_to)
                    refused = refusals(rt, trust, [(c.sha, c.author_email) for c in commits
                                                   if c.committed_at >= oldest_allowed])
                    for commit in commits:
                        _run_commit(rt, run, commit, tally, refused.get(commit.sha))
        except TrackerUnavailable as exc:  # the cursor stays: the next pass runs again what is not recorded
            tally.pending += 1
            tally.retry_after = exc.retry_after
            log.warning("smart_commits.deferred repository=%s reason=%s retry_after=%s", repository_id,
                        exc.reason, exc.retry_after)
            return tally
    _save_cursor(rt, repository_id, str(newest), exists=bool(bounds))
    if tally.done or tally.error or tally.skipped:
        log.info("smart_commits.done repository=%s done=%d error=%d skipped=%d",
                 repository_id, tally.done, tally.error, tally.skipped)
    return tally


@dataclass(frozen=True)
class _Pass:
    """What every command of one pass shares."""

    repository_id: int
    units: TimeUnits
    oldest_allowed: datetime
    projects: frozenset[str]
    outside: OutsideTracker | None  # None: the built-in tracker, in the ledger's transaction
    web_url: str | None
    trust: TrustContext  # the repository's trust policy (sync/trust.py)


@dataclass(frozen=True)
class _CommitRef:
    id: int
    sha: str
    author_email: str
    authored_at: datetime
    committed_at: datetime
    message: str


def _new_commits(rt: Runtime, repository_id: int, after_id: int, up_to_id: int) -> list[_CommitRef]:
    """Commits past the cursor first seen by a soft sync or hook, parents before children.

    A soft sync stores what it reads in git's ``--topo-order`` (children
    first), so the highest id of a pass is its oldest commit.  Timestamps are
    no order: rebased or scripted commits share one, and clocks lie.
    """
    with rt.sessions() as session:
        rows = session.execute(
            select(Commit.id, Commit.sha, Commit.author_email, Commit.authored_at, Commit.committed_at,
                   Commit.message)
            .where(Commit.repository_id == repository_id, Commit.id > after_id, Commit.id <= up_to_id,
                   Commit.first_seen_by.in_(("soft", "hook")), Commit.message.contains("#"))
            .order_by(Commit.id.desc())
        ).all()
    return [_CommitRef(*row) for row in rows]


def _run_commit(
    rt: Runtime, run: _Pass, commit: _CommitRef, tally: SmartCommitTally, refused: str | None = None
) -> None:
    """Run (or, when the trust policy ``refused`` the commit, record that reason for) each of its commands."""
    repository_id = run.repository_id
    too_old = commit.committed_at < run.oldest_allowed
    groups = [(known_keys(group.keys, run.projects), group.commands) for group in parse(commit.message, run.units)]
    total = sum(len(keys) * len(commands) for keys, commands in groups)  # pairs, counted without listing them
    ran = 0
    for keys, commands in groups:
        for key in keys:  # the same keys that link
            for command in commands:
                if ran == MAX_COMMANDS_PER_COMMIT:
                    _record_cap(rt, repository_id, commit, key, command, total - ran, tally)
                    return
                ran += 1
                # a lost database propagates: the cursor stays, and the next pass runs again what this one
                # had not committed.  A value the database refuses is that command's error, not a poison pill.
                try:
                    if refused is not None and not too_old:
                        outcome, message = _record_error(rt, repository_id, commit, key, command, refused)
                    elif run.outside is not None:
                        outcome, message = _run_outside(rt, run, commit, key, command, too_old)
                    else:
                        with rt.sessions.begin() as session:
                            outcome, message = _run_command(session, repository_id, commit, key, command,
                                                            too_old, rt)
                except (DataError, IntegrityError) as exc:
                    outcome, message = _record_refusal(rt, repository_id, commit, key, command, exc)
                _count(tally, commit, key, command, outcome, message)


def _count(
    tally: SmartCommitTally, commit: _CommitRef, key: str, command: Command, outcome: str | None, message: str
) -> None:
    if outcome is None:  # someone else wrote this row
        return
    setattr(tally, outcome, getattr(tally, outcome) + 1)
    tally.outcomes.append((commit.sha, key, command.position, outcome, message))


def _record_cap(
    rt: Runtime, repository_id: int, commit: _CommitRef, key: str, command: Command, left_out: int,
    tally: SmartCommitTally,
) -> None:
    """One ``skipped`` row for every pair past the cap, at the first one's place: O(1) whatever the message."""
    message = (f"at most {MAX_COMMANDS_PER_COMMIT} smart-commit commands run per commit; "
               f"{left_out} more skipped")
    with rt.sessions.begin() as session:
        inserted = insert_ignore(session, table(SmartCommitRun), [_ledger_row(repository_id, commit, key, command,
                                                                              "skipped", message)],
                                 ["commit_sha", "issue_key", "position"])
    if inserted:
        log.warning("smart_commits.capped sha=%s skipped=%d", commit.sha, left_out)
    _count(tally, commit, key, command, "skipped" if inserted else None, message)


def _record_refusal(
    rt: Runtime, repository_id: int, commit: _CommitRef, key: str, command: Command, exc: Exception
) -> tuple[str | None, str]:
    log.warning("smart_commits.refused sha=%s key=%s position=%d error=%s", commit.sha, key, command.position,
                type(exc).__name__)
    return _record_error(rt, repository_id, commit, key, command,
                         f"the tracker could not store this command ({type(exc).__name__})")


def _record_error(
    rt: Runtime, repository_id: int, commit: _CommitRef, key: str, command: Command, message: str
) -> tuple[str | None, str]:
    """An ``error`` row for a command that does not run; (None, "") when the row was someone else's."""
    with rt.sessions.begin() as session:
        inserted = insert_ignore(session, table(SmartCommitRun), [_ledger_row(repository_id, commit, key, command,
                                                                              "error", message[:2000])],
                                 ["commit_sha", "issue_key", "position"])
    return ("error", message[:2000]) if inserted else (None, "")


def _ledger_row(
    repository_id: int, commit: _CommitRef, key: str, command: Command, outcome: str, message: str
) -> dict[str, object]:
    return {
        "commit_sha": commit.sha, "issue_key": key, "position": command.position,
        "repository_id": repository_id, "command": command.name[:100], "args": command.args,
        "outcome": outcome, "message": message, "author_email": commit.author_email[:320], "created_at": utcnow(),
    }


def _run_command(
    session: Session, repository_id: int, commit: _CommitRef, key: str, command: Command, too_old: bool,
    rt: Runtime,
) -> tuple[str | None, str]:
    """Claim the ledger row, check, apply; return (outcome, message), or (None, "") if someone else ran it."""
    row = _ledger_row(repository_id, commit, key, command, "error", "")
    if not insert_ignore(session, table(SmartCommitRun), [row], ["commit_sha", "issue_key", "position"]):
        return None, ""
    if too_old:
        outcome, message = "skipped", f"commit is older than {rt.settings.smart_commit_max_age} days"
    else:
        try:
            message = _apply(BuiltinTracker(session), key, command, commit, Origin(commit.sha, command.position,
                                                                                 commit.author_email))
            outcome = "done"
        except TrackerError as exc:
            outcome, message = "error", exc.message
    session.execute(
        update(SmartCommitRun)
        .where(SmartCommitRun.commit_sha == commit.sha, SmartCommitRun.issue_key == key,
               SmartCommitRun.position == command.position)
        .values(outcome=outcome, message=message)
    )
    return outcome, message


def _run_outside(
    rt: Runtime, run: _Pass, commit: _CommitRef, key: str, command: Command, too_old: bool
) -> tuple[str | None, str]:
    """Claim (commit), act in the outside tracker, record; a pending row of this repository is a retry."""
    assert run.outside is not None
    row = _ledger_row(run.repository_id, commit, key, command, "pending", "claimed; not yet done in the tracker")
    with rt.sessions.begin() as session:
        claimed = insert_ignore(session, table(SmartCommitRun), [row], ["commit_sha", "issue_key", "position"])
    if not claimed:
        with rt.sessions() as session:
            existing = session.execute(select(SmartCommitRun.outcome, SmartCommitRun.repository_id).where(
                *_identity(commit, key, command))).first()
        if existing is None or existing.outcome != "pending" or existing.repository_id != run.repository_id:
            return None, ""
    if too_old:
        outcome, message = "skipped", f"commit is older than {rt.settings.smart_commit_max_age} days"
    else:
        origin = Origin(commit.sha, command.position, commit.author_email,
                        commit_url(run.web_url, commit.sha), retry=not claimed)
        try:
            message = _apply(run.outside, key, command, commit, origin)
            outcome = "done"
        except TrackerUnavailable as exc:
            _record(rt, commit, key, command, "pending", exc.message)
            raise
        except TrackerError as exc:
            if exc.reason == "auth":  # devlink's credential, not the commit: wait for it to be fixed, lose nothing
                _record(rt, commit, key, command, "pending", f"{exc.message}; {exc.hint or ''}".rstrip("; "))
                raise TrackerUnavailable(exc.message, reason="auth", retry_after=3600) from None
            outcome, message = "error", exc.message
        except Exception as exc:  # an answer of a shape no one expected: this command's error, never a stuck pass
            log.exception("smart_commits.unexpected sha=%s key=%s position=%d", commit.sha, key, command.position)
            outcome, message = "error", f"the tracker's answer could not be used ({type(exc).__name__})"
    _record(rt, commit, key, command, outcome, message)
    return outcome, message


def _identity(commit: _CommitRef, key: str, command: Command) -> tuple[Any, ...]:
    return (SmartCommitRun.commit_sha == commit.sha, SmartCommitRun.issue_key == key,
            SmartCommitRun.position == command.position)


def _record(rt: Runtime, commit: _CommitRef, key: str, command: Command, outcome: str, message: str) -> None:
    with rt.sessions.begin() as session:
        session.execute(update(SmartCommitRun).where(*_identity(commit, key, command))
                        .values(outcome=outcome, message=message[:2000]))


def _apply(tracker: Tracker, key: str, command: Command, commit: _CommitRef, origin: Origin) -> str:
    """Check everything, then change the tracker; raise TrackerError with the reason a user reads."""
    available = tracker.transitions(key)  # raises "no issue KEY" before anything else
    users = tracker.users_for_email(commit.author_email)
    if not users:
        raise TrackerError(f"no user with e-mail {commit.author_email} "
                           f"(map it to one: devlink tracker alias {commit.author_email} USERNAME)")
    if len(users) > 1:
        raise TrackerError(f"more than one user with e-mail {commit.author_email}: {', '.join(users)}")
    user = users[0]
    name_of = tracker.display_name(user)
    permission = _PERMISSION[command.type]
    if not tracker.can(user, key, permission):
        raise TrackerError(f"{name_of} may not {_VERB[permission]} {key}")
    if command.type is CommandType.COMMENT:
        if not command.args:
            raise TrackerError("#comment needs text after it")
        tracker.comment(key, user, command.args, origin)
        return f"commented as {name_of}"
    if command.type is CommandType.TIME:
        if command.seconds is None:
            raise TrackerError(f"no duration in #{command.name} {command.args}".rstrip()
                               + ": write it like 1w 2d 4h 30m")
        if command.seconds <= 0:
            raise TrackerError(f"#{command.name} needs a duration of at least one second")
        if command.seconds > _MAX_WORKLOG:
            raise TrackerError(f"#{command.name} {command.args}: more than a year of work in one entry")
        tracker.log_work(key, user, command.seconds, commit.authored_at, command.comment or "", origin)
        return f"logged {command.seconds} s as {name_of}"
    status = tracker.transitioned(key, origin)  # an earlier attempt that reached the tracker moved it
    name: str | None = "(done before a restart)"
    if status is None:
        name, error = match_transition(command.name, available)
        if name is None:
            raise TrackerError(error or f"no transition matches #{command.name}")
    if command.args and not tracker.can(user, key, "comment"):  # the arguments become a comment
        raise TrackerError(f"{name_of} may not {_VERB['comment']} {key} (the text after #{command.name})")
    if status is None:
        assert name is not None
        status = tracker.transition(key, user, name, origin)
    if command.args:
        tracker.comment(key, user, command.args, origin)
    return f"{name} → {status} as {name_of}"


def _save_cursor(rt: Runtime, repository_id: int, value: str, *, exists: bool) -> None:
    """The last commit id every command of which is recorded, then the ends of the passes left to finish."""
    with rt.sessions.begin() as session:
        if exists:
            session.execute(
                update(SyncCursor)
                .where(SyncCursor.repository_id == repository_id, SyncCursor.entity_type == SMART_COMMIT_CURSOR)
                .values(value=value, updated_at=utcnow())
            )
        elif session.get(Repository, repository_id) is not None:
            session.add(SyncCursor(repository_id=repository_id, entity_type=SMART_COMMIT_CURSOR, value=value))
