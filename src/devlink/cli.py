"""The ``devlink`` command: serve, worker, repo, sync, issue, keys.

Commands call the same functions as the REST API (``sync/``, ``store/queries``)
and never run SQL of their own.  A ``DevlinkError`` is caught once, in
``main``: its message and hint are printed and the exit status is 1; usage
errors exit 2.

Start-up time is part of the interface (``devlink keys`` runs in git hooks and
editors): this module imports only typer and devlink's own light modules at
the top.  Everything heavy (SQLAlchemy and the store, Rich's tables and bars,
the host clients, the web stack, the queue) is imported inside the commands
that use it; ``tests/test_cli_startup.py`` keeps it that way and
``bench/cli_startup.py`` times it.
"""

import json
import logging
import os
import shlex
import signal
import sys
import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from devlink.config import forget_server, listen_url, load_settings, record_server
from devlink.domain.issue_keys import extract_keys, is_key
from devlink.errors import DevlinkError, InvalidInput

if TYPE_CHECKING:
    from rich.console import Console

    from devlink.runtime import Runtime
    from devlink.sync.accounts import Discovery
    from devlink.sync.engine import SyncResult

__all__ = ["app", "main"]

app = typer.Typer(
    no_args_is_help=True, add_completion=False, rich_markup_mode=None, help="Link commits and branches to issue keys."
)
repo_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, help="Link, list and unlink repositories.")
app.add_typer(repo_app, name="repo")
tracker_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None,
                          help="The issue tracker: the built-in one (the default) or an outside one (Jira).")
app.add_typer(tracker_app, name="tracker")
smart_app = typer.Typer(
    no_args_is_help=True, rich_markup_mode=None, help="Smart commits: #comment, #time, #transition."
)
app.add_typer(smart_app, name="smart-commit")
account_app = typer.Typer(
    no_args_is_help=True, rich_markup_mode=None,
    help="Link host accounts (GitHub, GitLab, …) and pick their repositories.",
)
app.add_typer(account_app, name="account")
host_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, help="Host settings: TLS, proxy, OAuth and Apps.")
app.add_typer(host_app, name="host")
user_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None,
                       help="People who sign in (the built-in tracker's users): roles and passwords.")
app.add_typer(user_app, name="user")
token_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None,
                        help="API tokens, sent as Authorization: Bearer TOKEN.")
app.add_typer(token_app, name="token")
identity_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None,
                           help="A person's logins on hosts: who a pusher is, for the pusher trust policy.")
app.add_typer(identity_app, name="identity")
signing_key_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None,
                              help="A person's SSH signing keys: whose signature a commit has, for the signed policy.")
app.add_typer(signing_key_app, name="signing-key")
secret_key_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None,
                             help="The key that encrypts stored secrets: rotate it, check it decrypts them.")
app.add_typer(secret_key_app, name="secret-key")



class _LazyConsole:
    """A Rich console made on first use, so a command that prints plain lines never imports Rich."""

    def __init__(self, *, stderr: bool) -> None:
        self._stderr = stderr
        self._console: Console | None = None

    @property
    def console(self) -> "Console":
        if self._console is None:
            from rich.console import Console

            # a table piped to a file or another program keeps its full cells
            width = None if self._stderr or sys.stdout.isatty() else 1000
            self._console = Console(stderr=self._stderr, soft_wrap=True, width=width)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self.console, name)


out = _LazyConsole(stderr=False)
err = _LazyConsole(stderr=True)


def _runtime() -> "Runtime":
    from devlink.runtime import Runtime

    return Runtime.open(load_settings())


def say(text: str) -> None:
    """Print one plain line: user data is never read as Rich markup, and lines never wrap."""
    sys.stdout.write(text + "\n")


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


# ---------------------------------------------------------------- serve, worker


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="address to bind [default: 127.0.0.1]")] = None,
    port: Annotated[int | None, typer.Option(help="port [default: 8000]")] = None,
    worker: Annotated[bool, typer.Option("--worker/--no-worker", help="run the job queue in this process")] = True,
) -> None:
    """Run the web app, REST API and (by default) the job queue consumer."""
    import uvicorn
    from rich.markup import escape

    from devlink.runtime import Runtime
    from devlink.sync.accounts import account_views, hook_url_warning
    from devlink.web.app import create_app

    _configure_logging()
    settings = load_settings()
    bind_host, bind_port = host or settings.host, port or settings.port
    url = listen_url(bind_host, bind_port)
    _refuse_a_taken_port(bind_host, bind_port)  # before anything is opened or printed
    # hooks and OAuth callbacks point here unless DEVLINK_BASE_URL says otherwise, in this process and (through
    # the note in DEVLINK_HOME) in the CLI commands run while it serves
    rt = Runtime.open(replace(settings, host=bind_host, port=bind_port, served_url=url))
    err.print(f"devlink on {url}  (data in {rt.settings.home})", highlight=False)
    _first_admin(rt)
    with rt.sessions() as session:
        views = account_views(session)  # only a linked account's host sends webhooks here
    if views and (warning := hook_url_warning(rt, views[0]["host"]["host_kind"])):
        err.print(f"warning: {escape(warning)}", highlight=False)
    if (noted := record_server(settings.home, url)) != url:
        err.print(f"warning: another devlink serve of this data directory listens on {noted}; commands in "
                  "other shells (account add, repo hook) keep using that address", highlight=False)
    # uvicorn re-raises SIGTERM once it has shut down gracefully; exit through ``finally`` rather than die there
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))
    try:
        # behind a reverse proxy the sign-in throttle must count the client's address, not the proxy's
        uvicorn.run(create_app(rt, embedded_worker=worker), host=bind_host, port=bind_port, log_level="info",
                    proxy_headers=True, forwarded_allow_ips=rt.settings.forwarded_allow_ips or None)
    finally:
        forget_server(settings.home)


def _refuse_a_taken_port(host: str, port: int) -> None:
    """Fail with a devlink error before anything starts, rather than uvicorn's exit 3 after start-up."""
    import errno
    import socket

    if not 1 <= port <= 65535:
        raise InvalidInput(f"port {port} is not a TCP port: give one from 1 to 65535", reason="bad_port")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: TIME_WAIT is no obstacle
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                reason, hint = "port_in_use", "another devlink serve may be running there; choose another with --port"
            elif exc.errno == errno.EACCES:
                reason, hint = "port_denied", "ports below 1024 need privileges; choose another with --port"
            else:  # a name that does not resolve, an address that is not this machine's
                reason, hint = "bad_host", "--host takes an address of this machine, e.g. 127.0.0.1, or 0.0.0.0 for all"
            raise DevlinkError(f"cannot listen on {host}:{port}: {exc.strerror or exc}", reason=reason,
                               hint=hint) from None


@app.command()
def worker(
    workers: Annotated[int | None, typer.Option(help="consumer threads [default: DEVLINK_WORKERS or 2]")] = None,
) -> None:
    """Run a job-queue consumer (use several with DEVLINK_QUEUE_URL=redis://…)."""
    import signal
    import threading

    _configure_logging()
    rt = _runtime()
    consumer = rt.queue.consumer(workers or rt.settings.workers)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    consumer.start()
    err.print(f"devlink worker: {consumer.workers} threads on {'redis' if rt.settings.uses_redis else 'sqlite'} queue")
    stop.wait()
    consumer.stop(graceful=True)


@app.command()
def migrate() -> None:
    """Bring the database to the newest schema (every command also does this on start)."""
    rt = _runtime()
    say(f"database is up to date: {rt.engine.url.render_as_string(hide_password=True)}")


# ---------------------------------------------------------------- repositories


def _sync_with_progress(rt: "Runtime", repository_id: int, *, full: bool) -> "list[SyncResult]":
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from devlink.sync.jobs import run_sync

    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[rate]}"), TimeRemainingColumn())
    started = time.monotonic()
    console = err.console
    with Progress(*columns, console=console, transient=False, disable=not console.is_terminal) as bar:
        task = bar.add_task("indexing commits", total=None, rate="")

        def progress(done: int, total: int | None) -> None:
            rate = done / max(time.monotonic() - started, 1e-6)
            bar.update(task, completed=done, total=total, rate=f"{rate:,.0f} commits/s")

        try:
            return run_sync(rt, repository_id, full=full, trigger="manual", progress=progress)
        except KeyboardInterrupt:
            raise _interrupted(rt, repository_id, full=full) from None


def _interrupted(rt: "Runtime", repository_id: int, *, full: bool) -> DevlinkError:
    """What Ctrl-C during a sync leaves: how much is indexed, and the command that goes on from there."""
    from devlink.store.models import Repository

    with rt.sessions() as session:
        repository = session.get(Repository, repository_id)
        name, indexed = (repository.name, repository.commits_indexed) if repository else (str(repository_id), 0)
    return DevlinkError(f"interrupted: {name} keeps the {indexed:,} commits indexed so far", reason="interrupted",
                        hint=f"devlink sync {shlex.quote(name)} {'--full ' if full else ''}--wait resumes where "
                             "it stopped (a running devlink serve resumes it within a minute)")


def _report_sync(rt: "Runtime", repository_id: int, results: "list[SyncResult]") -> None:
    from devlink.store.models import Repository

    with rt.sessions() as session:
        repository = session.get(Repository, repository_id)
        assert repository is not None
        if repository.last_error_message and repository.sync_state == "failed":
            raise DevlinkError(f"sync of {repository.name} failed: {repository.last_error_message}",
                               reason=repository.last_error_reason)
        if not results:
            say(f"{repository.name}: a sync was already running; a follow-up soft sync will run after it")
            return
        for result in results:
            say(
                f"{repository.name}: {result.kind} sync done: {result.commits_seen} commits read, "
                f"{result.commits_new} new, branches +{result.branches_created} ~{result.branches_moved} "
                f"-{result.branches_deleted}; {repository.commits_indexed} commits indexed"
            )
            for entity, note in result.entity_errors.items():
                say(f"  {_entity_note(entity, note)}")
            if result.unlinked:
                _report_unlinked(repository.name, result.unlinked, outside=_outside_tracker(rt))
            smart = result.smart_commits
            if smart.done or smart.error or smart.skipped:
                say(f"  smart commits: {smart.done} done, {smart.error} error, {smart.skipped} skipped")
                for sha, key, _, outcome, message in smart.outcomes:
                    if outcome != "done":
                        say(f"    {sha[:12]} {key}: {outcome}: {message}")
            if smart.pending:
                say("  smart commits: some wait for the tracker, which did not answer; they run once, when it "
                    "does (see /smart-commits?status=pending)")
    _report_push(rt, repository_id)


def _report_push(rt: "Runtime", repository_id: int) -> None:
    """Send the development data to an outside tracker now (the command waited for the sync anyway); say how it went."""
    from devlink.sync.development_push import push_repository

    pushed = push_repository(rt, repository_id)
    if pushed.state == "sent":
        say(f"  development data sent to the tracker: {pushed.sent} new or changed, {pushed.deleted} removed"
            + (f"; it has no issue for {', '.join(sorted(pushed.unknown_keys)[:5])}" if pushed.unknown_keys else ""))
    elif pushed.state in ("pending", "failed"):
        say(f"  development data not sent to the tracker ({pushed.state}): {pushed.message}")


def _entity_note(entity: str, note: dict[str, Any]) -> str:
    """One line on what a sync skipped or deferred, e.g. pull requests waiting for the API budget."""
    label = entity.replace("_", " ")
    if note.get("reason") == "rate_limited" and note.get("resumes_at"):
        at = datetime.fromisoformat(note["resumes_at"]).strftime("%H:%M")
        return f"{label} wait for the API budget until {at} UTC; they resume by themselves"
    return f"{label} skipped: {note.get('message') or note.get('reason')}"


def _skipped(view: dict[str, Any]) -> str:
    return "; ".join(_entity_note(entity, note) for entity, note in (view["sync"].get("skipped") or {}).items())


#: projects named in the "key mentions not linked" line; the rest are counted as "N more"
UNLINKED_SHOWN = 5


def _outside_tracker(rt: "Runtime") -> str | None:
    from devlink.sync.trackers import outside_kind

    return outside_kind(rt)


def _refuse_with_outside_tracker(rt: "Runtime", what: str) -> None:
    """The built-in tracker's own commands do nothing useful while another tracker is in use: say so."""
    kind = _outside_tracker(rt)
    if kind is not None:
        raise InvalidInput(f"{what} is the built-in tracker's, and {kind.capitalize()} is the tracker in use",
                           reason="outside_tracker",
                           hint=f"create it in {kind.capitalize()}; devlink picks it up within minutes "
                           "(devlink tracker show)")


def _report_unlinked(name: str, unlinked: dict[str, int], *, outside: str | None = None) -> None:
    """Say which projects' keys this sync left unlinked (docs/issue-keys.md), and the two commands that link them.

    Without it, an issue of such a project shows nothing and nothing says why.
    """
    top = list(unlinked.items())[:UNLINKED_SHOWN]
    shown = ", ".join(f"{project} {count:,}" for project, count in top)
    if len(unlinked) > len(top):
        shown += f", and {_plural(len(unlinked) - len(top), 'more project')}"
    total = sum(unlinked.values())
    say(f"  {total:,} key {'mention' if total == 1 else 'mentions'} not linked because their project is not "
        f"in the tracker: {shown}")
    project = top[0][0]
    if outside:  # the tracker in use decides which projects exist; devlink learns of a new one within minutes
        say(f"  for each that should be a project: create it in {outside.capitalize()}, then after a few minutes: "
            f"devlink sync {shlex.quote(name)} --full --wait")
        return
    # text such as CVE-2021-1234 or PR-12 looks like a key too: the user knows which of these are projects
    say(f"  for each that is a project of yours: devlink tracker project KEY NAME (e.g. {project}), "
        f"then: devlink sync {shlex.quote(name)} --full --wait")


@repo_app.command("add")
def repo_add(
    location: Annotated[str, typer.Argument(help="a local path or a git URL")],
    name: Annotated[str | None, typer.Option(help="name shown everywhere [default: from the location]")] = None,
    web_url: Annotated[str | None, typer.Option(help="web page of the repository, for links")] = None,
    sync: Annotated[bool, typer.Option("--sync/--no-sync", help="backfill now, or leave it to the queue")] = True,
    smart_commits: Annotated[
        bool, typer.Option("--smart-commits/--no-smart-commits", help="run smart commits pushed after linking")
    ] = True,
) -> None:
    """Link a repository and backfill its whole history."""
    from devlink.sync.repositories import add_repository

    rt = _runtime()
    repository = add_repository(rt, location, name=name, web_url=web_url, smart_commits=smart_commits,
                                cwd=Path.cwd())
    say(f"linked {repository.name} (id {repository.id}) from {repository.url}")
    if sync:
        _report_sync(rt, repository.id, _sync_with_progress(rt, repository.id, full=False))
    else:
        rt.queue.request_sync(repository.id, full=False, trigger="manual")
        say("initial sync queued: `devlink serve` or `devlink worker` will run it")


@repo_app.command("list")
def repo_list(as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
    """List linked repositories with their sync state."""
    from rich.table import Table
    from sqlalchemy import select

    from devlink.store import queries
    from devlink.store.models import Repository

    rt = _runtime()
    with rt.sessions() as session:
        linked = select(Repository).where(Repository.linked.is_(True)).order_by(Repository.name)
        views = queries.repository_views(session, session.scalars(linked))
    if as_json:
        _print_json(views)
        return
    if not views:
        say("no repositories linked yet. Try: devlink repo add PATH_OR_URL")
        return
    pushed = any(view.get("tracker_push") for view in views)  # the column only while a tracker takes the data
    scoped = any(view["projects"] for view in views)  # the column only once some repository serves chosen projects
    table = Table("id", "name", "location", "sync", "commits", "finished", *(["tracker"] if pushed else []),
                  *(["projects"] if scoped else []), "error")
    for view in views:
        sync = view["sync"]
        error = sync["error"]["message"] if sync["error"] else _skipped(view)
        push = view.get("tracker_push") or {}
        if push.get("state") in ("pending", "failed") and push.get("message"):
            error = "; ".join(part for part in (error, f"tracker: {push['message']}") if part)
        finished = (sync["finished_at"] or "")[:19].replace("T", " ")
        table.add_row(str(view["id"]), view["name"], view["url"], sync["state"], str(sync["commits_indexed"]),
                      finished, *([push.get("state", "")] if pushed else []),
                      *([",".join(view["projects"]) or "all"] if scoped else []), error)
    out.print(table)


_TRUST_HELP = ("who a smart commit acts as: author (its e-mail), pusher (who the host says pushed it), "
               "signed (its SSH signature); default: inherit")


@repo_app.command("set")
def repo_set(
    repository: Annotated[str, typer.Argument(help="name or id")],
    smart_commits: Annotated[
        bool | None, typer.Option("--smart-commits/--no-smart-commits", help="run smart commits of new commits")
    ] = None,
    projects: Annotated[
        str | None, typer.Option("--projects", help="serve only these projects: comma-separated keys, APP,OPS")
    ] = None,
    all_projects: Annotated[bool, typer.Option("--all-projects", help="serve every project (the default)")] = False,
    trust: Annotated[str | None, typer.Option(
        "--trust", metavar="author|pusher|signed|default", help=_TRUST_HELP + " (the account's, else author)")] = None,
) -> None:
    """Change a repository's settings: smart commits on or off, their trust policy, the projects it serves."""
    from devlink.sync.access import set_repository_projects
    from devlink.sync.identities import check_trust, set_repository_trust
    from devlink.sync.repositories import find_repository, set_smart_commits

    if projects is not None and all_projects:
        raise InvalidInput("give --projects or --all-projects, not both")
    if smart_commits is None and projects is None and not all_projects and trust is None:
        raise InvalidInput("nothing to change", hint="give --smart-commits/--no-smart-commits, --trust POLICY, "
                           "--projects KEY,KEY or --all-projects")
    if trust is not None:
        check_trust(trust)  # before anything changes
    rt = _runtime()
    with rt.sessions() as session:
        name = find_repository(session, repository).name
    if projects is not None or all_projects:
        keys = [] if all_projects else [key.strip() for key in (projects or "").split(",") if key.strip()]
        if projects is not None and not keys:
            raise InvalidInput("--projects needs at least one project key",
                               hint="--all-projects serves every project")
        served = set_repository_projects(rt, repository, keys)
        say(f"{name}: serves {', '.join(served) if served else 'every project'}")
    if smart_commits is not None:
        set_smart_commits(rt, repository, smart_commits)
        say(f"{name}: smart commits {'on' if smart_commits else 'off'}")
    if trust is not None:
        policy = set_repository_trust(rt, repository, trust)
        inherited = "" if policy["smart_commit_trust"] else " (inherited)"
        say(f"{policy['name']}: smart-commit trust {policy['effective']}{inherited}")


@repo_app.command("remove")
def repo_remove(repository: Annotated[str, typer.Argument(help="name or id")]) -> None:
    """Unlink a repository: its commits, branches, links and mirror are removed."""
    from devlink.sync.repositories import remove_repository

    rt = _runtime()
    say(f"removed {remove_repository(rt, repository)}")


@repo_app.command("hook")
def repo_hook(
    path: Annotated[str, typer.Argument(help="the bare repository devlink was linked from")],
    install: Annotated[
        bool, typer.Option("--install", help="write PATH/hooks/post-receive and its token file devlink-token")
    ] = False,
    url: Annotated[str | None, typer.Option(help="devlink's address as the git server sees it")] = None,
    token_file: Annotated[
        str | None, typer.Option(help="also write the token file (mode 0600) here, to copy beside the hook")
    ] = None,
) -> None:
    """Print (or install) a post-receive hook that notifies devlink of every push."""
    from rich.markup import escape

    from devlink.sync.push_hooks import TOKEN_FILE, hook_script, hooks_directory, install_hook, write_token_file
    from devlink.sync.repositories import find_by_location

    rt = _runtime()
    with rt.sessions() as session:
        repository_id = find_by_location(session, path, cwd=Path.cwd()).id
    hook = hook_script(rt, repository_id, url or rt.settings.public_url)
    if token_file:
        err.print(f"wrote the token file {escape(str(write_token_file(Path(token_file), hook)))}", highlight=False)
    if not install:
        sys.stdout.write(hook.script)
        err.print(f"the script reads the repository's token from {TOKEN_FILE} beside it (mode 0600): --install "
                  f"writes both into {escape(str(hooks_directory(Path(path))))}; for another machine, --token-file "
                  "FILE writes the token file to copy there", highlight=False)
        return
    target = install_hook(Path(path), hook)
    say(f"installed {target} and {target.parent / TOKEN_FILE}")


# ---------------------------------------------------------------- sync


@app.command()
def sync(
    repository: Annotated[str | None, typer.Argument(help="name or id [default: every repository]")] = None,
    full: Annotated[bool, typer.Option("--full", help="re-walk the whole history instead of what is new")] = False,
    wait: Annotated[bool, typer.Option("--wait", help="run now, in this process, and show progress")] = False,
) -> None:
    """Sync one or every repository: queue it, or with --wait run it here."""
    from sqlalchemy import select

    from devlink.store.models import Repository
    from devlink.sync.repositories import find_repository

    rt = _runtime()
    with rt.sessions() as session:
        if repository:
            found = find_repository(session, repository)
            targets = [(found.id, found.name)]
        else:
            linked = select(Repository.id, Repository.name).where(
                Repository.linked.is_(True), Repository.state == "active")
            targets = [(row.id, row.name) for row in session.execute(linked.order_by(Repository.id))]
    if not targets:
        say("no repositories linked yet. Try: devlink repo add PATH_OR_URL")
        return
    failures: list[str] = []
    for repository_id, name in targets:
        if wait:
            results = _sync_with_progress(rt, repository_id, full=full)
            if not results:
                _wait_idle(rt, repository_id)
            try:
                _report_sync(rt, repository_id, results)
            except DevlinkError as exc:  # report it and go on with the other repositories
                _print_error(exc, hint=False)
                failures.append(name)
        else:
            status = rt.queue.request_sync(repository_id, full=full, trigger="manual")
            say(f"{name}: {'full' if full else 'soft'} sync {status}")
    if not wait:
        say("`devlink serve` or `devlink worker` runs queued syncs; add --wait to run them here")
    if failures:
        raise DevlinkError(f"{len(failures)} of {len(targets)} repositories failed to sync", reason="sync_failed",
                           hint="see: devlink repo list")


def _wait_idle(rt: "Runtime", repository_id: int) -> None:
    from devlink.store.models import Repository

    with err.status("waiting for the sync already running"):
        while True:
            with rt.sessions() as session:
                repository = session.get(Repository, repository_id)
                if repository is None or repository.sync_state != "running":
                    return
            time.sleep(0.5)


# ---------------------------------------------------------------- read


@app.command()
def issue(
    key: Annotated[str, typer.Argument(help="an issue key such as KAFKA-1234")],
    as_json: Annotated[bool, typer.Option("--json", help="print the development document as JSON")] = False,
) -> None:
    """Show the pull requests, branches and commits that mention an issue key.

    A key of a project the tracker does not have is not an error (exit 0):
    the document says "project_known": false and the command prints why
    nothing is linked, and what links it, on standard error.
    """
    if not is_key(key):
        hint = f"did you mean {key.upper()}? Keys are upper case" if is_key(key.upper()) else None
        raise InvalidInput(f"{key!r} is not an issue key (like ABC-123)", reason="bad_key", hint=hint)
    document = _development(key)
    if as_json:
        _print_json(document)
        return
    summary = document["summary"]
    counts = ", ".join(_plural(summary[name], noun) for name, noun in (
        ("commits", "commit"), ("branches", "branch"), ("pull_requests", "pull request")))
    say(f"{key}: {counts} in {_plural(summary['repositories'], 'repository')}")
    if document["notice"]:
        sys.stderr.write(f"note: {document['notice']}\n")
    for pull in document["pull_requests"]:
        say(f"  pull request  {pull['repository']['name']}#{pull['number']}  {pull['state']}  {pull['title']}")
    for branch in document["branches"]:
        say(f"  branch  {branch['repository']['name']}:{branch['name']} @ {branch['head_sha'][:12]}")
    for commit in document["commits"]:
        say(f"  {commit['short_sha']}  {commit['date'][:10]}  {commit['repository']['name']}  "
            f"{commit['author']['name']}  {commit['summary']}")


def _development(key: str) -> dict[str, Any]:
    """The development document of ``key``: straight from the database driver when the schema is current.

    The plain path answers without importing SQLAlchemy (most of this
    command's time otherwise); a new or older database, or any driver error,
    takes the usual path, which creates or migrates it.
    """
    from devlink.store.development import development, open_plain
    from devlink.store.revisions import head_revision

    settings = load_settings()
    try:
        with open_plain(settings.database_url, head_revision()) as fetch:
            if fetch is not None:
                return development(fetch, key)
    except Exception as exc:  # the usual path below answers, or says what is wrong
        logging.getLogger(__name__).debug("issue.plain_read_failed error=%s", type(exc).__name__)
    from devlink.store import queries

    rt = _runtime()
    with rt.sessions() as session:
        return queries.development(session, key)


@app.command()
def keys(
    text: Annotated[str | None, typer.Argument(help="text to search [default: standard input]")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print a JSON array")] = False,
) -> None:
    """Print the issue keys found in TEXT or standard input, one per line."""
    if text is None and sys.stdin.isatty():  # at a terminal, reading standard input would look like a hang
        sys.stderr.write("reading the text from standard input; end it with Ctrl-D (or: devlink keys \"TEXT\")\n")
    found = list(extract_keys(sys.stdin.read() if text is None else text))
    if as_json:
        sys.stdout.write(json.dumps(found) + "\n")
    else:
        sys.stdout.write("".join(f"{key}\n" for key in found))


@app.command()
def demo(
    host: Annotated[str | None, typer.Option(help="address to bind [default: 127.0.0.1]")] = None,
    port: Annotated[int | None, typer.Option(help="port [default: 8000]")] = None,
    serve_after: Annotated[bool, typer.Option("--serve/--no-serve", help="serve the demo when it is ready")] = True,
) -> None:
    """Set up a demo (project DEMO, users, issues, a git repository with smart commits) and serve it."""
    from devlink.demo import ROLES, build_demo

    rt = _runtime()
    bind_host, bind_port = host or rt.settings.host, port or rt.settings.port
    base = f"http://{bind_host}:{bind_port}"
    result = build_demo(rt, server_url=base)
    say(f"demo repository {result.repository} linked as 'demo': {result.commits} commits indexed; "
        f"smart commits: {result.smart_commits_done} done, {result.smart_commits_failed} error")
    for username, password in result.passwords.items():
        say(f"sign in as {username} ({ROLES[username]}) with password {password}"
            "  (shown only now)")
    if not result.passwords:
        say("sign in with the passwords the first devlink demo printed (or: devlink user passwd alice)")
    say(f"look at:  {base}/issues/DEMO-1   (resolved by a smart commit, with a comment and work logged)")
    say(f"          {base}/issues/DEMO-2   (a branch, commits, a merge, work logged)")
    say(f"          {base}/smart-commits   (DEMO-4's '#fnish' typo, with the reason)")
    say(f"          {base}/repositories")
    say(f"push to it: git clone {result.repository} && ... && git push  (a post-receive hook notifies devlink)")
    if not result.has_kafka:
        say("the tracker now has project DEMO, so only keys of its projects link; "
            'add one before linking its history: devlink tracker project KAFKA "Kafka"')
    if serve_after:
        # the demo's pages may link more repositories of the demo directory (the API links no path otherwise)
        os.environ.setdefault("DEVLINK_LOCAL_REPOSITORY_ROOTS", str(rt.settings.home / "demo"))
        serve(host=bind_host, port=bind_port, worker=True)


# ---------------------------------------------------------------- tracker


@tracker_app.command("use")
def tracker_use(
    kind: Annotated[str, typer.Argument(help="builtin, or jira")],
    url: Annotated[str | None, typer.Option(help="the Jira site's base URL")] = None,
    token: Annotated[str | None, typer.Option(help="'-' reads the token from standard input")] = None,
    email: Annotated[str | None, typer.Option(help="Jira Cloud: the e-mail of the API token's account")] = None,
    ca_bundle: Annotated[str | None, typer.Option(help="PEM file of CAs to trust for the site")] = None,
    proxy: Annotated[str | None, typer.Option(help="HTTP(S) proxy URL for the site")] = None,
    timeout: Annotated[float | None, typer.Option(help="seconds per request [default: 30]")] = None,
    devinfo_client_id: Annotated[str | None, typer.Option(
        help="Jira Cloud: client id of the OAuth credentials for the development information API")] = None,
    devinfo_client_secret_file: Annotated[Path | None, typer.Option(
        help="a file holding that client's secret")] = None,
    gateway_url: Annotated[str | None, typer.Option(
        help="Atlassian's API gateway [default: https://api.atlassian.com]")] = None,
) -> None:
    """Choose the tracker smart commits act on and whose project keys link (docs/jira.md).

    With --email the token is a Jira Cloud API token; without it, a Data
    Center / Server personal access token.  The site is checked before it is kept.
    """
    from devlink.sync.trackers import use_builtin, use_outside
    from devlink.trackers import OUTSIDE

    if kind != "builtin" and kind not in OUTSIDE:
        raise InvalidInput(f"unknown tracker kind {kind!r}; one of: builtin, {', '.join(sorted(OUTSIDE))}",
                           reason="bad_kind")
    given = [f"--{name.replace('_', '-')}" for name, value in (
        ("url", url), ("token", token), ("email", email), ("ca_bundle", ca_bundle), ("proxy", proxy),
        ("timeout", timeout), ("devinfo_client_id", devinfo_client_id),
        ("devinfo_client_secret_file", devinfo_client_secret_file), ("gateway_url", gateway_url)) if value]
    if kind == "builtin" and given:
        raise InvalidInput(f"the built-in tracker takes no options ({', '.join(given)})", reason="invalid",
                           hint="devlink tracker use builtin")
    rt = _runtime()
    if kind == "builtin":
        change = use_builtin(rt)
    else:
        if not url:
            raise InvalidInput(f"devlink tracker use {kind} needs --url", reason="invalid",
                               hint=f"devlink tracker use {kind} --url https://jira.example.com --token -")
        if token != "-":
            raise InvalidInput("give the token on standard input: --token - (so it is in no command line)",
                               reason="invalid")
        secret = _read_token(token)
        if not secret:
            raise InvalidInput("no token on standard input", reason="invalid")
        client_secret = None
        if devinfo_client_secret_file is not None:
            try:
                with devinfo_client_secret_file.open("rb") as handle:
                    raw = handle.read(4097)  # a secret is short; a device or a huge file is a mistake
            except OSError as exc:
                raise InvalidInput(f"cannot read {devinfo_client_secret_file}: {exc.strerror}") from None
            if len(raw) > 4096:
                raise InvalidInput(f"{devinfo_client_secret_file} is larger than a client secret (4 KB)")
            client_secret = raw.decode("utf-8", "replace").strip()
        change = use_outside(rt, kind, url=url, token=secret, email=email, ca_bundle=ca_bundle, proxy=proxy,
                             timeout=timeout, devinfo_client_id=devinfo_client_id,
                             devinfo_client_secret=client_secret, gateway_url=gateway_url)
    for note in change.notes:
        say(note)


@tracker_app.command("show")
def tracker_show(as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
    """Print the tracker in use (never its credential)."""
    from devlink.sync.trackers import describe

    view = describe(_runtime())
    if as_json:
        _print_json(view)
        return
    if view["kind"] == "builtin":
        say("tracker: builtin (devlink's own; switch with: devlink tracker use jira --url URL --token -)")
        return
    say(f"tracker: {view['kind']} ({view['deployment']}) at {view['url']}")
    for label, field in (("server", "server_title"), ("version", "version"), ("acts as", "user"),
                         ("e-mail", "email"), ("CA bundle", "ca_bundle"), ("proxy", "proxy"),
                         ("timeout (s)", "timeout"), ("development data", "development_data"),
                         ("connected", "connected_at")):
        if view.get(field) is not None:
            say(f"  {label}: {view[field]}")


# ---------------------------------------------------------------- accounts

def _host_kinds() -> tuple[str, ...]:
    from devlink.hosts import kinds

    return kinds()


def _read_token(token: str | None) -> str | None:
    """``-`` reads the token from stdin, so it never sits in the shell history or the process list."""
    if token == "-":
        return sys.stdin.readline().strip() or None
    return token


@host_app.command("set")
def host_set(
    url: Annotated[str, typer.Option(help="web URL of the host [default: the kind's public service]")] = "",
    kind: Annotated[str, typer.Option(help="host kind of a new host: github, gitlab [default: github]")] = "",
    api_url: Annotated[str | None, typer.Option(help="API URL [default: the kind's, e.g. URL/api/v4]")] = None,
    ca_bundle: Annotated[str | None, typer.Option(help="PEM file of CAs to trust ('' to clear)")] = None,
    proxy: Annotated[str | None, typer.Option(help="HTTP(S) proxy URL ('' to clear)")] = None,
    timeout: Annotated[float | None, typer.Option(help="seconds per request")] = None,
    oauth_client_id: Annotated[str | None, typer.Option(help="client id of an OAuth application")] = None,
    oauth_client_secret: Annotated[str | None, typer.Option(help="its client secret; - reads stdin")] = None,
    app_id: Annotated[str | None, typer.Option(help="GitHub App id")] = None,
    private_key: Annotated[Path | None, typer.Option(help="GitHub App private key (PEM file)")] = None,
    app_webhook_secret: Annotated[str | None, typer.Option(help="the App's webhook secret; - reads stdin")] = None,
) -> None:
    """Create or change a host's settings; an OAuth application enables /oauth/KIND/start."""
    from devlink.sync.accounts import AccountOptions, configure_host

    key = private_key.read_text() if private_key else None
    if (app_id is None) != (key is None):
        raise InvalidInput("--app-id and --private-key go together", reason="invalid")
    own = {"app_id": app_id, "app_private_key": key, "app_webhook_secret": _read_token(app_webhook_secret)}
    options = AccountOptions(name="", kind=kind, web_url=url, api_url=api_url, ca_bundle=ca_bundle, proxy=proxy,
                             timeout=timeout)
    view = configure_host(_runtime(), options, oauth_client_id=oauth_client_id,
                          oauth_client_secret=_read_token(oauth_client_secret),
                          host_options={k: v for k, v in own.items() if v is not None} or None)
    oauth = "set" if view["oauth_client_secret_set"] else "not set"
    extra = "".join(f", {k.replace('_set', '').replace('_', ' ')} {'set' if v else 'not set'}"
                    for k, v in view.items() if k.endswith("_set") and k != "oauth_client_secret_set")
    say(f"host {view['name']} ({view['host_kind']}): API {view['api_url']}, OAuth application {oauth}{extra}")
    if view["repinned"]:
        say(f"  re-pinned: the credentials of {', '.join(view['repinned'])} go to {view['api_url']} from now on")


@account_app.command("add")
def account_add(
    kind: Annotated[str, typer.Argument(help="host kind: github (github.com or Enterprise Server), gitlab "
                                             "(gitlab.com or self-managed)")],
    name: Annotated[str, typer.Argument(help="the user, organisation or group (full path) to link")],
    url: Annotated[str, typer.Option(help="web URL of a self-hosted server [default: the kind's public "
                                          "service]")] = "",
    api_url: Annotated[str | None, typer.Option(help="API URL [default: the kind's, e.g. URL/api/v4]")] = None,
    token: Annotated[str | None, typer.Option(
        help="access token; - reads stdin [default: $DEVLINK_<KIND>_TOKEN, else asked]")] = None,
    app_id: Annotated[str | None, typer.Option(help="GitHub App id (instead of a token)")] = None,
    private_key: Annotated[Path | None, typer.Option(help="GitHub App private key (PEM file)")] = None,
    installation_id: Annotated[str | None, typer.Option(help="App installation [default: found from NAME]")] = None,
    ca_bundle: Annotated[str | None, typer.Option(help="PEM file of CAs to trust for this host")] = None,
    proxy: Annotated[str | None, typer.Option(help="HTTP(S) proxy URL [default: *_PROXY variables]")] = None,
    timeout: Annotated[float | None, typer.Option(help="seconds per request [default: 30]")] = None,
    link: Annotated[str, typer.Option(help="link now: all, none, or names separated by commas")] = "none",
    auto_link: Annotated[bool, typer.Option("--auto-link/--no-auto-link", help="link new repositories")] = False,
    smart_commits: Annotated[bool, typer.Option("--smart-commits/--no-smart-commits")] = True,
    sync: Annotated[bool, typer.Option("--sync/--no-sync", help="backfill linked ones now, or queue it")] = True,
) -> None:
    """Link an account: verify the credential, list its repositories, link the chosen ones and install webhooks."""
    from devlink.sync.accounts import AccountOptions, link_account

    if kind not in _host_kinds():
        raise InvalidInput(f"unknown host kind {kind!r}; devlink links: {', '.join(_host_kinds())}",
                           reason="bad_kind")
    secret = _read_token(token) or os.environ.get(f"DEVLINK_{kind.upper()}_TOKEN") or None
    key = private_key.read_text() if private_key else None
    if not secret and not app_id:
        secret = typer.prompt("token", hide_input=True)
    own = {"app_id": app_id, "app_private_key": key, "installation_id": installation_id}
    options = AccountOptions(
        name=name, kind=kind, web_url=url, api_url=api_url, token=secret,
        options={k: v for k, v in own.items() if v}, ca_bundle=ca_bundle, proxy=proxy, timeout=timeout,
        auto_link=auto_link, smart_commits=smart_commits, link=_link_choice(link), may_set_up_host=True,
    )
    rt = _runtime()
    account_id, found = link_account(rt, options)
    say(f"linked account {name} (id {account_id}): {found.found} repositories found, {len(found.linked)} linked")
    _report_discovery(found)
    _start_backfills(rt, found.linked, sync)


def _link_choice(link: str) -> str | list[str]:
    return link if link in ("all", "none") else [n.strip() for n in link.split(",") if n.strip()]


def _report_discovery(found: "Discovery") -> None:
    for warning in found.warnings:
        say(f"warning: {warning}")
    for old, new in found.renamed:
        say(f"  renamed: {old} -> {new}")
    for name in found.gone:
        say(f"  gone: {name}")
    for name, state in sorted(found.hooks.items()):
        if state not in ("installed", "account"):
            say(f"  {name}: webhook {state}: not real-time, synced on the schedule (see: devlink account repos)")


def _start_backfills(rt: "Runtime", repository_ids: list[int], now: bool) -> None:
    for repository_id in repository_ids:
        if now:
            _report_sync(rt, repository_id, _sync_with_progress(rt, repository_id, full=True))
        else:
            rt.queue.request_sync(repository_id, full=True, trigger="manual")
    if repository_ids and not now:
        say(f"{_plural(len(repository_ids), 'backfill')} queued: `devlink serve` or `devlink worker` runs them")


@account_app.command("list")
def account_list(as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
    """Linked accounts with their host, budget and last error."""
    from rich.table import Table

    from devlink.sync.accounts import account_views

    rt = _runtime()
    with rt.sessions() as session:
        views = account_views(session)
    if as_json:
        _print_json(views)
        return
    if not views:
        say(f"no accounts linked yet. Try: devlink account add KIND NAME --token - (KIND: {', '.join(_host_kinds())})")
        return
    table = Table("id", "account", "host", "auth", "repositories", "auto-link", "budget", "error")
    for view in views:
        rate = view["rate_limit"]
        budget = f"{rate['remaining']}/{rate['limit']}" if rate else ""
        counts = view["repositories"]
        linked = f"{counts.get('linked', 0)} of {counts.get('total', 0)} linked"
        table.add_row(str(view["id"]), view["name"], view["host"]["name"], view["auth"], linked,
                      "yes" if view["auto_link"] else "no", budget, (view["error"] or {}).get("message") or "")
    out.print(table)


@account_app.command("repos")
def account_repos(
    account: Annotated[str, typer.Argument(help="account name, HOST/NAME or id")],
    refresh: Annotated[bool, typer.Option("--refresh", help="list the host's repositories again first")] = False,
    link: Annotated[list[str] | None, typer.Option(help="link this repository (repeat; 'all' for every one)")] = None,
    unlink: Annotated[list[str] | None, typer.Option(help="unlink this repository (repeat)")] = None,
    sync: Annotated[bool, typer.Option("--sync/--no-sync", help="backfill newly linked ones now, or queue it")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """An account's repositories, linked or not; --link and --unlink choose."""
    from rich.table import Table
    from sqlalchemy import select

    from devlink.store import queries
    from devlink.store.models import Repository
    from devlink.sync.accounts import discover, find_account, link_repositories

    rt = _runtime()
    with rt.sessions() as session:
        account_id = find_account(session, account).id
    if refresh:
        found = discover(rt, account_id)
        _report_discovery(found)
        _start_backfills(rt, found.linked, sync)
    if link:
        linked = link_repositories(rt, account_id, "all" if "all" in link else link)
        _start_backfills(rt, linked, sync)
    if unlink:
        link_repositories(rt, account_id, unlink, linked=False)
    with rt.sessions() as session:
        rows = session.scalars(select(Repository).where(Repository.account_id == account_id).order_by(Repository.name))
        views = queries.repository_views(session, rows)
    if as_json:
        _print_json(views)
        return
    table = Table("id", "repository", "linked", "visibility", "state", "webhook", "commits", "error")
    for view in views:
        hook = view["webhook"] or {}
        error = (view["sync"]["error"] or {}).get("message") or _skipped(view) or hook.get("error") or ""
        visibility = ("private" if view["private"] else "public") + (", archived" if view["archived"] else "")
        table.add_row(str(view["id"]), view["name"], "yes" if view["linked"] else "no", visibility, view["state"],
                      hook.get("state") or "", str(view["sync"]["commits_indexed"]), error)
    out.print(table)


@account_app.command("set")
def account_set(
    account: Annotated[str, typer.Argument(help="account name, HOST/NAME or id")],
    auto_link: Annotated[bool | None, typer.Option("--auto-link/--no-auto-link")] = None,
    smart_commits: Annotated[bool | None, typer.Option(
        "--smart-commits/--no-smart-commits", help="default for repositories linked from now on")] = None,
    trust: Annotated[str | None, typer.Option(
        "--trust", metavar="author|pusher|signed|default",
        help=_TRUST_HELP + " (author); for its repositories that set none")] = None,
) -> None:
    """Change an account's auto-link, smart-commit and smart-commit trust settings."""
    from devlink.sync.accounts import set_account_options
    from devlink.sync.identities import check_trust, set_account_trust

    if trust is not None:
        check_trust(trust)  # before anything changes
    rt = _runtime()
    view = set_account_options(rt, account, auto_link=auto_link, smart_commits=smart_commits)
    if trust is not None:
        view = set_account_trust(rt, account, trust)
    trusted = f", smart-commit trust {view['smart_commit_trust_effective']}" if trust is not None else ""
    say(f"{view['name']}: auto-link {'on' if view['auto_link'] else 'off'}, "
        f"smart commits {'on' if view['smart_commits'] else 'off'}{trusted}")


@account_app.command("remove")
def account_remove(account: Annotated[str, typer.Argument(help="account name, HOST/NAME or id")]) -> None:
    """Remove devlink's webhooks and forget the account, its repositories and their data."""
    from devlink.sync.accounts import remove_account

    name = remove_account(_runtime(), account)
    say(f"removed account {name}")


@identity_app.command("add")
def identity_add(
    user: Annotated[str, typer.Argument(help="a devlink user name")],
    host: Annotated[str, typer.Argument(help="a host's name, e.g. github.com (see: devlink host list), or tracker")],
    login: Annotated[str, typer.Argument(help="the person's login on that host (Jira: user name or account id)")],
) -> None:
    """Say that LOGIN on HOST is USER: their pushes count as theirs under the pusher policy.

    With HOST "tracker", LOGIN is the person in the outside tracker (Jira): its permissions then decide which
    projects' development information they see.
    """
    from devlink.sync.identities import add_identity

    found = add_identity(_runtime(), user, host, login)
    say(f"{found['host']} {found['login']} → {found['user']}")


@identity_app.command("list")
def identity_list(
    user: Annotated[str | None, typer.Argument(help="only this user's")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """List host logins and whose they are."""
    from devlink.sync.identities import list_identities

    found = list_identities(_runtime(), user)
    if as_json:
        _print_json(found)
        return
    for row in found:
        say(f"{row['user']}\t{row['host']}\t{row['login']}")


@identity_app.command("remove")
def identity_remove(
    user: Annotated[str, typer.Argument(help="a devlink user name")],
    host: Annotated[str, typer.Argument(help="a host's name")],
    login: Annotated[str, typer.Argument(help="the login to forget")],
) -> None:
    """Forget that LOGIN on HOST is USER."""
    from devlink.sync.identities import remove_identity

    remove_identity(_runtime(), user, host, login)
    say(f"removed {host} {login} of {user}")


@signing_key_app.command("add")
def signing_key_add(
    user: Annotated[str, typer.Argument(help="a devlink user name")],
    file: Annotated[Path, typer.Argument(help="an OpenSSH public key file (id_ed25519.pub); - for standard input")],
) -> None:
    """Register an SSH public key: commits it signs count as USER's under the signed policy."""
    from devlink.sync.identities import add_signing_key

    try:
        text = sys.stdin.read() if str(file) == "-" else file.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise InvalidInput(f"cannot read {file}: {exc.strerror}") from None
    found = add_signing_key(_runtime(), user, text)
    say(f"{found['user']}: {found['type']} {found['fingerprint']}" + (f" {found['comment']}" if found["comment"]
                                                                      else ""))


@signing_key_app.command("list")
def signing_key_list(
    user: Annotated[str | None, typer.Argument(help="only this user's")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """List registered signing keys by fingerprint."""
    from devlink.sync.identities import list_signing_keys

    found = list_signing_keys(_runtime(), user)
    if as_json:
        _print_json(found)
        return
    for row in found:
        say(f"{row['user']}\t{row['type']}\t{row['fingerprint']}\t{row['comment']}".rstrip())


@signing_key_app.command("remove")
def signing_key_remove(
    user: Annotated[str, typer.Argument(help="a devlink user name")],
    fingerprint: Annotated[str, typer.Argument(help="SHA256:… as signing-key list shows it")],
) -> None:
    """Forget one of USER's signing keys."""
    from devlink.sync.identities import remove_signing_key

    remove_signing_key(_runtime(), user, fingerprint)
    say(f"removed {fingerprint} of {user}")


@secret_key_app.command("rotate")
def secret_key_rotate(
    force: Annotated[bool, typer.Option("--force", help="rotate even with smart commits pending in Jira")] = False,
) -> None:
    """Re-encrypt every stored secret with a new key (the key file) or the first one listed (DEVLINK_SECRET_KEY)."""
    from devlink.sync.secrets import rotate_key

    done = rotate_key(_runtime(), force=force)
    if done.new_key:
        say("DEVLINK_SECRET_KEY lists one key, and devlink cannot change the environment. A new key:")
        say(done.new_key)
        say("Put it first in DEVLINK_SECRET_KEY (NEW,OLD) in every process, restart them, "
            "and run devlink secret-key rotate again.")
        return
    say(f"{_plural(done.re_encrypted, 'secret')} re-encrypted")
    if done.source == "file":
        say("the key file now holds the new key only; restart every devlink serve and worker, "
            "and everyone signs in again")
    else:
        say(f"now remove the {_plural(done.old_keys, 'old key')} after the first from DEVLINK_SECRET_KEY "
            "in every process and restart them; everyone signs in again")
    if done.unreadable:
        err.print(f"{_plural(len(done.unreadable), 'secret')} cannot be decrypted with any key and were left "
                  "as they are: see devlink secret-key check", highlight=False)


@secret_key_app.command("check")
def secret_key_check() -> None:
    """Decrypt every stored secret; list those that cannot be (table.column and row, never the value)."""
    from devlink.sync.secrets import check_secrets

    found = check_secrets(_runtime())
    say(f"{_plural(found.readable, 'secret')} can be decrypted")
    for each in found.unreadable:
        say(f"cannot decrypt: {each}")
    if found.unreadable:
        raise DevlinkError(f"{_plural(len(found.unreadable), 'secret')} cannot be decrypted with the key(s) in use",
                           reason="unreadable",
                           hint="restore the old key (DEVLINK_SECRET_KEY=NEW,OLD or a second line in secret.key), "
                                "or set those credentials again")


@tracker_app.command("import")
def tracker_import(file: Annotated[Path, typer.Argument(help="a .toml or .json file (docs/tracker.md)")]) -> None:
    """Load workflows, users, projects, aliases and issues; re-importing the same file changes nothing."""
    from devlink.trackers.builtin import import_data, load_file

    rt = _runtime()
    data = load_file(file)
    with rt.sessions.begin() as session:
        counts = import_data(session, data)
    say("imported " + ", ".join(f"{n} {kind}" for kind, n in counts.items()))


@tracker_app.command("alias")
def tracker_alias(
    email: Annotated[str, typer.Argument(help="a commit author e-mail")],
    username: Annotated[str, typer.Argument(help="the tracker user it stands for")],
) -> None:
    """Map a commit author e-mail to a tracker user for smart commits (with Jira: a user name or account id)."""
    from devlink.sync.trackers import add_alias

    found = add_alias(_runtime(), email, username)
    say(f"{found['email']} → {found['user']}" + (f" ({found['name']})" if found["name"] else ""))


@tracker_app.command("project")
def tracker_project(
    key: Annotated[str, typer.Argument(help="project key, e.g. DEMO")],
    name: Annotated[str, typer.Argument(help="display name")],
    workflow: Annotated[str | None, typer.Option(help="workflow name [default: Default]")] = None,
) -> None:
    """Create a project (every permission granted to everyone), or rename it."""
    from devlink.trackers.builtin import create_project

    rt = _runtime()
    _refuse_with_outside_tracker(rt, "devlink tracker project")
    with rt.sessions.begin() as session:
        create_project(session, key, name, workflow=workflow)
    say(f"project {key}: {name}")


@tracker_app.command("grant")
def tracker_grant(
    key: Annotated[str, typer.Argument(help="project key, e.g. DEMO")],
    permission: Annotated[str, typer.Argument(help="browse, view_development, comment, log_work or transition")],
    holders: Annotated[list[str] | None, typer.Argument(help="user names, or everyone; none: admins only")] = None,
) -> None:
    """Give one permission of a project to exactly these people (the project's other permissions stay)."""
    from devlink.trackers.builtin import grant

    rt = _runtime()
    _refuse_with_outside_tracker(rt, "devlink tracker grant")
    with rt.sessions.begin() as session:
        given = grant(session, key, permission, holders or [])
    say(f"{key} {permission}: {', '.join(given) if given else 'admins only'}")


@tracker_app.command("user")
def tracker_user(
    username: Annotated[str, typer.Argument(help="login name")],
    name: Annotated[str | None, typer.Option(help="display name")] = None,
    email: Annotated[list[str] | None, typer.Option(help="an e-mail address (repeat for more)")] = None,
) -> None:
    """Create a user, or add addresses to one."""
    from devlink.trackers.builtin import create_user

    rt = _runtime()
    with rt.sessions.begin() as session:
        create_user(session, username, name, email or [])
    say(f"user {username}")


def _first_admin(rt: "Runtime") -> None:
    """On a database where no admin can sign in, make ``admin`` and print its password, once, to stderr."""
    from devlink.sync.people import ensure_first_admin

    made = ensure_first_admin(rt)
    if made is not None:
        username, password = made
        rule = "-" * 72
        err.print(f"{rule}\nfirst run: sign in at {rt.settings.public_url}/sign-in as {username} with password "
                  f"{password}\n  (shown only now; change it on your user page, or: devlink user passwd {username})"
                  f"\n{rule}", highlight=False)


def _new_password(password: str | None, *, confirm: bool = True) -> str | None:
    """``-``: one line of stdin; None: ask at a terminal, else None (the caller generates one)."""
    if password == "-":
        typed = sys.stdin.readline().rstrip("\n")
        if not typed:
            raise InvalidInput("no password on stdin", reason="weak_password")
        return typed
    if password is not None:
        raise InvalidInput("--password takes only -: the password is read from stdin, never from the command line",
                           reason="invalid")
    if not sys.stdin.isatty():
        return None
    import getpass

    typed = getpass.getpass("new password (Enter for a generated one): ")
    if not typed:
        return None
    if confirm and getpass.getpass("again: ") != typed:
        raise InvalidInput("the two passwords differ", reason="weak_password")
    return typed


@user_app.command("add")
def user_add(
    username: Annotated[str, typer.Argument(help="the name to sign in with")],
    admin: Annotated[bool, typer.Option("--admin", help="may change everything [default: member]")] = False,
    name: Annotated[str | None, typer.Option(help="display name")] = None,
    email: Annotated[list[str] | None, typer.Option(help="an e-mail address (repeat for more)")] = None,
    password: Annotated[str | None, typer.Option(help="- reads it from stdin [default: ask, or generate one]")] = None,
) -> None:
    """Add a person who may sign in; without a password one is generated and printed once."""
    from devlink.sync.people import add_person, generate_password

    typed = _new_password(password)
    chosen = typed or generate_password()
    add_person(_runtime(), username, name=name, emails=email or [], role="admin" if admin else "member",
               password=chosen)
    say(f"user {username} ({'admin' if admin else 'member'})")
    if typed is None:
        say(f"password: {chosen}  (shown only now)")


@user_app.command("list")
def user_list(as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
    """Everyone, with role, addresses and whether they can sign in yet."""
    from devlink.sync.people import people_views
    from devlink.sync.principals import LOCAL_ADMIN

    with _runtime().sessions() as session:
        people = people_views(session, LOCAL_ADMIN)
    if as_json:
        _print_json(people)
        return
    for person in people:
        signs_in = "" if person["can_sign_in"] else "  (no password yet)"
        say(f"{person['username']}\t{person['role']}\t{', '.join(person['emails'])}{signs_in}")


@user_app.command("passwd")
def user_passwd(
    username: Annotated[str, typer.Argument(help="user name")],
    password: Annotated[str | None, typer.Option(help="- reads it from stdin [default: ask, or generate one]")] = None,
) -> None:
    """Set a password (their other sign-ins end); without one at a terminal, one is generated and printed."""
    from devlink.sync.people import generate_password, set_password

    typed = _new_password(password)
    chosen = typed or generate_password()
    set_password(_runtime(), username, chosen)
    say(f"password of {username} set" + ("" if typed else f": {chosen}  (shown only now)"))


@user_app.command("role")
def user_role(
    username: Annotated[str, typer.Argument(help="user name")],
    role: Annotated[str, typer.Argument(help="admin or member")],
) -> None:
    """Make someone an admin or a member."""
    from devlink.sync.people import set_role

    set_role(_runtime(), username, role)
    say(f"{username}: {role}")


@user_app.command("remove")
def user_remove(username: Annotated[str, typer.Argument(help="user name")]) -> None:
    """Take away sign-in: sessions and tokens end; the tracker keeps the person for its history."""
    from devlink.sync.people import remove_person

    remove_person(_runtime(), username)
    say(f"{username} can no longer sign in")


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Argument(help="what it is for, e.g. ci")],
    user: Annotated[str | None, typer.Option(help="whose token [default: the only admin]")] = None,
    read_only: Annotated[bool, typer.Option("--read-only", help="GET and HEAD only")] = False,
    expires: Annotated[int | None, typer.Option(help="days until it stops working [default: never]")] = None,
) -> None:
    """Make an API token and print it once (only its hash is kept)."""
    from devlink.sync.people import create_token, only_admin

    rt = _runtime()
    user = user or only_admin(rt)
    made = create_token(rt, user, name, read_only=read_only, expires_days=expires)
    say(made.secret)
    err.print(f"token {name!r} for {user}{', read-only' if read_only else ''}"
              f"{f', expires in {expires} days' if expires else ''}: shown only now; send it as "
              "Authorization: Bearer TOKEN", highlight=False)


@token_app.command("list")
def token_list(
    user: Annotated[str | None, typer.Option(help="only this person's [default: everyone's]")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Every token with its owner, access, expiry and last use (never the secret)."""
    from devlink.sync.people import token_views
    from devlink.sync.principals import LOCAL_ADMIN

    with _runtime().sessions() as session:
        tokens = token_views(session, LOCAL_ADMIN, user)
    if as_json:
        _print_json(tokens)
        return
    for token in tokens:
        state = f"revoked {token['revoked_at'][:19]}" if token["revoked_at"] else (
            f"{'expired' if token['expired'] else 'expires'} {token['expires_at'][:19]}" if token["expires_at"]
            else "no expiry")
        used = token["last_used_at"][:19] if token["last_used_at"] else "never"
        access = "read-only" if token["read_only"] else "read-write"
        say(f"{token['id']}\t{token['user']}\t{token['name']}\t{token['hint']}\t{access}\t{state}\tlast used {used}")


@token_app.command("revoke")
def token_revoke(token_id: Annotated[int, typer.Argument(help="the id token list shows")]) -> None:
    """Stop a token working, at once."""
    from devlink.sync.people import revoke_token
    from devlink.sync.principals import LOCAL_ADMIN

    view = revoke_token(_runtime(), LOCAL_ADMIN, token_id)
    say(f"token {view['id']} ({view['name']} of {view['user']}) revoked")


@tracker_app.command("issue")
def tracker_issue(
    key: Annotated[str, typer.Argument(help="issue key in an existing project, e.g. DEMO-1")],
    summary: Annotated[str, typer.Argument(help="one line")],
    description: Annotated[str, typer.Option(help="longer text")] = "",
    assignee: Annotated[str | None, typer.Option(help="username")] = None,
) -> None:
    """Create an issue in the built-in tracker."""
    from devlink.trackers.builtin import create_issue

    rt = _runtime()
    _refuse_with_outside_tracker(rt, "devlink tracker issue")
    with rt.sessions.begin() as session:
        create_issue(session, key, summary, description=description, assignee=assignee, must_be_new=True)
    say(f"issue {key}: {summary}")


@smart_app.command("parse")
def smart_parse(
    message: Annotated[str | None, typer.Argument(help="a commit message [default: standard input]")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the parse as JSON (the stable format)")] = False,
) -> None:
    """Show which commands a commit message carries, for which keys."""
    from devlink.domain.smart_commits import TimeUnits, parse, to_json

    settings = load_settings()
    units = TimeUnits(hours_per_day=settings.hours_per_day, days_per_week=settings.days_per_week)
    groups = parse(sys.stdin.read() if message is None else message, units)
    if as_json:
        _print_json(to_json(groups))
        return
    if not groups:
        say("no smart-commit commands")
    for group in groups:
        for command in group.commands:
            extra = ""
            if command.type == "time":
                extra = (f" ({command.seconds} s)" if command.seconds is not None
                         else " (no duration: write it like 1w 2d 4h 30m)")
            say(f"{', '.join(group.keys)}: #{command.name} [{command.type}]{extra} {command.args}".rstrip())


# ---------------------------------------------------------------- entry point


def _plural(count: int, noun: str) -> str:
    if count == 1:
        return f"1 {noun}"
    plural = noun[:-1] + "ies" if noun.endswith("y") else noun + ("es" if noun.endswith("ch") else "s")
    return f"{count} {plural}"


def _configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per host API call is noise; errors still show


def _print_error(exc: DevlinkError, *, hint: bool = True) -> None:
    from rich.markup import escape

    err.print(f"[red]error:[/] {escape(exc.message)}", highlight=False)
    if hint and exc.hint:
        err.print(f"hint: {escape(exc.hint)}", highlight=False)


def _run_directly(args: list[str]) -> bool:
    """Run ``devlink keys|issue [--json] [TEXT]`` without typer's argument machinery; False for anything else.

    These two run in git hooks, editors and scripts, where start-up is most of
    the cost, and typer coerces every non-flag argument with a pydantic
    ``TypeAdapter``: importing pydantic is 0.1 s, half of what ``keys`` costs.
    Only the plain forms are taken here; anything else (``--help``, ``--``, an
    unknown option, two texts, ``issue`` without a key) goes through typer, so
    usage errors read the same.
    """
    if not args or args[0] not in ("keys", "issue"):
        return False
    options = args[1:]
    texts = [arg for arg in options if arg != "--json"]
    if len(options) - len(texts) > 1 or len(texts) > 1 or any(text.startswith("-") for text in texts):
        return False
    as_json = len(texts) < len(options)
    if args[0] == "keys":
        keys(texts[0] if texts else None, as_json=as_json)
    elif texts:
        issue(texts[0], as_json=as_json)
    else:
        return False
    return True


def main() -> None:
    try:
        if not _run_directly(sys.argv[1:]):
            app(standalone_mode=True)
    except DevlinkError as exc:
        _print_error(exc)
        sys.exit(130 if exc.reason == "interrupted" else 1)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except BrokenPipeError:  # the reader went away (devlink issue KEY | head): stop quietly, as other tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # Python's own flush at exit must not fail again
        sys.exit(141)
