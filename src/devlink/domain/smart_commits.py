"""Smart commits: what a commit message asks the issue tracker to do.

    JRA-123 #time 2h #comment fixed the race #resolve

The grammar, in brief (docs/smart-commits.md is the definition, with examples):

- Each line (split at ``\\r\\n``, ``\\n``, ``\\r``) is read on its own; a group never spans lines.
- Keys are those of :func:`devlink.domain.issue_keys.extract_keys`.  A *key run* is one or more keys
  separated only by white space and/or commas: ``A-1 B-2``, ``A-1, B-2``, ``A-1,B-2``.
- A *command* is ``#``, an ASCII letter, then ASCII letters, digits or ``-``, where the ``#`` is at the
  start of the line, after white space, or directly after a key (``KEY-1#close``).  Any other ``#``
  (``#123``, ``a#b``) is text, and so is a ``#`` directly followed by a key (``see #ABC-12``).
- The first command of a line that has a key run before it opens a *group* for the nearest such run
  (``fix A-1 and B-2 #close`` closes only B-2); earlier commands are ignored.  Each command's
  arguments run to the next command or the end of the line.  Inside arguments, a key run followed by a
  command (with only white space or commas between) opens the next group, and the arguments before
  it end at the run, less trailing commas; any other key is text.
- ``#time`` logs work, ``#comment`` comments, any other name is a transition (names case-insensitive).

Everything here is pure: a ``str`` in, frozen values out.  A message never makes :func:`parse` raise;
a command that cannot run (``#time`` without a duration, an unknown transition) comes back as a value
and the executor (``devlink.sync.smart_commits``) records why.

    >>> parse("JRA-123 #time 2h #comment fixed the race #resolve")[0].keys
    ('JRA-123',)
    >>> [(c.type.value, c.args, c.seconds) for c in parse("A1-1, B2-2 #time 1h 30m bisecting")[0].commands]
    [('time', '1h 30m bisecting', 5400)]
"""

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction
from functools import lru_cache
from types import MappingProxyType
from typing import Any

from devlink.domain.issue_keys import KEY_PATTERN, SEPARATORS

__all__ = [
    "DEFAULT_TIME_UNITS",
    "MAX_MESSAGE_LENGTH",
    "TRUST_POLICIES",
    "Command",
    "CommandType",
    "Group",
    "TimeUnits",
    "effective_trust",
    "match_transition",
    "parse",
    "parse_duration",
    "to_json",
]

#: Who a smart commit acts as (docs/smart-commits.md, "trust policies"): ``author`` (the author's e-mail alone),
#: ``pusher`` (the host's webhook must say the same person pushed it), ``signed`` (an SSH signature by a key of
#: that person).  The first is the default.
TRUST_POLICIES = ("author", "pusher", "signed")


def effective_trust(repository_value: str | None, account_value: str | None) -> str:
    """The policy in force: the repository's, else its account's, else ``author``."""
    return repository_value or account_value or TRUST_POLICIES[0]

#: Characters of a message :func:`parse` reads (1 MiB); a line cut by the limit is dropped whole.
MAX_MESSAGE_LENGTH = 1 << 20


class CommandType(StrEnum):
    """What a command does, decided by its name alone (case-insensitive)."""

    COMMENT = "comment"  #: ``#comment`` adds its arguments as a comment
    TIME = "time"  #: ``#time`` logs work: a duration and a worklog comment
    TRANSITION = "transition"  #: any other name moves the issue through its workflow


@dataclass(frozen=True)
class Command:
    """One command of a group, as written.

    ``position`` numbers the commands of the whole message from 0, in order of appearance (across
    lines and groups); with the commit sha and the issue key it names one execution in the ledger.
    ``seconds`` and ``comment`` are set for ``#time`` only (``seconds`` stays None when the arguments
    hold no duration); both are None for other commands.
    """

    type: CommandType
    name: str  #: as written, without the ``#``: ``Start-Progress``
    args: str  #: the arguments, trimmed
    position: int
    seconds: int | None = None
    comment: str | None = None


@dataclass(frozen=True)
class Group:
    """Commands that apply, in order, to each of ``keys`` (distinct, in order of appearance)."""

    keys: tuple[str, ...]
    commands: tuple[Command, ...]


@dataclass(frozen=True)
class TimeUnits:
    """How long ``1d`` and ``1w`` are in ``#time``: ``TimeUnits(hours_per_day=7.5)``.

    Both must be finite and positive (a ``ValueError`` otherwise: that is a settings bug, not a message).
    """

    hours_per_day: float = 8
    days_per_week: float = 5

    def __post_init__(self) -> None:
        for name in ("hours_per_day", "days_per_week"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"TimeUnits.{name} must be a positive number, not {value!r}")


DEFAULT_TIME_UNITS = TimeUnits()

_WHITESPACE = " \t\n\r\v\f"  # ASCII white space, as in the key extractor; line breaks are gone by then
_GAP = _WHITESPACE + ","  # what may stand between the keys of a run, and between a run and its command
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
# KEY_PATTERN, tried only where a run of project characters starts: the bare pattern backtracks over
# every start inside a long run of capitals ("AAAA…"), quadratic in the length of the line.  A key must
# stand alone, so it always starts such a run; the stand-alone test itself is _stands_alone.
_KEY = re.compile(r"(?<![A-Z0-9])" + KEY_PATTERN.pattern)
_HASH = re.compile(r"#[A-Za-z]")
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]*")
_WORD = re.compile(r"[^ \t\n\r\v\f]+")
# A #time part; the digit bounds keep every number far from int's string-conversion limit.
_PART = re.compile(r"([0-9]{1,9})(?:\.([0-9]{1,9}))?([wdhmWDHM])")
_SHIFT = [10 ** (9 - digits) for digits in range(10)]  # a number with n decimals, times _SHIFT[n]: in 1e-9 units
_TYPES = {"comment": CommandType.COMMENT, "time": CommandType.TIME}


@dataclass(frozen=True, slots=True)
class _Run:
    """A key run in a line: its distinct keys and where it starts and ends."""

    keys: tuple[str, ...]
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class _Mark:
    """A command in a line: its name, the ``#`` and the end of the name."""

    name: str
    start: int
    end: int


def parse(message: str, units: TimeUnits = DEFAULT_TIME_UNITS) -> tuple[Group, ...]:
    """Return the groups of ``message`` in order of appearance; never raises.

    Only the first :data:`MAX_MESSAGE_LENGTH` characters are read, and of those only whole lines:
    the line the limit cuts is dropped, so a command is never read half-written.

        >>> [(g.keys, [c.name for c in g.commands]) for g in parse("KEY-1 #comment first KEY-2, KEY-3 #close")]
        [(('KEY-1',), ['comment']), (('KEY-2', 'KEY-3'), ['close'])]
        >>> parse("fix #123 a#b")
        ()
    """
    if len(message) > MAX_MESSAGE_LENGTH:
        if message[MAX_MESSAGE_LENGTH] in "\r\n":  # the limit falls on a line break: the last line is whole
            message = message[:MAX_MESSAGE_LENGTH]
        else:
            message = message[:MAX_MESSAGE_LENGTH]
            message = message[: max(message.rfind("\n"), message.rfind("\r"), 0)]
    groups: list[Group] = []
    position = 0
    for line in _LINE_BREAK.split(message):
        if "#" in line:
            position = _parse_line(line, units, position, groups)
    return tuple(groups)


def _parse_line(line: str, units: TimeUnits, position: int, groups: list[Group]) -> int:
    """Append the groups of one line to ``groups``; return the position of the next command."""
    items = _items(line)
    keys: tuple[str, ...] | None = None  # the open group's keys; None while no group is open
    commands: list[Command] = []
    pending: _Mark | None = None  # the open group's last command, its arguments not cut yet
    nearest: _Run | None = None  # while no group is open: the nearest key run so far
    for index, item in enumerate(items):
        if isinstance(item, _Run):
            if keys is None:
                nearest = item
                continue
            following = items[index + 1] if index + 1 < len(items) else None
            if not (isinstance(following, _Mark) and _only_gap(line, item.end, following.start)):
                continue  # a key inside arguments: text
            if pending is not None:  # the commas before the run separate the groups: not arguments
                commands.append(_command(pending, line[pending.end : item.start].rstrip(_GAP), position, units))
                position += 1
            groups.append(Group(keys, tuple(commands)))
            keys, commands, pending = item.keys, [], None
        else:
            if keys is None:
                if nearest is None:
                    continue  # a command with no key run before it
                keys = nearest.keys
            elif pending is not None:
                commands.append(_command(pending, line[pending.end : item.start], position, units))
                position += 1
            pending = item
    if keys is not None:
        if pending is not None:
            commands.append(_command(pending, line[pending.end :], position, units))
            position += 1
        groups.append(Group(keys, tuple(commands)))
    return position


def _items(line: str) -> list[_Run | _Mark]:
    """The key runs and commands of a line, left to right.

    Keys and ``#`` marks are found separately, then merged: a ``#`` is a command at the start of the
    line, after white space or right after a key, unless a key starts right after it (``#ABC-12`` is a
    reference); a key inside a command's name (``#close-ABC-2``) belongs to the name.
    """
    keys = [(m.start(), m.end()) for m in _KEY.finditer(line) if _stands_alone(line, m.start(), m.end())]
    key_starts = {start for start, _ in keys}
    marks = [m.start() for m in _HASH.finditer(line)]
    tokens: list[tuple[int, int, str, bool]] = []  # start, end, key or command name, is a key
    taken_to = 0  # end of the last token taken
    key_end = -1  # end of the last key taken
    k = h = 0
    while k < len(keys) or h < len(marks):
        if h == len(marks) or (k < len(keys) and keys[k][0] < marks[h]):
            start, end = keys[k]
            k += 1
            if start >= taken_to:
                tokens.append((start, end, line[start:end], True))
                taken_to = key_end = end
            continue
        at = marks[h]
        h += 1
        if (at == 0 or line[at - 1] in _WHITESPACE or at == key_end) and at + 1 not in key_starts:
            name = _NAME.match(line, at + 1)
            if name is not None:  # always: _HASH saw a letter there
                tokens.append((at, name.end(), name.group(), False))
                taken_to = name.end()
    items: list[_Run | _Mark] = []
    run: list[str] = []
    run_start = run_end = 0
    for start, end, text, is_key in tokens:
        if is_key:
            if run and _only_gap(line, run_end, start):
                run.append(text)
            else:
                if run:
                    items.append(_Run(tuple(dict.fromkeys(run)), run_start, run_end))
                run, run_start = [text], start
            run_end = end
        else:
            if run:
                items.append(_Run(tuple(dict.fromkeys(run)), run_start, run_end))
                run = []
            items.append(_Mark(text, start, end))
    if run:
        items.append(_Run(tuple(dict.fromkeys(run)), run_start, run_end))
    return items


def _stands_alone(line: str, start: int, end: int) -> bool:
    """The key extractor's rule: the edge of the line or a separator on each side of ``line[start:end]``."""
    return (start == 0 or line[start - 1] in SEPARATORS) and (end == len(line) or line[end] in SEPARATORS)


def _only_gap(line: str, start: int, end: int) -> bool:
    """Whether ``line[start:end]`` holds nothing but white space and commas."""
    return not line[start:end].strip(_GAP)


def _command(mark: _Mark, args: str, position: int, units: TimeUnits) -> Command:
    kind = _TYPES.get(mark.name.lower(), CommandType.TRANSITION)
    args = args.strip(_WHITESPACE)
    if kind is CommandType.TIME:
        seconds, comment = parse_duration(args, units)
        return Command(kind, mark.name, args, position, seconds, comment)
    return Command(kind, mark.name, args, position)


def parse_duration(args: str, units: TimeUnits = DEFAULT_TIME_UNITS) -> tuple[int | None, str]:
    """Split ``#time`` arguments into (seconds, worklog comment); seconds is None without a duration.

    The duration is the first run of white-space-separated words that are each ``<number><unit>``:
    a number of up to 9 digits with an optional ``.`` and up to 9 more, and a unit ``w d h m`` in either
    case.  ``units`` says how long a day and a week are.  The sum is rounded to the nearest second
    (halves up).  The comment is the text before and after the run, each trimmed, joined with one space;
    without a duration it is all the text, trimmed.

        >>> parse_duration("1w 2d 4h 30m")
        (217800, '')
        >>> parse_duration("fixed it 2h 30m quickly")
        (9000, 'fixed it quickly')
        >>> parse_duration("2hours")
        (None, '2hours')
        >>> parse_duration("1d", TimeUnits(hours_per_day=7.5))
        (27000, '')
    """
    scale, unit_seconds = _unit_seconds(units)
    total = 0  # exact, in units of 1 / (scale * 10**9) seconds: integers only, no Fraction per part
    run_start: int | None = None
    run_end = 0
    for word in _WORD.finditer(args):
        part = _PART.fullmatch(word.group())
        if part is None:
            if run_start is not None:
                break
            continue
        if run_start is None:
            run_start = word.start()
        run_end = word.end()
        whole, decimals, unit = part.groups()
        decimals = decimals or ""
        total += int(whole + decimals) * _SHIFT[len(decimals)] * unit_seconds[unit.lower()]
    if run_start is None:
        return None, args.strip(_WHITESPACE)
    around = (args[:run_start].strip(_WHITESPACE), args[run_end:].strip(_WHITESPACE))
    one_second = scale * 10**9
    return (2 * total + one_second) // (2 * one_second), " ".join(text for text in around if text)  # halves up


@lru_cache(maxsize=16)
def _unit_seconds(units: TimeUnits) -> tuple[int, Mapping[str, int]]:
    """(scale, seconds per unit times scale, each a whole number), built once per ``units``.

    ``scale`` is the least common denominator of the exact unit lengths (1 unless a day or week is
    fractional, like 7.5 hours), so the sum of a duration stays exact in integers: building Fractions
    per part was most of the parse of a message of thousands of ``#time`` commands.
    """
    day = Fraction(3600) * Fraction(units.hours_per_day)
    exact = {"m": Fraction(60), "h": Fraction(3600), "d": day, "w": day * Fraction(units.days_per_week)}
    scale = math.lcm(*(length.denominator for length in exact.values()))
    return scale, MappingProxyType({unit: int(length * scale) for unit, length in exact.items()})


def to_json(groups: Sequence[Group]) -> dict[str, Any]:
    """The stable JSON shape of ``devlink smart-commit parse --json``.

    ``{"groups": [{"keys": [...], "commands": [{"type", "name", "args"}, ...]}]}``; a ``#time`` command
    also has ``"seconds"`` (null without a duration) and ``"comment"``; other commands have neither.
    ``position`` is not part of it: it is the index of the command in the list of all commands.
    """
    return {
        "groups": [
            {"keys": list(group.keys), "commands": [_command_json(command) for command in group.commands]}
            for group in groups
        ]
    }


def _command_json(command: Command) -> dict[str, Any]:
    out: dict[str, Any] = {"type": command.type.value, "name": command.name, "args": command.args}
    if command.type is CommandType.TIME:
        out["seconds"] = command.seconds
        out["comment"] = command.comment
    return out


def match_transition(command: str, transitions: Sequence[tuple[str, str]]) -> tuple[str | None, str | None]:
    """Pick the transition a command names: (transition name, None) or (None, error message).

    ``command`` is the name as written after ``#``; ``transitions`` are the (transition name, target
    status name) pairs available from the issue's current status.  Names compare case-insensitively,
    with ``-`` read as a space.  The first rule that matches decides:

    1. a transition whose name equals the command;
    2. a transition whose target status equals the command (``#done``);
    3. a transition whose name starts with the command (``#start`` → Start Progress).

    Errors, with names as given, in the given order (a name listed twice counts once):

    - ``no transition matches #fnish; available: Start Progress, Resolve`` (``available: none`` when
      there are no transitions);
    - ``#s matches more than one transition: Start Progress, Stop Progress`` when a rule matches more
      than one; the later rules are not tried.

        >>> match_transition("start-progress", [("Start Progress", "In Progress"), ("Resolve", "Done")])
        ('Start Progress', None)
        >>> match_transition("fnish", [("Start Progress", "In Progress"), ("Resolve", "Done")])
        (None, 'no transition matches #fnish; available: Start Progress, Resolve')
    """
    wanted = _fold(command)
    rules = (
        [name for name, _ in transitions if _fold(name) == wanted],
        [name for name, target in transitions if _fold(target) == wanted],
        [name for name, _ in transitions if wanted and _fold(name).startswith(wanted)],
    )
    for matched in rules:
        distinct = list(dict.fromkeys(matched))
        if len(distinct) == 1:
            return distinct[0], None
        if distinct:
            return None, f"#{command} matches more than one transition: {', '.join(distinct)}"
    available = ", ".join(dict.fromkeys(name for name, _ in transitions)) or "none"
    return None, f"no transition matches #{command}; available: {available}"


def _fold(name: str) -> str:
    return name.replace("-", " ").casefold()
