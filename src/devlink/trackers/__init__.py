"""Issue trackers behind one protocol: ``builtin`` (the embedded default) and the outside ones by kind.

``OUTSIDE`` is the registry of outside trackers: a kind names the module
that provides ``verify`` and ``open_tracker``.  It is the one place outside
a tracker's own module that names it.
"""

import importlib
from types import ModuleType

__all__ = ["OUTSIDE", "label_of", "module_for"]

#: kind -> module; imported on first use, so a command that does not talk to a tracker does not load httpx
OUTSIDE = {"jira": "devlink.trackers.jira"}


def module_for(kind: str) -> ModuleType:
    """The module of an outside tracker kind; KeyError for a kind devlink does not know."""
    return importlib.import_module(OUTSIDE[kind])


def label_of(kind: str) -> str:
    """An outside tracker's name for messages (its module's ``LABEL``): "Jira" for ``jira``."""
    return str(getattr(module_for(kind), "LABEL", kind))
