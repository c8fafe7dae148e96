"""Phone numbers: what a teacher or a parent types becomes E.164, or a clear 400."""

from __future__ import annotations

import pytest

from node.errors import Invalid
from node.phone import mask_email, mask_phone, normalize_phone
from node.services import accounts, directory
from node.services.context import ServiceContext
from node.storage.db import Storage
from tests.factories import make_school


@pytest.mark.parametrize(
    "typed",
    [
        "06 12 34 56 78",
        "0612345678",
        "+33 6 12 34 56 78",
        "+33612345678",
        "0033612345678",
        "00 33 6 12 34 56 78",
        "06.12.34.56.78",
        "06-12-34-56-78",
        "(06) 12 34 56 78",
        "06\u00a012\u00a034\u00a056\u00a078",
        "０６ １２ ３４ ５６ ７８",
        "＋３３６１２３４５６７８",
        "  06 12 34 56 78  ",
    ],
)
def test_typed_numbers_become_e164(typed: str) -> None:
    assert normalize_phone(typed) == "+33612345678"


def test_default_country_code_applies_to_national_numbers() -> None:
    assert normalize_phone("0470 12 34 56", "32") == "+32470123456"


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "   ",
        "06 12 34 AB 78",
        "phone",
        "+33 6 12 34 56 7x",
        "+1234567890123456",  # 16 digits: longer than E.164 allows
        "0612",
        "+3361",
        "12345",
        "612345678",
        "+0612345678",
        "0" + "6" * 40,
        "+٣٣٦١٢٣٤٥٦٧٨",  # Arabic-Indic digits are not ASCII digits
    ],
)
def test_malformed_numbers_are_refused_with_a_message(typed: str) -> None:
    with pytest.raises(Invalid) as caught:
        normalize_phone(typed)
    assert caught.value.status == 400
    assert caught.value.field == "phone"
    assert caught.value.message


@pytest.mark.parametrize("value", [None, 612345678, ["0612345678"]])
def test_non_text_numbers_are_refused(value: object) -> None:
    with pytest.raises(Invalid):
        normalize_phone(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "typed", ["+881 6 12 34 56 78", "+882 1234 5678", "+979 1234 5678", "00 881 612 345 678"]
)
def test_premium_and_satellite_ranges_are_blocked(typed: str) -> None:
    with pytest.raises(Invalid) as caught:
        normalize_phone(typed)
    assert "cannot receive" in caught.value.message


def test_masking_keeps_only_the_last_two_digits() -> None:
    assert mask_phone("+33612345678") == "•• •• •• •• 78"
    assert mask_phone(None) == ""
    assert mask_email("camille.martin@ecole.test") == "c•••@e•••"
    assert "martin" not in mask_email("camille.martin@ecole.test")


def test_guardian_registered_with_a_national_number_logs_in_with_any_form(
    storage: Storage, ctx: ServiceContext
) -> None:
    school = make_school(storage, ctx)
    slip = storage.call(
        directory.register_guardian,
        ctx,
        school.teacher,
        school.child_id,
        "Camille Martin",
        "06.39.98.00.01",
    )
    assert slip.phone_masked == "•• •• •• •• 01"
    for typed in ("+33 6 39 98 00 01", "0033639980001", "06 39 98 00 01"):
        assert accounts.normalize_login(ctx, typed) == "+33639980001"


def test_same_number_twice_for_one_child_is_a_conflict(
    storage: Storage, ctx: ServiceContext
) -> None:
    from node.errors import Conflict

    school = make_school(storage, ctx)
    storage.call(
        directory.register_guardian, ctx, school.teacher, school.child_id, "A", "0639980001"
    )
    with pytest.raises(Conflict):
        storage.call(
            directory.register_guardian, ctx, school.teacher, school.child_id, "B", "+33639980001"
        )
    roster = storage.call(directory.class_roster, ctx, school.teacher, school.class_id)
    assert [g.display_name for g in roster[0].guardians] == ["A"]
