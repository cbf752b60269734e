"""The job queue: Huey, embedded (SQLite file) by default or Redis at scale, and its tasks.

Tasks are thin: they take ids and call ``sync/``.  ``devlink serve`` runs an
``EmbeddedConsumer`` in threads of its own process; ``devlink worker`` runs the
same consumer as a process of its own against Redis (or the SQLite queue).
Every consumer also runs the minute-by-minute scheduler; ``schedule_due``
claims repositories with a conditional UPDATE, so several never double-queue.
When a consumer starts, and every minute, ``recover`` queues again the syncs
whose lock holder died (a killed worker) or whose job was lost.
"""

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from huey import PriorityRedisHuey, SqliteHuey, crontab
from huey.api import Huey
from huey.consumer import Consumer

from devlink.crypto import private_file
from devlink.errors import ConfigError, DevlinkError
from devlink.runtime import Runtime
from devlink.sync.accounts import discover, discover_due
from devlink.sync.development_push import push_due, push_repository, request_push
from devlink.sync.jobs import recover, request_sync, run_sync, schedule_due
from devlink.sync.pulls import refresh_pull
from devlink.sync.trackers import outside_kind
from devlink.sync.webhooks import redeliver_pending

__all__ = ["EmbeddedConsumer", "Queue"]

log = logging.getLogger(__name__)

#: Webhook-driven work first, then what a person asked for, then the schedule.
#: A sync resumed after its worker died ranks with what a person asked for.
PRIORITY = {"hook": 20, "manual": 10, "recover": 10, "schedule": 0, "soft": 0}


def build_huey(rt: Runtime) -> Huey:
    settings = rt.settings
    if settings.uses_redis:
        try:
            import redis

            redis.Redis.from_url(settings.queue_url, socket_connect_timeout=5).ping()
        except Exception as exc:
            raise ConfigError(
                f"cannot reach the Redis queue at DEVLINK_QUEUE_URL: {type(exc).__name__}",
                hint="start Redis, or leave DEVLINK_QUEUE_URL empty for the embedded queue",
            ) from None
        return PriorityRedisHuey("devlink", url=settings.queue_url, results=False)
    path = settings.queue_url.removeprefix("sqlite:///") if settings.queue_url else str(settings.home / "queue.db")
    private_file(Path(path), sqlite=True)  # 0600: tasks carry repository ids, not secrets, but it sits beside them
    return SqliteHuey("devlink", filename=path, results=False)


class EmbeddedConsumer(Consumer):  # type: ignore[misc]
    """A Huey consumer that leaves signal handling to its host process (uvicorn, or the CLI).

    Once its threads run, ``on_start`` is called (``Queue.recover``): a consumer
    that starts after a crash resumes the killed syncs without waiting a minute
    for the schedule.
    """

    on_start: Callable[[], object] | None = None

    def _set_signal_handlers(self) -> None:
        pass

    def start(self) -> None:
        super().start()
        if self.on_start is not None:
            self.on_start()


class Queue:
    """The Huey instance of one ``Runtime`` with devlink's tasks registered on it."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.huey = build_huey(rt)

        @self.huey.task(name="sync_repository")  # type: ignore[untyped-decorator]
        def sync_repository_task(repository_id: int, full: bool, trigger: str) -> None:
            run_sync(rt, repository_id, full=full, trigger=trigger)
            self.push_development(repository_id)

        @self.huey.task(name="push_development")  # type: ignore[untyped-decorator]
        def push_development_task(repository_id: int) -> None:
            push_repository(rt, repository_id)

        @self.huey.task(name="refresh_pull")  # type: ignore[untyped-decorator]
        def refresh_pull_task(repository_id: int, number: int) -> None:
            try:
                refresh_pull(rt, repository_id, number)
            except DevlinkError as exc:  # the payload's view stands; the next soft sync catches up
                log.warning("pull.refresh_failed repository=%s number=%s reason=%s", repository_id, number,
                            exc.reason)
            self.push_development(repository_id)

        @self.huey.task(name="discover_account")  # type: ignore[untyped-decorator]
        def discover_task(account_id: int) -> None:
            try:
                result = discover(rt, account_id)
            except DevlinkError as exc:  # recorded on the account; the next daily run retries
                log.warning("account.discovery_failed account=%s reason=%s", account_id, exc.reason)
                return
            for repository_id in result.linked:
                self.request_sync(repository_id, full=True, trigger="manual")

        @self.huey.periodic_task(crontab(minute="*"), name="schedule_due")  # type: ignore[untyped-decorator]
        def schedule_due_task() -> None:
            self.recover()
            queued = schedule_due(rt, self.enqueue_sync)
            if queued:
                log.info("schedule.queued repositories=%s", queued)
            discover_due(rt, self.discover)
            redeliver_pending(rt, self)
            push_due(rt)

        self._sync_task: Any = sync_repository_task
        self._push_task: Any = push_development_task
        self._refresh_pull_task: Any = refresh_pull_task
        self._discover_task: Any = discover_task
        self.schedule_task: Any = schedule_due_task  # for ``call_local()`` in tests and tools

    def enqueue_sync(self, repository_id: int, full: bool, trigger: str) -> None:
        self.huey.enqueue(self._sync_task.s(repository_id, full, trigger, priority=PRIORITY.get(trigger, 0)))

    def push_development(self, repository_id: int) -> None:
        """Send the repository's development data to the outside tracker, after whatever is queued first."""
        if outside_kind(self.rt) is None:
            return
        request_push(self.rt, repository_id)  # due even if this job is lost: the minute tick sends it
        self.huey.enqueue(self._push_task.s(repository_id, priority=PRIORITY["schedule"]))

    def refresh_pull(self, repository_id: int, number: int) -> None:
        self.huey.enqueue(self._refresh_pull_task.s(repository_id, number, priority=PRIORITY["hook"]))

    def discover(self, account_id: int) -> None:
        self.huey.enqueue(self._discover_task.s(account_id, priority=PRIORITY["manual"]))

    def request_sync(self, repository_id: int, *, full: bool, trigger: str) -> str:
        """Queue a sync (or fold it into the one running); returns ``queued`` or ``coalesced``."""
        return request_sync(self.rt, repository_id, full=full, trigger=trigger, enqueue=self.enqueue_sync)

    def waiting_syncs(self) -> set[int]:
        """The ids of the repositories with a sync job waiting in the queue (read without taking any)."""
        task_class = self._sync_task.task_class
        return {task.args[0] for task in self.huey.pending() if isinstance(task, task_class) and task.args}

    def recover(self) -> list[int]:
        """Queue again the syncs whose lock holder died or whose job was lost (``sync.jobs.recover``)."""
        recovered = recover(self.rt, self.enqueue_sync, self.waiting_syncs)
        if recovered:
            log.info("queue.recovered repositories=%s", recovered)
        return recovered

    def _recover_on_start(self) -> None:
        try:
            self.recover()
        except Exception:  # the database or the queue is not there yet: the minute schedule tries again
            log.exception("queue.recover_failed")

    def consumer(self, workers: int) -> EmbeddedConsumer:
        # Huey backs an idle worker's polling off to 10 s; a webhook must not wait that long after a quiet spell.
        # Polling at most every half second costs one cheap query per worker.
        consumer = EmbeddedConsumer(self.huey, workers=workers, worker_type="thread", periodic=True,
                                    check_worker_health=True, initial_delay=0.05, max_delay=0.5)
        consumer.on_start = self._recover_on_start
        return consumer
