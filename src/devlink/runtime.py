"""What every entry point needs, built once: settings, the database, the vault, the job queue.

The CLI, the web app and the queue consumer each open one ``Runtime``; nothing
else builds engines or reads settings.

    rt = Runtime.open(load_settings())
    with rt.sessions() as session: ...
"""

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from devlink.config import Settings
from devlink.crypto import Vault, private_directory
from devlink.store.engine import make_engine, make_sessionmaker
from devlink.store.migrate import upgrade

if TYPE_CHECKING:
    from devlink.tasks import Queue

__all__ = ["Runtime"]


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    vault: Vault
    _queue: "Queue | None" = field(default=None, repr=False)

    @classmethod
    def open(cls, settings: Settings, *, migrate: bool = True) -> "Runtime":
        """Connect (and by default migrate) the database named by ``settings``."""
        private_directory(settings.home)
        private_directory(settings.mirrors_dir, tighten=True)  # every commit of private repositories
        engine = make_engine(settings.database_url)
        if migrate:
            upgrade(engine)
        return cls(settings, engine, make_sessionmaker(engine), Vault.from_settings(settings))

    @property
    def queue(self) -> "Queue":
        """The job queue, built on first use (a CLI command that only reads never opens it)."""
        if self._queue is None:
            from devlink.tasks import Queue

            self._queue = Queue(self)
        return self._queue

    def close(self) -> None:
        self.engine.dispose()
