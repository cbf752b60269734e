"""People who sign in: password hashes, the first admin, the throttle, sessions and API tokens, on both engines."""

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from devlink.errors import Conflict, InvalidInput, Unauthorized
from devlink.runtime import Runtime
from devlink.store.models import utcnow
from devlink.store.people import ApiToken, SignInThrottle, WebSession
from devlink.store.tracker import TrackerUser
from devlink.sync.people import (
    TooManyAttempts,
    add_person,
    change_password,
    create_token,
    ensure_first_admin,
    remove_person,
    revoke_token,
    session_principal,
    set_role,
    sign_in,
    token_principal,
)
from devlink.sync.principals import LOCAL_ADMIN
from devlink.trackers.builtin import create_user

PASSWORD = "correct horse battery"


def test_a_password_is_kept_only_as_an_argon2_hash(runtime: Runtime) -> None:
    add_person(runtime, "ada", password=PASSWORD)
    with runtime.sessions() as session:
        stored = session.scalars(select(TrackerUser.password_hash).where(TrackerUser.username == "ada")).one()
    assert stored is not None and stored.startswith("$argon2id$") and PASSWORD not in stored
    principal, token = sign_in(runtime, "ada", PASSWORD, "10.0.0.1")
    assert (principal.username, principal.role, principal.admin) == ("ada", "member", False)
    with runtime.sessions() as session:
        hashes = list(session.scalars(select(WebSession.token_hash)))
    assert token not in hashes and len(hashes) == 1  # the session token is stored hashed too
    assert session_principal(runtime, token) == principal
    with pytest.raises(Unauthorized):
        sign_in(runtime, "ada", PASSWORD + "x", "10.0.0.1")


def test_short_passwords_are_refused(runtime: Runtime) -> None:
    with pytest.raises(InvalidInput, match="at least 10"):
        add_person(runtime, "bo", password="short")
    with runtime.sessions() as session:
        assert session.scalars(select(TrackerUser).where(TrackerUser.username == "bo")).first() is None


def test_the_first_admin_is_made_once(runtime: Runtime) -> None:
    made = ensure_first_admin(runtime)
    assert made is not None and made[0] == "admin" and len(made[1]) >= 16
    assert ensure_first_admin(runtime) is None
    principal, _ = sign_in(runtime, "admin", made[1], "127.0.0.1")
    assert principal.admin


def test_a_member_named_admin_keeps_their_name_and_the_first_admin_gets_another(runtime: Runtime) -> None:
    add_person(runtime, "admin", password=PASSWORD)  # a member who happens to be called admin
    made = ensure_first_admin(runtime)
    assert made is not None and made[0].startswith("admin-")
    assert sign_in(runtime, made[0], made[1], "127.0.0.1")[0].admin
    assert not sign_in(runtime, "admin", PASSWORD, "127.0.0.1")[0].admin


def test_a_tracker_user_without_password_cannot_sign_in_until_one_is_set(runtime: Runtime) -> None:
    with runtime.sessions.begin() as session:
        create_user(session, "cy", "Cy", ["cy@example.com"])  # as devlink tracker user / an import makes them
    with pytest.raises(Unauthorized):
        sign_in(runtime, "cy", "", "127.0.0.1")
    change_password(runtime, LOCAL_ADMIN, "cy", PASSWORD)
    assert sign_in(runtime, "cy", PASSWORD, "127.0.0.1")[0].username == "cy"


def test_repeated_failures_slow_down_a_name_and_an_address(runtime: Runtime) -> None:
    add_person(runtime, "ada", password=PASSWORD)
    add_person(runtime, "bo", password=PASSWORD)
    for _ in range(5):
        with pytest.raises(Unauthorized):
            sign_in(runtime, "ada", "wrong password", "10.0.0.9")
    with pytest.raises(TooManyAttempts) as waited:  # even the right password waits: no oracle while blocked
        sign_in(runtime, "ada", PASSWORD, "10.0.0.1")
    assert waited.value.retry_after >= 1 and waited.value.status == 429
    with pytest.raises(TooManyAttempts):  # the address that failed waits for every name
        sign_in(runtime, "bo", PASSWORD, "10.0.0.9")
    assert sign_in(runtime, "bo", PASSWORD, "10.0.0.2")[0].username == "bo"  # others are not locked out
    with runtime.sessions.begin() as session:
        for row in session.scalars(select(SignInThrottle)):
            row.blocked_until = utcnow() - timedelta(seconds=1)
    assert sign_in(runtime, "ada", PASSWORD, "10.0.0.1")[0].username == "ada"  # and once the wait is over


def test_a_new_password_ends_other_sessions(runtime: Runtime) -> None:
    add_person(runtime, "ada", password=PASSWORD)
    here, here_token = sign_in(runtime, "ada", PASSWORD, "10.0.0.1")
    _, there_token = sign_in(runtime, "ada", PASSWORD, "10.0.0.2")
    with pytest.raises(Unauthorized, match="current password"):
        change_password(runtime, here, "ada", "a brand new password", current="not it")
    change_password(runtime, here, "ada", "a brand new password", current=PASSWORD)
    assert session_principal(runtime, here_token) is not None
    assert session_principal(runtime, there_token) is None


def test_tokens_act_for_their_owner_until_revoked_or_expired(runtime: Runtime) -> None:
    add_person(runtime, "ada", password=PASSWORD)
    made = create_token(runtime, "ada", "ci", read_only=True, expires_days=30)
    assert made.secret.startswith("dlk_") and made.view["hint"] == made.secret[:8] + "…"
    with runtime.sessions() as session:
        row = session.scalars(select(ApiToken)).one()
        assert row.token_hash != made.secret and made.secret not in row.token_hash
        assert row.last_used_at is None
    principal = token_principal(runtime, made.secret)
    assert (principal.username, principal.read_only) == ("ada", True)
    with runtime.sessions() as session:
        assert session.scalars(select(ApiToken.last_used_at)).one() is not None
    with pytest.raises(Conflict):
        create_token(runtime, "ada", "ci")
    with runtime.sessions.begin() as session:
        session.scalars(select(ApiToken)).one().expires_at = utcnow() - timedelta(seconds=1)
    with pytest.raises(Unauthorized) as expired:
        token_principal(runtime, made.secret)
    assert expired.value.reason == "token_expired"
    other = create_token(runtime, "ada", "other")
    revoke_token(runtime, principal, other.view["id"])
    with pytest.raises(Unauthorized) as revoked:
        token_principal(runtime, other.secret)
    assert revoked.value.reason == "token_revoked"
    with pytest.raises(Unauthorized) as unknown:
        token_principal(runtime, "dlk_" + "x" * 43)
    assert unknown.value.reason == "bad_token"


def test_a_member_cannot_revoke_someone_elses_token(runtime: Runtime) -> None:
    add_person(runtime, "ada", password=PASSWORD)
    add_person(runtime, "bo", password=PASSWORD)
    theirs = create_token(runtime, "ada", "ci")
    bo = token_principal(runtime, create_token(runtime, "bo", "mine").secret)
    with pytest.raises(Exception, match="no token"):
        revoke_token(runtime, bo, theirs.view["id"])
    assert token_principal(runtime, theirs.secret).username == "ada"


def test_the_last_admin_stays(runtime: Runtime) -> None:
    add_person(runtime, "root", role="admin", password=PASSWORD)
    with pytest.raises(Conflict, match="last admin"):
        set_role(runtime, "root", "member")
    with pytest.raises(Conflict, match="last admin"):
        remove_person(runtime, "root")
    add_person(runtime, "second", role="admin", password=PASSWORD)
    set_role(runtime, "root", "member")
    with pytest.raises(InvalidInput, match="unknown role"):
        set_role(runtime, "root", "owner")


def test_removing_a_person_ends_their_sign_in_but_keeps_the_tracker_user(runtime: Runtime) -> None:
    add_person(runtime, "ada", password=PASSWORD, emails=["ada@example.com"])
    _, session_token = sign_in(runtime, "ada", PASSWORD, "10.0.0.1")
    token = create_token(runtime, "ada", "ci").secret
    remove_person(runtime, "ada")
    assert session_principal(runtime, session_token) is None
    with pytest.raises(Unauthorized):
        token_principal(runtime, token)
    with pytest.raises(Unauthorized):
        sign_in(runtime, "ada", PASSWORD, "10.0.0.1")
    with runtime.sessions() as session:
        assert session.scalars(select(TrackerUser.username).where(TrackerUser.username == "ada")).one() == "ada"


def test_a_burst_of_parallel_guesses_is_counted_as_it_arrives(runtime: Runtime) -> None:
    """The attack review's race: 30 guesses at once all passed the check before any failure was written."""
    add_person(runtime, "ada", password=PASSWORD)
    barrier = threading.Barrier(30)
    outcomes: list[str] = []

    def guess(n: int) -> None:
        barrier.wait()
        try:
            sign_in(runtime, "ada", f"guess number {n}", f"10.1.0.{n}")
        except TooManyAttempts:
            outcomes.append("waited")
        except Unauthorized:
            outcomes.append("checked")

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(outcomes) == 30 and outcomes.count("checked") <= 5, outcomes


def test_an_unknown_name_costs_a_hash_like_a_wrong_password(runtime: Runtime) -> None:
    """No timing oracle: both run argon2 (a name that exists is not told apart from one that does not)."""
    add_person(runtime, "ada", password=PASSWORD)
    sign_in(runtime, "ada", PASSWORD, "10.2.0.1")  # warm up the hasher

    def slowest(name: str) -> float:
        times = []
        for n in range(3):
            started = time.perf_counter()
            with pytest.raises(Unauthorized):
                sign_in(runtime, name, "not the password", f"10.2.1.{n}{len(name)}")
            times.append(time.perf_counter() - started)
        return min(times)

    known, unknown = slowest("ada"), slowest("nobody-at-all")
    assert unknown > known / 3, (known, unknown)  # without the dummy hash an unknown name is 20x faster
