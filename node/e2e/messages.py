"""Encrypted, signed group messages (carnet-e2e-1, docs/protocol/e2e-groups.md §5, §7).

A message (post, comment, reaction, share, emergency alert) is a signed header, an AES-256-GCM
ciphertext of the padded canonical-JSON body with the header as associated
data, and the author's signature over the header and the ciphertext hash.
Its key is derived from the group's epoch key and the message id (so
revealing one message's key reveals that message only) or, for a post to
some children's families, drawn at random and sealed to each recipient.
A key commitment in the header makes the ciphertext open under one key only.
An alert (a school group's emergency message) is shown only if signed by an
emergency-role key (:func:`check_alert_signer`) and its body passes
:func:`check_alert_body`.
Layer rule: sans-IO (no network, database, files or clock).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from federation.canonical import CanonicalJSONError, canonical_json, parse_json_strict
from node.e2e import primitives as p
from node.e2e.encoding import b64url_decode, b64url_encode
from node.e2e.groups import SUITE, GroupState, check_id
from node.e2e.hpke import HpkeError, hpke_open, hpke_seal
from node.e2e.keys import sign_object, verify_object

CONTEXT_MESSAGE = "carnet-e2e-1/message"
_MSG_KEY_INFO = b"carnet-e2e-1/message-key\x00"
_AEAD_INFO = b"carnet-e2e-1/message-aead"
_KC_LABEL = b"carnet-e2e-1/key-commit\x00"
RECIPIENT_KEY_INFO = b"carnet-e2e-1/message-key"
KINDS = (
    "post", "comment", "reaction", "share", "alert",
    "conversation", "chat", "member", "report", "absence",
)  # fmt: skip
#: kinds that start something (no parent); an alert may have one or not
TOP_KINDS = ("post", "conversation", "absence")
#: kinds always sealed to chosen recipients, never under the epoch key
RECIPIENT_KINDS = ("share", "conversation", "chat", "member", "report", "absence")
ALERT_TEMPLATES = ("lockdown", "evacuation", "shelter", "all_clear", "do_not_come", "free")
ALERT_TEXT_MAX = 2000
_ALERT_BODY_KEYS = {"template", "text", "drill"}
PAD_BLOCK = 256
HEADER_KEYS = {
    "suite", "type", "group", "id", "kind", "parent", "author", "by",
    "epoch", "to", "version", "kc", "nonce", "at",
}  # fmt: skip


class MessageError(ValueError):
    """A message is malformed, tampered with, or not addressed to this key."""


def new_message_id() -> str:
    return b64url_encode(secrets.token_bytes(16))


def pad(data: bytes) -> bytes:
    """ISO/IEC 7816-4 padding to a multiple of 256 bytes (sizes leak in buckets only)."""
    padded = data + b"\x80"
    return padded + b"\x00" * (-len(padded) % PAD_BLOCK)


def unpad(data: bytes) -> bytes:
    stripped = data.rstrip(b"\x00")
    if not stripped.endswith(b"\x80") or len(data) % PAD_BLOCK:
        raise MessageError("bad padding")
    return stripped[:-1]


def message_key_from_epoch(epoch_key: bytes, group: str, epoch: int, message_id: str) -> bytes:
    salt = b64url_decode(message_id, length=16, what="message id")
    info = _MSG_KEY_INFO + canonical_json({"epoch": epoch, "group": group})
    return p.hkdf(epoch_key, salt, info, 32)


def key_commitment(message_key: bytes, group: str, message_id: str) -> str:
    msg = _KC_LABEL + canonical_json({"group": group, "id": message_id})
    return b64url_encode(hmac.new(message_key, msg, hashlib.sha256).digest())


def _recipient_aad(group: str, message_id: str, member: str, enc_pk: bytes) -> bytes:
    return canonical_json(
        {"enc_pk": b64url_encode(enc_pk), "group": group, "id": message_id, "member": member}
    )


def seal_message_key(
    group: str, message_id: str, message_key: bytes, member: str, enc_pk: bytes,
    *, _ikm_e_for_tests: bytes | None = None,
) -> dict[str, str]:  # fmt: skip
    enc, ct = hpke_seal(
        enc_pk,
        RECIPIENT_KEY_INFO,
        _recipient_aad(group, message_id, member, enc_pk),
        message_key,
        _ikm_e_for_tests=_ikm_e_for_tests,
    )
    return {"member": member, "enc": b64url_encode(enc), "ct": b64url_encode(ct)}


def open_message_key(
    group: str, message_id: str, sealed: dict[str, Any], member: str, enc_sk: bytes, enc_pk: bytes
) -> bytes:
    if sealed.get("member") != member:
        raise MessageError("this message key is sealed to someone else")
    try:
        return hpke_open(
            enc_sk,
            b64url_decode(sealed["enc"], length=32, what="enc"),
            RECIPIENT_KEY_INFO,
            _recipient_aad(group, message_id, member, enc_pk),
            b64url_decode(sealed["ct"], length=48, what="ct"),
        )
    except (HpkeError, ValueError, KeyError, TypeError) as exc:
        raise MessageError("the message key does not open") from exc


@dataclass(frozen=True)
class Sealed:
    """A message as it travels: signed header, ciphertext, signature (+ sealed keys)."""

    header: dict[str, Any]
    ct: str
    sig: str

    def wire(self) -> dict[str, Any]:
        return {"header": self.header, "ct": self.ct, "sig": self.sig}


def encrypt_message(
    *,
    sign_sk: bytes,
    sign_pk: bytes,
    author: str,
    group: str,
    kind: str,
    body: dict[str, Any],
    message_key: bytes,
    epoch: int | None,
    to: list[str] | None = None,
    parent: str | None = None,
    message_id: str | None = None,
    version: int = 1,
    at: int = 0,
    _nonce_for_tests: bytes | None = None,
) -> Sealed:
    """Encrypt and sign.  ``epoch`` for epoch-key messages, ``to`` for sealed-recipient ones."""
    if (epoch is None) == (to is None):
        raise ValueError("a message uses either an epoch key or a recipient list")
    message_id = message_id or new_message_id()
    nonce = _nonce_for_tests or secrets.token_bytes(12)
    header = {
        "suite": SUITE,
        "type": "message",
        "group": group,
        "id": message_id,
        "kind": kind,
        "parent": parent,
        "author": author,
        "by": b64url_encode(sign_pk),
        "epoch": epoch,
        "to": None if to is None else sorted(to),
        "version": version,
        "kc": key_commitment(message_key, group, message_id),
        "nonce": b64url_encode(nonce),
        "at": at,
    }
    check_header(header)
    aead_key = p.hkdf(message_key, b"", _AEAD_INFO, 32)
    ct = p.aes256gcm_encrypt(aead_key, nonce, pad(canonical_json(body)), canonical_json(header))
    sig = sign_object(sign_sk, CONTEXT_MESSAGE, _signed(header, ct))
    return Sealed(header, b64url_encode(ct), sig)


def _signed(header: dict[str, Any], ct: bytes) -> dict[str, Any]:
    return {"ct_sha256": b64url_encode(hashlib.sha256(ct).digest()), "header": header}


def check_header(header: Any) -> dict[str, Any]:
    """Structure of a header (what the node can check without keys)."""

    def need(cond: bool, what: str) -> None:
        if not cond:
            raise MessageError(f"message header: {what}")

    need(isinstance(header, dict) and set(header) == HEADER_KEYS, "unexpected or missing members")
    need(header["suite"] == SUITE and header["type"] == "message", "wrong suite or type")
    try:
        check_id(header["group"], "group")
        check_id(header["author"], "author")
        b64url_decode(header["id"], length=16, what="id")
        b64url_decode(header["by"], length=32, what="by")
        b64url_decode(header["kc"], length=32, what="kc")
        b64url_decode(header["nonce"], length=12, what="nonce")
        if header["parent"] is not None:
            b64url_decode(header["parent"], length=16, what="parent")
    except (ValueError, TypeError) as exc:
        raise MessageError(f"message header: {exc}") from exc
    need(header["kind"] in KINDS, "unknown kind")
    if header["kind"] != "alert":  # an alert's parent is its thread's first alert, or null
        need(
            (header["parent"] is None) == (header["kind"] in TOP_KINDS),
            "posts, conversations and absence notes have no parent; replies have one",
        )
    need(
        header["kind"] not in RECIPIENT_KINDS or header["to"] is not None,
        f"a message of kind {header['kind']} is sealed to its recipients",
    )
    need(
        type(header["version"]) is int and header["version"] >= 1,
        "version must be a positive integer",
    )
    need(type(header["at"]) is int, "'at' must be an integer")
    epoch, to = header["epoch"], header["to"]
    need((epoch is None) != (to is None), "exactly one of epoch and to")
    if epoch is not None:
        need(type(epoch) is int and epoch >= 0, "epoch must be a non-negative integer")
    else:
        need(isinstance(to, list) and 1 <= len(to) <= 5000, "to must list 1-5000 members")
        try:
            for member in to:
                check_id(member, "recipient")
        except ValueError as exc:
            raise MessageError(f"message header: {exc}") from exc
        need(to == sorted(set(to)), "to must be sorted and without duplicates")
    need(
        header["kind"] != "alert" or to is None,
        "an alert is sent to the whole group under its epoch key, never to chosen recipients",
    )
    try:
        canonical_json(header)  # it is signed and authenticated: no integer beyond 2**53 - 1
    except CanonicalJSONError as exc:
        raise MessageError(f"message header: {exc}") from exc
    return header  # type: ignore[no-any-return]


def verify_signature(sealed: dict[str, Any]) -> bool:
    """Check the author's signature against the key named in the header (``by``)."""
    if not isinstance(sealed, dict):
        return False
    try:
        header = check_header(sealed.get("header"))
        ct = b64url_decode(sealed["ct"], what="ct")
        sig = sealed["sig"]
    except (MessageError, ValueError, KeyError, TypeError):
        return False
    if not isinstance(sig, str):
        return False
    return verify_object(b64url_decode(header["by"]), CONTEXT_MESSAGE, _signed(header, ct), sig)


def author_is_member(state: GroupState, header: dict[str, Any]) -> bool:
    """True if the verified log gives ``header.by`` to ``header.author`` (now or
    earlier), or, for a teacher, if ``by`` is an admin key (spec §5; JS authorIsMember)."""
    if state.signer_is_member(header["author"], header["by"]):
        return True
    m = state.members.get(header["author"])
    return m is not None and m.role == "teacher" and header["by"] in state.admins


def check_alert_signer(state: GroupState, header: dict[str, Any]) -> None:
    """Raise MessageError unless an alert is signed by an emergency-role key (spec §7).

    ``header.by`` must be one of the admins of the alert's epoch (those in force
    when that epoch's ``rotate`` was applied, :attr:`Epoch.admins`, not the
    current list) and the log must give that key to ``header.author`` with the
    role ``admin``.  Any other member's signature (a guardian's, even a valid
    one) is refused; so is a key dropped from the admins before the epoch.
    """
    if not isinstance(header, dict) or header.get("kind") != "alert":
        raise MessageError("this is not an alert")
    if header.get("group") != state.group:
        raise MessageError("this alert was sent to another group")
    admins = state.epoch_admins(header.get("epoch"))
    if admins is None:
        raise MessageError("alert refused: the group's log has no such epoch")
    if header.get("by") not in admins:
        raise MessageError(
            "alert refused: not signed by one of the school's emergency-role keys of its epoch"
        )
    member = state.members.get(str(header.get("author")))
    if member is None or member.role != "admin":
        raise MessageError("alert refused: its author is not a school admin of this group")
    if not state.signer_is_member(member.member, header["by"]):
        raise MessageError("alert refused: the group's log does not give this key to its author")


def check_alert_body(body: Any) -> dict[str, Any]:
    """Return a decrypted alert body if it is exactly ``{template, text, drill}`` (spec §7).

    ``template`` is one of ALERT_TEMPLATES, ``text`` 0-2000 characters (code
    points; not empty for the ``free`` template), ``drill`` true or false.
    """
    if not isinstance(body, dict) or set(body) != _ALERT_BODY_KEYS:
        raise MessageError("alert body: exactly template, text and drill")
    template, text = body["template"], body["text"]
    if not isinstance(template, str) or template not in ALERT_TEMPLATES:
        raise MessageError("alert body: unknown template")
    if not isinstance(text, str) or len(text) > ALERT_TEXT_MAX:
        raise MessageError(
            f"alert body: text must be a string of at most {ALERT_TEXT_MAX} characters"
        )
    if template == "free" and text == "":
        raise MessageError("alert body: a free alert needs a text")
    if type(body["drill"]) is not bool:
        raise MessageError("alert body: drill must be true or false")
    return body


def decrypt_message(
    sealed: dict[str, Any], message_key: bytes, *, state: GroupState | None = None
) -> dict[str, Any]:
    """Verify the signature and key commitment, decrypt, and return the body.

    With ``state`` (the verified log), also checks that ``header.by`` is a key
    the log gives to ``header.author`` (:func:`author_is_member`), or for an
    alert that it is an emergency-role key (:func:`check_alert_signer`).
    Without it the caller must make that check itself.  An alert's body is
    always checked with :func:`check_alert_body`.
    """
    if not verify_signature(sealed):
        raise MessageError("the author's signature does not verify")
    header = sealed["header"]
    if state is not None:
        if header["kind"] == "alert":
            check_alert_signer(state, header)
        elif not author_is_member(state, header):
            raise MessageError("the author's key is not one the group's log gives them")
    if not hmac.compare_digest(
        key_commitment(message_key, header["group"], header["id"]), header["kc"]
    ):
        raise MessageError("the key does not match the message's key commitment")
    aead_key = p.hkdf(message_key, b"", _AEAD_INFO, 32)
    try:
        padded = p.aes256gcm_decrypt(
            aead_key,
            b64url_decode(header["nonce"], length=12),
            b64url_decode(sealed["ct"]),
            canonical_json(header),
        )
    except ValueError as exc:
        raise MessageError("the message was altered") from exc
    try:
        body = parse_json_strict(unpad(padded))
    except CanonicalJSONError as exc:
        raise MessageError("the message body is not strict JSON") from exc
    if not isinstance(body, dict):
        raise MessageError("the message body is not an object")
    if header["kind"] == "alert":
        check_alert_body(body)
    return body
