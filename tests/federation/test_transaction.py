"""Transactions, pull pages and membership digests (federation.transaction)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import nacl.signing
import pytest

from federation.canonical import canonical_json
from federation.errors import OriginMismatch, TooLarge, TransactionError
from federation.transaction import (
    MAX_ACTIVITIES,
    MAX_BODY_BYTES,
    MembershipDigest,
    build_transaction,
    check_activities,
    check_pull_page,
    check_transaction,
    membership_digest,
    results_body,
)
from tests.federation.factories import TXN_ID, A, B, activity, kid, note, signing_key

STREAM = f"{A}/classes/cm2-b"
KEY = signing_key(A + "#k1")


def keys_of_a(keyid: str, created: int) -> nacl.signing.VerifyKey | None:
    return KEY.verify_key if keyid == kid(A) else None


def body(**overrides: Any) -> dict[str, Any]:
    value: dict[str, Any] = {
        "np": 1,
        "txn_id": TXN_ID,
        "origin": A,
        "destination": B,
        "activities": [activity(seq=101), activity(seq=103)],
        "streams": {STREAM: {"after": 100, "through": 103}},
        "membership": [
            {
                "stream": STREAM,
                "digest": membership_digest([f"{B}/users/p-durand"]),
                "url": f"{A}/np/members",
            }
        ],
    }
    value.update(overrides)
    return value


def check(data: Any) -> Any:
    return check_transaction(data, txn_id=TXN_ID, sender=A, destination=B)


def test_build_and_check_round_trip() -> None:
    membership = [
        MembershipDigest(STREAM, "0" * 64, f"{A}/np/streams/classes/cm2-b/members?node=b")
    ]
    data = build_transaction(
        txn_id=TXN_ID,
        origin=A,
        destination=B,
        activities=[activity(seq=101), activity(seq=103)],
        streams={STREAM: (100, 103)},
        membership=membership,
    )
    txn = check(data)
    assert txn.txn_id == TXN_ID and txn.origin == A and txn.destination == B
    assert [a["seq"] for a in txn.activities] == [101, 103]
    assert txn.streams[0].after == 100 and txn.streams[0].through == 103
    assert txn.membership == tuple(membership)
    results = check_activities(txn.activities, sender=A, destination=B, lookup=keys_of_a)
    assert [r.error for r in results] == [None, None]
    assert results_body(results) == {"results": {a["id"]: {} for a in txn.activities}}


def test_empty_batch_only_advances_a_range() -> None:
    txn = check(body(activities=[], streams={STREAM: {"after": 100, "through": 150}}))
    assert txn.activities == () and txn.streams[0].through == 150


def test_more_than_50_activities_is_refused() -> None:
    activities = [activity(seq=101 + i) for i in range(MAX_ACTIVITIES + 1)]
    with pytest.raises(TransactionError, match="at most 50"):
        check(body(activities=activities, streams={STREAM: {"after": 100, "through": 200}}))


def test_oversize_body_is_too_large() -> None:
    padded = activity(seq=101, obj=note(content="x" * 500_000))
    data = json.dumps(body(activities=[padded] * 17)).encode()
    assert len(data) > MAX_BODY_BYTES
    with pytest.raises(TooLarge) as info:
        check(data)
    assert info.value.reason == "too_large"


def test_floats_and_duplicate_keys_are_refused() -> None:
    text = canonical_json(body())
    with pytest.raises(TransactionError, match="strict JSON"):
        check(text.replace(b'"after":100', b'"after":100.0'))
    with pytest.raises(TransactionError, match="duplicate"):
        check(b'{"np":1,' + text[1:])


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"np": 2}, TransactionError, "np version"),
        ({"txn_id": "01J8Z6R4ABCDEFGHJKMNPQRSTW"}, TransactionError, "txn_id"),
        ({"origin": B}, OriginMismatch, "signer"),
        ({"destination": A}, TransactionError, "is for"),
        ({"activities": {}}, TransactionError, "list"),
        ({"activities": [activity(seq=101)] * 2}, TransactionError, "twice"),
        ({"activities": [activity(origin=B, seq=101)]}, OriginMismatch, "activities\\[0\\].id"),
        ({"activities": ["x"]}, TransactionError, "object"),
        ({"streams": {}}, TransactionError, "does not declare"),
        ({"streams": {f"{B}/classes/c": {"after": 0, "through": 1}}}, OriginMismatch, "stream"),
        ({"streams": {STREAM: {"after": 101, "through": 103}}}, TransactionError, "outside"),
        ({"streams": {STREAM: {"after": 100, "through": 102}}}, TransactionError, "outside"),
        ({"streams": {STREAM: {"after": 100, "through": 99}}}, TransactionError, "through"),
        ({"streams": {STREAM: {"after": -1, "through": 103}}}, TransactionError, "after"),
        ({"streams": {STREAM: [100, 103]}}, TransactionError, "after, through"),
        ({"activities": [activity(seq=103), activity(seq=101)]}, TransactionError, "order"),
        (
            {"membership": [{"stream": STREAM, "digest": "ABC", "url": f"{A}/m"}]},
            TransactionError,
            "hex",
        ),
        (
            {"membership": [{"stream": STREAM, "digest": "0" * 64, "url": f"{B}/m"}]},
            OriginMismatch,
            "url",
        ),
        ({"membership": {}}, TransactionError, "membership"),
    ],
)
def test_bad_envelopes(change: dict[str, Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        check(body(**change))


def test_txn_id_must_be_a_ulid() -> None:
    bad = "not-a-ulid"
    with pytest.raises(TransactionError, match="ULID"):
        check_transaction(body(txn_id=bad), txn_id=bad, sender=A, destination=B)


def test_one_bad_activity_does_not_block_the_batch() -> None:
    forged = {**activity(seq=102), "object": note(content="forged")}
    cross = activity(seq=103, obj=note(B))
    txn = check(body(activities=[activity(seq=101), forged, cross]))
    results = check_activities(txn.activities, sender=A, destination=B, lookup=keys_of_a)
    assert [r.error is None for r in results] == [True, False, False]
    reply = results_body(results)["results"]
    assert reply[forged["id"]]["error"] == "bad_activity"
    assert reply[cross["id"]]["error"] == "origin_mismatch"
    assert results[0].activity is not None and results[0].activity.seq == 101


def test_build_refuses_what_check_would_refuse() -> None:
    with pytest.raises(TransactionError):
        build_transaction(
            txn_id=TXN_ID, origin=A, destination=B, activities=[activity(seq=5)], streams={}
        )


# -- Membership digest ------------------------------------------------------------------------


def test_membership_digest_known_values() -> None:
    assert membership_digest([]) == "0" * 64
    one = f"{B}/users/p-durand"
    assert membership_digest([one]) == hashlib.sha256(one.encode()).hexdigest()
    two = [one, f"{B}/users/p-nguyen"]
    expected = bytes(
        x ^ y for x, y in zip(*(hashlib.sha256(m.encode()).digest() for m in two), strict=True)
    ).hex()
    assert membership_digest(two) == expected


def test_membership_digest_is_a_set_function() -> None:
    members = [f"{B}/users/p{i}" for i in range(5)]
    assert membership_digest(members) == membership_digest(reversed(members))
    assert membership_digest(members + members[:2]) == membership_digest(members)
    assert membership_digest(members) != membership_digest(members[:4])


# -- Pull pages ------------------------------------------------------------------------------------


def page(**overrides: Any) -> dict[str, Any]:
    value: dict[str, Any] = {
        "activities": [activity(seq=11), activity(seq=14)],
        "next_after": 14,
        "head_seq": 20,
    }
    value.update(overrides)
    return value


def test_pull_page_round_trip() -> None:
    checked = check_pull_page(canonical_json(page()), stream=STREAM, sender=A, after=10)
    assert checked.next_after == 14 and checked.head_seq == 20 and len(checked.activities) == 2
    assert check_pull_page(
        page(activities=[], next_after=10, head_seq=10), stream=STREAM, sender=A, after=10
    )


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"next_after": 13}, "outside"),
        ({"next_after": 9}, "next_after"),
        ({"head_seq": 13}, "head_seq"),
        ({"activities": [activity(seq=10)]}, "outside"),
        ({"activities": [activity(seq=14), activity(seq=11)]}, "order"),
        (
            {
                "activities": [activity(seq=11 + i) for i in range(101)],
                "next_after": 200,
                "head_seq": 200,
            },
            "at most 100",
        ),
    ],
)
def test_bad_pull_pages(change: dict[str, Any], match: str) -> None:
    with pytest.raises(TransactionError, match=match):
        check_pull_page(page(**change), stream=STREAM, sender=A, after=10)


def test_pull_page_of_another_stream_or_origin() -> None:
    with pytest.raises(TransactionError, match="does not declare"):
        check_pull_page(page(), stream=f"{A}/classes/other", sender=A, after=10)
    with pytest.raises(OriginMismatch):
        check_pull_page(page(), stream=STREAM, sender=B, after=10)
