"""Defects found in review, each pinned by a test that fails without its fix."""

from __future__ import annotations

import asyncio

import pytest

from node.errors import CarnetError, Invalid, NotFound, PermissionDenied
from node.phone import normalize_phone
from node.refclient import new_account
from node.services import accounts, directory, onboarding, sms_outbox
from node.services.context import ServiceContext
from node.storage.db import Storage
from tests.factories import invite, make_school, sms_code, texts_to

PHONE = "+33639980001"


def test_a_disabled_account_cannot_be_revived_by_an_open_setup_link(
    storage: Storage, ctx: ServiceContext
) -> None:
    school = make_school(storage, ctx)
    # An active teacher with a reset link, and a pending one with a first link.
    reset = storage.call(accounts.reissue_setup_link, ctx, school.admin, school.teacher.account_id)
    view, first = storage.call(
        accounts.create_staff, ctx, school.admin, "teacher", "New", "new@school.test"
    )
    storage.call(accounts.disable_account, ctx, school.admin, school.teacher.account_id)
    storage.call(accounts.disable_account, ctx, school.admin, view.id)
    for token, login in ((reset, "dubois@school.test"), (first, "new@school.test")):
        with pytest.raises(NotFound):
            storage.call(
                accounts.complete_setup, ctx, token, new_account(login, "x" * 20).credentials
            )
    statuses = {
        s.display_name: s.status for s in storage.call(accounts.list_staff, ctx, school.admin)
    }
    assert statuses["M. Dubois"] == statuses["New"] == "disabled"


def test_the_last_active_admin_cannot_be_disabled_even_by_the_operator(
    storage: Storage, ctx: ServiceContext
) -> None:
    school = make_school(storage, ctx)
    _, token = storage.call(
        accounts.create_staff, ctx, school.admin, "admin", "Pending", "p@school.test"
    )
    with pytest.raises(PermissionDenied):
        storage.call(accounts.disable_account, ctx, None, school.admin.account_id)


@pytest.mark.parametrize("year", ["2026-2027\n", "٢٠٢٦-٢٠٢٧", " 2026-2027"])
def test_school_year_is_plain_ascii(storage: Storage, ctx: ServiceContext, year: str) -> None:
    school = make_school(storage, ctx)
    with pytest.raises(Invalid):
        storage.call(directory.create_class, ctx, school.teacher, "CE2", year)


def test_a_typed_code_with_a_newline_is_refused(storage: Storage, ctx: ServiceContext) -> None:
    school = make_school(storage, ctx)
    with pytest.raises(Invalid):
        invite(storage, ctx, school.teacher, school.child_id, code="ABCDEFGH\n")


def test_bracketed_trunk_zero_is_dropped() -> None:
    assert normalize_phone("+33 (0)6 39 98 00 01") == PHONE


def test_a_delivery_report_erases_the_body_of_a_queued_text(
    storage: Storage, ctx: ServiceContext
) -> None:
    reference = storage.call(sms_outbox.enqueue, ctx, PHONE, "first-login", "code 123456")
    assert storage.call(sms_outbox.apply_status_callback, ctx, reference, "failed")
    assert texts_to(storage, PHONE)[-1].body is None


async def test_concurrent_wrong_sms_codes_are_all_counted(
    storage: Storage, ctx: ServiceContext
) -> None:
    """On PostgreSQL the attempt row is locked, so no wrong guess goes uncounted."""
    school = make_school(storage, ctx)
    slip = invite(storage, ctx, school.teacher, school.child_id)
    attempt = storage.call(onboarding.start, ctx, PHONE, slip.code, "192.0.2.1", "en")
    real = sms_code(storage, ctx.config.data_dir, PHONE)
    wrong = [code for code in (f"{n:06d}" for n in range(1, 22)) if code != real][:20]

    async def guess(n: int) -> str:
        try:
            await storage.run(
                onboarding.verify_sms, ctx, attempt.attempt_id, wrong[n - 1], f"198.51.100.{n}"
            )
        except CarnetError as error:
            return error.code
        return "accepted"

    answers = await asyncio.gather(*(guess(n) for n in range(1, 21)))
    # At most 4 "wrong code, tries left" answers; every later guess finds the code dead.
    assert answers.count("unauthenticated") <= ctx.config.sms_code_max_tries - 1
    assert "accepted" not in answers
