"""``parse_commit`` on hand-built raw commit objects (the bytes ``git cat-file commit`` prints)."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from devlink.domain.times import tz_of
from devlink.hosts.git import GitCommit, parse_commit

SHA = "1111111111111111111111111111111111111111"
TREE = b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n"
P1 = "2222222222222222222222222222222222222222"
P2 = "3333333333333333333333333333333333333333"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
T0 = datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)  # 1700000000
T1 = datetime(2023, 11, 14, 23, 13, 20, tzinfo=UTC)  # 1700003600

AUTHOR = b"author Ada Lovelace <ada@example.com> 1700000000 +0000\n"
COMMITTER = b"committer Grace Hopper <grace@example.com> 1700003600 +0000\n"


def raw(*headers: bytes, message: bytes) -> bytes:
    return b"".join(headers) + b"\n" + message


def expected(**fields: object) -> GitCommit:
    base: dict[str, object] = {
        "sha": SHA,
        "parents": (P1,),
        "author_name": "Ada Lovelace",
        "author_email": "ada@example.com",
        "authored_at": T0,
        "author_tz": 0,
        "committer_name": "Grace Hopper",
        "committer_email": "grace@example.com",
        "committed_at": T1,
        "message": "ABC-1 subject",
    }
    base.update(fields)
    return GitCommit(**base)  # type: ignore[arg-type]


def test_normal_commit() -> None:
    body = raw(
        TREE,
        f"parent {P1}\n".encode(),
        b"author Ada Lovelace <ada@example.com> 1700000000 +0530\n",
        b"committer Grace Hopper <grace@example.com> 1700003600 -0800\n",
        message=b"ABC-1 subject\n\nLonger body that names DEF-2.\n",
    )
    assert parse_commit(SHA, body) == expected(author_tz=330, message="ABC-1 subject\n\nLonger body that names DEF-2.")


def test_root_commit_has_no_parents() -> None:
    assert parse_commit(SHA, raw(TREE, AUTHOR, COMMITTER, message=b"ABC-1 subject\n")) == expected(parents=())


def test_merge_commit_keeps_both_parents_in_order() -> None:
    body = raw(
        TREE, f"parent {P1}\n".encode(), f"parent {P2}\n".encode(), AUTHOR, COMMITTER,
        message=b"Merge branch 'feature/ABC-1'\n",
    )
    assert parse_commit(SHA, body) == expected(parents=(P1, P2), message="Merge branch 'feature/ABC-1'")


def test_gpgsig_multi_line_header_is_skipped() -> None:
    gpgsig = (
        b"gpgsig -----BEGIN PGP SIGNATURE-----\n"
        b" \n"
        b" iQEzBAABCAAdFiEEparent0000000000000000000000000000000000000000\n"
        b" parent 4444444444444444444444444444444444444444\n"
        b" author Mallory <m@example.com> 1 +0000\n"
        b" encoding ISO-8859-1\n"
        b" =AbCd\n"
        b" -----END PGP SIGNATURE-----\n"
    )
    body = raw(TREE, f"parent {P1}\n".encode(), AUTHOR, COMMITTER, gpgsig, message=b"ABC-1 subject\n")
    assert parse_commit(SHA, body) == expected()


def test_mergetag_header_is_skipped() -> None:
    mergetag = (
        b"mergetag object 5555555555555555555555555555555555555555\n"
        b" type commit\n"
        b" tag v1.0\n"
        b" tagger Linus <l@example.com> 1 +0000\n"
        b" \n"
        b" Release 1.0\n"
    )
    body = raw(
        TREE, f"parent {P1}\n".encode(), f"parent {P2}\n".encode(), AUTHOR, COMMITTER, mergetag,
        message=b"Merge tag 'v1.0'\n",
    )
    assert parse_commit(SHA, body) == expected(parents=(P1, P2), message="Merge tag 'v1.0'")


def test_invalid_utf8_in_message_and_author_name_is_replaced() -> None:
    body = raw(
        TREE,
        f"parent {P1}\n".encode(),
        b"author Ada \xff\xfeLovelace <ada@example.com> 1700000000 +0000\n",
        COMMITTER,
        message=b"ABC-1 caf\xe9 \xc3\x28 end\n",
    )
    commit = parse_commit(SHA, body)
    assert commit == expected(author_name="Ada \ufffd\ufffdLovelace", message="ABC-1 caf\ufffd \ufffd( end")
    commit.message.encode("utf-8")  # valid text: encodes without error
    commit.author_name.encode("utf-8")


def test_nul_bytes_in_message_are_not_kept() -> None:
    body = raw(TREE, f"parent {P1}\n".encode(), AUTHOR, COMMITTER, message=b"ABC-1 a\x00b\x00\x00c\n")
    commit = parse_commit(SHA, body)
    assert "\x00" not in commit.message
    assert commit == expected(message="ABC-1 a\ufffdb\ufffd\ufffdc")


def test_nul_byte_in_author_name_is_not_kept() -> None:
    body = raw(
        TREE, f"parent {P1}\n".encode(), b"author Ada\x00 <ada@example.com> 1700000000 +0000\n", COMMITTER,
        message=b"ABC-1 subject\n",
    )
    assert parse_commit(SHA, body) == expected(author_name="Ada\ufffd")


@pytest.mark.parametrize("name", ["ISO-8859-1", "iso-8859-1", "latin1"])
def test_encoding_header_decodes_latin1(name: str) -> None:
    body = raw(
        TREE,
        f"parent {P1}\n".encode(),
        b"author Jos\xe9 Mar\xeda <jose@example.com> 1700000000 +0000\n",
        COMMITTER,
        b"encoding " + name.encode() + b"\n",
        message=b"ABC-1 caf\xe9 na\xefve \xa9\n",
    )
    assert parse_commit(SHA, body) == expected(
        author_name="José María", author_email="jose@example.com", message="ABC-1 café naïve ©"
    )


@pytest.mark.parametrize("name", ["UTF-8", "utf8", "UTF8"])
def test_encoding_header_utf8_spellings(name: str) -> None:
    body = raw(
        TREE, f"parent {P1}\n".encode(), AUTHOR, COMMITTER, b"encoding " + name.encode() + b"\n",
        message="ABC-1 café\n".encode(),
    )
    assert parse_commit(SHA, body) == expected(message="ABC-1 café")


def test_unknown_encoding_falls_back_to_utf8() -> None:
    body = raw(
        TREE, f"parent {P1}\n".encode(), AUTHOR, COMMITTER, b"encoding x-no-such-charset\n",
        message=b"ABC-1 caf\xc3\xa9 \xff\n",
    )
    assert parse_commit(SHA, body) == expected(message="ABC-1 café \ufffd")


@pytest.mark.parametrize(
    ("author_line", "names"),
    [
        pytest.param(
            b"author Ada Lovelace 1700000000 +0000\n", {"Ada Lovelace", "Ada Lovelace 1700000000 +0000"}, id="no-email"
        ),
        pytest.param(
            b"author Ada Lovelace ada@example.com> 1700000000 +0000\n",
            {"Ada Lovelace", "Ada Lovelace ada@example.com> 1700000000 +0000"},
            id="no-opening-bracket",
        ),
        pytest.param(b"author\n", {""}, id="empty"),
    ],
)
def test_malformed_author_does_not_raise(author_line: bytes, names: set[str]) -> None:
    body = raw(TREE, f"parent {P1}\n".encode(), author_line, COMMITTER, message=b"ABC-1 subject\n")
    commit = parse_commit(SHA, body)
    # The name is whatever could be kept; the rest of the author is empty and everything else is intact.
    assert commit.author_name in names
    assert commit == expected(author_name=commit.author_name, author_email="", authored_at=EPOCH)


@pytest.mark.parametrize(
    ("author_line", "name", "email", "at", "tz"),
    [
        pytest.param(b"author Ada <ada@example.com>\n", "Ada", "ada@example.com", EPOCH, 0, id="no-date"),
        pytest.param(b"author Ada <ada@example.com> soon +0000\n", "Ada", "ada@example.com", EPOCH, 0, id="bad-date"),
        pytest.param(b"author Ada <ada@example.com> 1700000000\n", "Ada", "ada@example.com", T0, 0, id="no-offset"),
        pytest.param(
            b"author Ada <ada@example.com> 99999999999999999999 +0000\n", "Ada", "ada@example.com", EPOCH, 0,
            id="date-overflow",
        ),
        pytest.param(b"author <> 1700000000 +0000\n", "", "", T0, 0, id="empty-name-and-email"),
    ],
)
def test_odd_author_dates_do_not_raise(author_line: bytes, name: str, email: str, at: datetime, tz: int) -> None:
    body = raw(TREE, f"parent {P1}\n".encode(), author_line, COMMITTER, message=b"ABC-1 subject\n")
    assert parse_commit(SHA, body) == expected(author_name=name, author_email=email, authored_at=at, author_tz=tz)


def test_missing_author_and_committer_do_not_raise() -> None:
    body = raw(TREE, message=b"ABC-1 subject\n")
    assert parse_commit(SHA, body) == GitCommit(
        sha=SHA, parents=(), author_name="", author_email="", authored_at=EPOCH, author_tz=0,
        committer_name="", committer_email="", committed_at=EPOCH, message="ABC-1 subject",
    )


@pytest.mark.parametrize(
    ("offset", "minutes"),
    [
        pytest.param("+0000", 0, id="utc"),
        pytest.param("+0530", 330, id="india"),
        pytest.param("-0800", -480, id="pacific"),
        pytest.param("-0130", -90, id="minus-half"),
        pytest.param("+1400", 840, id="kiribati"),
        pytest.param("-0000", 0, id="minus-zero"),
    ],
)
def test_timezone_offset(offset: str, minutes: int) -> None:
    body = raw(
        TREE, f"parent {P1}\n".encode(),
        f"author Ada Lovelace <ada@example.com> 1700000000 {offset}\n".encode(),
        f"committer Grace Hopper <grace@example.com> 1700003600 {offset}\n".encode(),
        message=b"ABC-1 subject\n",
    )
    commit = parse_commit(SHA, body)
    # The stamp is seconds since the epoch whatever the offset: the instant is the same in every zone.
    assert commit == expected(author_tz=minutes)
    assert commit.authored_at.utcoffset() == timedelta(0)
    assert commit.authored_at.astimezone(tz_of(minutes)).utcoffset() == timedelta(minutes=minutes)


def test_tz_of() -> None:
    assert tz_of(330) == timezone(timedelta(hours=5, minutes=30))
    assert tz_of(-480) == timezone(timedelta(hours=-8))


@pytest.mark.parametrize(
    ("message", "text"),
    [
        pytest.param(b"", "", id="empty"),
        pytest.param(b"\n", "", id="newline-only"),
        pytest.param(b"ABC-1\n\n\n", "ABC-1", id="trailing-newlines"),
        pytest.param(b"ABC-1\r\n\r\nbody\r\n", "ABC-1\r\n\r\nbody\r", id="crlf-kept"),
        pytest.param(
            b"subject\n\nbody\n\nReviewers: A <a@example.com>\n",
            "subject\n\nbody\n\nReviewers: A <a@example.com>",
            id="blank-lines-inside-kept",
        ),
    ],
)
def test_message_text(message: bytes, text: str) -> None:
    body = raw(TREE, f"parent {P1}\n".encode(), AUTHOR, COMMITTER, message=message)
    assert parse_commit(SHA, body) == expected(message=text)


def test_commit_without_message_separator() -> None:
    body = TREE + f"parent {P1}\n".encode() + AUTHOR + COMMITTER.rstrip(b"\n")
    assert parse_commit(SHA, body) == expected(message="")
