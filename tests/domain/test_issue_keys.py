"""The issue-key extractor against the rules of issue 2 ("Issue-key rules").

Besides the examples of the issue, ``extract_keys`` is compared with an
independent reference (a lookaround regex written here, not the candidate-then-
boundary scan of the module) on generated text and on the real Kafka history.
"""

import gzip
import json
import re
import string
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devlink.domain.issue_keys import (
    MAX_KEY_LENGTH,
    MAX_PROJECT_KEY_LENGTH,
    SEPARATORS,
    extract_keys,
    is_key,
    project_key,
    project_key_error,
)
from devlink.sync.linking import known_keys

ASCII_WHITESPACE = " \t\n\r\v\f"

# The reference: a key is preceded by the start of the text or a separator and
# followed by the end of the text or a separator; separators are exactly ASCII
# white space and ASCII punctuation.
_SEP_CLASS = re.escape(ASCII_WHITESPACE + string.punctuation)
_REFERENCE = re.compile(rf"(?<![^{_SEP_CLASS}])[A-Z][A-Z0-9]+-[0-9]+(?![^{_SEP_CLASS}])")


def reference_keys(text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(_REFERENCE.findall(text)))


# Apache Kafka's trunk history (https://github.com/apache/kafka, HEAD 1eb7644349cb, 2024-10-25),
# exported as JSON lines into the shared corpus beside the repository; see SOURCE.txt there.
KAFKA_HISTORY = Path(__file__).resolve().parents[3] / "shared/corpus/histories/kafka.commits.jsonl.gz"
KAFKA_COMMITS = 14_054
KAFKA_COMMITS_WITH_KEYS = 8_897  # computed with the reference; a change means the rules changed
KAFKA_DISTINCT_KEYS = 8_078


def _name(ch: str) -> str:
    return {" ": "space", "\t": "tab", "\n": "newline", "\r": "cr", "\v": "vtab", "\f": "formfeed"}.get(
        ch, f"U+{ord(ch):04X}"
    )


# -- the examples of the issue ------------------------------------------------


@pytest.mark.parametrize("key", ["ABC-123", "A1BC-9", "ABC789-1", "AB-0", "KAFKA-12345", "A0-1"])
def test_a_key_alone_is_found(key: str) -> None:
    assert extract_keys(key) == (key,)
    assert is_key(key) is True


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("M-123", id="one-letter-project"),
        pytest.param("1ABC-12", id="project-starts-with-digit"),
        pytest.param("ABC-A", id="number-not-digits"),
        pytest.param("abc-123", id="lower-case"),
        pytest.param("Abc-123", id="mixed-case"),
        pytest.param("ABC-", id="no-number"),
        pytest.param("ABC123", id="no-dash"),
        pytest.param("ABC--1", id="double-dash"),
        pytest.param("ÀBC-1", id="non-ascii-letter"),
        pytest.param("ABC-١٢", id="non-ascii-digits"),
        pytest.param("", id="empty"),
    ],
)
def test_not_a_key(text: str) -> None:
    assert extract_keys(text) == ()
    assert is_key(text) is False


@pytest.mark.parametrize(
    ("text", "keys"),
    [
        pytest.param("feature/ABC-12-do-thing", ("ABC-12",), id="branch-name"),
        pytest.param("ABC-1_DEF-2", ("ABC-1", "DEF-2"), id="underscore-between"),
        pytest.param("key0MES-123", (), id="glued-before"),
        pytest.param("MES-123key", (), id="glued-after"),
        pytest.param("ABC-123ABC-456", (), id="two-keys-glued"),
        pytest.param("ABC-12é", (), id="accented-letter-after"),
        pytest.param("éABC-12", (), id="accented-letter-before"),
        pytest.param("1ABC-12", (), id="digit-before"),
        pytest.param("ABC-12a", (), id="letter-after"),
        pytest.param("#ABC-12", ("ABC-12",), id="hash"),
        pytest.param("ABC-12.", ("ABC-12",), id="full-stop"),
        pytest.param("ABC-12: fix", ("ABC-12",), id="colon"),
        pytest.param("(ABC-12)", ("ABC-12",), id="parentheses"),
        pytest.param("[ABC-12]", ("ABC-12",), id="brackets"),
        pytest.param("'ABC-12'", ("ABC-12",), id="single-quotes"),
        pytest.param('"ABC-12"', ("ABC-12",), id="double-quotes"),
        pytest.param("ABC-12-DEF-3", ("ABC-12", "DEF-3"), id="dash-joined"),
        pytest.param("ABC-1 fixes DEF-2, GHI-3", ("ABC-1", "DEF-2", "GHI-3"), id="sentence"),
        pytest.param("feature/ABC-12-do-thing fixes ABC-12, DEF-3", ("ABC-12", "DEF-3"), id="docstring"),
        pytest.param("KAFKA-16845 Migrate test rig (#17089)", ("KAFKA-16845",), id="kafka-subject"),
    ],
)
def test_examples(text: str, keys: tuple[str, ...]) -> None:
    assert extract_keys(text) == keys


@pytest.mark.parametrize("ws", list(ASCII_WHITESPACE), ids=[_name(c) for c in ASCII_WHITESPACE])
def test_each_ascii_whitespace_separates(ws: str) -> None:
    assert extract_keys(f"fix{ws}ABC-1{ws}and{ws}DEF-2") == ("ABC-1", "DEF-2")


@pytest.mark.parametrize("p", list(string.punctuation), ids=[f"U+{ord(c):04X}" for c in string.punctuation])
def test_each_ascii_punctuation_separates_before_and_after(p: str) -> None:
    assert extract_keys(f"x{p}ABC-1") == ("ABC-1",)
    assert extract_keys(f"ABC-1{p}x") == ("ABC-1",)
    assert extract_keys(f"x{p}ABC-1{p}y") == ("ABC-1",)


NON_SEPARATORS = [
    "\u00a0",  # non-breaking space
    "\u2014",  # em dash
    "\u2013",  # en dash
    "\u2003",  # em space
    "\u3000",  # ideographic space
    "\u0085",  # next line: str.isspace() says True, but it is not ASCII
    "\x1c",  # file separator: str.isspace() says True, but it is not ASCII white space
    "\x1f",  # unit separator, likewise
    "\x00",
    "\x7f",
    "é",
    "\uff0d",  # fullwidth hyphen-minus
]


@pytest.mark.parametrize("ch", NON_SEPARATORS, ids=[_name(c) for c in NON_SEPARATORS])
def test_other_characters_do_not_separate(ch: str) -> None:
    assert extract_keys(f"x{ch}ABC-1") == ()
    assert extract_keys(f"ABC-1{ch}x") == ()
    assert extract_keys(f"ABC-1{ch}DEF-2") == ()
    assert extract_keys(f"{ch}ABC-1{ch}") == ()


def test_separators_are_exactly_ascii_whitespace_and_punctuation() -> None:
    assert frozenset(ASCII_WHITESPACE + string.punctuation) == SEPARATORS


def test_duplicates_collapse_in_order_of_first_appearance() -> None:
    assert extract_keys("DEF-2 ABC-1 DEF-2, ABC-1; ABC-1\nDEF-2") == ("DEF-2", "ABC-1")


def test_same_number_different_projects_are_different_keys() -> None:
    assert extract_keys("ABC-1 ABD-1 ABC-01") == ("ABC-1", "ABD-1", "ABC-01")


def test_the_whole_multi_line_message_is_searched() -> None:
    message = (
        "Refactor the consumer loop\n"
        "\n"
        "The old loop dropped records (see ABC-7).\n"
        "\r\n"
        "Reviewers: someone <a@example.com>\n"
        "Closes DEF-8\n"
        "Also-fixes:\tGHI-9"
    )
    assert extract_keys(message) == ("ABC-7", "DEF-8", "GHI-9")


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("ABC-1 ", id="trailing-space"),
        pytest.param(" ABC-1", id="leading-space"),
        pytest.param("ABC-1\n", id="trailing-newline"),
        pytest.param("ABC-1 DEF-2", id="two-keys"),
        pytest.param("xABC-1", id="prefix"),
    ],
)
def test_is_key_is_exactly_one_key(text: str) -> None:
    assert is_key(text) is False


@pytest.mark.parametrize(
    ("key", "project"),
    [("KAFKA-12", "KAFKA"), ("A1BC-9", "A1BC"), ("ABC789-1", "ABC789"), ("AB-0", "AB")],
)
def test_project_key(key: str, project: str) -> None:
    assert project_key(key) == project


# -- project keys -------------------------------------------------------------


@pytest.mark.parametrize("key", ["AB", "A1", "DEMO", "KAFKA", "ABCDEFGHIJ", "A123456789"])
def test_project_keys_of_two_to_ten_characters(key: str) -> None:
    assert project_key_error(key) is None


@pytest.mark.parametrize(
    ("key", "error"),
    [
        pytest.param("ABCDEFGHIJK", "invalid project key 'ABCDEFGHIJK': at most 10 characters (it has 11)",
                     id="eleven"),
        pytest.param("A" * 5000, "invalid project key 'AAAAAAAAAAAAAAAAAAAA'… (5000 characters): at most 10 "
                     "characters (it has 5000)", id="quotes-at-most-20-characters"),
        pytest.param("A", "invalid project key 'A': an upper-case letter, then one or more upper-case letters or "
                     "digits", id="one-character"),
        pytest.param("demo", "invalid project key 'demo': an upper-case letter, then one or more upper-case "
                     "letters or digits", id="lower-case"),
        pytest.param("", "invalid project key '': an upper-case letter, then one or more upper-case letters or "
                     "digits", id="empty"),
        pytest.param("AB-1", "invalid project key 'AB-1': an upper-case letter, then one or more upper-case "
                     "letters or digits", id="a-whole-key"),
    ],
)
def test_project_key_errors_name_the_rule(key: str, error: str) -> None:
    assert project_key_error(key) == error


@given(st.from_regex(rf"[A-Z][A-Z0-9]{{1,{MAX_PROJECT_KEY_LENGTH - 1}}}", fullmatch=True),
       st.integers(1, MAX_KEY_LENGTH - 1 - MAX_PROJECT_KEY_LENGTH))
def test_every_key_of_an_accepted_project_is_linked(project: str, digits: int) -> None:
    # the bound is chosen so KEY-<number> fits MAX_KEY_LENGTH for numbers of up to 89 digits
    assert project_key_error(project) is None
    key = f"{project}-{'9' * digits}"
    assert len(key) <= MAX_KEY_LENGTH
    assert extract_keys(f"fix {key}: done") == (key,)
    assert known_keys((key,), frozenset({project})) == (key,)


# -- the property: same answer as the reference -------------------------------

ALPHABET = (
    "ABCKZ"  # upper case
    "abz"
    "0159"
    "-_/ \n\t\v\f\r#.:()[]'\"!~@"
    "é\u00a0\u2014\u2013\u0085\x1c"
)
# Pieces that make keys, near-keys and boundaries common in generated text.
TOKENS = [
    "ABC-12", "A1-1", "M-1", "AB", "C", "K", "-", "1", "42", "a", "é", " ", "\n", "_", "/", "#",
    "\u00a0", "\u2014", "\v", "\f", "key", "ABC-123ABC-456",
]

texts = st.one_of(
    st.text(alphabet=ALPHABET, max_size=60),
    st.lists(st.sampled_from(TOKENS), max_size=25).map("".join),
    st.lists(st.one_of(st.sampled_from(TOKENS), st.text(alphabet=ALPHABET, max_size=3)), max_size=20).map(
        "".join
    ),
)


@settings(max_examples=600, deadline=None)
@given(texts)
def test_extract_keys_matches_the_reference(text: str) -> None:
    assert extract_keys(text) == reference_keys(text)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["ABC-1", "DEF-22", "GH7-3"]), min_size=1, max_size=8), st.sampled_from(" ,;\n/"))
def test_keys_joined_by_separators_all_come_back_deduplicated(keys: list[str], sep: str) -> None:
    assert extract_keys(sep.join(keys)) == tuple(dict.fromkeys(keys))


def test_reference_agrees_with_the_issue_examples() -> None:
    # The reference itself is checked against the issue's examples, so the property test means something.
    assert reference_keys("feature/ABC-12-do-thing ABC-1_DEF-2 key0MES-123 MES-123key ABC-123ABC-456 ABC-12é") == (
        "ABC-12",
        "ABC-1",
        "DEF-2",
    )


# -- the real corpus -----------------------------------------------------------


def test_kafka_history_gives_the_same_keys_as_the_reference() -> None:
    assert KAFKA_HISTORY.is_file(), f"corpus missing: {KAFKA_HISTORY}"
    messages = 0
    keyed = 0
    distinct: set[str] = set()
    mismatches: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = []
    with gzip.open(KAFKA_HISTORY, "rt", encoding="utf-8") as lines:
        for line in lines:
            commit = json.loads(line)
            message = commit["message"]
            expected = reference_keys(message)
            actual = extract_keys(message)
            messages += 1
            keyed += bool(expected)
            distinct.update(expected)
            if actual != expected:
                mismatches.append((commit["sha"], expected, actual))
    assert mismatches == []
    assert messages == KAFKA_COMMITS
    assert (keyed, len(distinct)) == (KAFKA_COMMITS_WITH_KEYS, KAFKA_DISTINCT_KEYS)
