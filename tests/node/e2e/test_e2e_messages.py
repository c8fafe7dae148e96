"""Encrypted, signed group messages (docs/protocol/e2e-groups.md §5).

Round trips, known answers recomputed from the spec's formulas with other
libraries, and tampering: swapped headers, replays, foreign signers, keys of
other messages, recipient-mode keys, and property tests over bodies and
single-byte or single-character changes.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given, settings
from hypothesis import strategies as hs

from federation.canonical import CanonicalJSONError, canonical_json
from node.e2e import hpke, primitives
from node.e2e import messages as msg
from node.e2e.encoding import b64url_decode, b64url_encode
from node.e2e.keys import AccountKeys, generate_account_keys, sign_object
from tests.node.e2e.group_factories import (
    ClassGroup,
    Person,
    direct_post,
    epoch_keys_of,
    new_class,
    post,
    read,
    remove,
    rotate,
    state,
)

PROPERTY = settings(max_examples=50, deadline=None, database=None)
GROUP = "dQA30SP2DsXkiBxXzPrV4w"


def hkdf32(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(hashes.SHA256(), 32, salt, info).derive(ikm)


def resign(wire: dict[str, Any], keys: AccountKeys) -> dict[str, Any]:
    """The same header and ciphertext signed afresh by ``keys`` (a member who forges)."""
    ct = b64url_decode(wire["ct"])
    signed = {"ct_sha256": b64url_encode(hashlib.sha256(ct).digest()), "header": wire["header"]}
    return {**wire, "sig": sign_object(keys.sign_sk, "carnet-e2e-1/message", signed)}


def seal(
    author: AccountKeys,
    key: bytes,
    body: dict[str, Any] | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    args: dict[str, Any] = {"author": "1@school.test", "group": GROUP, "kind": "post", "epoch": 0}
    args.update(kwargs)
    return msg.encrypt_message(
        sign_sk=author.sign_sk,
        sign_pk=author.sign_pk,
        body={"text": "Bonjour", "attachments": []} if body is None else body,
        message_key=key,
        **args,
    ).wire()


_AUTHOR = generate_account_keys()
_KEY = bytes(range(32))


# --------------------------------------------------------------------------- round trips


def test_post_comment_and_reaction_round_trip_in_a_class() -> None:
    c, (anna, ben) = new_class(2)
    p = post(c, c.teacher, "Sortie au musée jeudi 🦕")
    cm = post(c, anna, "Merci !", kind="comment", parent=p["header"]["id"])
    r = post(c, ben, "❤️", kind="reaction", parent=p["header"]["id"])
    st = state(c)
    for reader in (c.teacher, anna, ben):
        keys = epoch_keys_of(c, reader)
        assert read(st, reader, p, keys) == {"text": "Sortie au musée jeudi 🦕", "attachments": []}
        assert read(st, reader, cm, keys) == {"text": "Merci !"}
        assert read(st, reader, r, keys) == {"emoji": "❤️"}
    assert cm["header"]["parent"] == p["header"]["id"] and p["header"]["parent"] is None
    assert (p["header"]["epoch"], p["header"]["to"], p["header"]["version"]) == (0, None, 1)


def test_recipient_mode_round_trip_and_only_listed_members_open_the_key() -> None:
    c, (anna, ben, cleo) = new_class(3)
    wire = direct_post(c, c.teacher, [anna, c.teacher], "Anna a perdu une dent.")
    h = wire["header"]
    assert h["epoch"] is None and h["to"] == sorted([anna.member, c.teacher.member])
    assert [k["member"] for k in wire["keys"]] == [anna.member, c.teacher.member]
    st = state(c)
    for reader in (anna, c.teacher):
        assert read(st, reader, wire, {})["text"] == "Anna a perdu une dent."
    for outsider in (ben, cleo):
        with pytest.raises(msg.MessageError, match="not a recipient"):
            read(st, outsider, wire, epoch_keys_of(c, outsider))
        for sealed in wire["keys"]:
            # another member's sealed key: refused by name, and by HPKE when relabelled
            with pytest.raises(msg.MessageError, match="someone else"):
                msg.open_message_key(
                    c.group,
                    h["id"],
                    sealed,
                    outsider.member,
                    outsider.keys.enc_sk,
                    outsider.keys.enc_pk,
                )
            with pytest.raises(msg.MessageError, match="does not open"):
                msg.open_message_key(
                    c.group, h["id"], {**sealed, "member": outsider.member},
                    outsider.member, outsider.keys.enc_sk, outsider.keys.enc_pk,
                )  # fmt: skip
        # nor does the epoch key help
        for key in epoch_keys_of(c, outsider).values():
            for candidate in (key, msg.message_key_from_epoch(key, c.group, 0, h["id"])):
                with pytest.raises(msg.MessageError):
                    msg.decrypt_message(wire, candidate)


def test_recipient_key_bound_to_group_message_and_member_keys() -> None:
    anna, ben = generate_account_keys(), generate_account_keys()
    mid, other = msg.new_message_id(), msg.new_message_id()
    sealed = msg.seal_message_key(GROUP, mid, _KEY, "2@x", anna.enc_pk)
    assert msg.open_message_key(GROUP, mid, sealed, "2@x", anna.enc_sk, anna.enc_pk) == _KEY
    for g, m, sk, pk in [
        ("other", mid, anna.enc_sk, anna.enc_pk),
        (GROUP, other, anna.enc_sk, anna.enc_pk),
        (GROUP, mid, ben.enc_sk, ben.enc_pk),
        (GROUP, mid, anna.enc_sk, ben.enc_pk),
    ]:
        with pytest.raises(msg.MessageError, match="does not open"):
            msg.open_message_key(g, m, sealed, "2@x", sk, pk)
    with pytest.raises(msg.MessageError, match="does not open"):
        msg.open_message_key(GROUP, mid, {**sealed, "enc": "AAAA"}, "2@x", anna.enc_sk, anna.enc_pk)
    with pytest.raises(msg.MessageError, match="does not open"):
        msg.open_message_key(GROUP, mid, {"member": "2@x"}, "2@x", anna.enc_sk, anna.enc_pk)


def test_edit_is_a_new_version_under_the_same_id() -> None:
    mid = msg.new_message_id()
    v1 = seal(_AUTHOR, _KEY, message_id=mid)
    v2 = seal(_AUTHOR, _KEY, {"text": "Bonjour !", "attachments": []}, message_id=mid, version=2)
    assert v1["header"]["id"] == v2["header"]["id"]
    assert v1["header"]["nonce"] != v2["header"]["nonce"]
    assert msg.decrypt_message(v1, _KEY)["text"] == "Bonjour"
    assert msg.decrypt_message(v2, _KEY)["text"] == "Bonjour !"
    assert v2["header"]["version"] == 2


def test_encrypt_needs_exactly_one_of_epoch_and_recipients() -> None:
    with pytest.raises(ValueError, match="either"):
        seal(_AUTHOR, _KEY, epoch=None)
    with pytest.raises(ValueError, match="either"):
        seal(_AUTHOR, _KEY, epoch=0, to=["2@x"])
    with pytest.raises(msg.MessageError, match="parent"):
        seal(_AUTHOR, _KEY, kind="comment")
    with pytest.raises(msg.MessageError, match="unknown kind"):
        seal(_AUTHOR, _KEY, kind="poll")


# --------------------------------------------------------------------------- known answers


def test_epoch_message_known_answer() -> None:
    k_e, mid, nonce = bytes(range(100, 132)), b64url_encode(bytes(range(16))), bytes(12)
    body = {"text": "Réunion", "attachments": []}
    wire = seal(_AUTHOR, msg.message_key_from_epoch(k_e, GROUP, 3, mid), body, epoch=3,
                message_id=mid, at=1788000000, _nonce_for_tests=nonce)  # fmt: skip
    h = wire["header"]
    info = b"carnet-e2e-1/message-key\x00" + canonical_json({"epoch": 3, "group": GROUP})
    k_m = hkdf32(k_e, bytes(range(16)), info)
    assert msg.message_key_from_epoch(k_e, GROUP, 3, mid) == k_m
    kc = hmac.new(k_m, b"carnet-e2e-1/key-commit\x00" + canonical_json({"group": GROUP, "id": mid}), hashlib.sha256)  # fmt: skip
    assert h["kc"] == b64url_encode(kc.digest())
    assert h == {
        "suite": "carnet-e2e-1", "type": "message", "group": GROUP, "id": mid, "kind": "post",
        "parent": None, "author": "1@school.test", "by": b64url_encode(_AUTHOR.sign_pk),
        "epoch": 3, "to": None, "version": 1, "kc": h["kc"], "nonce": b64url_encode(nonce),
        "at": 1788000000,
    }  # fmt: skip
    aead_key = hkdf32(k_m, b"", b"carnet-e2e-1/message-aead")
    plain = canonical_json(body) + b"\x80" + bytes(256 - len(canonical_json(body)) - 1)
    ct = AESGCM(aead_key).encrypt(nonce, plain, canonical_json(h))
    assert wire["ct"] == b64url_encode(ct)
    signed = canonical_json({"ct_sha256": b64url_encode(hashlib.sha256(ct).digest()), "header": h})
    Ed25519PublicKey.from_public_bytes(_AUTHOR.sign_pk).verify(
        b64url_decode(wire["sig"]), b"carnet-e2e-1/message\x00" + signed
    )


def test_recipient_key_known_answer() -> None:
    anna, mid = generate_account_keys(), msg.new_message_id()
    sealed = msg.seal_message_key(GROUP, mid, _KEY, "2@x", anna.enc_pk)
    aad = canonical_json(
        {"enc_pk": b64url_encode(anna.enc_pk), "group": GROUP, "id": mid, "member": "2@x"}
    )
    opened = hpke.hpke_open(
        anna.enc_sk,
        b64url_decode(sealed["enc"]),
        b"carnet-e2e-1/message-key",
        aad,
        b64url_decode(sealed["ct"]),
    )
    assert opened == _KEY


@pytest.mark.parametrize(
    ("n", "padded"),
    [(0, 256), (1, 256), (254, 256), (255, 256), (256, 512), (511, 512), (512, 768)],
)
def test_padding_known_answer(n: int, padded: int) -> None:
    data = bytes([0x80]) * n  # a payload that ends like padding must still round trip
    out = msg.pad(data)
    assert len(out) == padded
    assert out[:n] == data and out[n] == 0x80 and set(out[n + 1 :]) <= {0}
    assert msg.unpad(out) == data


@pytest.mark.parametrize(
    "bad", [b"", b"\x00" * 256, b"x" * 256, b"x\x80" + bytes(253), b"\x80" + bytes(256)]
)
def test_bad_padding_is_refused(bad: bytes) -> None:
    with pytest.raises(msg.MessageError, match="padding"):
        msg.unpad(bad)


# --------------------------------------------------------------------------- tampering


def _comment_and_direct() -> tuple[ClassGroup, list[Person], dict[str, Any], dict[str, Any]]:
    c, people = new_class(2)
    parent = post(c, c.teacher, "Sortie")
    comment = post(c, people[0], "Merci", kind="comment", parent=parent["header"]["id"])
    direct = direct_post(c, c.teacher, [people[0], c.teacher], "Pour vous")
    return c, people, comment, direct


SWAPS: list[tuple[str, str, Any, str]] = [
    # (which message, header member, new value, what catches it once re-signed)
    ("comment", "group", "b3RoZXItZ3JvdXAtaWQ", "commitment"),
    ("comment", "epoch", 1, "altered"),
    ("comment", "kind", "reaction", "altered"),
    ("comment", "parent", b64url_encode(bytes(16)), "altered"),
    ("comment", "version", 2, "altered"),
    ("comment", "id", b64url_encode(bytes(16)), "commitment"),
    ("comment", "author", "9@school.test", "altered"),
    ("comment", "at", 99, "altered"),
    ("comment", "nonce", b64url_encode(bytes(12)), "altered"),
    ("comment", "kc", b64url_encode(bytes(32)), "commitment"),
    ("direct", "to", "one recipient fewer", "altered"),
    ("direct", "kind", "comment", "altered"),
    ("direct", "version", 3, "altered"),
]


@pytest.mark.parametrize(("which", "field", "value", "caught_by"), SWAPS, ids=lambda x: str(x)[:12])
def test_a_swapped_header_is_refused_even_when_re_signed(
    which: str, field: str, value: Any, caught_by: str
) -> None:
    c, (anna, _), comment, direct = _comment_and_direct()
    wire = comment if which == "comment" else direct
    st = state(c)
    key = (
        msg.message_key_from_epoch(c.epoch_keys[0], c.group, 0, wire["header"]["id"])
        if which == "comment"
        else msg.open_message_key(
            c.group,
            wire["header"]["id"],
            wire["keys"][0],
            anna.member,
            anna.keys.enc_sk,
            anna.keys.enc_pk,
        )
    )
    assert msg.decrypt_message(wire, key)  # the control
    bad = copy.deepcopy(wire)
    if field == "to":
        value = bad["header"]["to"][1:]
    if field == "kind" and which == "direct":
        bad["header"]["parent"] = b64url_encode(bytes(16))
    bad["header"][field] = value
    # moved by the node: the author's signature no longer verifies
    with pytest.raises(msg.MessageError, match="signature"):
        msg.decrypt_message(bad, key)
    assert not msg.verify_signature(bad)
    # even an author who re-signs the changed header cannot make it open
    author = anna if which == "comment" else c.teacher
    forged = resign(bad, author.keys)
    assert msg.verify_signature(forged)
    with pytest.raises(msg.MessageError, match=caught_by):
        msg.decrypt_message(forged, key)
    if field in ("group", "epoch", "id"):
        # with the key the changed header calls for, the ciphertext still does not open
        h = forged["header"]
        other_key = msg.message_key_from_epoch(c.epoch_keys[0], h["group"], h["epoch"], h["id"])
        with pytest.raises(msg.MessageError):
            msg.decrypt_message(forged, other_key)
    with pytest.raises(msg.MessageError):
        read(st, author, forged, {0: c.epoch_keys[0]})


def test_replayed_ciphertext_under_a_new_id_is_refused() -> None:
    c, (anna, ben) = new_class(2)
    original = post(c, c.teacher, "Sortie annulée")
    k_e = c.epoch_keys[0]
    new_id = msg.new_message_id()
    # the node copies the ciphertext and signature under a new id
    moved = copy.deepcopy(original)
    moved["header"]["id"] = new_id
    with pytest.raises(msg.MessageError, match="signature"):
        msg.decrypt_message(moved, msg.message_key_from_epoch(k_e, c.group, 0, new_id))
    # a member with the epoch key replays it as their own, with a fresh commitment
    new_key = msg.message_key_from_epoch(k_e, c.group, 0, new_id)
    replay = copy.deepcopy(original)
    replay["header"].update(
        id=new_id, author=anna.member, by=b64url_encode(anna.keys.sign_pk),
        kc=msg.key_commitment(new_key, c.group, new_id),
    )  # fmt: skip
    replay = resign(replay, anna.keys)
    assert state(c).signer_is_member(anna.member, replay["header"]["by"])
    with pytest.raises(msg.MessageError, match="altered"):
        msg.decrypt_message(replay, new_key)
    old_key = msg.message_key_from_epoch(k_e, c.group, 0, original["header"]["id"])
    with pytest.raises(msg.MessageError, match="commitment"):
        msg.decrypt_message(replay, old_key)


def test_a_signature_by_a_key_the_log_does_not_give_to_the_author_is_refused() -> None:
    c, (anna, ben) = new_class(2)
    remove(c, ben)
    rotate(c)
    st = state(c)
    k1 = c.epoch_keys[1]

    def as_teacher(signer: AccountKeys) -> dict[str, Any]:
        mid = msg.new_message_id()
        return msg.encrypt_message(
            sign_sk=signer.sign_sk, sign_pk=signer.sign_pk, author=c.teacher.member,
            group=c.group, kind="post", body={"text": "Fermeture", "attachments": []},
            message_key=msg.message_key_from_epoch(k1, c.group, 1, mid), epoch=1, message_id=mid,
        ).wire()  # fmt: skip

    for impostor in (anna.keys, ben.keys, generate_account_keys()):
        wire = as_teacher(impostor)
        key = msg.message_key_from_epoch(k1, c.group, 1, wire["header"]["id"])
        assert msg.decrypt_message(wire, key)  # signature and key are fine on their own...
        assert not st.signer_is_member(c.teacher.member, wire["header"]["by"])
        with pytest.raises(msg.MessageError, match="log does not give"):
            read(st, anna, wire, {1: k1})  # ...but the log says it is not the teacher's key
    honest = as_teacher(c.teacher.keys)
    assert read(st, anna, honest, {1: k1})["text"] == "Fermeture"


def test_a_message_key_opens_its_own_message_only() -> None:
    c, (anna, ben) = new_class(2)
    p = post(c, c.teacher, "A")
    wires = [
        p,
        post(c, anna, "B", kind="comment", parent=p["header"]["id"]),
        post(c, ben, "C", kind="comment", parent=p["header"]["id"]),
        post(c, c.teacher, "D"),
    ]
    keys = [
        msg.message_key_from_epoch(c.epoch_keys[0], c.group, 0, w["header"]["id"]) for w in wires
    ]
    assert len(set(keys)) == len(keys) and c.epoch_keys[0] not in keys
    for i, wire in enumerate(wires):
        for j, key in enumerate(keys):
            if i == j:
                assert msg.decrypt_message(wire, key)["text"] == "ABCD"[i]
            else:
                with pytest.raises(msg.MessageError, match="commitment"):
                    msg.decrypt_message(wire, key)
    # a reported key, used as if it were the epoch key, opens nothing else either
    for wire in wires[1:]:
        k = msg.message_key_from_epoch(keys[0], c.group, 0, wire["header"]["id"])
        with pytest.raises(msg.MessageError):
            msg.decrypt_message(wire, k)


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"suite": "carnet-e2e-2"}, "suite"),
        ({"type": "group-entry"}, "suite"),
        ({"kind": "poll"}, "unknown kind"),
        ({"kind": "conversation"}, "kind conversation is sealed to its recipients"),
        ({"kind": "absence"}, "kind absence is sealed to its recipients"),
        ({"kind": "chat"}, "replies have one"),
        ({"kind": "member", "parent": b64url_encode(bytes(16))}, "kind member is sealed"),
        ({"kind": "report", "parent": b64url_encode(bytes(16))}, "kind report is sealed"),
        ({"parent": b64url_encode(bytes(16))}, "parent"),
        ({"parent": "short"}, "parent"),
        ({"version": 0}, "version"),
        ({"version": True}, "version"),
        ({"at": "now"}, "'at'"),
        ({"epoch": -1}, "epoch must be"),
        ({"epoch": False}, "epoch must be"),
        ({"epoch": None}, "exactly one"),
        ({"to": ["2@x"]}, "exactly one"),
        ({"epoch": None, "to": []}, "1-5000"),
        ({"epoch": None, "to": ["b@x", "a@x"]}, "sorted"),
        ({"epoch": None, "to": ["a@x", "a@x"]}, "sorted"),
        ({"epoch": None, "to": ["bad id!"]}, "recipient"),
        ({"epoch": None, "to": [5]}, "recipient"),
        ({"group": ""}, "group"),
        ({"author": "x" * 129}, "author"),
        ({"id": b64url_encode(bytes(15))}, "id"),
        ({"by": "AAAA"}, "by"),
        ({"kc": None}, "kc"),
        ({"nonce": b64url_encode(bytes(16))}, "nonce"),
        ({"at": 2**60}, "2\\*\\*53"),
        ({"version": 2**53}, "2\\*\\*53"),
    ],
)
def test_malformed_headers_are_refused(changes: dict[str, Any], match: str) -> None:
    wire = seal(_AUTHOR, _KEY)
    assert msg.check_header(copy.deepcopy(wire["header"])) == wire["header"]
    bad = copy.deepcopy(wire)
    bad["header"].update(changes)
    with pytest.raises(msg.MessageError, match=match):
        msg.check_header(bad["header"])
    try:
        candidates = [bad, resign(bad, _AUTHOR)]
    except CanonicalJSONError:  # an author cannot even sign a header outside canonical JSON
        candidates = [bad]
    for candidate in candidates:
        with pytest.raises(msg.MessageError):
            msg.decrypt_message(candidate, _KEY)


@pytest.mark.parametrize(
    "wire",
    [
        None,
        [],
        {},
        {"header": {}, "ct": "", "sig": ""},
        "header",
    ],
)
def test_malformed_wire_is_refused(wire: Any) -> None:
    with pytest.raises(msg.MessageError):
        msg.decrypt_message(wire, _KEY)
    assert not msg.verify_signature(wire)


@pytest.mark.parametrize("field", ["ct", "sig"])
@pytest.mark.parametrize("value", [5, None, "!!", ""])
def test_malformed_ct_or_sig_is_refused(field: str, value: Any) -> None:
    wire = {**seal(_AUTHOR, _KEY), field: value}
    with pytest.raises(msg.MessageError, match="signature"):
        msg.decrypt_message(wire, _KEY)


@pytest.mark.parametrize(
    "plain", [b"not json", b"\xff\xfe", b'{"a": 1.5}', b"[1, 2]", b'"text"', b'{"a":1,"a":2}']
)
def test_a_signed_body_that_is_not_a_json_object_is_refused(plain: bytes) -> None:
    # only the author can produce this: encrypt the raw bytes under a valid header
    wire = seal(_AUTHOR, _KEY)
    h = wire["header"]
    aead_key = hkdf32(_KEY, b"", b"carnet-e2e-1/message-aead")
    ct = primitives.aes256gcm_encrypt(
        aead_key, b64url_decode(h["nonce"]), msg.pad(plain), canonical_json(h)
    )
    bad = resign({**wire, "ct": b64url_encode(ct)}, _AUTHOR)
    with pytest.raises(msg.MessageError):
        msg.decrypt_message(bad, _KEY)
    unpadded = primitives.aes256gcm_encrypt(aead_key, b64url_decode(h["nonce"]), b"{}", canonical_json(h))  # fmt: skip
    with pytest.raises(msg.MessageError, match="padding"):
        msg.decrypt_message(resign({**wire, "ct": b64url_encode(unpadded)}, _AUTHOR), _KEY)


# --------------------------------------------------------------------------- properties

_JSON_LEAF = hs.none() | hs.booleans() | hs.integers(-(2**53) + 1, 2**53 - 1) | hs.text(max_size=40)
_JSON = hs.recursive(
    _JSON_LEAF,
    lambda inner: hs.lists(inner, max_size=5) | hs.dictionaries(hs.text(max_size=10), inner, max_size=5),
    max_leaves=20,
)  # fmt: skip
_BODIES = hs.dictionaries(hs.text(max_size=12), _JSON, max_size=6)


@PROPERTY
@given(body=_BODIES, direct=hs.booleans())
def test_random_bodies_round_trip(body: dict[str, Any], direct: bool) -> None:
    mode: dict[str, Any] = {"epoch": None, "to": ["2@x", "1@x"]} if direct else {"epoch": 7}
    wire = seal(_AUTHOR, _KEY, body, **mode)
    assert msg.decrypt_message(wire, _KEY) == body
    assert (len(b64url_decode(wire["ct"])) - 16) % 256 == 0


@PROPERTY
@given(data=hs.data(), resigned=hs.booleans())
def test_any_flipped_ciphertext_byte_is_refused(data: hs.DataObject, resigned: bool) -> None:
    wire = _FIXED_WIRE
    ct = bytearray(b64url_decode(wire["ct"]))
    i = data.draw(hs.integers(0, len(ct) - 1))
    ct[i] ^= data.draw(hs.integers(1, 255))
    bad = {**wire, "ct": b64url_encode(bytes(ct))}
    if resigned:
        bad = resign(bad, _AUTHOR)
    with pytest.raises(msg.MessageError, match="altered" if resigned else "signature"):
        msg.decrypt_message(bad, _KEY)


@PROPERTY
@given(data=hs.data(), direct=hs.booleans(), resigned=hs.booleans())
def test_any_changed_header_character_is_refused(
    data: hs.DataObject, direct: bool, resigned: bool
) -> None:
    wire = copy.deepcopy(_FIXED_DIRECT if direct else _FIXED_WIRE)
    fields = [(k,) for k, v in wire["header"].items() if isinstance(v, str)]
    if direct:
        fields += [("to", i) for i in range(len(wire["header"]["to"]))]
    path = data.draw(hs.sampled_from(fields))
    target: Any = wire["header"]
    for part in path[:-1]:
        target = target[part]
    old: str = target[path[-1]]
    pos = data.draw(hs.integers(0, len(old) - 1))
    char = data.draw(hs.sampled_from("Aa0_-.@Zz9").filter(lambda ch: ch != old[pos]))
    target[path[-1]] = old[:pos] + char + old[pos + 1 :]
    if resigned:
        wire = resign(wire, _AUTHOR)
    with pytest.raises(msg.MessageError):
        msg.decrypt_message(wire, _KEY)


@PROPERTY
@given(data=hs.binary(max_size=2000))
def test_pad_unpad_round_trip(data: bytes) -> None:
    padded = msg.pad(data)
    assert len(padded) % 256 == 0 and 0 < len(padded) - len(data) <= 256
    assert msg.unpad(padded) == data


_FIXED_WIRE = seal(
    _AUTHOR, _KEY, {"text": "Le car part à 8 h.", "attachments": []},
    kind="comment", parent=b64url_encode(bytes(16)),
)  # fmt: skip
_FIXED_DIRECT = seal(_AUTHOR, _KEY, {"text": "x"}, epoch=None, to=["1@x", "2@x", "3@x"])
