"""The smart-commit grammar: one test per rule and per example of issue 3 ("Grammar"), docs/smart-commits.md.

The issue writes keys as ``A-1`` and ``B-2``; keys are those of the one key extractor, whose project
keys have at least two characters, so the tests write ``AB-1`` and ``BC-2`` (``A-1`` is no key: see
``test_keys_follow_the_extractor``).
"""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devlink.domain import smart_commits
from devlink.domain.issue_keys import extract_keys
from devlink.domain.smart_commits import (
    DEFAULT_TIME_UNITS,
    MAX_MESSAGE_LENGTH,
    Command,
    CommandType,
    Group,
    TimeUnits,
    match_transition,
    parse,
    parse_duration,
    to_json,
)


def comment(name: str, args: str, position: int = 0) -> Command:
    return Command(CommandType.COMMENT, name, args, position)


def time(name: str, args: str, seconds: int | None, worklog: str, position: int = 0) -> Command:
    return Command(CommandType.TIME, name, args, position, seconds, worklog)


def transition(name: str, args: str = "", position: int = 0) -> Command:
    return Command(CommandType.TRANSITION, name, args, position)


def group(keys: str, *commands: Command) -> Group:
    return Group(tuple(keys.split()), commands)


def check(message: str, *groups: Group) -> None:
    assert parse(message) == groups


# --- lines -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "newline", [pytest.param("\r\n", id="crlf"), pytest.param("\n", id="lf"), pytest.param("\r", id="cr")]
)
def test_each_line_is_parsed_on_its_own(newline: str) -> None:
    check(
        f"AB-1 #comment first line{newline}BC-2 #close",
        group("AB-1", comment("comment", "first line", 0)),
        group("BC-2", transition("close", "", 1)),
    )


@pytest.mark.parametrize(
    ("message", "groups"),
    [
        pytest.param("Summary\n\nBody text\nAB-1 #close", (group("AB-1", transition("close")),), id="last-line"),
        pytest.param("AB-1 #close\nsecond line", (group("AB-1", transition("close")),), id="first-line"),
        pytest.param(
            "AB-1 #comment one\ntwo", (group("AB-1", comment("comment", "one")),), id="arguments-end-at-the-line"
        ),
        pytest.param("AB-1\n#close", (), id="key-and-command-on-two-lines"),
        pytest.param("AB-1 fix\r\n\r\n#close", (), id="key-and-command-across-crlf"),
        pytest.param(
            "AB-1 #comment a\u2028b\x85c",
            (group("AB-1", comment("comment", "a\u2028b\x85c")),),
            id="unicode-line-separators-are-text",
        ),
        pytest.param(
            "AB-1\v#close\fnow",
            (group("AB-1", transition("close", "now")),),
            id="vertical-tab-and-form-feed-are-white-space",
        ),
    ],
)
def test_commands_in_any_line_and_never_across_lines(message: str, groups: tuple[Group, ...]) -> None:
    assert parse(message) == groups


# --- keys and key runs -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    [
        pytest.param("AB-1 BC-2 #close", id="space"),
        pytest.param("AB-1, BC-2 #close", id="comma-space"),
        pytest.param("AB-1 ,BC-2 #close", id="space-comma"),
        pytest.param("AB-1,BC-2 #close", id="comma"),
        pytest.param("AB-1 \t,, BC-2 ,\t#close", id="mixed-and-comma-before-command"),
        pytest.param("AB-1,BC-2#close", id="command-glued-to-last-key"),
    ],
)
def test_key_run(message: str) -> None:
    check(message, group("AB-1 BC-2", transition("close")))


@pytest.mark.parametrize(
    ("message", "groups"),
    [
        pytest.param("A-1 B-2 #close", (), id="one-letter-project-is-no-key"),
        pytest.param("ab-1 #close", (), id="lower-case-is-no-key"),
        pytest.param("xAB-1 #close", (), id="glued-before"),
        pytest.param("AB-1x #close", (), id="glued-after"),
        pytest.param("feature/AB-1 #close", (group("AB-1", transition("close")),), id="punctuation-before"),
        pytest.param("(AB-1) #close", (group("AB-1", transition("close")),), id="punctuation-around"),
        pytest.param(
            "AB-1 AB-1, BC-2 AB-1 #close", (group("AB-1 BC-2", transition("close")),), id="duplicates-collapse"
        ),
    ],
)
def test_keys_follow_the_extractor(message: str, groups: tuple[Group, ...]) -> None:
    assert parse(message) == groups


# --- where a command stands --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "groups"),
    [
        pytest.param(
            "#time 2h AB-1 #close", (group("AB-1", transition("close")),), id="line-start-before-any-key-is-ignored"
        ),
        pytest.param("AB-1 #close", (group("AB-1", transition("close")),), id="after-space"),
        pytest.param("AB-1\t#close", (group("AB-1", transition("close")),), id="after-tab"),
        pytest.param("AB-1#close", (group("AB-1", transition("close")),), id="directly-after-key"),
        pytest.param("KEY-1#close", (group("KEY-1", transition("close")),), id="issue-example-KEY-1#close"),
        pytest.param("AB-1,#close", (), id="after-comma-is-text"),
        pytest.param("AB-1 fix#close", (), id="after-a-word-is-text"),
        pytest.param("AB-1 #123", (), id="hash-digits-is-text"),
        pytest.param("AB-1 a#b", (), id="a#b-is-text"),
        pytest.param("AB-1 ##close", (), id="double-hash-is-text"),
        pytest.param("AB-1 #-close", (), id="hash-dash-is-text"),
        pytest.param("AB-1 #\u00e9t\u00e9", (), id="non-ascii-letter-is-text"),
        pytest.param("AB-1\u00a0#close", (), id="after-non-breaking-space-is-text"),
        pytest.param(
            "AB-1 #comment see #123 and a#b",
            (group("AB-1", comment("comment", "see #123 and a#b")),),
            id="text-hashes-inside-arguments",
        ),
        pytest.param("AB-1 #start-progress", (group("AB-1", transition("start-progress")),), id="name-with-dash"),
        pytest.param("AB-1 #v2-ready now", (group("AB-1", transition("v2-ready", "now")),), id="name-with-digit"),
        pytest.param("AB-1 #close.", (group("AB-1", transition("close", ".")),), id="name-ends-at-punctuation"),
        pytest.param("AB-1 #close#done", (group("AB-1", transition("close", "#done")),), id="hash-after-name-is-text"),
    ],
)
def test_where_a_command_stands(message: str, groups: tuple[Group, ...]) -> None:
    assert parse(message) == groups


@pytest.mark.parametrize(
    ("message", "groups"),
    [
        pytest.param("AB-1 see #BC-2", (), id="hash-before-key-is-a-reference"),
        pytest.param("#AB-1 #close", (group("AB-1", transition("close")),), id="referenced-key-is-a-key"),
        pytest.param(
            "AB-1 #comment see #BC-2 first #close",
            (group("AB-1", comment("comment", "see #BC-2 first", 0), transition("close", "", 1)),),
            id="reference-inside-arguments",
        ),
        pytest.param(
            "AB-1 #comment see #BC-2 #close",
            (group("AB-1", comment("comment", "see #", 0)), group("BC-2", transition("close", "", 1))),
            id="referenced-key-before-a-command-opens-a-group",
        ),
        pytest.param("AB-1 #AB-1x", (group("AB-1", transition("AB-1x")),), id="no-key-after-hash-so-a-command"),
        pytest.param(
            "AB-1 #close-BC-2 now",
            (group("AB-1", transition("close-BC-2", "now")),),
            id="key-inside-a-name-belongs-to-the-name",
        ),
    ],
)
def test_hash_and_keys_touching(message: str, groups: tuple[Group, ...]) -> None:
    assert parse(message) == groups


# --- which keys a command applies to -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "groups"),
    [
        pytest.param(
            "fix AB-1 and BC-2 #close",
            (group("BC-2", transition("close")),),
            id="issue-example-closes-only-the-nearest-run",
        ),
        pytest.param(
            "AB-1 BC-2 fixed the race #close",
            (group("AB-1 BC-2", transition("close")),),
            id="text-between-run-and-command-is-ignored",
        ),
        pytest.param(
            "AB-1 and BC-2, CD-3 done #resolve", (group("BC-2 CD-3", transition("resolve")),), id="nearest-run-of-two"
        ),
        pytest.param("#close", (), id="no-key-at-all"),
        pytest.param("fix #close AB-1", (), id="key-only-after-the-command"),
        pytest.param(
            "#close AB-1 #comment hi",
            (group("AB-1", comment("comment", "hi")),),
            id="command-before-any-key-is-ignored",
        ),
    ],
)
def test_opening_a_group(message: str, groups: tuple[Group, ...]) -> None:
    assert parse(message) == groups


@pytest.mark.parametrize(
    ("message", "groups"),
    [
        pytest.param(
            "KEY-1 #comment see KEY-2 for details",
            (group("KEY-1", comment("comment", "see KEY-2 for details")),),
            id="issue-example-key-inside-arguments",
        ),
        pytest.param(
            "KEY-1 #comment first KEY-2, KEY-3 #close",
            (group("KEY-1", comment("comment", "first", 0)), group("KEY-2 KEY-3", transition("close", "", 1))),
            id="issue-example-run-opens-a-new-group",
        ),
        pytest.param(
            "JRA-123 #time 2h #comment fixed the race #resolve",
            (
                group(
                    "JRA-123",
                    time("time", "2h", 7200, "", 0),
                    comment("comment", "fixed the race", 1),
                    transition("resolve", "", 2),
                ),
            ),
            id="issue-example-three-commands",
        ),
        pytest.param(
            "AB-1 #comment see BC-2 then #close",
            (group("AB-1", comment("comment", "see BC-2 then", 0), transition("close", "", 1)),),
            id="key-followed-by-text-stays-text",
        ),
        pytest.param("AB-1 #comment BC-2", (group("AB-1", comment("comment", "BC-2")),), id="key-at-line-end"),
        pytest.param(
            "AB-1 #comment one, BC-2#close",
            (group("AB-1", comment("comment", "one", 0)), group("BC-2", transition("close", "", 1))),
            id="commas-before-the-run-are-not-arguments",
        ),
        pytest.param(
            "AB-1 #comment one, #close",
            (group("AB-1", comment("comment", "one,", 0), transition("close", "", 1)),),
            id="commas-before-a-command-are-arguments",
        ),
        pytest.param(
            "AB-1 #close BC-2 #start CD-3 #done",
            (
                group("AB-1", transition("close", "", 0)),
                group("BC-2", transition("start", "", 1)),
                group("CD-3", transition("done", "", 2)),
            ),
            id="three-groups",
        ),
        pytest.param(
            "AB-1 #close AB-1 #reopen",
            (group("AB-1", transition("close", "", 0)), group("AB-1", transition("reopen", "", 1))),
            id="same-key-twice",
        ),
        pytest.param(
            "AB-1 #comment  spaced   out  ",
            (group("AB-1", comment("comment", "spaced   out")),),
            id="arguments-trimmed-not-collapsed",
        ),
    ],
)
def test_arguments_and_further_groups(message: str, groups: tuple[Group, ...]) -> None:
    assert parse(message) == groups


# --- names -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "command"),
    [
        pytest.param("AB-1 #TIME 1h", time("TIME", "1h", 3600, ""), id="TIME"),
        pytest.param("AB-1 #Time 1h", time("Time", "1h", 3600, ""), id="Time"),
        pytest.param("AB-1 #Comment hi", comment("Comment", "hi"), id="Comment"),
        pytest.param("AB-1 #COMMENT hi", comment("COMMENT", "hi"), id="COMMENT"),
        pytest.param("AB-1 #Resolve", transition("Resolve"), id="transition-case-kept"),
        pytest.param("AB-1 #times 1h", transition("times", "1h"), id="times-is-a-transition"),
        pytest.param("AB-1 #comments hi", transition("comments", "hi"), id="comments-is-a-transition"),
    ],
)
def test_names_are_case_insensitive(message: str, command: Command) -> None:
    check(message, Group(("AB-1",), (command,)))


# --- #time -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param("1w 2d 4h 30m", (217800, ""), id="issue-example-1w-2d-4h-30m"),
        pytest.param("1.5h", (5400, ""), id="decimal"),
        pytest.param("2H 30M", (9000, ""), id="upper-case-units"),
        pytest.param("1W 1D", (172800, ""), id="upper-case-week-and-day"),
        pytest.param("30m 2h", (9000, ""), id="any-order"),
        pytest.param("1h 1h", (7200, ""), id="repeated-unit-adds"),
        pytest.param("1h\t30m", (5400, ""), id="tab-separated"),
        pytest.param("0m", (0, ""), id="zero"),
        pytest.param("2h fixed the race", (7200, "fixed the race"), id="comment-after"),
        pytest.param("fixed it 2h 30m quickly", (9000, "fixed it quickly"), id="comment-around"),
        pytest.param("fixed  it   2h   quickly  now", (7200, "fixed  it quickly  now"), id="inner-spaces-kept"),
        pytest.param("2h fixed 30m", (7200, "fixed 30m"), id="only-the-first-run"),
        pytest.param("2hours", (None, "2hours"), id="part-must-be-a-whole-word"),
        pytest.param("2h30m", (None, "2h30m"), id="glued-parts-are-one-word"),
        pytest.param("2h, fixed", (None, "2h, fixed"), id="punctuation-glued-to-a-part"),
        pytest.param("about 2 h", (None, "about 2 h"), id="space-inside-a-part"),
        pytest.param(".5h", (None, ".5h"), id="no-digit-before-point"),
        pytest.param("1.h", (None, "1.h"), id="no-digit-after-point"),
        pytest.param("1,5h", (None, "1,5h"), id="decimal-comma"),
        pytest.param("-1h", (None, "-1h"), id="negative"),
        pytest.param("2s", (None, "2s"), id="seconds-are-no-unit"),
        pytest.param("\u0662h", (None, "\u0662h"), id="non-ascii-digit"),
        pytest.param("1234567890h", (None, "1234567890h"), id="more-than-nine-digits"),
        pytest.param("123456789.123456789m", (7407407347, ""), id="nine-and-nine-digits"),
        pytest.param("fixed it", (None, "fixed it"), id="no-duration"),
        pytest.param("", (None, ""), id="empty"),
        pytest.param("  \t ", (None, ""), id="blank"),
        pytest.param("0.5m", (30, ""), id="half-minute"),
        pytest.param("0.0125m", (1, ""), id="rounds-up-above-half"),
        pytest.param("0.0075m", (0, ""), id="rounds-down-below-half"),
        pytest.param("0.025m", (2, ""), id="half-a-second-rounds-up"),
        pytest.param("0.1h 0.2h", (1080, ""), id="exact-decimal-arithmetic"),
    ],
)
def test_parse_duration(args: str, expected: tuple[int | None, str]) -> None:
    assert parse_duration(args) == expected


@pytest.mark.parametrize(
    ("units", "args", "seconds"),
    [
        pytest.param(TimeUnits(hours_per_day=7.5), "1d", 27000, id="seven-and-a-half-hour-day"),
        pytest.param(TimeUnits(hours_per_day=6, days_per_week=4), "1w 1d", 108000, id="four-six-hour-days"),
        pytest.param(TimeUnits(days_per_week=4.5), "2w", 259200, id="half-day-friday"),
        pytest.param(TimeUnits(hours_per_day=24, days_per_week=7), "1w", 604800, id="calendar"),
        pytest.param(TimeUnits(hours_per_day=1), "3h 2m", 10920, id="hours-and-minutes-unchanged"),
    ],
)
def test_custom_time_units(units: TimeUnits, args: str, seconds: int) -> None:
    assert parse_duration(args, units) == (seconds, "")
    assert parse(f"AB-1 #time {args}", units) == (group("AB-1", time("time", args, seconds, "")),)


_NUMBER = st.one_of(
    st.integers(0, 999_999_999).map(str),
    st.tuples(st.integers(0, 999_999_999), st.text("0123456789", min_size=1, max_size=9)).map(
        lambda number: f"{number[0]}.{number[1]}"),
)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.tuples(_NUMBER, st.sampled_from("wdhmWDHM")), min_size=1, max_size=6),
    st.one_of(st.just(8.0), st.floats(0.01, 48), st.integers(1, 24).map(float)),
    st.one_of(st.just(5.0), st.floats(0.01, 7), st.integers(1, 7).map(float)),
)
def test_durations_are_summed_exactly(parts: list[tuple[str, str]], hours: float, days: float) -> None:
    # the integer arithmetic of parse_duration against the definition: exact sum, rounded half up
    from fractions import Fraction

    units = TimeUnits(hours_per_day=hours, days_per_week=days)
    day = Fraction(3600) * Fraction(hours)
    length = {"m": Fraction(60), "h": Fraction(3600), "d": day, "w": day * Fraction(days)}
    exact = sum((Fraction(number) * length[unit.lower()] for number, unit in parts), Fraction(0))
    args = " ".join(number + unit for number, unit in parts)
    assert parse_duration(args, units) == (int(exact + Fraction(1, 2)), "")


def test_default_time_units() -> None:
    assert TimeUnits(hours_per_day=8, days_per_week=5) == DEFAULT_TIME_UNITS


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"hours_per_day": 0}, id="zero"),
        pytest.param({"days_per_week": -1}, id="negative"),
        pytest.param({"hours_per_day": float("nan")}, id="nan"),
        pytest.param({"days_per_week": float("inf")}, id="infinite"),
    ],
)
def test_time_units_refuse_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be a positive number"):
        TimeUnits(**kwargs)


@pytest.mark.parametrize(
    ("message", "command"),
    [
        pytest.param(
            "AB-1 #time fixed it 2h 30m quickly",
            time("time", "fixed it 2h 30m quickly", 9000, "fixed it quickly"),
            id="issue-example",
        ),
        pytest.param("AB-1 #time 2hours", time("time", "2hours", None, "2hours"), id="no-duration-is-none"),
        pytest.param("AB-1 #time", time("time", "", None, ""), id="no-arguments"),
        pytest.param("AB-1 #comment 2h", comment("comment", "2h"), id="comment-has-no-seconds"),
        pytest.param("AB-1 #resolve 2h", transition("resolve", "2h"), id="transition-has-no-seconds"),
    ],
)
def test_time_in_a_message(message: str, command: Command) -> None:
    check(message, Group(("AB-1",), (command,)))


# --- positions ---------------------------------------------------------------------------------------


def test_positions_count_every_command_of_the_message() -> None:
    check(
        "AB-1 #time 1h #comment a\n#ignored (no key before it)\nBC-2 CD-3 #close DE-4 #start\nplain text\nAB-1#done",
        group("AB-1", time("time", "1h", 3600, "", 0), comment("comment", "a", 1)),
        group("BC-2 CD-3", transition("close", "", 2)),
        group("DE-4", transition("start", "", 3)),
        group("AB-1", transition("done", "", 4)),
    )


# --- the length cap ----------------------------------------------------------------------------------


def test_only_whole_lines_within_the_cap_are_read() -> None:
    first = "AB-1 #close\n"
    filler = "x" * (MAX_MESSAGE_LENGTH - len(first) - len("\nBC-2 #clo"))
    message = first + filler + "\nBC-2 #clo" + "se the rest is past the cap\nCD-3 #done"
    check(message, group("AB-1", transition("close")))


def test_a_line_ending_at_the_cap_is_read() -> None:
    line = "AB-1 #close "
    message = line + "x" * (MAX_MESSAGE_LENGTH - len(line) - 1) + "\n" + "BC-2 #done"
    check(message, group("AB-1", transition("close", "x" * (MAX_MESSAGE_LENGTH - len(line) - 1))))


def test_one_line_longer_than_the_cap_is_dropped() -> None:
    check("AB-1 #close " + "x" * MAX_MESSAGE_LENGTH)


@pytest.mark.parametrize(
    "message",
    [
        pytest.param("A" * MAX_MESSAGE_LENGTH, id="capitals"),
        pytest.param("AB-" * (MAX_MESSAGE_LENGTH // 3), id="almost-keys"),
        pytest.param("#a " * (MAX_MESSAGE_LENGTH // 3), id="commands-without-keys"),
        pytest.param("AB-1 " * (MAX_MESSAGE_LENGTH // 5 - 1) + "#c", id="one-long-run"),
        pytest.param("AB-1 #time " + "1h " * (MAX_MESSAGE_LENGTH // 3 - 4), id="long-duration"),
    ],
)
def test_big_messages_parse_in_linear_time(message: str) -> None:
    # Each takes well under a second; a quadratic step would take hours.
    assert isinstance(parse(message), tuple)


def test_a_five_thousand_command_message_is_read_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A timing-free guard that parsing is linear: each line is scanned once, each command reads its own slice.

    The executor caps what runs (sync/smart_commits.py), but it parses the whole message first to count what
    it skips, so the parse of a 60 KB message of 5,000 ``#time`` commands must stay proportional to its length.
    """
    scanned: list[int] = []
    durations: list[int] = []
    real_items, real_duration = smart_commits._items, smart_commits.parse_duration

    def items(line: str) -> list[object]:
        scanned.append(len(line))
        return real_items(line)  # type: ignore[return-value]

    def duration(args: str, units: TimeUnits = DEFAULT_TIME_UNITS) -> tuple[int | None, str]:
        durations.append(len(args))
        return real_duration(args, units)

    monkeypatch.setattr(smart_commits, "_items", items)
    monkeypatch.setattr(smart_commits, "parse_duration", duration)
    message = "DEMO-1" + " #time 1m ok" * 5000
    [found] = parse(message)
    assert [c.position for c in found.commands] == list(range(5000))
    assert {(c.seconds, c.comment) for c in found.commands} == {(60, "ok")}
    assert sum(scanned) == len(message)  # one scan of the one line
    assert len(durations) == 5000 and sum(durations) < len(message)  # disjoint slices, not "to the end of the line"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["AB-1 ", "BC-2, ", "#time 1h ", "#comment ", "#close ", "x ", "\n", ","]),
                max_size=200).map("".join))
def test_commands_read_disjoint_parts_of_the_message(message: str) -> None:
    # what each command holds is its own part of the message: the parse's output, and its work, grow linearly
    commands = [command for group in parse(message) for command in group.commands]
    assert len(commands) <= message.count("#")
    assert sum(len(command.name) + 1 + len(command.args) for command in commands) <= len(message)


# --- JSON --------------------------------------------------------------------------------------------


def test_to_json() -> None:
    groups = parse("AB-1, BC-2 #time 1h 30m tests #Start-Progress go\nCD-3 #comment hi #time soon")
    assert to_json(groups) == {
        "groups": [
            {
                "keys": ["AB-1", "BC-2"],
                "commands": [
                    {"type": "time", "name": "time", "args": "1h 30m tests", "seconds": 5400, "comment": "tests"},
                    {"type": "transition", "name": "Start-Progress", "args": "go"},
                ],
            },
            {
                "keys": ["CD-3"],
                "commands": [
                    {"type": "comment", "name": "comment", "args": "hi"},
                    {"type": "time", "name": "time", "args": "soon", "seconds": None, "comment": "soon"},
                ],
            },
        ]
    }
    assert json.loads(json.dumps(to_json(groups))) == to_json(groups)


def test_to_json_of_nothing() -> None:
    assert to_json(parse("no commands here")) == {"groups": []}


# --- transitions -------------------------------------------------------------------------------------

FROM_IN_PROGRESS = [("Stop Progress", "To Do"), ("Send To Review", "In Review"), ("Resolve", "Done")]
FROM_TO_DO = [("Start Progress", "In Progress")]


@pytest.mark.parametrize(
    ("command", "transitions", "result"),
    [
        pytest.param("resolve", FROM_IN_PROGRESS, ("Resolve", None), id="exact-name"),
        pytest.param("RESOLVE", FROM_IN_PROGRESS, ("Resolve", None), id="exact-name-any-case"),
        pytest.param("send-to-review", FROM_IN_PROGRESS, ("Send To Review", None), id="dash-as-space"),
        pytest.param("start-progress", FROM_TO_DO, ("Start Progress", None), id="start-progress"),
        pytest.param("done", FROM_IN_PROGRESS, ("Resolve", None), id="target-status"),
        pytest.param("in-review", FROM_IN_PROGRESS, ("Send To Review", None), id="target-status-with-dash"),
        pytest.param("start", FROM_TO_DO, ("Start Progress", None), id="prefix"),
        pytest.param("start-pro", FROM_TO_DO, ("Start Progress", None), id="prefix-with-dash"),
        pytest.param("res", FROM_IN_PROGRESS, ("Resolve", None), id="short-prefix"),
        pytest.param("done", [("Done", "Closed"), ("Finish", "Done")], ("Done", None), id="exact-name-beats-status"),
        pytest.param(
            "review",
            [("Review", "In Review"), ("Reviewed", "Review")],
            ("Review", None),
            id="exact-name-beats-status-and-prefix",
        ),
        pytest.param(
            "closed",
            [("Close", "Closed"), ("Closed Won't Fix", "Won't Fix")],
            ("Close", None),
            id="status-beats-prefix",
        ),
        pytest.param(
            "resolve",
            [("Resolve", "Done"), ("Resolve", "Done")],
            ("Resolve", None),
            id="a-name-listed-twice-counts-once",
        ),
        pytest.param(
            "fnish",
            [("Start Progress", "In Progress"), ("Resolve", "Done")],
            (None, "no transition matches #fnish; available: Start Progress, Resolve"),
            id="issue-example-no-match",
        ),
        pytest.param("close", [], (None, "no transition matches #close; available: none"), id="no-transitions"),
        pytest.param(
            "progress",
            FROM_TO_DO,
            (None, "no transition matches #progress; available: Start Progress"),
            id="not-a-prefix",
        ),
        pytest.param(
            "s",
            [("Start Progress", "In Progress"), ("Stop Progress", "To Do")],
            (None, "#s matches more than one transition: Start Progress, Stop Progress"),
            id="ambiguous-prefix",
        ),
        pytest.param(
            "S",
            FROM_IN_PROGRESS,
            (None, "#S matches more than one transition: Stop Progress, Send To Review"),
            id="ambiguous-prefix-as-written",
        ),
        pytest.param(
            "done",
            [("Resolve", "Done"), ("Close", "Done"), ("Done Later", "Backlog")],
            (None, "#done matches more than one transition: Resolve, Close"),
            id="ambiguous-status-stops-before-prefix",
        ),
        pytest.param(
            "start-progress",
            [("Start Progress", "In Progress"), ("start-progress", "Doing")],
            (None, "#start-progress matches more than one transition: Start Progress, start-progress"),
            id="ambiguous-name",
        ),
        pytest.param(
            "",
            FROM_TO_DO,
            (None, "no transition matches #; available: Start Progress"),
            id="empty-command-is-no-prefix",
        ),
    ],
)
def test_match_transition(
    command: str, transitions: list[tuple[str, str]], result: tuple[str | None, str | None]
) -> None:
    assert match_transition(command, transitions) == result


# --- the public surface and properties ---------------------------------------------------------------


def test_exported_names() -> None:
    assert sorted(smart_commits.__all__) == sorted(
        [
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
    )
    assert {kind.value for kind in CommandType} == {"comment", "time", "transition"}


# Mostly the characters the grammar looks at, some whole tokens, and any character now and then.
MESSAGE_TEXT = st.lists(
    st.one_of(
        st.sampled_from(list("#-,. \t\r\n0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZwdhmtimecomnrs")),
        st.sampled_from(["#time ", "#comment ", "#close", "AB-1", "KEY-12", "1.5h", "2h", "\r\n", "\u00a0"]),
        st.characters(),
    ),
    max_size=120,
).map("".join)


@settings(max_examples=600, deadline=None)
@given(MESSAGE_TEXT)
def test_parse_never_raises_and_json_serialises(message: str) -> None:
    groups = parse(message)
    json.dumps(to_json(groups))
    known = set(extract_keys(message))
    positions = [command.position for group in groups for command in group.commands]
    assert positions == list(range(len(positions)))
    for found in groups:
        assert found.keys and found.commands
        assert set(found.keys) <= known
        assert len(set(found.keys)) == len(found.keys)
        for command in found.commands:
            assert command.args == command.args.strip(" \t\v\f")  # ASCII white space, as for keys
            assert (command.seconds is not None or command.comment is not None) == (command.type is CommandType.TIME)


def test_a_line_that_ends_right_at_the_length_limit_is_kept() -> None:
    from devlink.domain.smart_commits import MAX_MESSAGE_LENGTH

    last = "AB-1 #close"
    filler = "x" * (MAX_MESSAGE_LENGTH - len(last) - 1) + "\n"
    message = filler + last + "\nCD-2 #close beyond the limit"
    assert len(filler + last) == MAX_MESSAGE_LENGTH
    assert [g.keys for g in parse(message)] == [("AB-1",)]
