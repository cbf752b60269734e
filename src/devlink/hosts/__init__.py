"""Source hosts: one module per kind behind the protocol in ``hosts.protocol``; ``git`` reads commits for all.

``HOSTS`` is the registry: a kind names the module whose ``HOST`` provides
``HostKind``.  It is the one place outside a host's own module that names it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from devlink.hosts.protocol import HostKind

__all__ = ["HOSTS", "for_kind", "kinds", "registered_kind"]

#: kind -> module; imported on first use, so a command that does not talk to a host does not load its client
HOSTS = {"github": "devlink.hosts.github", "gitlab": "devlink.hosts.gitlab"}

#: the ``hosts.kind`` values older rows carry, by the kind that owns them
_STORED = {"github-enterprise": "github"}


def kinds() -> tuple[str, ...]:
    """Every host kind an account can be linked on, in the order the CLI and the wizard offer them."""
    return tuple(HOSTS)


def registered_kind(stored: str) -> str:
    """The registry's name for a stored ``hosts.kind``, without importing the host's module."""
    return _STORED.get(stored, stored)


def for_kind(kind: str) -> HostKind:
    """The host kind ``kind`` (or a stored ``hosts.kind`` such as ``github-enterprise``); KeyError when unknown."""
    module = HOSTS[_STORED.get(kind, kind)]
    return cast("HostKind", importlib.import_module(module).HOST)
