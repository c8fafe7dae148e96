"""A guardian's first login through the services: access codes, SMS codes, rate limits.

Every bad input must raise the right domain error and lose nothing already
stored; the HTTP mapping (status codes, Retry-After) is covered in
``tests/node/api/test_api_onboarding.py``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from pathlib import Path

import pytest

from node.errors import CarnetError, Conflict, Gone, Invalid, RateLimited, Unauthenticated
from node.services import directory, onboarding
from node.services.context import ServiceContext
from node.storage import directory as directory_store
from node.storage import onboarding as onboarding_store
from node.storage.db import Storage
from tests.factories import (
    School,
    client_account,
    invite,
    make_guardian,
    make_school,
    sms_code,
    texts_to,
)

PHONE = "+33639980001"
OTHER_PHONE = "+33639980002"
IP = "192.0.2.1"
OTHER_IP = "198.51.100.9"


def rate_events(storage: Storage, bucket: str) -> int:
    since = dt.datetime(2000, 1, 1)
    return storage.call(onboarding_store.count_rate_events, bucket, since)


def later(ctx: ServiceContext, **delta: float) -> ServiceContext:
    """The same node, its clock moved forward."""
    shift = dt.timedelta(**delta)
    return dataclasses.replace(ctx, clock=lambda: ctx.clock() + shift)


def attempt_row(storage: Storage, attempt_id: str) -> onboarding_store.LoginAttempt:
    row = storage.call(onboarding_store.select_attempt, attempt_id)
    assert row is not None
    return row


def start(
    storage: Storage, ctx: ServiceContext, code: str, phone: str = PHONE, ip: str = IP
) -> onboarding.AttemptView:
    return storage.call(onboarding.start, ctx, phone, code, ip, "en")


def verify(
    storage: Storage, ctx: ServiceContext, attempt_id: str, code: str, ip: str = IP
) -> onboarding.VerifiedAttempt:
    return storage.call(onboarding.verify_sms, ctx, attempt_id, code, ip)


@pytest.fixture
def school(storage: Storage, ctx: ServiceContext) -> School:
    return make_school(storage, ctx)


def wrong_code_for(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


# --- Access codes -----------------------------------------------------------------


def test_wrong_access_code_is_refused_sends_nothing_and_counts_an_ip_failure(
    storage: Storage, ctx: ServiceContext, school: School
) -> None:
    invite(storage, ctx, school.teacher, school.child_id)
    with pytest.raises(Unauthenticated) as caught:
        start(storage, ctx, "ABCD-EFGH-JKMN-PQRS-T")
    assert caught.value.status == 401
    assert caught.value.field == "code"
    assert texts_to(storage, PHONE) == []
    assert rate_events(storage, f"fail-ip:{IP}") == 1
    assert rate_events(storage, f"sms:{PHONE}") == 0


def test_expired_access_code_is_gone(storage: Storage, ctx: ServiceContext, school: School) -> None:
    slip = invite(storage, ctx, school.teacher, school.child_id)
    days = ctx.config.access_code_days
    with pytest.raises(Gone) as caught:
        start(storage, later(ctx, days=days, seconds=1), slip.code)
    assert caught.value.status == 410
    assert "expired" in caught.value.message
    assert texts_to(storage, PHONE) == []
    # Just before the deadline the same code still works.
    start(storage, later(ctx, days=days, seconds=-60), slip.code)


def test_access_code_is_dead_after_the_guardian_completed(
    storage: Storage, ctx: ServiceContext, school: School
) -> None:
    slip = invite(storage, ctx, school.teacher, school.child_id)
    make_guardian(storage, ctx, slip.code)
    sent = len(texts_to(storage, PHONE))
    with pytest.raises(Gone) as caught:
        start(storage, ctx, slip.code)
    assert "already used" in caught.value.message
    assert len(texts_to(storage, PHONE)) == sent


def test_access_code_only_works_with_the_number_it_was_issued_for(
    storage: Storage, ctx: ServiceContext, school: School
) -> None:
    first = invite(storage, ctx, school.teacher, school.child_id, phone=PHONE)
    invite(storage, ctx, school.teacher, school.child_id, phone=OTHER_PHONE, name="Sam Martin")
    with pytest.raises(Unauthenticated):
        start(storage, ctx, first.code, phone=OTHER_PHONE)
    assert texts_to(storage, OTHER_PHONE) == []
    assert texts_to(storage, PHONE) == []


def test_revoked_invitation_code_no_longer_works(
    storage: Storage, ctx: ServiceContext, school: School
) -> None:
    slip = invite(storage, ctx, school.teacher, school.child_id)
    storage.call(directory.remove_guardian, ctx, school.teacher, slip.invitation_id)
    with pytest.raises(CarnetError) as caught:
        start(storage, ctx, slip.code)
    assert caught.value.status in (401, 410)
    assert texts_to(storage, PHONE) == []


def test_revoking_an_invitation_kills_a_running_attempt(
    storage: Storage, ctx: ServiceContext, data_dir: Path, school: School
) -> None:
    slip = invite(storage, ctx, school.teacher, school.child_id)
    attempt = start(storage, ctx, slip.code)
    storage.call(directory.remove_guardian, ctx, school.teacher, slip.invitation_id)
    with pytest.raises(Gone):
        verify(storage, ctx, attempt.attempt_id, sms_code(storage, data_dir, PHONE))


def test_reissued_code_kills_the_old_one(
    storage: Storage, ctx: ServiceContext, school: School
) -> None:
    old = invite(storage, ctx, school.teacher, school.child_id)
    new = storage.call(directory.reissue_code, ctx, school.teacher, old.invitation_id)
    assert new.code != old.code
    with pytest.raises(Unauthenticated):
        start(storage, ctx, old.code)
    assert texts_to(storage, PHONE) == []
    assert start(storage, ctx, new.code).phone_masked.endswith("01")


def test_class_print_run_kills_earlier_codes_of_guardians_not_joined(
    storage: Storage, ctx: ServiceContext, school: School
) -> None:
    old = invite(storage, ctx, school.teacher, school.child_id)
    slips = storage.call(directory.reissue_codes_for_class, ctx, school.teacher, school.class_id)
    assert [s.invitation_id for s in slips] == [old.invitation_id]
    with pytest.raises(Unauthenticated):
        start(storage, ctx, old.code)
    start(storage, ctx, slips[0].code)


def test_access_code_is_read_forgivingly(
    storage: Storage, ctx: ServiceContext, school: School
) -> None:
    slip = invite(storage, ctx, school.teacher, school.child_id)
    typed = slip.code.replace("-", " ").lower()
    assert start(storage, ctx, typed).attempt_id


@pytest.mark.parametrize("code", ["", "   ", "x" * 81])
def test_malformed_access_code_is_invalid_and_not_counted(
    storage: Storage, ctx: ServiceContext, school: School, code: str
) -> None:
    with pytest.raises(Invalid):
        start(storage, ctx, code)
    assert rate_events(storage, f"fail-ip:{IP}") == 0


# --- Typed and generated codes ------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "printed"),
    [
        ("abcd2345", "ABCD-2345"),
        ("ABCD EFGH JK", "ABCD-EFGH-JK"),
        ("a" * 32, "-".join(["AAAA"] * 8)),
    ],
)
def test_teacher_typed_code_is_accepted_and_printed_in_groups(
    storage: Storage, ctx: ServiceContext, school: School, typed: str, printed: str
) -> None:
    slip = invite(storage, ctx, school.teacher, school.child_id, code=typed)
    assert slip.code == printed
    assert start(storage, ctx, typed).attempt_id


def test_typed_code_with_look_alikes_matches_when_read_aloud(
    storage: Storage, ctx: ServiceContext, school: School
) -> None:
    invite(storage, ctx, school.teacher, school.child_id, code="HELLO-WORLD")
    # O/0, I/1 and L/1 are folded: a parent typing what they hear still gets in.
    assert start(storage, ctx, "he110 w0r1d").attempt_id


@pytest.mark.parametrize("typed", ["ABC2345", "A" * 33, "ABCD-234!", "ÉCOLE-2026", "ABCD_2345"])
def test_bad_typed_code_is_refused_and_nothing_is_stored(
    storage: Storage, ctx: ServiceContext, school: School, typed: str
) -> None:
    with pytest.raises(Invalid) as caught:
        invite(storage, ctx, school.teacher, school.child_id, code=typed)
    assert caught.value.status == 400
    assert caught.value.field == "code"
    roster = storage.call(directory.class_roster, ctx, school.teacher, school.class_id)
    assert roster[0].guardians == []


def test_generated_codes_carry_at_least_80_bits(
    storage: Storage, ctx: ServiceContext, school: School
) -> None:
    from math import log2

    from node.secrets_util import CODE_ALPHABET

    assert len(set(CODE_ALPHABET)) == len(CODE_ALPHABET) == 30
    codes = set()
    for i in range(6):
        slip = invite(
            storage, ctx, school.teacher, school.child_id, phone=f"+3363998010{i}", name="P"
        )
        compact = slip.code.replace("-", "")
        assert len(compact) == 17
        assert set(compact) <= set(CODE_ALPHABET)
        assert re.fullmatch(r"[A-Z0-9]{4}(-[A-Z0-9]{4}){3}-[A-Z0-9]", slip.code)
        codes.add(compact)
    assert len(codes) == 6
    assert 17 * log2(len(CODE_ALPHABET)) >= 80


def test_access_codes_are_stored_only_as_hmac(
    storage: Storage, ctx: ServiceContext, school: School
) -> None:
    typed = invite(storage, ctx, school.teacher, school.child_id, code="SECRETCODE42")
    generated = invite(
        storage, ctx, school.teacher, school.child_id, phone=OTHER_PHONE, name="Sam Martin"
    )
    reissued = storage.call(directory.reissue_code, ctx, school.teacher, generated.invitation_id)
    needles = set()
    for slip in (typed, generated, reissued):
        needles |= {slip.code, slip.code.replace("-", ""), slip.code.replace("-", "").lower()}
    db = storage.db
    with db.connection_context():
        tables = db.get_tables()
        assert "guardian_invitation" in tables
        for table in tables:
            cursor = db.execute_sql(f'SELECT * FROM "{table}"')
            for row in cursor.fetchall():
                text = " ".join(str(value) for value in row)
                for needle in needles:
                    assert needle not in text, f"access code in plain text in {table}"


# --- SMS codes ----------------------------------------------------------------------


def test_wrong_sms_code_says_how_many_tries_are_left(
    storage: Storage, ctx: ServiceContext, data_dir: Path, school: School
) -> None:
    slip = invite(storage, ctx, school.teacher, school.child_id)
    attempt = start(storage, ctx, slip.code)
    right = sms_code(storage, data_dir, PHONE)
    with pytest.raises(Unauthenticated) as caught:
        verify(storage, ctx, attempt.attempt_id, wrong_code_for(right))
    assert caught.value.params == {"left": 4}
    assert caught.value.field == "sms_code"
    assert attempt_row(storage, attempt.attempt_id).sms_failures == 1
    assert rate_events(storage, f"fail-ip:{IP}") == 1
    assert verify(storage, ctx, attempt.attempt_id, right).login == PHONE


def test_five_wrong_sms_codes_kill_the_code_even_for_the_right_one(
    storage: Storage, ctx: ServiceContext, data_dir: Path, school: School
) -> None:
    slip = invite(storage, ctx, school.teacher, school.child_id)
    attempt = start(storage, ctx, slip.code)
    right = sms_code(storage, data_dir, PHONE)
    for left in (4, 3, 2, 1):
        with pytest.raises(Unauthenticated) as caught:
            verify(storage, ctx, attempt.attempt_id, wrong_code_for(right))
        assert caught.value.params["left"] == left
    with pytest.raises(Gone):
        verify(storage, ctx, attempt.attempt_id, wrong_code_for(right))
    with pytest.raises(Gone):
        verify(storage, ctx, attempt.attempt_id, right)
    assert attempt_row(storage, attempt.attempt_id).verified_at is None


def test_expired_sms_code_is_refused(
    storage: Storage, ctx: ServiceContext, data_dir: Path, school: School
) -> None:
    slip = invite(storage, ctx, school.teacher, school.child_id)
    attempt = start(storage, ctx, slip.code)
    right = sms_code(storage, data_dir, PHONE)
    model = onboarding_store.LoginAttempt
    storage.call(
        lambda: (
            model.update(sms_code_expires_at=ctx.now() - dt.timedelta(seconds=1))
            .where(model.public_id == attempt.attempt_id)
            .execute()
        )
    )
    with pytest.raises(Gone) as caught:
        verify(storage, ctx, attempt.attempt_id, right)
    assert "expired" in caught.value.message
    assert attempt_row(storage, attempt.attempt_id).verified_at is None


def test_sms_code_expires_after_the_configured_minutes(
    storage: Storage, ctx: ServiceContext, data_dir: Path, school: School
) -> None:
    slip = invite(storage, ctx, school.teacher, school.child_id)
    attempt = start(storage, ctx, slip.code)
    right = sms_code(storage, data_dir, PHONE)
    with pytest.raises(Gone):
        verify(
            storage,
            later(ctx, minutes=ctx.config.sms_code_minutes, seconds=1),
            attempt.attempt_id,
            right,
        )


def test_sms_code_cannot_be_reused_after_completion(
    storage: Storage, ctx: ServiceContext, data_dir: Path, school: School
) -> None:
    slip = invite(storage, ctx, school.teacher, school.child_id)
    attempt = start(storage, ctx, slip.code)
    right = sms_code(storage, data_dir, PHONE)
    verify(storage, ctx, attempt.attempt_id, right)
    storage.call(
        onboarding.complete_new, ctx, attempt.attempt_id, client_account(PHONE).credentials
    )
    with pytest.raises(Gone):
        verify(storage, ctx, attempt.attempt_id, right)


def test_sms_code_cannot_be_replayed_after_verification(
    storage: Storage, ctx: ServiceContext, data_dir: Path, school: School
) -> None:
    """Single use: once the phone is confirmed, the code (or any code) no longer verifies."""
    slip = invite(storage, ctx, school.teacher, school.child_id)
    attempt = start(storage, ctx, slip.code)
    right = sms_code(storage, data_dir, PHONE)
    verify(storage, ctx, attempt.attempt_id, right)
    assert attempt_row(storage, attempt.attempt_id).sms_code_hash is None
    with pytest.raises(CarnetError) as caught:
        verify(storage, ctx, attempt.attempt_id, right)
    assert caught.value.status in (409, 410)


def test_wrong_sms_code_is_not_accepted_after_verification(
    storage: Storage, ctx: ServiceContext, data_dir: Path, school: School
) -> None:
    slip = invite(storage, ctx, school.teacher, school.child_id)
    attempt = start(storage, ctx, slip.code)
    right = sms_code(storage, data_dir, PHONE)
    verify(storage, ctx, attempt.attempt_id, right)
    with pytest.raises(CarnetError) as caught:
        verify(storage, ctx, attempt.attempt_id, wrong_code_for(right))
    assert caught.value.status in (401, 409, 410)


def test_older_code_after_resend_is_refused(
    storage: Storage, ctx: ServiceContext, data_dir: Path, school: School
) -> None:
    slip = invite(storage, ctx, school.teacher, school.child_id)
    attempt = start(storage, ctx, slip.code)
    first = sms_code(storage, data_dir, PHONE)
    storage.call(onboarding.resend, ctx, attempt.attempt_id, IP, "en")
    second = sms_code(storage, data_dir, PHONE)
    if first == second:  # one chance in a million: nothing to tell apart
        return
    with pytest.raises(Unauthenticated):
        verify(storage, ctx, attempt.attempt_id, first)
    assert verify(storage, ctx, attempt.attempt_id, second).child_first_name == "Léa"


def test_code_of_another_attempt_is_refused(
    storage: Storage, ctx: ServiceContext, data_dir: Path, school: School
) -> None:
    slip = invite(storage, ctx, school.teacher, school.child_id)
    first = start(storage, ctx, slip.code)
    first_code = sms_code(storage, data_dir, PHONE)
    second = start(storage, ctx, slip.code)
    second_code = sms_code(storage, data_dir, PHONE)
    if first_code == second_code:
        return
    with pytest.raises(Unauthenticated):
        verify(storage, ctx, second.attempt_id, first_code)
    with pytest.raises(Unauthenticated):
        verify(storage, ctx, first.attempt_id, second_code)
    # The older attempt keeps its own code.
    assert verify(storage, ctx, first.attempt_id, first_code).login == PHONE


def test_full_width_digits_are_accepted(
    storage: Storage, ctx: ServiceContext, data_dir: Path, school: School
) -> None:
    slip = invite(storage, ctx, school.teacher, school.child_id)
    attempt = start(storage, ctx, slip.code)
    right = sms_code(storage, data_dir, PHONE)
    full_width = "".join(chr(ord("０") + int(d)) for d in right)
    assert onboarding.normalize_sms_code("１２３４５６") == "123456"
    assert verify(storage, ctx, attempt.attempt_id, full_width).login == PHONE


@pytest.mark.parametrize("code", ["12345", "1234567", "12a456", "", "١٢٣٤٥٦", 123456])
def test_malformed_sms_code_is_invalid_without_counting_a_failure(
    storage: Storage, ctx: ServiceContext, data_dir: Path, school: School, code: object
) -> None:
    slip = invite(storage, ctx, school.teacher, school.child_id)
    attempt = start(storage, ctx, slip.code)
    with pytest.raises(Invalid) as caught:
        storage.call(onboarding.verify_sms, ctx, attempt.attempt_id, code, IP)
    assert caught.value.field == "sms_code"
    assert attempt_row(storage, attempt.attempt_id).sms_failures == 0
    assert rate_events(storage, f"fail-ip:{IP}") == 0


def test_unknown_attempt_is_not_found(storage: Storage, ctx: ServiceContext) -> None:
    for attempt_id in ("nope", "", "x" * 65, None):
        with pytest.raises(CarnetError) as caught:
            verify(storage, ctx, attempt_id, "123456")  # type: ignore[arg-type]
        assert caught.value.status == 404


def test_per_ip_failure_limit_blocks_further_tries(
    storage: Storage, ctx: ServiceContext, school: School
) -> None:
    slip = invite(storage, ctx, school.teacher, school.child_id)
    limit = ctx.config.failures_per_ip_per_15min
    for _ in range(limit):
        with pytest.raises(Unauthenticated):
            start(storage, ctx, "WRONG-CODE-0000")
    with pytest.raises(RateLimited) as caught:
        start(storage, ctx, slip.code)
    assert caught.value.status == 429
    assert caught.value.retry_after > 0
    assert texts_to(storage, PHONE) == []
    # The window slides: fifteen minutes later the address may try again.
    assert start(storage, later(ctx, minutes=15, seconds=1), slip.code).attempt_id


def test_stranger_cannot_text_or_lock_out_a_parent(
    storage: Storage, ctx: ServiceContext, data_dir: Path, school: School
) -> None:
    slip = invite(storage, ctx, school.teacher, school.child_id)
    for _ in range(ctx.config.failures_per_ip_per_15min + 5):
        with pytest.raises((Unauthenticated, RateLimited)):
            start(storage, ctx, "GUESS-GUESS-GUESS", ip=OTHER_IP)
    assert texts_to(storage, PHONE) == []
    assert rate_events(storage, f"sms:{PHONE}") == 0
    actor = make_guardian(storage, ctx, slip.code)  # from 192.0.2.1
    assert actor.role == "guardian"
    children = storage.call(directory.my_children, ctx, actor)
    assert [c.first_name for c in children] == ["Léa"]


def test_at_most_three_texts_per_number_per_hour(
    storage: Storage, ctx: ServiceContext, school: School
) -> None:
    slip = invite(storage, ctx, school.teacher, school.child_id)
    first = start(storage, ctx, slip.code)
    storage.call(onboarding.resend, ctx, first.attempt_id, IP, "en")
    start(storage, ctx, slip.code)
    assert len(texts_to(storage, PHONE)) == 3
    with pytest.raises(RateLimited):
        storage.call(onboarding.resend, ctx, first.attempt_id, IP, "en")
    with pytest.raises(RateLimited):
        start(storage, ctx, slip.code)
    assert len(texts_to(storage, PHONE)) == 3
    # A refused start leaves no half-made attempt behind.
    attempts = storage.call(lambda: onboarding_store.LoginAttempt.select().count())
    assert attempts == 2
    # An hour later the number may receive texts again.
    assert start(storage, later(ctx, hours=1, seconds=1), slip.code).attempt_id


def test_resend_after_verification_is_a_conflict(
    storage: Storage, ctx: ServiceContext, data_dir: Path, school: School
) -> None:
    slip = invite(storage, ctx, school.teacher, school.child_id)
    attempt = start(storage, ctx, slip.code)
    verify(storage, ctx, attempt.attempt_id, sms_code(storage, data_dir, PHONE))
    with pytest.raises(Conflict):
        storage.call(onboarding.resend, ctx, attempt.attempt_id, IP, "en")
    assert len(texts_to(storage, PHONE)) == 1


def test_complete_before_verification_is_refused(
    storage: Storage, ctx: ServiceContext, school: School
) -> None:
    slip = invite(storage, ctx, school.teacher, school.child_id)
    attempt = start(storage, ctx, slip.code)
    with pytest.raises(Conflict):
        storage.call(
            onboarding.complete_new, ctx, attempt.attempt_id, client_account(PHONE).credentials
        )
    invitation = storage.call(directory_store.select_invitation, slip.invitation_id)
    assert invitation is not None and invitation.used_at is None


def test_attempt_expires_after_thirty_minutes(
    storage: Storage, ctx: ServiceContext, data_dir: Path, school: School
) -> None:
    slip = invite(storage, ctx, school.teacher, school.child_id)
    attempt = start(storage, ctx, slip.code)
    with pytest.raises(Gone):
        verify(
            storage, later(ctx, minutes=31), attempt.attempt_id, sms_code(storage, data_dir, PHONE)
        )
