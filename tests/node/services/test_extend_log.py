"""Mirrored logs are verified one entry at a time from a remembered state, not from the start."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from node import refclient_groups as rc
from node.e2e import groups as e2e
from node.e2e.encoding import b64url_encode
from node.e2e.keys import generate_account_keys
from node.errors import Invalid
from node.services import groups


def head_of(log: list[dict[str, Any]]) -> SimpleNamespace:
    return SimpleNamespace(
        public_id=log[0]["group"], head_seq=len(log) - 1, head_hash=e2e.entry_hash(log[-1])
    )


def test_each_entry_is_checked_once_from_the_remembered_state() -> None:
    keys = generate_account_keys()
    log, _, key = rc.setup_group(keys, "1@school.test")
    loads = []

    def stored(upto: int) -> Any:
        def load() -> list[dict[str, Any]]:
            loads.append(upto)
            return log[:upto]

        return load

    state = groups.extend_log(head_of(log[:1]), stored(1), log[1], groups.CLASS_LOG_REFUSED)
    assert state.head_seq == 1 and loads == [1]  # nothing remembered yet: loaded once
    state = groups.extend_log(head_of(log[:2]), stored(2), log[2], groups.CLASS_LOG_REFUSED)
    assert state.head_seq == 2 and loads == [1]  # from the remembered state: not loaded
    # a bad entry is refused, and what was remembered is not left half-changed
    other = generate_account_keys()
    member = {"member": "2@school.test", "sign_pk": b64url_encode(other.sign_pk),
              "enc_pk": b64url_encode(other.enc_pk)}  # fmt: skip
    added, _ = rc.approve(keys, log, [member | {"role": "guardian"}], key)
    forged = dict(added[0], sig=added[0]["sig"][:-4] + "AAAA")
    with pytest.raises(Invalid, match="class log was refused"):
        groups.extend_log(head_of(log), stored(3), forged, groups.CLASS_LOG_REFUSED)
    state = groups.extend_log(head_of(log), stored(3), added[0], groups.CLASS_LOG_REFUSED)
    assert state.head_seq == 3 and "2@school.test" in state.members and loads == [1, 3]
